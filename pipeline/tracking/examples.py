"""How the per-example record of an arm is recorded in MLflow.

``examples.npz`` (the record itself: every epoch's correctness and label probability of every
training example, and who each example is; read it with ``np.load(path, allow_pickle=False)``
and ``pipeline.study.examples.ExampleRecord.from_arrays``), the summary metrics
(``examples_*``, with corrupted-vs-clean AUROCs when some labels are wrong, and the tag
``memlab.inverted_scores`` naming the scores that separate them the other way round), and the
pictures: the cartography map, the forgetting-events histogram and three galleries.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from pipeline.arrays import save_arrays
from pipeline.study.results import ArmResult, DataSummary
from pipeline.tracking import painter, store

FOLDER = "examples"  # the artifacts' folder in the run
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


def record_examples(run_id: str, arm: ArmResult, data: DataSummary, *, title: str) -> None:
    """Record ``arm.examples`` in ``run_id``: the record, its metrics, its pictures, and the
    ``memlab.inverted_scores`` tag when some score's AUROC is inverted."""
    record = arm.examples
    if record is None:
        return
    painter.paint(
        run_id, FOLDER, "example_figures.record_figures", record, data.image_shape, title=title
    )
    log_arrays(run_id, record.arrays(), f"{FOLDER}/examples.npz")
    store.log_metrics(run_id, arm.example_metrics(), step=arm.training.epochs)
    inverted = arm.inverted_scores()
    if inverted:  # searchable: tags.`memlab.inverted_scores` != ''
        store.set_tags(run_id, {INVERTED_TAG: ",".join(inverted)})
