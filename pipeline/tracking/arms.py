"""What an arm's MLflow run holds but its figures: metrics, confusion matrix, per-example
record, model, warnings.

``log_arm`` writes them; ``record.record_arm`` (``python -m pipeline``) draws the figures
(``painter``) and then calls it, and the DVC stages that train call it alone: their figures
are the stage ``figures``' job, so that a figure's code is no dependency of a trained model.
The per-example record (``log_examples``): ``examples.npz`` (every epoch's correctness and
label probability of every training example, and who each example is; read it with
``np.load(path, allow_pickle=False)`` and ``pipeline.study.examples.ExampleRecord.from_arrays``),
the summary metrics (``examples_*``, with corrupted-vs-clean AUROCs when some labels are
wrong), and the tag ``memlab.inverted_scores`` naming the scores that separate them the other
way round.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from pipeline.arrays import save_arrays
from pipeline.runtime import faults
from pipeline.study.results import ArmResult
from pipeline.tracking import store

FOLDER = "examples"  # the per-example record's folder in the run
# The scores whose AUROC is below 0.5 beyond its interval, comma-separated (only when some are):
# a number that reads as "worst score" in a table is flagged where people search runs.
INVERTED_TAG = "memlab.inverted_scores"


def log_arrays(run_id: str, arrays: dict[str, np.ndarray], artifact_file: str) -> None:
    """Log ``arrays`` as one compressed, pickle-free ``.npz`` artifact at ``artifact_file``."""
    path = Path(artifact_file)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / path.name
        save_arrays(local, arrays, compressed=True)
        MlflowClient().log_artifact(run_id, str(local), path.parent.as_posix() or None)


def log_examples(run_id: str, arm: ArmResult) -> None:
    """Log ``arm.examples`` (if recorded) in ``run_id``: the record, its metrics, and the
    ``memlab.inverted_scores`` tag when some score's AUROC is inverted."""
    if arm.examples is None:
        return
    log_arrays(run_id, arm.examples.arrays(), f"{FOLDER}/examples.npz")
    store.log_metrics(run_id, arm.example_metrics(), step=arm.training.epochs)
    inverted = arm.inverted_scores()
    if inverted:  # searchable: tags.`memlab.inverted_scores` != ''
        store.set_tags(run_id, {INVERTED_TAG: ",".join(inverted)})


def log_arm(run_id: str, arm: ArmResult) -> None:
    """Record a trained arm in ``run_id`` (the active MLflow run, for the model), no figures."""
    from pipeline.tracking.models import log_model

    log_examples(run_id, arm)
    store.log_metrics(run_id, {**arm.metrics(), **arm.timings()}, step=arm.training.epochs)
    faults.point("arm-metrics-logged")
    store.log_dict(
        run_id, {"rows_true_cols_predicted": arm.confusion.tolist()}, "confusion_matrix.json"
    )
    uri = log_model(arm.model, input_example=arm.input_example, run_id=run_id)
    store.set_tags(run_id, {"model_uri": uri})
    store.record_warnings(run_id, arm.warnings)
    faults.point("arm-recorded")
