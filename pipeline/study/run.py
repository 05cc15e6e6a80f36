"""One study, computed: load -> split -> arms -> train each epoch by epoch -> evaluate -> probes.

The study core. ``run_study`` returns a ``StudyResult`` and records nothing: whoever calls it
(``python -m pipeline``, the sweep's jobs, a notebook) records it. The DVC stages call the same
steps one at a time (``load_data``, ``make_arms``, ``run_arm``, ``assess``, ``noise_probe``),
with files in between. A ``StudyObserver`` is told what happens as it happens (each arm, each
epoch), so an edge can stream epochs to MLflow or draw a progress bar; the default one does
nothing.

A run with ``probe.control`` trains two arms, the probe and an identical true-data control
(same model, seed and initialisation), and compares them. Given a way to train in another
process (``elsewhere``), the control trains there while the probe trains here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from pipeline.data.datasets import Dataset
from pipeline.data.prepared import DataSummary, load_split, summarize_data
from pipeline.data.split import Splits
from pipeline.models import build_model
from pipeline.settings import (
    DataSettings,
    ModelSettings,
    NoiseSettings,
    ProbeSettings,
    RunSettings,
    SplitSettings,
    TrainSettings,
)
from pipeline.study.diagnose import diagnose
from pipeline.study.evaluate import confusion_matrix, evaluate
from pipeline.study.examples import ExampleRecord
from pipeline.study.noise import NoiseResult, noise_images, noise_summary
from pipeline.study.probes import corrupt_labels, randomize_inputs, split_accuracy
from pipeline.study.results import ArmResult, Comparison, Scores, StudyResult
from pipeline.study.seeds import derive_seed
from pipeline.study.train import TrainResult, train_epochs

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class Arm:
    """What one arm trains on."""

    name: str
    splits: Splits  # inputs as trained on (held-out inputs permuted too under shuffled_pixels)
    y_train: np.ndarray  # (n_train,) the labels trained on
    corrupted: np.ndarray | None  # (n_train,) bool: labels chosen for corruption; None if none


class StudyObserver:
    """Told what a study does as it happens. This one does nothing; the edges subclass it."""

    def data_ready(self, data: DataSummary, splits: Splits) -> None:
        """The data is loaded and split (``splits``: the true data, before any probe)."""

    @contextlib.contextmanager
    def arm(self, arm: Arm, max_epochs: int) -> Iterator[EpochCallback]:
        """Around one arm's training; yields the callback each epoch's metrics are given to."""
        yield lambda epoch, metrics: None

    def arm_finished(self, result: ArmResult) -> None:
        """An arm is trained and measured (called inside its ``arm`` block)."""

    def resume(self, arm: Arm) -> tuple[Any, TrainResult] | None:
        """The model and result to go on training ``arm`` from (a checkpoint), or None."""
        return None

    def checkpoint(self, arm: Arm, model, result: TrainResult) -> None:
        """After each epoch of ``arm`` (an edge may save a checkpoint)."""


class Observers(StudyObserver):
    """Several observers told the same things, in their order: the edges compose this way
    (the MLflow record, the checkpoints, the progress bar), each doing one thing."""

    def __init__(self, *observers: StudyObserver):
        self.observers = observers

    def data_ready(self, data: DataSummary, splits: Splits) -> None:
        for observer in self.observers:
            observer.data_ready(data, splits)

    @contextlib.contextmanager
    def arm(self, arm: Arm, max_epochs: int) -> Iterator[EpochCallback]:
        with contextlib.ExitStack() as stack:
            callbacks = [stack.enter_context(o.arm(arm, max_epochs)) for o in self.observers]

            def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
                for callback in callbacks:
                    callback(epoch, metrics)

            yield on_epoch

    def arm_finished(self, result: ArmResult) -> None:
        for observer in self.observers:
            observer.arm_finished(result)

    def resume(self, arm: Arm) -> tuple[Any, TrainResult] | None:
        """The first checkpoint an observer has for ``arm``."""
        for observer in self.observers:
            found = observer.resume(arm)
            if found is not None:
                return found
        return None

    def checkpoint(self, arm: Arm, model, result: TrainResult) -> None:
        for observer in self.observers:
            observer.checkpoint(arm, model, result)


def load_data(data: DataSettings, split: SplitSettings, seed: int) -> tuple[Dataset, Splits]:
    """Load the dataset and split it, stratified and seeded by ``split.seed``, else ``seed``."""
    split_seed = derive_seed(seed if split.seed is None else split.seed, "split")
    fractions = {"train": split.train, "val": split.val, "test": split.test}
    return load_split(data.name, data.options, **fractions, seed=split_seed)


def make_arms(splits: Splits, probe: ProbeSettings, *, n_classes: int, seed: int) -> list[Arm]:
    """The arm with ``probe.labels`` and ``probe.inputs`` applied to its training split; with
    ``probe.control`` it is called ``probe`` and followed by the true-data ``control``, else
    it is ``run``."""
    labels = probe.labels
    corruption = corrupt_labels(
        splits.y_train,
        labels.fraction,
        labels.mode,
        n_classes=n_classes,
        seed=derive_seed(seed, "labels"),
    )
    X_train, (X_val, X_test) = randomize_inputs(
        probe.inputs,
        splits.X_train,
        (splits.X_val, splits.X_test),
        seed=derive_seed(seed, "inputs"),
    )
    randomized = replace(splits, X_train=X_train, X_val=X_val, X_test=X_test)
    corrupted = corruption.corrupted if labels.fraction > 0 else None
    if not probe.control:
        return [Arm("run", randomized, corruption.labels, corrupted)]
    return [
        Arm("probe", randomized, corruption.labels, corrupted),
        Arm("control", splits, splits.y_train, None),
    ]


def fit_arm(
    arm: Arm,
    model: ModelSettings,
    train: TrainSettings,
    seed: int,
    *,
    n_classes: int,
    on_epoch: EpochCallback | None = None,
    start: tuple[Any, TrainResult] | None = None,
    after_epoch: Callable[[Any, TrainResult], None] | None = None,
):
    """Build ``model`` seeded by ``seed`` and train it on ``arm``; ``(estimator, TrainResult)``.

    ``start``: a model and the result of its epochs so far, to train on from (a checkpoint).
    ``after_epoch(estimator, result)`` is called after every epoch.
    """
    estimator, done = start or (build_model(model.name, model.params(), random_state=seed), None)
    s = arm.splits
    result = train_epochs(
        estimator,
        s.X_train,
        arm.y_train,
        s.X_val,
        s.y_val,
        classes=np.arange(n_classes),
        max_epochs=model.max_epochs,
        fit_threshold=train.fit_threshold,
        stop_at_fit=train.stop_at_fit,
        corrupted=arm.corrupted,
        record_examples=train.record_examples,
        on_epoch=on_epoch,
        start=done,
        after_epoch=None if after_epoch is None else lambda result: after_epoch(estimator, result),
    )
    return estimator, result


def scores(model, X: np.ndarray, y: np.ndarray) -> Scores:
    measured = evaluate(model, X, y)
    return Scores(measured["loss"], measured["accuracy"])


def assess(model, splits: Splits) -> dict[str, Scores]:
    """Held-out scores of a trained model: ``{"val": Scores, "test": Scores}``."""
    return {
        part: scores(model, getattr(splits, f"X_{part}"), getattr(splits, f"y_{part}"))
        for part in ("val", "test")
    }


def noise_probe(model, splits: Splits, noise: NoiseSettings, seed: int) -> list[NoiseResult]:
    """Show the trained model ``noise.n`` noise images of each kind; one result per kind."""
    if noise.n == 0:
        return []
    proba_real = model.predict_proba(splits.X_test)  # (n_test, n_classes)
    found = []
    for kind in noise.kinds:
        X_noise = noise_images(
            kind, noise.n, reference=splits.X_train, seed=derive_seed(seed, f"noise-{kind}")
        )
        found.append(noise_summary(kind, model.predict_proba(X_noise), proba_real))
    return found


def measure_arm(
    arm: Arm, model, training: TrainResult, noise: NoiseSettings, seed: int, n_classes: int
) -> ArmResult:
    """Everything measured on a trained arm: full-pass training scores, test, probes."""
    s = arm.splits
    final_train = scores(model, s.X_train, arm.y_train)
    clean = corrupted = None
    if arm.corrupted is not None and 0 < arm.corrupted.sum() < len(arm.corrupted):
        clean, corrupted = split_accuracy(model.predict(s.X_train), arm.y_train, arm.corrupted)
    return ArmResult(
        name=arm.name,
        model=model,
        training=training,
        final_train=final_train,
        test=scores(model, s.X_test, s.y_test),
        confusion=confusion_matrix(s.y_test, model.predict(s.X_test), n_classes),
        input_example=s.X_test[:5],
        clean_accuracy=clean,
        corrupted_accuracy=corrupted,
        noise=noise_probe(model, s, noise, seed),
        warnings=diagnose(model, s.X_train, arm.y_train, final_train.accuracy),
        examples=example_record(arm, training),
    )


def example_record(arm: Arm, training: TrainResult) -> ExampleRecord | None:
    """The arm's per-example record (None when training kept none), with who each example is."""
    if training.correct is None:
        return None
    s, n = arm.splits, len(arm.y_train)
    index = s.index_train if s.index_train is not None else np.full(n, -1, dtype=np.int64)
    corrupted = arm.corrupted if arm.corrupted is not None else np.zeros(n, dtype=bool)
    return ExampleRecord(
        correct=training.correct,
        label_proba=training.label_proba,
        index=np.asarray(index, dtype=np.int64),
        label=np.asarray(arm.y_train, dtype=np.int64),
        true_label=np.asarray(s.y_train, dtype=np.int64),
        corrupted=np.asarray(corrupted, dtype=bool),
        inputs=s.X_train,
    )


