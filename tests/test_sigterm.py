"""SIGTERM (SLURM's time limit or preemption, ``kill``, ``timeout``) ends a run KILLED in MLflow
within seconds, with every epoch it measured."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from helpers import ROOT, runs_with_epochs, store_uri


def _epochs_written(db: Path) -> int:
    return sum(runs_with_epochs(db).values())


@pytest.mark.slow
def test_sigterm_mid_run_ends_it_killed_with_every_epoch_kept(workdir: Path):
    run = subprocess.Popen(
        [
            sys.executable, "-m", "pipeline", "model.max_epochs=5000", "train.progress=false",
            f"mlflow.tracking_uri={store_uri(workdir)}",
        ],
        cwd=workdir, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while _epochs_written(workdir / "mlflow.db") < 3 and time.monotonic() < deadline:
        assert run.poll() is None, run.communicate()
        time.sleep(0.2)
    seen = _epochs_written(workdir / "mlflow.db")
    run.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    _, err = run.communicate(timeout=60)
    assert time.monotonic() - sent < 15  # seconds, also on a loaded machine (about 1 s idle)
    assert run.returncode == 143
    assert err.strip() == "terminated (SIGTERM): the run is marked KILLED in MLflow"

    mlflow.set_tracking_uri(store_uri(workdir))
    (found,) = mlflow.search_runs(experiment_names=["memlab"], output_format="list")
    assert found.info.status == "KILLED"
    assert found.data.tags["error"] == "terminated (SIGTERM)"
    history = mlflow.MlflowClient().get_metric_history(found.info.run_id, "train_loss")
    steps = sorted(m.step for m in history)
    # every epoch from the first, also those still buffered when SIGTERM came
    assert len(steps) >= seen and steps == list(range(1, len(steps) + 1))
