"""What a study returns: typed results that stay structured until the edge records them.

``ArmResult.metrics`` and ``Comparison.metrics`` are the one place results become flat metric
names, for MLflow and for DVC's JSON alike; nothing parses those names back. Timings are kept
apart (``timings``): they never repeat, so they go to MLflow only, never into DVC's files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.data.prepared import DataSummary
from pipeline.study.examples import ExampleRecord, auroc_lines
from pipeline.study.examples import inverted_scores as inverted_score_names
from pipeline.study.examples import summary as example_summary
from pipeline.study.noise import NoiseResult
from pipeline.study.train import TrainResult


@dataclass(frozen=True)
class Scores:
    """Mean data loss and accuracy of a model on one set of examples."""

    loss: float
    accuracy: float

    def metrics(self, part: str) -> dict[str, float]:
        """``{"<part>_loss": ..., "<part>_accuracy": ...}``."""
        return {f"{part}_loss": self.loss, f"{part}_accuracy": self.accuracy}


@dataclass
class ArmResult:
    """One trained model: its history, where it ended, and what the probes found.

    ``final_train`` and the clean/corrupted accuracies are full passes over the training set
    against the labels trained on, with the final weights; ``training.history`` holds the
    per-epoch running values.
    """

    name: str  # "run", or "probe" / "control" in a run with a control arm
    model: Any  # the fitted NumpyMLP or SklearnMLP
    training: TrainResult
    final_train: Scores
    test: Scores
    confusion: np.ndarray  # (n_classes, n_classes): row = true class, column = predicted
    input_example: np.ndarray  # (5, n_features) test inputs: the logged model's example
    clean_accuracy: float | None = None  # on examples whose labels were not corrupted
    corrupted_accuracy: float | None = None  # on the corrupted ones: how much is memorized
    noise: list[NoiseResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    examples: ExampleRecord | None = None  # per-example record (train.record_examples)

    def training_metrics(self) -> dict[str, float]:
        """Where training ended (what DVC's ``train`` stage keeps); no held-out numbers."""
        out = {
            "epochs": self.training.epochs,
            "epochs_to_fit": self.training.epochs_to_fit,
            "final_train_loss": self.final_train.loss,
            "final_train_accuracy": self.final_train.accuracy,
            "final_train_accuracy_clean": self.clean_accuracy,
            "final_train_accuracy_corrupted": self.corrupted_accuracy,
            "final_val_accuracy": self.training.history["val_accuracy"][-1],
            "n_params": self.model.n_params,
        }
        return {key: value for key, value in out.items() if value is not None}

    def metrics(self) -> dict[str, float]:
        """Every final number, flat: training, held-out test, and the noise probe's."""
        out = {**self.training_metrics(), **self.test.metrics("test")}
        for result in self.noise:
            out.update(result.metrics())
        return out

    def example_metrics(self) -> dict[str, float]:
        """The per-example record's summary (``examples_*``; empty without a record): the
        mean forgetting over learned examples and the never-learned share apart, each score's
        AUROC in its expected direction and how many are inverted (``study.examples.summary``).

        Kept apart from ``metrics`` so that DVC's metric files stay as they were.
        """
        return {} if self.examples is None else example_summary(self.examples)

    def example_auroc_lines(self) -> list[str]:
        """The AUROCs of ``example_metrics`` as lines for people, best first, an inverted
        score flagged (``study.examples.auroc_lines``); empty without wrong labels."""
        return auroc_lines(self.example_metrics(), *self._mislabeled_counts())

    def inverted_scores(self) -> list[str]:
        """The per-example scores whose AUROC is inverted: below 0.5 beyond its 95% interval
        (``study.examples.inverted_scores``); empty without wrong labels."""
        return inverted_score_names(self.example_metrics(), *self._mislabeled_counts())

    def _mislabeled_counts(self) -> tuple[int, int]:
        """(mislabeled, clean) examples of the record: the AUROCs' positives and negatives."""
        if self.examples is None:
            return 0, 0
        wrong = self.examples.mislabeled
        return int(wrong.sum()), int((~wrong).sum())

    def timings(self) -> dict[str, float]:
        return {"fit_seconds": self.training.fit_seconds}


@dataclass
class Comparison:
    """The probe arm against its true-data control: the result Zhang et al. made famous."""

    probe: ArmResult
    control: ArmResult

    @property
    def epochs_to_fit_ratio(self) -> float | None:
        """How many times longer the probe took to fit (None unless both fitted).

        One seed's ratio. Across seeds it is summarized as a paired log-ratio, the geometric
        mean of these ratios (``pipeline.report.aggregate.summarize_ratio``), and a seed whose
        probe did not fit is censored there, not left out.
        """
        probe, control = self.probe.training.epochs_to_fit, self.control.training.epochs_to_fit
        return probe / control if probe and control else None

    def metrics(self) -> dict[str, float]:
        """Both arms' training and test accuracy and epochs to fit, and the ratio."""
        out: dict[str, float] = {}
        for arm in (self.probe, self.control):
            out[f"{arm.name}_train_accuracy"] = arm.final_train.accuracy
            out[f"{arm.name}_test_accuracy"] = arm.test.accuracy
            if arm.training.epochs_to_fit is not None:
                out[f"{arm.name}_epochs_to_fit"] = arm.training.epochs_to_fit
        if self.epochs_to_fit_ratio is not None:
            out["epochs_to_fit_ratio"] = self.epochs_to_fit_ratio
        return out

    def timings(self) -> dict[str, float]:
        arms = (self.probe, self.control)
        return {f"{arm.name}_fit_seconds": arm.training.fit_seconds for arm in arms}


@dataclass
class StudyResult:
    """A whole run: the data, each arm, and (with a control arm) the comparison."""

    data: DataSummary
    arms: dict[str, ArmResult]
    comparison: Comparison | None = None

    @property
    def warnings(self) -> list[str]:
        """Every arm's warnings, named by arm when there are several."""
        if len(self.arms) == 1:
            return list(next(iter(self.arms.values())).warnings)
        return [f"{name} arm: {w}" for name, arm in self.arms.items() for w in arm.warnings]
