"""Which labels are wrong? Every example of a pool ranked by how likely its label is a mistake.

Memorization is the mechanism: a mislabeled example is predicted wrong by the models that did
not train on it, learned late, forgotten often and fitted only when the network memorizes.
This module turns each of those signals into a ranking of the whole pool, beside the field's
reference, cleanlab's confident learning, on the same out-of-sample probabilities.

**Cross-fitting.** The pool is cut into ``K`` stratified folds; model k trains on every fold
but k (with the per-example training record, :mod:`pipeline.study.examples`) and predicts
fold k. Every example thus gets predicted probabilities from a model that never saw it (the
*out-of-sample* probabilities confident learning needs), and K - 1 training records from the
models that did. With ``seeds`` > 1 the whole cross-fit is repeated with other folds and
initialisations and the probabilities are averaged (an ensemble of cross-fits); the record
scores are averaged over every model that trained on the example.

**The scores**, each (n,) over the pool; ``SUSPICION`` gives the direction in which a
mislabeled example should score (-1: low). With ``p`` the out-of-sample probabilities (n, c)
and ``y`` the given labels:

- ``self_confidence`` = p[i, y_i] (Northcutt, Jiang & Chuang 2021, "Confident learning", JAIR;
  cleanlab's ``rank.get_label_quality_scores(method="self_confidence")``).
- ``normalized_margin`` = (p[i, y_i] - max_{k != y_i} p[i, k] + 1) / 2, in [0, 1] (Wei et al.
  2018's margin, as cleanlab's ``method="normalized_margin"`` scales it).
- ``aum``: the area under the margin (Pleiss, Zhang, Elenberg & Weinberger 2020, NeurIPS,
  "Identifying mislabeled data using the area under the margin ranking"): per epoch t,
  margin_t = z_{y_i} - max_{k != y_i} z_k with z the logits, and AUM = its mean over the
  epochs. Here the margin is taken on the log-probabilities, log p_{y_i} - max log p_k: for
  softmax outputs (``loss=cross_entropy``) that *is* the logit margin, since a softmax shifts
  all logits of an example by the same constant. It is measured after each epoch on the
  fold's training examples (Pleiss et al. take it from the training forward pass; the model
  moves little within an epoch), and averaged over the K - 1 models that trained on i.
- ``confidence`` and ``variability``: dataset cartography (Swayamdipta et al. 2020, EMNLP):
  the mean and the standard deviation over epochs of the probability of the given label in
  the running training pass; mislabeled examples are "hard to learn" (low confidence).
- ``forgetting_events`` (Toneva et al. 2019, ICLR): correct -> wrong transitions between
  consecutive epochs, an example never learned counting one per epoch (their convention).
- ``learned_epoch``: the epoch from which the example stays correct to the end (T + 1 if it is
  wrong at the last): a memorized label is learned last (Arpit et al. 2017).
- ``cleanlab``: cleanlab's own ranking (:func:`cleanlab_ranking`): the examples
  ``cleanlab.filter.find_label_issues`` flags (confident learning, ``prune_by_noise_rate``),
  in the order it ranks them (``self_confidence``), then the rest by that same label quality.
  It is given the out-of-sample probabilities only.

**How good a ranking is**, where the truth is known (injected noise): precision at k with k
the number of mislabeled examples; recall in the top 1% of the pool; the AUROC of mislabeled
against clean (:func:`pipeline.study.examples.auroc`).

``label_issue_study`` trains the models (the study core's ``fit_arm``) and returns a
``LabelIssueResult``; every score is a pure function of arrays. Nothing here records or draws.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from pipeline.options import LABEL_ISSUE_RANKINGS
from pipeline.study import examples as ex
from pipeline.study.seeds import derive_seed

if TYPE_CHECKING:
    from pipeline.settings import ModelSettings, RunSettings, TrainSettings
    from pipeline.study.results import DataSummary

# Each score's direction: -1 if a mislabeled example should score low, +1 if high.
SUSPICION = {
    "self_confidence": -1,
    "normalized_margin": -1,
    "aum": -1,
    "confidence": -1,
    "variability": 1,
    "forgetting_events": 1,
    "learned_epoch": 1,
    "cleanlab": 1,
}
RANKINGS = LABEL_ISSUE_RANKINGS  # the same names, in the same order, as the settings check
MEMLAB_RANKINGS = tuple(r for r in RANKINGS if r != "cleanlab")
TINY = 1e-12  # probabilities are clipped here before a log (a softmax can underflow to 0)


# ------------------------------------------------------------------ folds
def stratified_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """(n,) int in 0 .. k - 1: each class's examples shuffled and dealt out in turn, so every
    fold holds each class in nearly the same share."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    start = 0  # the deal goes on from class to class, so the folds' sizes differ by at most 1
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        fold[members] = (start + np.arange(len(members))) % k
        start = (start + len(members)) % k
    return fold


