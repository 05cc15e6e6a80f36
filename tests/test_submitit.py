"""Sweeps through Hydra's submitit launcher (``hydra/launcher=submitit_local``: each job its own
process, as on a SLURM cluster): a failing job fails alone and the sweep ends in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from helpers import ROOT, store_uri

from pipeline.sweep import PARENT_ENV, PARENT_FILE, sweep_parent_id


@pytest.mark.slow
def test_a_failing_job_fails_alone_and_the_sweep_ends_in_one_line(workdir: Path):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "MEMLAB_FIGURE_WORKERS": "0"}
    done = subprocess.run(
        [
            sys.executable, "-m", "pipeline", "-m", "hydra/launcher=submitit_local",
            "model.max_epochs=3", "model.hidden_layer_sizes=[16]", "train.progress=false",
            "train.record_examples=false",
            "model.learning_rate=0.1,1e9",  # the second one diverges in its first epoch
            f"mlflow.tracking_uri={store_uri(workdir)}",
        ],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("error: 1 of 2 sweep jobs failed")
    assert "model.learning_rate=1000000000.0" in errors[0]
    log = errors[0].rsplit(": ", 1)[1]
    assert "training diverged" in (workdir / log).read_text()
    assert "look at it:" in done.stdout  # the finished job's summary, where the user looks

    mlflow.set_tracking_uri(store_uri(workdir))
    runs = mlflow.search_runs(experiment_names=["memlab"])
    parent = runs[runs["tags.memlab.sweep"] == "parent"].iloc[0]
    children = runs[runs["tags.mlflow.parentRunId"] == parent.run_id]
    rate = children["params.model.learning_rate"].astype(float)
    assert children[rate == 0.1].status.tolist() == ["FINISHED"]
    failed = children[rate == 1e9].iloc[0]
    assert failed.status == "FAILED" and "diverged" in failed["tags.error"]
    assert parent.status == "FAILED"
    assert parent.end_time >= children.end_time.max()  # closed after both jobs ended


def test_a_job_finds_its_sweep_parent_in_the_sweep_folder(tmp_path, monkeypatch):
    """A cluster job whose environment was not exported reads the parent id from a file."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    monkeypatch.delenv(PARENT_ENV, raising=False)
    (tmp_path / PARENT_FILE).write_text("abc123\n")
    found = {}
    for mode in ("MULTIRUN", "RUN"):
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            overrides = [f"hydra.sweep.dir={tmp_path}", f"hydra.mode={mode}"]
            cfg = compose("config", overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        found[mode] = sweep_parent_id()
    HydraConfig.instance().cfg = None
    assert found == {"MULTIRUN": "abc123", "RUN": None}
