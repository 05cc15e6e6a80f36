"""Hydra multirun (``-m``) as one MLflow parent run with each job a child, whatever the launcher.

``SweepParent`` is a Hydra callback (registered in ``conf/config.yaml``). Before any job starts it
creates the parent run, in the launching process, and hands its id to the jobs through the
environment (``MEMLAB_SWEEP_PARENT``), which the basic launcher's in-process jobs and the joblib
launcher's worker processes (started afterwards) both inherit. Creating the parent first also
creates the SQLite store before parallel jobs race for it. When the sweep ends the parent is
FINISHED if every child finished, else FAILED, and the runs that differ only in their seed
are aggregated (means and 95% intervals, ``pipeline.tracking.aggregate``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

PARENT_ENV = "MEMLAB_SWEEP_PARENT"


def sweep_parent_id() -> str | None:
    """The id of the current sweep's parent run, when this job is part of a sweep."""
    return os.environ.get(PARENT_ENV) or None


class SweepParent(Callback):
    """Creates the sweep's parent run at the start and closes it honestly at the end."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from pipeline.errors import MemlabError
        from pipeline.tracking import metadata
        from pipeline.tracking import store as tracking

        mlflow_cfg = config.mlflow
        try:
            tracking.configure(mlflow_cfg.tracking_uri, mlflow_cfg.experiment_name)
        except MemlabError as err:  # no sweep without its store (Hydra would only warn)
            print(f"error: {err}", file=sys.stderr)
            sys.exit(1)
        choices = OmegaConf.to_container(config.hydra.runtime.choices)
        experiment = choices.get("experiment") or "sweep"
        overrides = list(config.hydra.overrides.task)
        params = OmegaConf.select(config, "hydra.sweeper.params")
        sweep = OmegaConf.to_container(params, resolve=False) if params else {}
        swept = [o for o in overrides if "," in o or "(" in o]
        described = swept + [f"{k}={v}" for k, v in sweep.items()]
        tags = {
            "memlab.sweep": "parent",
            "experiment": experiment,
            "model": str(choices.get("model")),
            "overrides": " ".join(overrides) or "(none)",
            "sweep": " ".join(described) or "(none)",
            **metadata.git_tags(),
        }
        name = f"{experiment}-sweep-{config.model.name}"
        os.environ[PARENT_ENV] = tracking.start_detached_run(name, tags)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from pipeline.tracking import store as tracking
        from pipeline.tracking.aggregate import record_sweep_aggregates as aggregate_seeds

        parent = os.environ.pop(PARENT_ENV, None)
        if parent:
            tracking.close_parent(parent)
            for line in aggregate_seeds(parent):  # pipeline/tracking/aggregate.py
                print(line)
            report = f"python -m pipeline.report --parent {parent}"
            print(f"sweep {parent}: compare its runs with {report}")
