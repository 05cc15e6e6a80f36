"""Held-out memorization scores (Feldman & Zhang 2020): which examples only a model trained on
them gets right.

mem(i) = P[h(x_i) = y_i | h trained on i] - P[h(x_i) = y_i | h not trained on i], with y_i the
label trained on. The estimator (their section 3, ``google-research/heldout-influence-estimation``):
train ``t`` models, each on a random subset (70%) of the training pool; score every pool example
with every model; for each example, the mean correctness over the models that trained on it
minus the mean over those that did not. Its standard error is that of a difference of two
independent proportions, sqrt(p_in (1 - p_in) / n_in + p_out (1 - p_out) / n_out), so it falls
as 1 / sqrt(t) (about +-0.1 at t = 100).

``estimate`` is the estimator, a pure function of two (t, n) matrices; ``memorization_study``
is the loop that trains the models (the study core's ``fit_arm``, without the per-example
record) and returns them as a ``MemorizationResult``. Nothing here records or draws.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from pipeline.settings import MemorizationSettings, ModelSettings, RunSettings, TrainSettings
from pipeline.study.examples import auroc
from pipeline.study.results import DataSummary
from pipeline.study.run import Arm, fit_arm
from pipeline.study.seeds import derive_seed


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
    dict of (n,) arrays: ``mem``, ``se`` (its standard error), ``p_in``, ``p_out`` (the two
    means) and ``n_in``, ``n_out`` (the models behind each). Where ``n_in`` or ``n_out`` is 0 the
    scores are NaN.
    """
    trained = np.asarray(trained, dtype=bool)
    correct = np.asarray(correct, dtype=bool)
    n_in = trained.sum(axis=0)
    n_out = (~trained).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_in = (correct & trained).sum(axis=0) / n_in
        p_out = (correct & ~trained).sum(axis=0) / n_out
        se = np.sqrt(p_in * (1 - p_in) / n_in + p_out * (1 - p_out) / n_out)
    return {
        "mem": p_in - p_out,
        "se": se,
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
    are (t,); ``fit_seconds`` is the time spent in training steps, ``seconds`` the whole loop.
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
        """Summary: models, mean score, shares strongly memorized, mislabeled-vs-clean AUROC."""
        scores = estimate(self.trained, self.correct)
        mem = scores["mem"]
        known = np.isfinite(mem)
        out = {
            "mem_models": float(len(self.trained)),
            "mem_examples_scored": float(known.sum()),
            "mem_mean": float(np.mean(mem[known])),
            "mem_median_se": float(np.median(scores["se"][known])),
            "mem_share_above_0.5": float(np.mean(mem[known] > 0.5)),
            "mem_share_above_0.25": float(np.mean(mem[known] > 0.25)),
            "mem_count_above_0.5": float(np.sum(mem[known] > 0.5)),
            "mem_mean_test_accuracy": float(np.mean(self.test_accuracy)),
            "mem_mean_epochs": float(np.mean(self.epochs)),
        }
        wrong = self.mislabeled
        if wrong[known].any() and not wrong[known].all():
            out["mem_auroc_corrupt"] = auroc(wrong[known], mem[known])
            out["mem_mean_corrupt"] = float(np.mean(mem[known & wrong]))
            out["mem_mean_clean"] = float(np.mean(mem[known & ~wrong]))
        return out

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
            f"{int(m['mem_count_above_0.5'])} examples ({m['mem_share_above_0.5']:.1%}), "
            f"median standard error {m['mem_median_se']:.2f}",
        ]
        if "mem_auroc_corrupt" in m:
            lines.append(f"corrupted vs clean AUROC of the score: {m['mem_auroc_corrupt']:.3f}")
        lines.append(f"{self.seconds:.0f} s in all, {self.fit_seconds:.0f} s of it training")
        return "\n".join(lines)


def subsets(n: int, n_models: int, fraction: float, seed: int) -> np.ndarray:
    """(n_models, n) bool: each row a uniformly random ``round(fraction * n)`` of ``n`` examples."""
    rng = np.random.default_rng(seed)
    size = int(round(fraction * n))
    trained = np.zeros((n_models, n), dtype=bool)
    for k in range(n_models):
        trained[k, rng.permutation(n)[:size]] = True
    return trained


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
) -> MemorizationResult:
    """Train ``n_models`` models on random subsets of ``arm``'s training pool and score the pool.

    ``arm`` is a ``pipeline.study.run.Arm`` (its labels may be corrupted). Model k is
    initialised from ``derive_seed(seed, "memorization-model-k")`` and trained as any run is
    (``fit_arm``: the same stopping rule, ``train.stop_at_fit``), then predicts the whole
    pool (against the labels trained on) and the test split. ``on_model(k, n_models)`` is
    called after each model (a progress bar).
    """
    start = time.perf_counter()
    train = replace(train, record_examples=False)  # no per-example record for these models
    s = arm.splits
    X, y = s.X_train, arm.y_train
    n = len(y)
    trained = subsets(n, n_models, fraction, derive_seed(seed, "memorization-subsets"))
    correct = np.zeros_like(trained)
    test_accuracy = np.zeros(n_models)
    epochs = np.zeros(n_models, dtype=int)
    fit_seconds = 0.0
    for k in range(n_models):
        rows = np.flatnonzero(trained[k])
        subset = Arm(f"model-{k}", replace(s, X_train=X[rows], y_train=y[rows]), y[rows], None)
        model_seed = derive_seed(seed, f"memorization-model-{k}")
        estimator, result = fit_arm(subset, model, train, model_seed, n_classes=n_classes)
        fit_seconds += result.fit_seconds
        epochs[k] = result.epochs
        correct[k] = estimator.predict(X) == y
        test_accuracy[k] = float(np.mean(estimator.predict(s.X_test) == s.y_test))
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
    settings: RunSettings, on_model: Callable[[int, int], None] | None = None
) -> tuple[DataSummary, MemorizationResult]:
    """The whole study ``settings`` describe (``settings.memorization``: how many models, on
    what share of the pool): load, split, corrupt as ``settings.probe`` says (no control arm),
    then ``memorization_study``. Records nothing."""
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
    )
    return summarize_data(dataset, splits), result
