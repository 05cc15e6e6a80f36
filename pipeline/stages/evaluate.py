"""DVC stage ``evaluate``: the trained model on the held-out data it has never seen.

Writes validation and test loss and accuracy (``repro/metrics/evaluate.json``) and one
``actual,predicted`` row per test image (``repro/plots/confusion.csv``, which ``dvc plots``
draws as a confusion matrix); MLflow gets the same metrics and the matrix as a table.
"""

from __future__ import annotations

import numpy as np

from pipeline.data.split import Splits, fingerprint
from pipeline.stages.common import METRICS, MODEL, PLOTS, SPLITS, run_stage, stage_params
from pipeline.stages.files import load_splits, write_json, write_table
from pipeline.stages.record import stage_run
from pipeline.stages.weights import load_model
from pipeline.study.evaluate import confusion_matrix, evaluate
from pipeline.tracking import store as tracking
from pipeline.tracking.datasets import log_split

STAGE = "evaluate"


def assess(model, splits: Splits) -> tuple[dict[str, float], np.ndarray]:
    """Held-out loss and accuracy, and the predicted class of every test image (n_test,)."""
    metrics = {}
    for part in ("test", "val"):
        scores = evaluate(model, getattr(splits, f"X_{part}"), getattr(splits, f"y_{part}"))
        metrics[f"{part}_accuracy"] = scores["accuracy"]
        metrics[f"{part}_loss"] = scores["loss"]
    return metrics, model.predict(splits.X_test)


def main() -> None:
    params = stage_params(STAGE)
    splits, n_classes = load_splits(SPLITS)
    name, model = load_model(MODEL)
    tags = {"model": name, "data_fingerprint": fingerprint(splits)}
    run_name = f"dvc-evaluate-{name}-seed{model.random_state}"
    with stage_run(STAGE, params, name=run_name, tags=tags) as run:
        log_split(
            run, "splits", str(SPLITS.resolve()), tags["data_fingerprint"], splits, splits.y_train
        )
        metrics, predicted = assess(model, splits)
        tracking.log_metrics(run, metrics)
        matrix = confusion_matrix(splits.y_test, predicted, n_classes)
        tracking.log_dict(
            run, {"rows_true_cols_predicted": matrix.tolist()}, "confusion_matrix.json"
        )
        write_json(METRICS / "evaluate.json", metrics)
        write_table(PLOTS / "confusion.csv", {"actual": splits.y_test, "predicted": predicted})


if __name__ == "__main__":
    run_stage(main)
