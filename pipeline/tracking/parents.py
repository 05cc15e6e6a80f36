"""A sweep's parent run: created apart from any job, closed honestly when the sweep ends."""

from __future__ import annotations

from collections.abc import Mapping

import mlflow
from mlflow.tracking import MlflowClient


def start_detached_run(name: str, tags: Mapping[str, str]) -> str:
    """Create a RUNNING run that is not the process's active run (a sweep's parent); its id."""
    experiment_id = mlflow.get_experiment_by_name(_experiment_name()).experiment_id
    from pipeline.runtime import owner

    created = MlflowClient().create_run(experiment_id, run_name=name, tags={**owner.tags(), **tags})
    return created.info.run_id


def _experiment_name() -> str:
    from mlflow.tracking.fluent import _get_experiment_id

    return MlflowClient().get_experiment(_get_experiment_id()).name


def children(parent_run_id: str) -> list:
    """The runs whose parent is ``parent_run_id``."""
    client = MlflowClient()
    parent = client.get_run(parent_run_id)
    return client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
        max_results=10_000,
    )


def close_parent(parent_run_id: str, status: str | None = None) -> str:
    """End a parent run: ``status`` if given, else FINISHED when every child finished.

    First the figures its in-process jobs left to it (``painter``) go into their runs: all
    of them, or, for a sweep that stopped (``status`` given), those drawn already.
    """
    from pipeline.tracking import painter

    if status is not None:
        painter.salvage(parent_run_id)
    else:
        try:
            painter.finish(parent_run_id)
        except Exception as err:  # a figure could not be drawn: the sweep did not succeed
            MlflowClient().set_tag(parent_run_id, "error", f"{type(err).__name__}: {err}")
            status = "FAILED"
    if status is None:
        states = [run.info.status for run in children(parent_run_id)]
        status = "FINISHED" if states and all(s == "FINISHED" for s in states) else "FAILED"
    MlflowClient().set_terminated(parent_run_id, status=status)
    return status
