"""Held-out memorization scores (Feldman & Zhang 2020): which examples only a model trained on
them gets right.

mem(i) = P[h(x_i) = y_i | h trained on i] - P[h(x_i) = y_i | h not trained on i], with y_i the
label trained on. The estimator (their section 3, ``google-research/heldout-influence-estimation``):
train ``t`` models, each on a random subset (70%) of the training pool; score every pool example
with every model; for each example, the mean correctness over the models that trained on it
minus the mean over those that did not.

**Its interval.** p_in and p_out are two independent binomial proportions, so the score is
their difference. The Wald standard error, sqrt(p_in (1 - p_in) / n_in + p_out (1 - p_out) /
n_out), is 0 whenever p_in = 1 and p_out = 0, which is most examples of a fitted study (76% at
20 models on digits): it claims certainty that 20 models do not give. Each score gets instead
Newcombe's hybrid score interval for a difference of independent proportions (Newcombe 1998,
"Interval estimation for the difference between independent proportions: comparison of eleven
methods", Statistics in Medicine 17, method 10), built from the two Wilson score intervals
(Wilson 1927) [l_in, u_in] and [l_out, u_out]:

    low  = mem - sqrt((p_in - l_in)^2 + (u_out - p_out)^2)
    high = mem + sqrt((u_in - p_in)^2 + (p_out - l_out)^2)

A Wilson interval has positive width for any count out of n >= 1 and stays inside [0, 1], so
this interval is never zero-width and stays inside [-1, 1]; its coverage is close to nominal at
0 and 1, where Wald's is not (Newcombe's table). Its width still falls as 1 / sqrt(t).

**Its reliability.** How many models are enough? Split the ``t`` models into two halves, score
every example with each half alone, and correlate the two score vectors (Pearson, over the
examples both halves can score): the split-half reliability, as Feldman & Zhang and the C-score
paper (Jiang et al. 2021) use it. The Spearman-Brown formula, 2 r / (1 + r), predicts the
reliability of the full ``t``. Computed for halves of 2, 3, ... up to t / 2 models, it is a
curve against the number of models that says whether more models would still change the
ranking. The models' subsets are independent draws, so the halves are simply the first and the
second ``t / 2`` models.

``estimate`` is the estimator, a pure function of two (t, n) matrices; ``memorization_study``
trains the models (``SubsetModels``: the study core's ``fit_arm``, without the per-example
record), through a ``map`` it is given (one after another, or in worker processes: the same
bits), and returns them as a ``MemorizationResult``. Nothing here records or draws.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np

from pipeline.data.split import Splits
from pipeline.settings import MemorizationSettings, ModelSettings, RunSettings, TrainSettings
from pipeline.study.examples import auroc
from pipeline.study.results import DataSummary
from pipeline.study.run import Arm, fit_arm
from pipeline.study.seeds import derive_seed

Z95 = 1.959963984540054  # the standard normal's 97.5% point: two-sided 95% intervals


def wilson(successes: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (Wilson 1927) of a binomial proportion, without continuity correction.

    Parameters
    ----------
    successes, n : array_like of int, shape (m,)
        Successes out of ``n`` trials (NaN bounds where ``n`` is 0).
    z : float
        The normal quantile (1.96 for 95%).

    Returns
    -------
    (low, high), each (m,): centre (p + z^2 / 2n) / (1 + z^2 / n) minus and plus
    z sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n). Positive width for every n >= 1,
    inside [0, 1]; at p = 1 the interval is [n / (n + z^2), 1].
    """
    successes = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / n
        z2 = z * z
        centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def newcombe(
    x_in: np.ndarray, n_in: np.ndarray, x_out: np.ndarray, n_out: np.ndarray, z: float = Z95
) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval of p_in - p_out (Newcombe 1998, method 10).

    ``x_in`` of ``n_in`` and ``x_out`` of ``n_out`` are the two independent binomial counts,
    each (m,). Returns ``(low, high)``, each (m,), from the two Wilson intervals (see the
    module docstring); NaN where ``n_in`` or ``n_out`` is 0.
    """
    l_in, u_in = wilson(x_in, n_in, z)
    l_out, u_out = wilson(x_out, n_out, z)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_in = np.asarray(x_in, dtype=float) / np.asarray(n_in, dtype=float)
        p_out = np.asarray(x_out, dtype=float) / np.asarray(n_out, dtype=float)
    mem = p_in - p_out
    low = mem - np.sqrt((p_in - l_in) ** 2 + (u_out - p_out) ** 2)
    high = mem + np.sqrt((u_in - p_in) ** 2 + (p_out - l_out) ** 2)
    return low, high


def estimate(trained: np.ndarray, correct: np.ndarray) -> dict[str, np.ndarray]:
    """Memorization score of every example from ``t`` models' subsets and correctness.

    Parameters
    ----------
    trained : ndarray of bool, shape (t, n)
        Whether model k was trained on example i.
    correct : ndarray of bool, shape (t, n)
        Whether model k classified example i as its (trained-on) label.

    Returns
    -------
    dict of (n,) arrays: ``mem``, ``ci_low`` and ``ci_high`` (its 95% Newcombe interval, see
    :func:`newcombe`), ``p_in``, ``p_out`` (the two means) and ``n_in``, ``n_out`` (the models
    behind each). Where ``n_in`` or ``n_out`` is 0 the scores are NaN.
    """
    trained = np.asarray(trained, dtype=bool)
    correct = np.asarray(correct, dtype=bool)
    n_in = trained.sum(axis=0)
    n_out = (~trained).sum(axis=0)
    x_in = (correct & trained).sum(axis=0)
    x_out = (correct & ~trained).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_in = x_in / n_in
        p_out = x_out / n_out
    low, high = newcombe(x_in, n_in, x_out, n_out)
    return {
        "mem": p_in - p_out,
        "ci_low": low,
        "ci_high": high,
        "p_in": p_in,
        "p_out": p_out,
        "n_in": n_in,
        "n_out": n_out,
    }


@dataclass
class MemorizationResult:
    """``t`` models, each trained on a subset of the training pool, and how each scored it.

    ``trained`` and ``correct`` are (t, n) bool; ``index``, ``label``, ``true_label`` and
    ``corrupted`` (n,) say who the pool's examples are (as in ``ExampleRecord``); ``inputs``
    (n, n_features) are the pool's images, for galleries. ``test_accuracy`` and ``epochs``
    are (t,); ``fit_seconds`` is the time spent in training steps, summed over the models
    (more than ``seconds``, the whole loop's wall time, when they train in parallel).
    """

    trained: np.ndarray
    correct: np.ndarray
    index: np.ndarray
    label: np.ndarray
    true_label: np.ndarray
    corrupted: np.ndarray
    inputs: np.ndarray
    test_accuracy: np.ndarray
    epochs: np.ndarray
    fit_seconds: float
    seconds: float

    @property
    def mislabeled(self) -> np.ndarray:
        return self.label != self.true_label

    def table(self) -> dict[str, np.ndarray]:
        """One row per pool example: who it is and its score, as named columns."""
        who = {
            "index": self.index,
            "label": self.label,
            "true_label": self.true_label,
            "corrupted": self.corrupted.astype(int),
        }
        return {**who, **estimate(self.trained, self.correct)}

    def metrics(self) -> dict[str, float]:
        """Summary: models, mean score, shares strongly memorized, how wide the intervals are,
        the split-half reliability, and the mislabeled-vs-clean AUROC.

        ``mem_median_ci_width`` is the median width of the examples' 95% intervals and
        ``mem_min_ci_width`` the narrowest (never 0); ``mem_share_ci_above_0`` the share whose
        interval lies above 0 (memorized, at 95%). ``mem_split_half_reliability`` correlates
        two halves of the models; ``mem_reliability_spearman_brown`` is what it predicts for
        all of them (absent with fewer than 4 models).
        """
        scores = estimate(self.trained, self.correct)
        mem = scores["mem"]
        known = np.isfinite(mem)
        width = (scores["ci_high"] - scores["ci_low"])[known]
        out = {
            "mem_models": float(len(self.trained)),
            "mem_examples_scored": float(known.sum()),
            "mem_mean": float(np.mean(mem[known])),
            "mem_median_ci_width": float(np.median(width)),
            "mem_min_ci_width": float(np.min(width)),
            "mem_share_ci_above_0": float(np.mean(scores["ci_low"][known] > 0)),
            "mem_share_above_0.5": float(np.mean(mem[known] > 0.5)),
            "mem_share_above_0.25": float(np.mean(mem[known] > 0.25)),
            "mem_count_above_0.5": float(np.sum(mem[known] > 0.5)),
            "mem_mean_test_accuracy": float(np.mean(self.test_accuracy)),
            "mem_mean_epochs": float(np.mean(self.epochs)),
        }
        r, _ = split_half(self.trained, self.correct)
        if np.isfinite(r):
            out["mem_split_half_reliability"] = r
            out["mem_reliability_spearman_brown"] = spearman_brown(r)
        wrong = self.mislabeled
        if wrong[known].any() and not wrong[known].all():
            out["mem_auroc_corrupt"] = auroc(wrong[known], mem[known])
            out["mem_mean_corrupt"] = float(np.mean(mem[known & wrong]))
            out["mem_mean_clean"] = float(np.mean(mem[known & ~wrong]))
        return out

    def reliability(self) -> dict[str, np.ndarray]:
        """The split-half reliability against the number of models (:func:`reliability_curve`)."""
        return reliability_curve(self.trained, self.correct)

    def timings(self) -> dict[str, float]:
        return {"fit_seconds": self.fit_seconds, "study_seconds": self.seconds}

    def summary(self) -> str:
        """A few lines for the screen: what was trained and what it found."""
        m = self.metrics()
        lines = [
            f"{int(m['mem_models'])} models on {self.trained.sum(axis=1).mean():.0f} of "
            f"{self.trained.shape[1]} examples each: mean test accuracy "
            f"{m['mem_mean_test_accuracy']:.3f}, {m['mem_mean_epochs']:.1f} epochs",
            f"memorization score: mean {m['mem_mean']:.3f}, above 0.5 for "
            f"{int(m['mem_count_above_0.5'])} examples ({m['mem_share_above_0.5']:.1%}); "
            f"95% interval above 0 for {m['mem_share_ci_above_0']:.1%}, median interval width "
            f"{m['mem_median_ci_width']:.2f} (Newcombe)",
        ]
        if "mem_split_half_reliability" in m:
            half = len(self.trained) // 2
            lines.append(
                f"split-half reliability {m['mem_split_half_reliability']:.3f} ({half} models "
                f"against {half}; {m['mem_reliability_spearman_brown']:.3f} predicted for all "
                f"{len(self.trained)}, Spearman-Brown)"
            )
        if "mem_auroc_corrupt" in m:
            lines.append(f"corrupted vs clean AUROC of the score: {m['mem_auroc_corrupt']:.3f}")
        lines.append(  # in worker processes the models' training adds up to more than the wall
            f"{self.seconds:.0f} s in all; the models' training steps took "
            f"{self.fit_seconds:.0f} s together"
        )
        return "\n".join(lines)


def split_half(
    trained: np.ndarray, correct: np.ndarray, per_half: int | None = None
) -> tuple[float, int]:
    """Pearson correlation of the scores from two disjoint halves of the models.

    The first ``per_half`` models against the ``per_half`` that follow the first half
    (``t // 2`` each by default; models are independent draws, so any disjoint split will do).
    Returns ``(r, examples)``: the correlation over the examples both halves can score, and
    how many those are; r is NaN with fewer than 3 such examples or a constant half.
    """
    t = len(trained)
    half = t // 2
    per_half = half if per_half is None else per_half
    if per_half < 1 or per_half > half:
        return float("nan"), 0
    a = estimate(trained[:per_half], correct[:per_half])["mem"]
    b = estimate(trained[half : half + per_half], correct[half : half + per_half])["mem"]
    both = np.isfinite(a) & np.isfinite(b)
    if both.sum() < 3 or np.ptp(a[both]) == 0 or np.ptp(b[both]) == 0:
        return float("nan"), int(both.sum())
    return float(np.corrcoef(a[both], b[both])[0, 1]), int(both.sum())


def spearman_brown(r: float, factor: float = 2.0) -> float:
    """The reliability of ``factor`` times as many models as gave ``r``: f r / (1 + (f - 1) r)."""
    return factor * r / (1 + (factor - 1) * r)


def reliability_curve(
    trained: np.ndarray, correct: np.ndarray, points: int = 20
) -> dict[str, np.ndarray]:
    """Split-half reliability for halves of 2 ... ``t // 2`` models, each (m,).

    Every size up to ``points`` sizes, else ``points`` sizes spaced evenly on a log scale
    (each point costs two estimates over the whole pool).

    ``models_per_half``; ``split_half`` (the correlation, NaN where too few examples are
    scored by both halves); ``spearman_brown`` (predicted for twice the models); ``examples``
    (how many examples each correlation is over).
    """
    half = len(trained) // 2
    sizes = np.arange(2, half + 1)
    if len(sizes) > points:
        sizes = np.unique(np.round(np.geomspace(2, half, points)).astype(int))
    found = [split_half(trained, correct, m) for m in sizes]
    r = np.array([f[0] for f in found], dtype=float)
    return {
        "models_per_half": sizes,
        "split_half": r,
        "spearman_brown": spearman_brown(r),
        "examples": np.array([f[1] for f in found], dtype=int),
    }


def subsets(n: int, n_models: int, fraction: float, seed: int) -> np.ndarray:
    """(n_models, n) bool: each row a uniformly random ``round(fraction * n)`` of ``n`` examples."""
    rng = np.random.default_rng(seed)
    size = int(round(fraction * n))
    trained = np.zeros((n_models, n), dtype=bool)
    for k in range(n_models):
        trained[k, rng.permutation(n)[:size]] = True
    return trained


@dataclass(frozen=True)
class SubsetModels:
    """Model k of a memorization study, trained and scored: ``SubsetModels(...)(k)``.

    Everything a model needs, so that the models can train anywhere (a worker process, see
    the ``map`` of :func:`memorization_study`): the split (``splits``, its training pool
    ``X_train``), the labels trained on (``labels``, (n,)), which examples each model trains
    on (``trained``, (t, n) bool), the model and training settings, the study's seed.
    """

    splits: Splits
    labels: np.ndarray
    trained: np.ndarray
    model: ModelSettings
    train: TrainSettings
    seed: int
    n_classes: int

    def __call__(self, k: int) -> SubsetModel:
        s, X, y = self.splits, self.splits.X_train, self.labels
        rows = np.flatnonzero(self.trained[k])
        subset = Arm(f"model-{k}", replace(s, X_train=X[rows], y_train=y[rows]), y[rows], None)
        model_seed = derive_seed(self.seed, f"memorization-model-{k}")
        estimator, result = fit_arm(
            subset, self.model, self.train, model_seed, n_classes=self.n_classes
        )
        return SubsetModel(
            correct=estimator.predict(X) == y,
            test_accuracy=float(np.mean(estimator.predict(s.X_test) == s.y_test)),
            epochs=int(result.epochs),
            fit_seconds=result.fit_seconds,
        )


@dataclass(frozen=True)
class SubsetModel:
    """What one subset model gives the study: ``correct`` (n,) bool on the whole pool, against
    the labels trained on; its test accuracy, epochs and seconds in training steps."""

    correct: np.ndarray
    test_accuracy: float
    epochs: int
    fit_seconds: float


def memorization_study(
    arm,
    model: ModelSettings,
    train: TrainSettings,
    *,
    n_models: int,
    fraction: float,
    seed: int,
    n_classes: int,
    on_model: Callable[[int, int], None] | None = None,
    map: Callable[[Callable, Iterable], Iterable] = map,
) -> MemorizationResult:
    """Train ``n_models`` models on random subsets of ``arm``'s training pool and score the pool.

    ``arm`` is a ``pipeline.study.run.Arm`` (its labels may be corrupted). Model k is
    initialised from ``derive_seed(seed, "memorization-model-k")`` and trained as any run is
    (``fit_arm``: the same stopping rule, ``train.stop_at_fit``), then predicts the whole
    pool (against the labels trained on) and the test split. ``on_model(k, n_models)`` is
    called as each model's result comes, in model order (a progress bar).

    ``map(fn, range(n_models))`` trains the models: the builtin ``map`` one after another
    here; ``pipeline.runtime.workers.mapper`` in worker processes. Each model depends only on
    its k, so any ``map`` that yields results in order gives the same bits.
    """
    start = time.perf_counter()
    train = replace(train, record_examples=False)  # no per-example record for these models
    s = arm.splits
    X, y = s.X_train, arm.y_train
    n = len(y)
    trained = subsets(n, n_models, fraction, derive_seed(seed, "memorization-subsets"))
    models = SubsetModels(s, y, trained, model, train, seed, n_classes)
    correct = np.zeros_like(trained)
    test_accuracy = np.zeros(n_models)
    epochs = np.zeros(n_models, dtype=int)
    fit_seconds = 0.0
    for k, got in enumerate(map(models, range(n_models))):
        correct[k] = got.correct
        test_accuracy[k] = got.test_accuracy
        epochs[k] = got.epochs
        fit_seconds += got.fit_seconds
        if on_model is not None:
            on_model(k + 1, n_models)
    index = s.index_train if s.index_train is not None else np.full(n, -1, dtype=np.int64)
    corrupted = arm.corrupted if arm.corrupted is not None else np.zeros(n, dtype=bool)
    return MemorizationResult(
        trained=trained,
        correct=correct,
        index=np.asarray(index, dtype=np.int64),
        label=np.asarray(y, dtype=np.int64),
        true_label=np.asarray(s.y_train, dtype=np.int64),
        corrupted=np.asarray(corrupted, dtype=bool),
        inputs=X,
        test_accuracy=test_accuracy,
        epochs=epochs,
        fit_seconds=fit_seconds,
        seconds=time.perf_counter() - start,
    )


def run_memorization(
    settings: RunSettings,
    on_model: Callable[[int, int], None] | None = None,
    map: Callable[[Callable, Iterable], Iterable] = map,
) -> tuple[DataSummary, MemorizationResult]:
    """The whole study ``settings`` describe (``settings.memorization``: how many models, on
    what share of the pool): load, split, corrupt as ``settings.probe`` says (no control arm),
    then ``memorization_study``, its models trained by ``map``. Records nothing."""
    memorization = settings.memorization or MemorizationSettings()
    from pipeline.study.run import load_data, make_arms, summarize_data

    dataset, splits = load_data(settings.data, settings.split, settings.seed)
    probe = replace(settings.probe, control=False)
    (arm,) = make_arms(splits, probe, n_classes=dataset.n_classes, seed=settings.seed)
    result = memorization_study(
        arm,
        settings.model,
        settings.train,
        n_models=memorization.n_models,
        fraction=memorization.subset,
        seed=settings.seed,
        n_classes=dataset.n_classes,
        on_model=on_model,
        map=map,
    )
    return summarize_data(dataset, splits), result
