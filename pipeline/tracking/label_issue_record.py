"""How ``+experiment=label_issues`` is recorded: one MLflow run for the whole study.

The run holds the params and the config like any run, the summary metrics (``issues_*``: the
pool, the held-out accuracy, cleanlab's flags, the overlap of memlab's and cleanlab's top
lists and, with injected noise, every ranking's precision at k, recall at 1% and AUROC), and
under ``label_issues/``:

- ``ranking.json``: the whole ranking as an MLflow table (``mlflow.log_table``), one row per
  pool example, most suspect first by memlab's ranking, with every score and cleanlab's rank
  beside it: the UI's artifact view shows it as a table to browse and sort;
- ``ranking.csv``: the same, for a spreadsheet or pandas;
- ``top_suspects.csv``: memlab's and cleanlab's top lists side by side;
- ``gallery_memlab.png``, ``gallery_cleanlab.png``: the top suspects' images, given and
  predicted labels and scores; ``agreement.png``; ``precision_recall.png`` where the truth is
  known (injected noise).

The folds are one run, not child runs: their models are not logged, and what a person compares
across runs (seeds, noise levels) is the study's numbers, which sit on this run. Each model's
held-out accuracy and epochs are its steps of ``issues_fold_held_out_accuracy``.
"""

from __future__ import annotations

import io

import numpy as np
from mlflow.tracking import MlflowClient

from pipeline.settings import RunSettings
from pipeline.study.label_issues import RANKINGS, LabelIssueResult, run_label_issues
from pipeline.study.results import DataSummary
from pipeline.tracking import painter, store
from pipeline.tracking.dataset_record import log_data_summary
from pipeline.tracking.memorization_record import table_csv

FOLDER = "label_issues"


def top_suspects_csv(result: LabelIssueResult) -> str:
    """memlab's and cleanlab's top ``result.top`` side by side, one rank a row."""
    mine, theirs = result.order()[: result.top], result.order("cleanlab")[: result.top]
    score = result.scores[result.rank_by]
    out = io.StringIO()
    out.write(
        f"rank,memlab_index,memlab_label,memlab_predicted,memlab_{result.rank_by},"
        "cleanlab_index,cleanlab_label,cleanlab_predicted,cleanlab_p_label,in_both\n"
    )
    p_label = result.proba[np.arange(len(result.label)), result.label]
    both = set(mine) & set(theirs)
    for rank, (i, j) in enumerate(zip(mine, theirs, strict=True), start=1):
        out.write(
            f"{rank},{result.index[i]},{result.label[i]},{result.predicted[i]},{score[i]:.6g},"
            f"{result.index[j]},{result.label[j]},{result.predicted[j]},{p_label[j]:.6g},"
            f"{int(i in both)}\n"
        )
    return out.getvalue()


def record_label_issues(run_id: str, result: LabelIssueResult, data: DataSummary) -> None:
    """Record the study's metrics, ranking tables and pictures in ``run_id``."""
    store.log_metrics(run_id, {**result.metrics(), **result.timings()})
    for step, fold in enumerate(result.records):
        store.log_metrics(
            run_id, {"issues_fold_held_out_accuracy": fold.held_out_accuracy}, step=step
        )
    table = result.table()
    store.log_text(run_id, table_csv(table), f"{FOLDER}/ranking.csv")
    store.log_text(run_id, top_suspects_csv(result), f"{FOLDER}/top_suspects.csv")
    import pandas as pd

    MlflowClient().log_table(run_id, pd.DataFrame(table), f"{FOLDER}/ranking.json")
    orders = {name: result.order(name) for name in RANKINGS}
    painter.paint(
        run_id,
        FOLDER,
        "label_issue_figures.label_issue_figures",
        table,
        result.inputs[result.order()],
        data.image_shape,
        orders,
        result.mislabeled,
        rank_by=result.rank_by,
        top=result.top,
    )


def run_and_record_label_issues(run_id: str, settings: RunSettings) -> LabelIssueResult:
    """Run the label-issue study ``settings.label_issues`` asks for, recorded in ``run_id``."""
    from pipeline.runtime.progress import models_bar
    from pipeline.runtime.workers import mapper

    issues = settings.label_issues
    models = mapper(settings.train.workers, settings.numerics)  # train.workers processes
    with models_bar(issues.folds * issues.repeats, settings.train.progress) as trained:
        data, result = run_label_issues(settings, trained, models)
    log_data_summary(run_id, data)
    record_label_issues(run_id, result, data)
    return result
