"""Shared test helpers: run the real CLI in a temporary directory with its own MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# First, before any test module imports NumPy: `import pipeline` chooses the BLAS kernel NumPy
# loads, and apply pins the thread count, so in-process tests compute what runs compute.
import pipeline.numerics

pipeline.numerics.apply(None)

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"


def run_cli(workdir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` in ``workdir``; MLflow's default store is workdir/mlflow.db."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory; runs land in its own ``mlflow.db``."""
    return tmp_path


def store_uri(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'mlflow.db'}"


def search(workdir: Path, experiment: str = "memlab"):
    """All runs of ``experiment`` in ``workdir``'s store, as a DataFrame (oldest first)."""
    import mlflow

    mlflow.set_tracking_uri(store_uri(workdir))
    runs = mlflow.search_runs(experiment_names=[experiment], order_by=["start_time ASC"])
    return runs
