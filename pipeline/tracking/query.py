"""What the report reads from MLflow: the runs to compare, and their per-epoch curves.

The report (``pipeline.report``) is pure pandas and matplotlib; these queries are its MLflow
edge. A run set that cannot be found is a one-line ``ReportError``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from pipeline.errors import MemlabError
from pipeline.report.table import SWEEP_TAG, leaf_runs


class ReportError(MemlabError):
    """The runs asked for cannot be found or compared."""


def find_runs(experiment: str, parent: str | None, latest_sweep: bool) -> tuple[str, pd.DataFrame]:
    """The report's name and the leaf runs it compares: an experiment's, a sweep's, the newest
    sweep's."""
    client = mlflow.MlflowClient()
    if parent is not None:
        try:
            parent_run = client.get_run(parent)
        except MlflowException:
            raise ReportError(f"no run with id {parent!r} in {mlflow.get_tracking_uri()}") from None
        experiment_id, name = parent_run.info.experiment_id, parent_run.info.run_name
    else:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            known = ", ".join(e.name for e in client.search_experiments()) or "none"
            raise ReportError(
                f"no experiment {experiment!r} in {mlflow.get_tracking_uri()} "
                f"(experiments there: {known}); choose one with --experiment"
            )
        experiment_id, name = found.experiment_id, experiment
    runs = mlflow.search_runs(experiment_ids=[experiment_id], output_format="pandas")
    if runs.empty:
        raise ReportError(f"experiment {name!r} has no runs yet: run `python -m pipeline` first")
    if latest_sweep:
        sweeps = runs[runs[SWEEP_TAG].eq("parent")] if SWEEP_TAG in runs else runs.iloc[:0]
        if sweeps.empty:
            raise ReportError(
                f"experiment {experiment!r} has no sweep (no run tagged memlab.sweep=parent): "
                "run one with `python -m pipeline -m ...`"
            )
        newest = sweeps.sort_values("start_time").iloc[-1]
        parent, name = newest["run_id"], newest["tags.mlflow.runName"]
    leaves = leaf_runs(runs, parent)
    if parent is not None and leaves.empty:
        raise ReportError(
            f"run {parent} ({name}) has no child runs: give a sweep's parent run id, "
            "or use --latest-sweep"
        )
    if leaves.empty:
        raise ReportError(f"experiment {name!r} has no runs that trained a model")
    return name, leaves


def use_store(tracking_uri: str | None) -> str:
    """Read from ``tracking_uri`` (None: MLflow's default); refuse a missing SQLite file."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ReportError(f"no MLflow store at {uri}: run where you trained or pass --tracking-uri")
    return uri


def metric_histories(
    run_ids: Sequence[str], metrics: Sequence[str]
) -> dict[str, dict[str, list[float]]]:
    """``{run_id: {metric: [value per epoch, in step order]}}``."""
    client = mlflow.MlflowClient()
    return {
        run_id: {
            metric: [
                m.value
                for m in sorted(client.get_metric_history(run_id, metric), key=lambda m: m.step)
            ]
            for metric in metrics
        }
        for run_id in run_ids
    }


def newest_run_tags(tracking_uri: str) -> dict[str, str]:
    """The tags of the newest run in the store at ``tracking_uri`` ({} if it has none)."""
    client = mlflow.MlflowClient(tracking_uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, order_by=["attributes.start_time DESC"], max_results=1)
    return dict(runs[0].data.tags) if runs else {}


def final_metrics(tracking_uri: str) -> dict[str, dict[str, float]]:
    """Every run's final metrics in the store at ``tracking_uri``, by run name, without timings
    (keys with ``seconds``) and the machine's load (``system/``), which no two runs share."""
    client = mlflow.MlflowClient(tracking_uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return {
        run.info.run_name: {
            k: v
            for k, v in run.data.metrics.items()
            if "seconds" not in k and not k.startswith("system/")
        }
        for run in client.search_runs(ids, max_results=1000)
    }
