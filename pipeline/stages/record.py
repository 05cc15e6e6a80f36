"""The MLflow edge of the DVC stages: each stage that trains or evaluates is one MLflow run.

Tagged ``dvc_stage`` (and ``dvc_exp`` under ``dvc exp run``), with the params the stage read,
in the store and experiment ``mlflow.*`` names, so DVC reruns show up in ``mlflow ui`` beside
the runs of ``python -m pipeline``. Timings go here, never into DVC's metrics.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline.tracking import store as tracking


def tracking_uri(configured: str | None) -> str | None:
    """Where MLflow records a stage: ``mlflow.tracking_uri`` if set, else MLflow's default.

    MLflow's default is ``$MLFLOW_TRACKING_URI``, else ``mlflow.db`` in the working directory.
    The latter is anchored to the project root (``$DVC_ROOT``, which DVC sets to the project
    even when an experiment runs in a temporary copy with ``--temp`` or ``--queue``), so
    every run lands in the store ``mlflow ui`` opens there.
    """
    if configured or os.environ.get("MLFLOW_TRACKING_URI"):
        return configured
    root = os.environ.get("DVC_ROOT")
    return f"sqlite:///{Path(root).resolve() / 'mlflow.db'}" if root else None


@contextlib.contextmanager
def stage_run(
    stage: str,
    params: Mapping[str, Any],
    *,
    name: str,
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
) -> Iterator[str]:
    """An MLflow run for ``stage`` (tag ``dvc_stage``) that records the params it read.

    Also tagged with the git commit and, under ``dvc exp run``, the experiment's name
    (``dvc_exp``). Yields the run id; the run ends FINISHED, or FAILED with the error.
    """
    settings = params["mlflow"]
    tracking.configure(tracking_uri(settings["tracking_uri"]), settings["experiment_name"])
    all_tags = {"dvc_stage": stage, **tracking.git_tags(), **(tags or {})}
    if os.environ.get("DVC_EXP_NAME"):
        all_tags["dvc_exp"] = os.environ["DVC_EXP_NAME"]
    with tracking.run(name, tags=all_tags, parent_run_id=parent_run_id) as run_id:
        tracking.log_params(run_id, tracking.flatten(params))
        yield run_id


def finite(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of ``metrics`` (an unreached ``epochs_to_fit`` is None: left out)."""
    return {key: float(value) for key, value in metrics.items() if value is not None}


def warn(run_id: str, warnings: list[str], prefix: str = "") -> None:
    """Say what looks wrong in a run (``pipeline.study.diagnose``): on stderr and as the run's tag.

    Each line on stderr starts with ``prefix``, which names the run among its siblings.
    """
    for warning in warnings:
        print(f"warning: {prefix}{warning}", file=sys.stderr)
    tracking.record_warnings(run_id, warnings)
