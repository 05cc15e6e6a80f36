"""Shared fixtures: a working directory for the real CLI, HTTP mirrors, and MLflow stores; and
how a test worker ends.

Plain helpers (running the CLI, the subprocess environment, reading a store) are in
``helpers.py``; test modules import them from there, never from this file.
"""

from __future__ import annotations

import atexit
import functools
import http.server
import logging
import os
import shutil
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from helpers import QuietHandler  # imports no NumPy (see below)

# First, before any test module imports NumPy: `import pipeline` chooses the BLAS kernel NumPy
# loads, and apply pins the thread count, so in-process tests compute what runs compute.
import pipeline.numerics

pipeline.numerics.apply(None)


@pytest.hookimpl(trylast=True)  # after ``-m``'s deselection: the tests that will run
def pytest_collection_modifyitems(config, items):
    """The files with the most slow tests first, then the others with the most tests first;
    each file's tests in their order. ``--dist loadfile --no-loadscope-reorder`` hands the
    files out to the workers in this order, so that the suite ends on short files that even
    out the workers, not on a long one (an end-to-end file has few tests, and pytest-xdist's
    own order, most tests first, left the longest of them for last)."""
    slow, tests = Counter(), Counter()
    for item in items:
        tests[item.path] += 1
        slow[item.path] += item.get_closest_marker("slow") is not None
    items.sort(key=lambda item: (-slow[item.path], -tests[item.path], str(item.path)))


def pytest_configure(config):
    if hasattr(config, "workerinput"):  # a pytest-xdist worker
        atexit.register(_end_without_teardown)


def _end_without_teardown() -> None:
    """A test worker's last exit handler: end at once, as ``python -m pipeline`` ends
    (``pipeline.runtime.quick_exit``), instead of spending seconds freeing, one by one, the
    objects that the libraries of hundreds of tests made. The suite waits for every worker to
    end; its results were sent before this. The handlers registered later (MLflow's, the fork
    servers' stop) have run by now; of those registered before it, ``logging``'s is run here."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


@pytest.fixture
def workdir(tmp_path: Path, empty_store: Path) -> Path:
    """A working directory whose runs land in its own ``mlflow.db``: a copy of ``empty_store``
    (MLflow's migrations cost each first run about two CPU-seconds). A test of what happens
    before any store exists, or of making one, works in ``tmp_path``."""
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    return tmp_path


@pytest.fixture
def http_mirror():
    """Start HTTP servers on 127.0.0.1 (port 0) for given folders; shut them all down after."""
    servers = []

    def start(directory: Path, handler=None) -> str:
        handler = handler or functools.partial(QuietHandler, directory=str(directory))
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


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """A new SQLite store file, made once per session as ``store.configure`` makes a new one
    (MLflow's tables and its ~50 migrations, which take seconds): it holds MLflow's Default
    experiment only.

    Made by configure's own step for a new file (``store_faults.initialising``), short of
    choosing an experiment: on a copy, configure finds the file made and goes on as on a new
    store (WAL mode, the experiment and its tag). Nothing in it names this folder: MLflow puts
    an experiment's artifacts under the current directory's ``mlruns``, not beside the store.
    """
    from pipeline.tracking import store_faults

    path = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    with store_faults.initialising(f"sqlite:///{path}"):  # tables, migrations, Default
        pass
    leftovers = sorted(p.name for p in path.parent.iterdir() if p != path)
    assert leftovers == [], f"the template store is more than one file: {leftovers}"
    return path


@pytest.fixture
def store(tmp_path, empty_store):
    """A fresh SQLite store as MLflow's tracking URI for this test (restored afterwards): a copy
    of ``empty_store`` with the experiment ``test``, its artifacts in ``tmp_path/mlruns`` (MLflow
    would put them under the current directory's ``mlruns``, that is the checkout's)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from pipeline.tracking import store as tracking

    previous = mlflow.get_tracking_uri()
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("test", (tmp_path / "mlruns").as_uri())
    tracking.configure(uri, "test")
    yield MlflowClient(uri)
    mlflow.set_tracking_uri(previous)
