"""Hydra multirun (``-m``) as one MLflow parent run with each job a child, whatever the launcher.

``SweepParent`` is a Hydra callback (registered in ``conf/config.yaml``). Before any job starts it
creates the parent run, in the launching process, and hands its id to the jobs two ways: the
environment (``MEMLAB_SWEEP_PARENT``), which in-process jobs, joblib workers and submitit's local
jobs inherit, and a file in the sweep folder (``.memlab_sweep_parent``), which a cluster job
reads when its scheduler does not export the environment (the sweep folder is on the shared
filesystem). Creating the parent first also creates the SQLite store before parallel jobs race
for it.

The parent is closed once, in the launching process, when the sweep has ended: FINISHED if every
child finished, else FAILED. ``on_multirun_end`` does it for a sweep that succeeded;
``pipeline.launcher`` (submitit: local or SLURM) waits for every job and does it for one with
failed jobs; a sweep that stops on an error (the basic launcher runs its jobs in-process and
stops at the first failure; joblib) is closed when the launching process exits. A sweep that
ran to its end also gets its runs that differ only in their seed aggregated (means and 95%
intervals, ``pipeline.tracking.sweep_aggregate``).
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

PARENT_ENV = "MEMLAB_SWEEP_PARENT"
PARENT_FILE = ".memlab_sweep_parent"

# Set only in the process that launched the sweep (never inherited by a job in another process).
_launching: dict[str, str] = {}


def sweep_parent_id() -> str | None:
    """The id of the current sweep's parent run, when this job is part of a sweep.

    From the environment, else from the file in the sweep folder (a cluster job whose
    environment was not exported). None for a single run.
    """
    parent = os.environ.get(PARENT_ENV)
    if parent:
        return parent
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return None
        path = Path(hydra_cfg.sweep.dir) / PARENT_FILE
        return path.read_text().strip() or None
    except (ValueError, OSError):  # not under Hydra, or no file: not a sweep
        return None


def end_sweep(status: str | None = None, *, aggregate: bool = True) -> str | None:
    """Close the current sweep's parent run, in the process that launched it; its status.

    ``status`` None: FINISHED when every child finished, else FAILED. With ``aggregate``, the
    finished runs that differ only in their seed are then aggregated (printing what was
    written). A no-op in any other process (a job in a worker or on a cluster node), and the
    second time.
    """
    parent = _launching.pop("parent", None)
    os.environ.pop(PARENT_ENV, None)
    if not parent:
        return None
    from pipeline.tracking import parents
    from pipeline.tracking.sweep_aggregate import record_sweep_aggregates

    closed = parents.close_parent(parent, status)
    if aggregate:
        for line in record_sweep_aggregates(parent):  # never raises: problems become lines
            print(line)
    return closed


def launched_here(parent: str | None) -> bool:
    """Whether ``parent``'s sweep is closed by this process (its jobs run in it: basic)."""
    return bool(parent) and _launching.get("parent") == parent


def end_sweep_early(parent: str | None, status: str) -> None:
    """A job failed or was interrupted: end its sweep with it, if the sweep stops here.

    Only the basic launcher runs jobs in the launching process, and its sweep stops at the
    first failure; jobs in other processes leave the parent to the launcher, so that it is
    closed only when every job has ended.
    """
    if launched_here(parent):
        end_sweep(status, aggregate=False)


class SweepParent(Callback):
    """Creates the sweep's parent run at the start and closes it honestly at the end."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from pipeline.errors import MemlabError
        from pipeline.tracking import metadata, parents
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
        try:
            parent = parents.start_detached_run(name, tags)
        except Exception as err:  # a store that refuses the run (403) or is full: one line
            from pipeline.tracking.store_faults import explain

            fault = explain(err)
            if fault is None:
                raise
            print(f"error: {fault}", file=sys.stderr)
            sys.exit(1)
        os.environ[PARENT_ENV] = parent
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / PARENT_FILE).write_text(parent + "\n")
        _launching["parent"] = parent
        # A sweep that stops on an error never reaches on_multirun_end: close it on the way out.
        atexit.register(end_sweep, aggregate=False)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        parent = _launching.get("parent")
        if parent:
            end_sweep()
            report = f"python -m pipeline.report --parent {parent}"
            print(f"sweep {parent}: compare its runs with {report}")
