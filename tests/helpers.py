"""Plain test helpers (no fixtures: those are in conftest.py): where the project is, the
environment and command line of a subprocess, and what a run's store holds.

Test modules import them as ``from helpers import ...`` (pytest puts tests/ on sys.path, as for
``records`` and ``servers``); nothing imports conftest. ``run_cli``, ``run_module`` and
``start_cli`` run memlab's commands forked from a preloaded interpreter where they can
(``prefork.py``).
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
from pathlib import Path

import prefork

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"


# A run in a test draws its figures in its own process (the same pictures): on two cores the
# figure workers' fork server and warm-up cost a small run a quarter of its CPU (15.7 against
# 11.8 CPU-s for `python -m pipeline model.max_epochs=5`) and save it no time, and the suite is
# bound by its CPU. The tests of the workers themselves (the crash tests, test_painter) keep
# them: ``clean_env(figure_workers=None)``.
FIGURE_WORKERS = "0"
# For the same reason a two-arm run in a test trains its arms one after another unless it says
# otherwise (``train.workers=auto`` as 1): a worker that trains the control arm imports
# scikit-learn and the study core first, 3.4 of the 24 CPU-s of a small flagship run, and on
# two busy cores saves it no time. The tests of training at once keep the default
# (``clean_env(train_workers=None)``: the crash tests) or ask for it (``train.workers=2``:
# test_parallel_arms, the bench); the bits are the same either way (test_parallel_arms).
TRAIN_WORKERS = "1"


def clean_env(
    *drop_prefixes: str,
    pythonpath: Path | str | None = ROOT,
    figure_workers: str | None = FIGURE_WORKERS,
    train_workers: str | None = TRAIN_WORKERS,
    **extra: str,
) -> dict[str, str]:
    """This process's environment for a subprocess: without MLflow settings (``MLFLOW_*``) or
    any variable starting with one of ``drop_prefixes``, with PYTHONPATH = ``pythonpath`` (this
    checkout, by default; None keeps this process's PYTHONPATH, if it has one), with
    ``MEMLAB_FIGURE_WORKERS`` = ``figure_workers`` and ``MEMLAB_TRAIN_WORKERS`` =
    ``train_workers`` (None: memlab's own default for each, the job's cores), plus ``extra``.
    """
    drop = ("MLFLOW_", "MEMLAB_FIGURE_WORKERS", "MEMLAB_TRAIN_WORKERS", *drop_prefixes)
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    if figure_workers is not None:
        env["MEMLAB_FIGURE_WORKERS"] = figure_workers
    if train_workers is not None:
        env["MEMLAB_TRAIN_WORKERS"] = train_workers
    env.update(extra)
    return env


def run_module(
    module: str, workdir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` in ``workdir`` (environment: ``clean_env()`` unless given),
    its output captured as text. memlab's modules run forked from a preloaded interpreter where
    their environment allows (``prefork.py``)."""
    env = clean_env() if env is None else env
    if module.split(".")[0] == "pipeline":
        return prefork.run(["-m", module, *args], workdir, env, clean_env(), timeout)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(workdir: Path, *args: str, env: dict[str, str] | None = None):
    """``python -m pipeline ARGS`` in ``workdir``, started (a ``subprocess.Popen``, or one forked
    from a preloaded interpreter: ``prefork.py``), stdout and stderr piped as text."""
    env = clean_env() if env is None else env
    return prefork.start(["-m", "pipeline", *args], workdir, env, clean_env())


def run_cli(workdir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` in ``workdir``; MLflow's default store is workdir/mlflow.db."""
    return run_module("pipeline", workdir, *args, timeout=timeout)


def store_uri(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'mlflow.db'}"


def search(workdir: Path, experiment: str = "memlab"):
    """All runs of ``experiment`` in ``workdir``'s store, as a DataFrame (oldest first)."""
    import mlflow

    mlflow.set_tracking_uri(store_uri(workdir))
    runs = mlflow.search_runs(experiment_names=[experiment], order_by=["start_time ASC"])
    return runs


def runs_with_epochs(db: Path, metric: str = "train_loss") -> dict[str, int]:
    """How many epochs of ``metric`` each run in the SQLite store ``db`` has, read-only.

    For watching a running job: opening the store with MLflow from the test would create or
    migrate its tables while the job does the same.
    """
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            rows = connection.execute(
                "SELECT run_uuid, count(*) FROM metrics WHERE key = ? GROUP BY run_uuid", (metric,)
            ).fetchall()
    except sqlite3.Error:  # not created yet, or its tables not yet
        return {}
    return dict(rows)


def processes_marked(marker: str) -> list[int]:
    """The processes (the job's, its figure workers', ...) whose environment holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if f"MEMLAB_TEST_MARKER={marker}".encode() in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder without logging every request on stderr."""

    def log_message(self, *args) -> None:
        pass