# ------------------------------------------------------------------ scores of probabilities
def self_confidence(proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(n,): the probability of the given label, ``proba[i, labels[i]]``; ``proba`` (n, c)."""
    proba = np.asarray(proba, dtype=np.float64)
    return proba[np.arange(len(proba)), np.asarray(labels)]


def _other_max(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(n,): the largest of ``values[i, k]`` over the classes k other than ``labels[i]``."""
    others = np.array(values, dtype=np.float64)
    others[np.arange(len(others)), np.asarray(labels)] = -np.inf
    return others.max(axis=1)


def normalized_margin(proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(n,): (p_y - max_{k != y} p_k + 1) / 2, in [0, 1]; below 1/2 where another class wins."""
    return (self_confidence(proba, labels) - _other_max(proba, labels) + 1) / 2


def log_margin(proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(n,): log p_y - max_{k != y} log p_k, the logit margin for softmax outputs (AUM's)."""
    logp = np.log(np.clip(np.asarray(proba, dtype=np.float64), TINY, None))
    return self_confidence(logp, labels) - _other_max(logp, labels)


def aum(margins: np.ndarray) -> np.ndarray:
    """(n,): the area under the margin, the mean over epochs of ``margins`` (T, n)."""
    return np.asarray(margins, dtype=np.float64).mean(axis=0)


def cleanlab_ranking(labels: np.ndarray, pred_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cleanlab's verdict on ``pred_probs`` (n, c), which must be out-of-sample.

    Returns ``(flagged, order)``: (n,) bool, the examples ``cleanlab.filter.find_label_issues``
    flags (its defaults: confident learning's ``prune_by_noise_rate``), and (n,) int, every
    example most suspect first: the flagged ones in cleanlab's order (``self_confidence``),
    then the others by the same label quality score, lowest first.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    labels = np.asarray(labels, dtype=np.int64)
    pred_probs = np.asarray(pred_probs, dtype=np.float64)
    ranked = find_label_issues(
        labels, pred_probs, return_indices_ranked_by="self_confidence", n_jobs=1
    )
    flagged = np.zeros(len(labels), dtype=bool)
    flagged[ranked] = True
    quality = get_label_quality_scores(labels, pred_probs, method="self_confidence")
    rest = np.flatnonzero(~flagged)
    rest = rest[np.argsort(quality[rest], kind="stable")]
    return flagged, np.concatenate([np.asarray(ranked, dtype=np.int64), rest])


def rank_score(order: np.ndarray) -> np.ndarray:
    """(n,) float: a score from an ordering, most suspect first: n for the first, 1 the last."""
    score = np.empty(len(order), dtype=np.float64)
    score[order] = np.arange(len(order), 0, -1)
    return score


# ------------------------------------------------------------------ rankings and their quality
def ranking(score: np.ndarray, direction: int) -> np.ndarray:
    """(n,) positions, most suspect first (``direction * score`` highest); ties by position."""
    return np.argsort(-direction * np.asarray(score, dtype=np.float64), kind="stable")


def precision_at(order: np.ndarray, positive: np.ndarray, k: int) -> float:
    """Share of mislabeled (``positive``) among the first ``k`` of ``order``; NaN for k = 0."""
    return float(np.mean(np.asarray(positive)[order[:k]])) if k > 0 else float("nan")


def recall_at(order: np.ndarray, positive: np.ndarray, k: int) -> float:
    """Share of all mislabeled examples found in the first ``k`` of ``order``."""
    positive = np.asarray(positive, dtype=bool)
    total = int(positive.sum())
    return float(positive[order[:k]].sum() / total) if total else float("nan")


def quality(score: np.ndarray, direction: int, positive: np.ndarray) -> dict[str, float]:
    """How well one score finds the ``positive`` (mislabeled) examples: precision at k (k = how
    many there are), recall in the top 1% of the pool, and AUROC (in the score's direction)."""
    positive = np.asarray(positive, dtype=bool)
    order = ranking(score, direction)
    k = int(positive.sum())
    return {
        "precision_at_k": precision_at(order, positive, k),
        "recall_at_1pct": recall_at(order, positive, max(1, math.ceil(0.01 * len(positive)))),
        "auroc": ex.auroc(positive, direction * np.asarray(score, dtype=np.float64)),
    }


# ------------------------------------------------------------------ the study
@dataclass
class FoldRecord:
    """One model of a cross-fit: what it trained on and how each of those examples fared.

    ``rows`` (m,) are the pool positions it trained on; ``correct`` (T, m) bool and
    ``label_proba`` (T, m) float32 are its running per-example record
    (:class:`pipeline.study.examples.ExampleRecord`'s), ``margin`` (T, m) float32 the
    log-probability margin of each example after each epoch (for AUM). ``held_out_accuracy``
    is its accuracy on the fold it predicted, against the given labels.
    """

    repeat: int
    fold: int
    rows: np.ndarray
    correct: np.ndarray
    label_proba: np.ndarray
    margin: np.ndarray
    held_out_accuracy: float
    fit_seconds: float

    @property
    def epochs(self) -> int:
        return int(self.correct.shape[0])


@dataclass
class LabelIssueResult:
    """Every pool example's out-of-sample probabilities, its scores, and who it is.

    ``proba`` (n, c): the out-of-sample probabilities, averaged over the cross-fits; ``folds``
    (s, n): which fold (whose model did not train on it) scored each example in each of the
    ``s`` cross-fits; ``records``: one :class:`FoldRecord` per model (s * K). ``scores``: each
    ranking's (n,) score (``SUSPICION`` gives its direction); ``flagged`` (n,) bool, the
    examples cleanlab flags. ``index``, ``label``, ``true_label`` and ``corrupted`` (n,) say who
    each example is (as in ``ExampleRecord``); ``inputs`` (n, n_features) are its image.
    ``rank_by`` is the score memlab's own ranking uses, ``top`` the length of the lists
    compared with cleanlab's.
    """

    proba: np.ndarray
    folds: np.ndarray
    records: list[FoldRecord]
    scores: dict[str, np.ndarray]
    flagged: np.ndarray
    index: np.ndarray
    label: np.ndarray
    true_label: np.ndarray
    corrupted: np.ndarray
    inputs: np.ndarray
    rank_by: str
    top: int
    fit_seconds: float
    cleanlab_seconds: float
    seconds: float
    timing: dict[str, float] = field(default_factory=dict)

    @property
    def mislabeled(self) -> np.ndarray:
        return self.label != self.true_label

    @property
    def predicted(self) -> np.ndarray:
        """(n,): the class the models that did not train on each example predict."""
        return self.proba.argmax(axis=1)

    def order(self, name: str | None = None) -> np.ndarray:
        """(n,) positions, most suspect first, by score ``name`` (default ``rank_by``)."""
        name = name or self.rank_by
        return ranking(self.scores[name], SUSPICION[name])

    def table(self) -> dict[str, np.ndarray]:
        """One row per pool example, most suspect first by ``rank_by``: who it is, the given
        and the predicted label, every score, and its rank by memlab's and cleanlab's ranking."""
        order = self.order()
        rank, cl_rank = np.empty(len(order), int), np.empty(len(order), int)
        rank[order] = np.arange(1, len(order) + 1)
        cl_rank[self.order("cleanlab")] = np.arange(1, len(order) + 1)
        columns = {
            "rank": rank,
            "cleanlab_rank": cl_rank,
            "index": self.index,
            "label": self.label,
            "predicted": self.predicted,
            "true_label": self.true_label,
            "mislabeled": self.mislabeled.astype(int),
            "p_label": self_confidence(self.proba, self.label),
            "p_predicted": self.proba.max(axis=1),
            "cleanlab_flagged": self.flagged.astype(int),
            **{name: v for name, v in self.scores.items() if name != "cleanlab"},
        }
        return {name: np.asarray(values)[order] for name, values in columns.items()}

    def overlap(self, k: int | None = None) -> int:
        """How many of memlab's top ``k`` (default ``top``) are in cleanlab's top ``k``."""
        k = k or self.top
        return len(set(self.order()[:k]) & set(self.order("cleanlab")[:k]))

    def quality(self) -> dict[str, dict[str, float]]:
        """Each ranking's precision at k, recall at 1% and AUROC; {} with no known errors."""
        wrong = self.mislabeled
        if not wrong.any() or wrong.all():
            return {}
        return {name: quality(s, SUSPICION[name], wrong) for name, s in self.scores.items()}

    def metrics(self) -> dict[str, float]:
        """Summary metrics, ``issues_*``: the pool, the held-out accuracy, cleanlab's flags and
        the overlap of the two top lists; with injected noise, every ranking's quality
        (``issues_<ranking>_<measure>``) and the precision and recall of cleanlab's flags."""
        wrong = self.mislabeled
        out = {
            "issues_pool": float(len(self.label)),
            "issues_models": float(len(self.records)),
            "issues_mislabeled": float(wrong.sum()),
            "issues_oos_accuracy": float(np.mean(self.predicted == self.label)),
            "issues_oos_accuracy_true": float(np.mean(self.predicted == self.true_label)),
            "issues_mean_epochs": float(np.mean([r.epochs for r in self.records])),
            "issues_cleanlab_flagged": float(self.flagged.sum()),
            "issues_top_overlap": float(self.overlap()),
        }
        if wrong.any():
            out["issues_cleanlab_flag_precision"] = float(np.mean(wrong[self.flagged]))
            out["issues_cleanlab_flag_recall"] = float(np.mean(self.flagged[wrong]))
        for name, measured in self.quality().items():
            out.update({f"issues_{name}_{m}": v for m, v in measured.items()})
        return out

    def timings(self) -> dict[str, float]:
        return {
            "fit_seconds": self.fit_seconds,
            "cleanlab_seconds": self.cleanlab_seconds,
            "study_seconds": self.seconds,
            **self.timing,
        }

    def summary(self) -> str:
        """A few lines for the screen: what was trained and what it found."""
        m = self.metrics()
        s, k = self.folds.shape[0], len(self.records) // max(1, self.folds.shape[0])
        lines = [
            f"{len(self.records)} models ({s} cross-fit{'s' * (s > 1)} of {k} folds), "
            f"{m['issues_mean_epochs']:.0f} epochs each: every one of {len(self.label)} examples "
            f"scored out of sample, accuracy {m['issues_oos_accuracy']:.3f} on the given labels",
            f"cleanlab flags {int(m['issues_cleanlab_flagged'])}; memlab's top {self.top} "
            f"({self.rank_by}) shares {int(m['issues_top_overlap'])} with cleanlab's top "
            f"{self.top}",
        ]
        found = self.quality()
        if found:
            lines.append(
                f"{int(m['issues_mislabeled'])} labels are wrong; precision at k / recall at 1% "
                "/ AUROC:"
            )
            for name, q in sorted(found.items(), key=lambda item: -item[1]["auroc"]):
                lines.append(
                    f"  {name:18s} {q['precision_at_k']:.3f}  {q['recall_at_1pct']:.3f}  "
                    f"{q['auroc']:.3f}"
                )
        lines.append(
            f"{self.seconds:.0f} s in all, {self.fit_seconds:.0f} s of it training, "
            f"{self.timing.get('margin_seconds', 0.0):.0f} s margins, "
            f"{self.cleanlab_seconds:.1f} s cleanlab"
        )
        return "\n".join(lines)


def record_scores(records: list[FoldRecord], n: int) -> dict[str, np.ndarray]:
    """The training-record scores of every pool example, each the mean over the models that
    trained on it (NaN for an example no model trained on)."""
    names = ("aum", "confidence", "variability", "forgetting_events", "learned_epoch")
    total = {name: np.zeros(n) for name in names}
    count = np.zeros(n)
    for r in records:
        found = {
            "aum": aum(r.margin),
            "confidence": ex.confidence(r.label_proba),
            "variability": ex.variability(r.label_proba),
            "forgetting_events": ex.forgetting_events(r.correct),
            "learned_epoch": ex.learned_epoch(r.correct),
        }
        for name in names:
            total[name][r.rows] += found[name]
        count[r.rows] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return {name: total[name] / count for name in names}


@dataclass(frozen=True)
class FoldModels:
    """Model k of cross-fit r, trained and scored: ``FoldModels(...)((r, k))``.

    Everything a model needs, so that the models can train anywhere (a worker process, see the
    ``map`` of :func:`label_issue_study`): the pool ``(X, labels)``, each cross-fit's folds
    (``fold_of``, (repeats, n)), the model and training settings, the study's seed. Returns
    the model's :class:`FoldRecord` and the out-of-sample probabilities of the fold it held
    out, with the seconds its margins took.
    """

    X: np.ndarray
    labels: np.ndarray
    fold_of: np.ndarray
    model: ModelSettings
    train: TrainSettings
    seed: int
    n_classes: int

    def __call__(self, item: tuple[int, int]) -> tuple[FoldRecord, np.ndarray, float]:
        from pipeline.data.split import Splits
        from pipeline.study.run import Arm, fit_arm

        r, k = item
        X, labels = self.X, self.labels
        rows, held = np.flatnonzero(self.fold_of[r] != k), np.flatnonzero(self.fold_of[r] == k)
        X_in, y_in = X[rows], labels[rows]
        splits = Splits(X_in, y_in, X[held], labels[held], X[held], labels[held], rows, held)
        margins: list[np.ndarray] = []
        margin_seconds = 0.0

        def after_epoch(estimator, _result) -> None:
            nonlocal margin_seconds
            tick = time.perf_counter()
            margins.append(log_margin(estimator.predict_proba(X_in), y_in).astype(np.float32))
            margin_seconds += time.perf_counter() - tick

        estimator, result = fit_arm(
            Arm(f"fold-{r}-{k}", splits, y_in, None),
            self.model,
            self.train,
            derive_seed(self.seed, f"issues-model-{r}-{k}"),
            n_classes=self.n_classes,
            after_epoch=after_epoch,
        )
        p_held = estimator.predict_proba(X[held])  # (n_held, n_classes), out of sample
        record = FoldRecord(
            repeat=r,
            fold=k,
            rows=rows,
            correct=result.correct,
            label_proba=result.label_proba,
            margin=np.array(margins, dtype=np.float32).reshape(-1, len(rows)),
            held_out_accuracy=float(np.mean(p_held.argmax(axis=1) == labels[held])),
            fit_seconds=result.fit_seconds,
        )
        return record, p_held, margin_seconds


def label_issue_study(
    X: np.ndarray,
    labels: np.ndarray,
    model: ModelSettings,
    train: TrainSettings,
    *,
    folds: int,
    repeats: int = 1,
    seed: int,
    n_classes: int,
    true_labels: np.ndarray | None = None,
    index: np.ndarray | None = None,
    corrupted: np.ndarray | None = None,
    rank_by: str = "self_confidence",
    top: int = 100,
    on_model: Callable[[int, int], None] | None = None,
    map: Callable[[Callable, Iterable], Iterable] = map,
) -> LabelIssueResult:
    """Cross-fit ``repeats`` times over the pool ``(X, labels)`` and score every example.

    Cross-fit r deals the pool into ``folds`` stratified folds (seed ``derive_seed(seed,
    "issues-folds-r")``); its model k (seed ``derive_seed(seed, "issues-model-r-k")``) trains
    as any run does (``fit_arm``, with the per-example record, ``train.stop_at_fit`` as set),
    measures the log-probability margin of its training examples after every epoch and
    predicts fold k. ``on_model(done, total)`` is called after each model.

    ``map(fn, items)`` trains the models (:class:`FoldModels`): the builtin ``map`` one after
    another here; ``pipeline.runtime.workers.mapper`` in worker processes. Each model depends
    only on its (r, k), and the results are taken in that order, so any ``map`` that yields
    them in order gives the same bits.
    """
    start = time.perf_counter()
    X = np.asarray(X)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    train = replace(train, record_examples=True)
    proba = np.zeros((n, n_classes))
    fold_of = np.array(
        [
            stratified_folds(labels, folds, derive_seed(seed, f"issues-folds-{r}"))
            for r in range(repeats)
        ],
        dtype=np.int64,
    ).reshape(repeats, n)
    models = FoldModels(X, labels, fold_of, model, train, seed, n_classes)
    items = [(r, k) for r in range(repeats) for k in range(folds)]
    records: list[FoldRecord] = []
    fit_seconds = margin_seconds = 0.0
    for (r, k), (record, p_held, seconds) in zip(items, map(models, items), strict=True):
        proba[fold_of[r] == k] += p_held / repeats
        records.append(record)
        fit_seconds += record.fit_seconds
        margin_seconds += seconds
        if on_model is not None:
            on_model(len(records), repeats * folds)
    tick = time.perf_counter()
    flagged, cl_order = cleanlab_ranking(labels, proba)
    cleanlab_seconds = time.perf_counter() - tick
    scores = {
        "self_confidence": self_confidence(proba, labels),
        "normalized_margin": normalized_margin(proba, labels),
        **record_scores(records, n),
        "cleanlab": rank_score(cl_order),
    }
    return LabelIssueResult(
        proba=proba,
        folds=fold_of,
        records=records,
        scores={name: scores[name] for name in RANKINGS},
        flagged=flagged,
        index=np.arange(n) if index is None else np.asarray(index, dtype=np.int64),
        label=labels,
        true_label=labels if true_labels is None else np.asarray(true_labels, dtype=np.int64),
        corrupted=np.zeros(n, bool) if corrupted is None else np.asarray(corrupted, bool),
        inputs=X,
        rank_by=rank_by,
        top=top,
        fit_seconds=fit_seconds,
        cleanlab_seconds=cleanlab_seconds,
        seconds=time.perf_counter() - start,
        timing={"margin_seconds": margin_seconds},
    )


def run_label_issues(
    settings: RunSettings,
    on_model: Callable[[int, int], None] | None = None,
    map: Callable[[Callable, Iterable], Iterable] = map,
) -> tuple[DataSummary, LabelIssueResult]:
    """The whole study ``settings`` describe (``settings.label_issues``): load the pool, corrupt
    its labels as ``settings.probe.labels`` says (seed ``derive_seed(seed, "labels")``), then
    ``label_issue_study`` over the whole pool (the split is not used: every example is scored
    out of sample), its models trained by ``map``. Records nothing."""
    from pipeline.data.datasets import load_dataset
    from pipeline.study.probes import corrupt_labels
    from pipeline.study.results import DataSummary

    issues = settings.label_issues
    dataset = load_dataset(settings.data.name, **settings.data.options)
    labels = settings.probe.labels
    corruption = corrupt_labels(
        dataset.y,
        labels.fraction,
        labels.mode,
        n_classes=dataset.n_classes,
        seed=derive_seed(settings.seed, "labels"),
    )
    result = label_issue_study(
        dataset.X,
        corruption.labels,
        settings.model,
        settings.train,
        folds=issues.folds,
        repeats=issues.repeats,
        seed=settings.seed,
        n_classes=dataset.n_classes,
        true_labels=dataset.y,
        corrupted=corruption.corrupted,
        rank_by=issues.rank_by,
        top=issues.top,
        on_model=on_model,
        map=map,
    )
    data = DataSummary(
        name=dataset.name,
        fingerprint=pool_fingerprint(dataset.X, corruption.labels),
        sizes={"n_pool": len(dataset.y)},
        n_classes=dataset.n_classes,
        image_shape=dataset.image_shape,
    )
    return data, result


def pool_fingerprint(X: np.ndarray, y: np.ndarray) -> str:
    """A short SHA-256 over the pool's images and the labels it is scored against."""
    import hashlib

    digest = hashlib.sha256()
    for array in (np.ascontiguousarray(X), np.ascontiguousarray(y)):
        digest.update(f"{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]
