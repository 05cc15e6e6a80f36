"""How the per-example record of an arm is recorded in MLflow: its pictures (the cartography
map, the forgetting-events histogram and three galleries, drawn beside the run: ``painter``)
and the record itself with its metrics and tag (``pipeline.tracking.arms.log_examples``).
"""

from __future__ import annotations

from pipeline.study.results import ArmResult, DataSummary
from pipeline.tracking import painter
from pipeline.tracking.arms import FOLDER, INVERTED_TAG, log_examples

__all__ = ["FOLDER", "INVERTED_TAG", "paint_examples", "record_examples"]


def paint_examples(run_id: str, arm: ArmResult, data: DataSummary, *, title: str) -> None:
    """Draw the pictures of ``arm.examples`` (if recorded) beside ``run_id``, into it."""
    if arm.examples is not None:
        builder = "example_figures.record_figures"
        painter.paint(run_id, FOLDER, builder, arm.examples, data.image_shape, title=title)


def record_examples(run_id: str, arm: ArmResult, data: DataSummary, *, title: str) -> None:
    """Record ``arm.examples`` in ``run_id``: the record, its metrics, its pictures, and the
    ``memlab.inverted_scores`` tag when some score's AUROC is inverted."""
    paint_examples(run_id, arm, data, title=title)
    log_examples(run_id, arm)
