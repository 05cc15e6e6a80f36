"""DVC stage ``memorize``: does the network fit labels it has no way to predict?

Zhang et al. 2017: train on corrupted labels (``probe.labels``; the DVC default shuffles every
training label) or randomized inputs (``probe.inputs``) and, as the control, the identical
model (same settings, seed and initialisation) on the true data. The probe arm is built as
``pipeline.study.run.prepare_arm`` builds it, so the numbers agree with
``python -m pipeline probe.control=true ...``.

Writes both arms' accuracies and epochs to fit (``repro/metrics/memorize.json``) and their
per-epoch curves (``repro/plots/memorize/{probe,control}.csv``). MLflow gets a parent run with
one child per arm, as ``python -m pipeline`` records a probe and its control.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.data.split import Splits
from pipeline.stages.common import METRICS, PLOTS, SPLITS, run_stage
from pipeline.stages.files import write_json, write_table
from pipeline.stages.record import finite, stage_run, warn
from pipeline.stages.train import curves, fit, read_training
from pipeline.study.diagnose import diagnose
from pipeline.study.evaluate import evaluate
from pipeline.study.probes import corrupt_labels, randomize_inputs, split_accuracy
from pipeline.study.seeds import derive_seed
from pipeline.study.train import TrainResult
from pipeline.tracking import store as tracking
from pipeline.tracking.datasets import log_split

STAGE = "memorize"


@dataclass(frozen=True)
class Arm:
    """What one arm trains on."""

    splits: Splits  # inputs as trained on (held-out inputs permuted too under shuffled_pixels)
    y_train: np.ndarray  # (n_train,) the labels trained on
    corrupted: np.ndarray | None  # (n_train,) bool: labels chosen for corruption; None if none


def arms(splits: Splits, probe: dict[str, Any], *, n_classes: int, seed: int) -> dict[str, Arm]:
    """The probe arm (``probe.labels`` and ``probe.inputs`` applied) and the true-data control."""
    labels = probe["labels"]
    fraction = float(labels["fraction"])
    corruption = corrupt_labels(
        splits.y_train,
        fraction,
        labels["mode"],
        n_classes=n_classes,
        seed=derive_seed(seed, "labels"),
    )
    X_train, (X_val, X_test) = randomize_inputs(
        probe["inputs"],
        splits.X_train,
        (splits.X_val, splits.X_test),
        seed=derive_seed(seed, "inputs"),
    )
    randomized = Splits(X_train, splits.y_train, X_val, splits.y_val, X_test, splits.y_test)
    corrupted = corruption.corrupted if fraction > 0 else None
    return {
        "probe": Arm(randomized, corruption.labels, corrupted),
        "control": Arm(splits, splits.y_train, None),
    }


def outcome(model, result: TrainResult, arm: Arm) -> dict[str, Any]:
    """An arm's end: accuracy on the labels trained on, held-out accuracy, epochs to fit."""
    s = arm.splits
    ended = {
        "train_accuracy": evaluate(model, s.X_train, arm.y_train)["accuracy"],
        "test_accuracy": evaluate(model, s.X_test, s.y_test)["accuracy"],
        "epochs": result.epochs,
        "epochs_to_fit": result.epochs_to_fit,
    }
    if arm.corrupted is not None and 0 < arm.corrupted.sum() < len(arm.corrupted):
        clean, corrupted = split_accuracy(model.predict(s.X_train), arm.y_train, arm.corrupted)
        ended |= {"train_accuracy_clean": clean, "train_accuracy_corrupted": corrupted}
    return ended


def compare(outcomes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Both arms, and how many times longer the probe took to fit (None unless both did)."""
    probe, control = outcomes["probe"]["epochs_to_fit"], outcomes["control"]["epochs_to_fit"]
    ratio = probe / control if probe and control else None
    return {**outcomes, "epochs_to_fit_ratio": ratio}


def main() -> None:
    params, model, train, seed, splits, n_classes, tags = read_training(STAGE)
    name = f"dvc-memorize-{model.name}-seed{seed}"
    outcomes: dict[str, dict[str, Any]] = {}
    with stage_run(STAGE, params, name=name, tags=tags) as parent:
        log_split(
            parent,
            "splits",
            str(SPLITS.resolve()),
            tags["data_fingerprint"],
            splits,
            splits.y_train,
        )
        for arm_name, arm in arms(splits, params["probe"], n_classes=n_classes, seed=seed).items():
            arm_tags = {**tags, "arm": arm_name}
            with stage_run(
                STAGE, params, name=f"{name}-{arm_name}", tags=arm_tags, parent_run_id=parent
            ) as run:
                probe = params["probe"] if arm_name == "probe" else None
                log_split(
                    run,
                    "splits",
                    str(SPLITS.resolve()),
                    tags["data_fingerprint"],
                    arm.splits,
                    arm.y_train,
                    probe,
                )
                with tracking.epoch_metrics(run) as log_epoch:
                    estimator, result = fit(
                        model,
                        train,
                        seed,
                        arm.splits.X_train,
                        arm.y_train,
                        arm.splits.X_val,
                        arm.splits.y_val,
                        n_classes=n_classes,
                        corrupted=arm.corrupted,
                        on_epoch=log_epoch,
                    )
                outcomes[arm_name] = outcome(estimator, result, arm)
                accuracy = outcomes[arm_name]["train_accuracy"]
                found = diagnose(estimator, arm.splits.X_train, arm.y_train, accuracy)
                warn(run, found, prefix=f"{arm_name} arm: ")
                # As python -m pipeline names them: the full-pass training accuracies are
                # final_*, apart from the per-epoch running train_accuracy* curves.
                ended = {
                    (f"final_{k}" if k.startswith("train_accuracy") else k): v
                    for k, v in finite(outcomes[arm_name]).items()
                }
                timing = {"fit_seconds": result.fit_seconds}
                tracking.log_metrics(run, {**ended, **timing}, result.epochs)
                write_table(PLOTS / "memorize" / f"{arm_name}.csv", curves(result))
        summary = compare(outcomes)
        headline = {
            f"{arm}_{key}": value for arm in outcomes for key, value in summary[arm].items()
        }
        headline["epochs_to_fit_ratio"] = summary["epochs_to_fit_ratio"]
        tracking.log_metrics(parent, finite(headline))
        write_json(METRICS / "memorize.json", summary)


if __name__ == "__main__":
    run_stage(main)
