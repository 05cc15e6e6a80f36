"""How ``+experiment=memorization_scores`` is recorded: one MLflow run for the whole study.

The run holds the params and the config like any run, the summary metrics (``mem_*``, with the
corrupted-vs-clean AUROC when some labels are wrong), the split-half reliability against the
number of models (``mem_split_half_reliability_curve``, its step the models in each half), the
score table (``memorization/scores.csv``, one row per pool example: its pool index, labels,
score, its 95% interval (Newcombe's, ``ci_low`` and ``ci_high``) and the counts behind it), its
histogram, the gallery of the most memorized images and the reliability curve
(``memorization/reliability.png``).
The models themselves are not logged, and there are no per-model runs or figures, so the study
costs little more than its models' training.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np

from pipeline.settings import RunSettings
from pipeline.study.memorization import MemorizationResult, run_memorization
from pipeline.study.results import DataSummary
from pipeline.tracking import painter, store
from pipeline.tracking.dataset_record import log_data_summary

FOLDER = "memorization"


def table_csv(columns: Mapping[str, np.ndarray]) -> str:
    """The score table as CSV text: integers as integers, scores to 6 significant digits."""
    out = io.StringIO()
    names = list(columns)
    out.write(",".join(names) + "\n")
    for row in zip(*(columns[name] for name in names), strict=True):
        cells = [f"{v:.6g}" if isinstance(v, float | np.floating) else str(int(v)) for v in row]
        out.write(",".join(cells) + "\n")
    return out.getvalue()


def record_memorization(run_id: str, result: MemorizationResult, data: DataSummary) -> None:
    """Record the study's metrics, reliability curve, score table and pictures in ``run_id``."""
    store.log_metrics(run_id, {**result.metrics(), **result.timings()})
    reliability = result.reliability()
    for m, r in zip(reliability["models_per_half"], reliability["split_half"], strict=True):
        if np.isfinite(r):  # NaN: too few examples scored by both halves of m models
            store.log_metrics(run_id, {"mem_split_half_reliability_curve": float(r)}, step=int(m))
    table = result.table()
    store.log_text(run_id, table_csv(table), f"{FOLDER}/scores.csv")
    n_models = len(result.trained)
    painter.paint(
        run_id,
        FOLDER,
        "example_figures.memorization_figures",
        table,
        result.inputs,
        data.image_shape,
        n_models,
        reliability=reliability,
    )


def run_and_record(run_id: str, settings: RunSettings) -> MemorizationResult:
    """Run the memorization study ``settings.memorization`` asks for, recorded in ``run_id``."""
    from pipeline.runtime.progress import models_bar
    from pipeline.runtime.workers import mapper

    models = mapper(settings.train.workers, settings.numerics)  # train.workers processes
    with models_bar(settings.memorization.n_models, settings.train.progress) as trained:
        data, result = run_memorization(settings, trained, models)
    log_data_summary(run_id, data)
    record_memorization(run_id, result, data)
    return result
