"""Each DVC stage that trains or evaluates is one MLflow run (``stage_run``).

Tagged ``dvc_stage`` (and ``dvc_exp`` under ``dvc exp run``), in the store ``python -m
pipeline`` uses, it records what the study core returned as ``python -m pipeline`` does, but
for the figures: those are drawn by the stage ``figures`` (``pipeline.stages.figures_stage``), so
that no stage that trains depends on a figure's code.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline.data.prepared import DataSummary
from pipeline.data.split import Splits
from pipeline.stages.common import MODEL, SPLITS, load_splits


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
    from pipeline.tracking import metadata, store

    settings = params["mlflow"]
    store.configure(tracking_uri(settings["tracking_uri"]), settings["experiment_name"])
    all_tags = {"dvc_stage": stage, **metadata.git_tags(), **(tags or {})}
    if os.environ.get("DVC_EXP_NAME"):
        all_tags["dvc_exp"] = os.environ["DVC_EXP_NAME"]
    with store.run(name, tags=all_tags, parent_run_id=parent_run_id) as run_id:
        store.log_params(run_id, metadata.flatten(params))
        yield run_id


@contextlib.contextmanager
def model_stage(
    stage: str, params: Mapping[str, Any]
) -> Iterator[tuple[str, Any, Splits, DataSummary]]:
    """A stage over the trained model: ``(run_id, model, splits, data)`` inside its MLflow run."""
    from pipeline.models import model_name
    from pipeline.models.weights import load_model

    splits, data = load_splits(SPLITS)
    model = load_model(MODEL)
    name = model_name(model)
    tags = {"model": name, "data_fingerprint": data.fingerprint, "data": data.name}
    run_name = f"dvc-{stage}-{name}-seed{model.random_state}"
    with stage_run(stage, params, name=run_name, tags=tags) as run:
        log_data(run, data, splits, splits.y_train)
        yield run, model, splits, data


def log_data(
    run_id: str, data: DataSummary, splits: Splits, y_train, probe: Mapping | None = None
) -> None:
    """Name the split a stage's run used as its MLflow datasets (source: ``SPLITS``)."""
    from pipeline.tracking.dataset_record import log_split

    source = str(SPLITS.resolve())
    log_split(run_id, data.name, source, data.fingerprint, splits, y_train, probe)
