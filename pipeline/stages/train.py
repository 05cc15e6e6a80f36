"""DVC stage ``train``: train the configured model on the training split, one epoch at a time.

The same model, seed, split and epoch loop as ``python -m pipeline``, so the numbers agree.
Writes the model (``repro/model/``: weights as arrays, hyper-parameters as JSON), the learning
curves (``repro/plots/train.csv``, one row per epoch) and where training ended
(``repro/metrics/train.json``). Every epoch, and the time it took, goes to MLflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from pipeline.data.split import Splits, fingerprint
from pipeline.models import build_model
from pipeline.settings import ModelSettings, TrainSettings
from pipeline.stages.common import (
    METRICS,
    MODEL,
    PLOTS,
    SPLITS,
    check_seed,
    run_stage,
    stage_params,
)
from pipeline.stages.files import load_splits, write_json, write_table
from pipeline.stages.record import finite, stage_run, warn
from pipeline.stages.weights import save_model
from pipeline.study.diagnose import diagnose
from pipeline.study.evaluate import evaluate
from pipeline.study.train import TrainResult, train_epochs
from pipeline.tracking import store as tracking
from pipeline.tracking.datasets import log_split

STAGE = "train"


def fit(
    model: ModelSettings,
    train: TrainSettings,
    seed: int,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    n_classes: int,
    corrupted: np.ndarray | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[Any, TrainResult]:
    """Build ``model`` with ``seed`` and train it as ``pipeline.study.run.train_arm`` does.

    ``X_train`` (n_train, n_features) and ``y_train`` (n_train,) are what it is trained on
    (labels possibly corrupted, flagged by ``corrupted``); ``(X_val, y_val)`` is measured
    after every epoch. Returns the fitted model and its ``TrainResult``.
    """
    estimator = build_model(model.name, model.params, random_state=seed)
    result = train_epochs(
        estimator,
        X_train,
        y_train,
        X_val,
        y_val,
        classes=np.arange(n_classes),
        max_epochs=int(model.params.get("max_epochs", estimator.max_epochs)),
        fit_threshold=train.fit_threshold,
        stop_at_fit=train.stop_at_fit,
        corrupted=corrupted,
        on_epoch=on_epoch,
    )
    return estimator, result


def summarize(model, result: TrainResult, X_train: np.ndarray, y_train: np.ndarray) -> dict:
    """Where training ended, against the labels trained on. No timings: they never repeat."""
    final = evaluate(model, X_train, y_train)
    return {
        "epochs": result.epochs,
        "epochs_to_fit": result.epochs_to_fit,
        "final_train_loss": final["loss"],
        "final_train_accuracy": final["accuracy"],
        "final_val_accuracy": result.history["val_accuracy"][-1],
        "n_params": model.n_params,
    }


def curves(result: TrainResult) -> dict[str, list]:
    """Per-epoch history as plot columns, ``epoch`` first."""
    return {"epoch": list(range(1, result.epochs + 1)), **result.history}


class Training(NamedTuple):
    """What a training stage reads: its params, checked, and the prepared split."""

    params: dict[str, Any]
    model: ModelSettings
    train: TrainSettings
    seed: int
    splits: Splits
    n_classes: int
    tags: dict[str, str]


def read_training(stage: str) -> Training:
    """The params ``stage`` declares, validated before MLflow is touched, and the split."""
    params = stage_params(stage)
    model = ModelSettings.from_dict(params["model"])
    train = TrainSettings.from_dict(params["train"])
    seed = check_seed(params["seed"])
    build_model(model.name, model.params, random_state=seed)  # a bad value fails before MLflow
    splits, n_classes = load_splits(SPLITS)
    tags = {"model": model.name, "data_fingerprint": fingerprint(splits)}
    params["model"] = {**params["model"], **model.params}  # MLflow records the values used
    return Training(params, model, train, seed, splits, n_classes, tags)


def main() -> None:
    params, model, train, seed, splits, n_classes, tags = read_training(STAGE)
    with stage_run(STAGE, params, name=f"dvc-train-{model.name}-seed{seed}", tags=tags) as run:
        log_split(
            run, "splits", str(SPLITS.resolve()), tags["data_fingerprint"], splits, splits.y_train
        )
        with tracking.epoch_metrics(run) as log_epoch:
            estimator, result = fit(
                model,
                train,
                seed,
                splits.X_train,
                splits.y_train,
                splits.X_val,
                splits.y_val,
                n_classes=n_classes,
                on_epoch=log_epoch,
            )
        metrics = summarize(estimator, result, splits.X_train, splits.y_train)
        accuracy = metrics["final_train_accuracy"]
        warn(run, diagnose(estimator, splits.X_train, splits.y_train, accuracy))
        timing = {"fit_seconds": result.fit_seconds}
        tracking.log_metrics(run, {**finite(metrics), **timing}, step=result.epochs)
        save_model(MODEL, model.name, estimator)
        write_table(PLOTS / "train.csv", curves(result))
        write_json(METRICS / "train.json", metrics)


if __name__ == "__main__":
    run_stage(main)
