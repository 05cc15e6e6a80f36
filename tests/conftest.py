"""Shared test helpers: run the real CLI in a temporary directory with its own MLflow store."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
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


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder without logging every request on stderr."""

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_mirror():
    """Start HTTP servers on 127.0.0.1 (port 0) for given folders; shut them all down after."""
    servers = []

    def start(directory: Path, handler=None) -> str:
        handler = handler or functools.partial(_QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def store(tmp_path):
    """A fresh SQLite store as MLflow's tracking URI for this test (restored afterwards)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from pipeline.tracking import store as tracking

    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.configure(uri, "test")
    yield MlflowClient(uri)
    mlflow.set_tracking_uri(previous)