def run_arm(arm: Arm, settings: RunSettings, *, n_classes: int, **training) -> ArmResult:
    """Train one arm and measure it; ``training``: ``fit_arm``'s ``on_epoch``, ``start`` (a
    checkpoint to go on from) and ``after_epoch``."""
    model, result = fit_arm(
        arm, settings.model, settings.train, settings.seed, n_classes=n_classes, **training
    )
    return measure_arm(arm, model, result, settings.probe.noise, settings.seed, n_classes)


def run_study(
    settings: RunSettings,
    observer: StudyObserver | None = None,
    elsewhere: Callable[..., Any] | None = None,
) -> StudyResult:
    """Run everything ``settings`` asks for and return it. Records nothing.

    ``elsewhere(fn, item)``: starts ``fn(item)`` in another process and returns a context
    manager whose ``result()`` waits for it (``pipeline.runtime.workers.Elsewhere``). With it,
    the arms after the first (the control) train there while the first trains here; each is
    then told, measured and recorded in its turn, its epochs as if trained then, so the record
    and every number are those of one arm after another. None: one arm after another.
    """
    observer = observer or StudyObserver()
    dataset, splits = load_data(settings.data, settings.split, settings.seed)
    data = summarize_data(dataset, splits)
    observer.data_ready(data, splits)
    arms = make_arms(splits, settings.probe, n_classes=dataset.n_classes, seed=settings.seed)
    results: dict[str, ArmResult] = {}
    with contextlib.ExitStack() as stack:
        ahead = {
            arm.name: stack.enter_context(
                elsewhere(
                    partial(_fit_from, arm=arm, settings=settings, n_classes=dataset.n_classes),
                    observer.resume(arm),
                )
            )
            for arm in (arms[1:] if elsewhere is not None else [])
        }
        for arm in arms:
            with observer.arm(arm, settings.model.max_epochs) as on_epoch:
                trained = ahead[arm.name].result() if arm.name in ahead else None
                results[arm.name] = run_arm(
                    arm,
                    settings,
                    n_classes=dataset.n_classes,
                    on_epoch=on_epoch,
                    start=trained or observer.resume(arm),
                    after_epoch=lambda model, result, arm=arm: observer.checkpoint(
                        arm, model, result
                    ),
                )
                observer.arm_finished(results[arm.name])
    comparison = Comparison(results["probe"], results["control"]) if "probe" in results else None
    return StudyResult(data, results, comparison)


def _fit_from(
    start: tuple[Any, TrainResult] | None, *, arm: Arm, settings: RunSettings, n_classes: int
):
    """``fit_arm`` from ``start`` (a checkpoint; None: afresh), in the process it is sent to."""
    return fit_arm(
        arm, settings.model, settings.train, settings.seed, n_classes=n_classes, start=start
    )
