"""Checkpoints: a run stopped by SIGTERM and run again in its folder finishes the same run with
the same bits as one that was never stopped (``train.checkpoint_every``)."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest
from helpers import run_cli, search, start_cli, store_uri

from pipeline.models.numpy_mlp import NumpyMLP
from pipeline.runtime.checkpoints import Checkpoints
from pipeline.study.train import TrainResult, train_epochs

# The flagship on digits, smaller: the probe arm takes long enough to be stopped mid-way.
FLAGSHIP = ["+experiment=shuffled_labels", "model.hidden_layer_sizes=[128]", "train.progress=false"]


PARAMS = dict(hidden_layer_sizes=(32,), activation="relu", loss="cross_entropy",
              learning_rate=0.1, momentum=0.9, random_state=4)  # fmt: skip


def _train(model, start=None, after_epoch=None):
    """8 epochs of ``model`` on the digits, validated on their first 100."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return train_epochs(model, X, y, X[:100], y[:100], classes=np.arange(10), max_epochs=8,
                        record_examples=True, start=start, after_epoch=after_epoch)  # fmt: skip


def test_a_checkpoint_trains_on_to_the_same_bits(tmp_path):
    whole = _train(NumpyMLP(**PARAMS))

    checkpoints = Checkpoints(tmp_path, every=3)
    model = NumpyMLP(**PARAMS)

    def stop_after_third(result: TrainResult) -> None:
        if checkpoints.due(result):
            checkpoints.save("run", model, result)
        if result.epochs == 3:
            raise KeyboardInterrupt  # the job is stopped here

    with pytest.raises(KeyboardInterrupt):
        _train(model, after_epoch=stop_after_third)
    resumed_model, done = checkpoints.load("run")
    assert done.epochs == 3
    rest = _train(resumed_model, start=done)
    assert rest.history == whole.history and rest.epochs == whole.epochs == 8
    np.testing.assert_array_equal(rest.label_proba, whole.label_proba)
    np.testing.assert_array_equal(rest.correct, whole.correct)


def test_a_job_stopped_while_it_writes_a_checkpoint_goes_on_from_the_one_before(
    tmp_path, monkeypatch
):
    """SIGTERM between a checkpoint's arrays and its json: the json still names the previous
    checkpoint, whose arrays must still be there and be its own."""
    from pipeline.runtime import checkpoints as module

    whole = _train(NumpyMLP(**PARAMS))

    checkpoints = Checkpoints(tmp_path, every=3)
    model = NumpyMLP(**PARAMS)
    write = module._write

    def stopped_before_the_second_json(path, how):
        if path.name == "run.json" and path.exists():  # the second json: epoch 6's
            raise KeyboardInterrupt  # epoch 6's arrays are written, its json is not
        write(path, how)

    def save(result: TrainResult) -> None:
        if checkpoints.due(result):
            checkpoints.save("run", model, result)

    monkeypatch.setattr(module, "_write", stopped_before_the_second_json)
    with pytest.raises(KeyboardInterrupt):
        _train(model, after_epoch=save)
    monkeypatch.setattr(module, "_write", write)
    resumed_model, done = checkpoints.load("run")
    assert done.epochs == 3
    rest = _train(resumed_model, start=done)
    assert rest.history == whole.history
    np.testing.assert_array_equal(rest.label_proba, whole.label_proba)
    # The next checkpoint that is written whole leaves only its own arrays behind.
    checkpoints.save("run", resumed_model, rest)
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["run-epoch8.npz"]


@pytest.mark.slow
def test_only_numpy_mlp_checkpoints(workdir):
    done = run_cli(workdir, "model=sklearn_mlp", "model.loss=cross_entropy",
                   "train.checkpoint_every=5")  # fmt: skip
    assert done.returncode == 1 and done.stderr.strip().startswith("error: train.checkpoint_every")


def _metrics(client, run_id: str) -> dict:
    run = client.get_run(run_id)
    finals = {
        k: v for k, v in run.data.metrics.items() if "seconds" not in k and "system/" not in k
    }
    history = [(m.step, m.value) for m in client.get_metric_history(run_id, "train_loss")]
    return {"finals": finals, "train_loss": sorted(history)}


@pytest.mark.slow
def test_sigterm_then_the_same_command_finishes_the_same_run_with_the_same_bits(workdir):
    from mlflow.tracking import MlflowClient

    folder = workdir / "job"
    command = [*FLAGSHIP, "train.checkpoint_every=5", f"hydra.run.dir={folder}"]
    job = start_cli(workdir, *command)
    probe = folder / "checkpoint" / "probe.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and job.poll() is None:
        if probe.exists() and json.loads(probe.read_text()).get("epochs", 0) >= 10:
            break
        time.sleep(0.2)
    assert job.poll() is None, "the run ended before it could be stopped"
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=120)
    assert job.returncode == 143, stderr
    stopped = search(workdir)
    assert set(stopped["status"]) == {"KILLED"}

    again = run_cli(workdir, *command)  # the same command, in the same folder: it goes on
    assert again.returncode == 0, again.stderr
    whole = run_cli(workdir, *FLAGSHIP, f"hydra.run.dir={workdir / 'whole'}")
    assert whole.returncode == 0, whole.stderr

    runs = search(workdir)
    client = MlflowClient(store_uri(workdir))
    parents = runs[runs["tags.mlflow.parentRunId"].isna()].sort_values("start_time")
    resumed, uninterrupted = parents["run_id"].tolist()
    assert len(runs) == 6  # each job: a parent and its two arms; no run started twice
    assert set(runs["status"]) == {"FINISHED"}
    assert _metrics(client, resumed)["finals"] == _metrics(client, uninterrupted)["finals"]
    for arm in ("probe", "control"):
        ids = [runs[(runs["tags.mlflow.parentRunId"] == p) & (runs["tags.arm"] == arm)]
               ["run_id"].iloc[0] for p in (resumed, uninterrupted)]  # fmt: skip
        assert _metrics(client, ids[0]) == _metrics(client, ids[1]), arm


@pytest.mark.slow
def test_a_single_arm_run_goes_on_from_its_checkpoint(workdir):
    """A run without a control arm: its one arm is the run itself."""
    from mlflow.tracking import MlflowClient

    folder = workdir / "job"
    base = ["model.hidden_layer_sizes=[64]", "model.max_epochs=30", "train.progress=false",
            "train.record_examples=false"]  # fmt: skip
    command = [*base, "train.checkpoint_every=10", f"hydra.run.dir={folder}"]
    first = run_cli(workdir, *command)
    assert first.returncode == 0, first.stderr
    # As if it had been stopped after epoch 20: the last checkpoint, and its run RUNNING again.
    meta = json.loads((folder / "checkpoint" / "run.json").read_text())
    assert meta["epochs"] == 30
    whole = run_cli(workdir, *base, f"hydra.run.dir={workdir / 'whole'}")
    again = run_cli(workdir, *command)  # finds its finished checkpoint: records nothing twice
    assert whole.returncode == again.returncode == 0, again.stderr
    runs = search(workdir)
    assert len(runs) == 2 and set(runs["status"]) == {"FINISHED"}
    client = MlflowClient(store_uri(workdir))
    ours, theirs = runs.sort_values("start_time")["run_id"]
    assert _metrics(client, ours) == _metrics(client, theirs)
    assert len(client.get_metric_history(ours, "train_loss")) == 30


@pytest.mark.slow
def test_a_sigterm_right_after_an_arm_run_is_opened_leaves_it_to_the_next_job(
    store, tmp_path, monkeypatch
):
    """SIGTERM as soon as an arm's MLflow run exists, before anything is in it: the job run
    again takes that run over (it is found by its study and arm), never opens a second."""
    import mlflow

    from pipeline import settings as s
    from pipeline.runtime import signals
    from pipeline.runtime.checkpoints import Checkpointer
    from pipeline.tracking import store as tracking
    from pipeline.tracking.record import execute

    probe = s.ProbeSettings(s.LabelSettings(1.0, "shuffle"), control=True)
    settings = s.RunSettings(
        seed=0,
        data=s.DataSettings("digits", {}),
        split=s.SplitSettings(0.7, 0.15, 0.15),
        model=s.ModelSettings(
            "numpy_mlp", (16,), "relu", "cross_entropy", 0.05, 0.9, 0.0, 64, 6, "float32"
        ),
        train=s.TrainSettings(progress=False, checkpoint_every=2),
        probe=probe,
        mlflow=s.TrackingSettings(mlflow.get_tracking_uri(), "test"),
    )
    log_params, runs = tracking.log_params, []

    def stopped_on_the_probe_arms_params(run_id, params):
        if run_id not in runs:
            runs.append(run_id)
            if len(runs) == 2:  # the study's run, then the probe arm's: SIGTERM comes here
                os.kill(os.getpid(), signal.SIGTERM)
        log_params(run_id, params)

    def job():
        checkpointer = Checkpointer(Checkpoints(tmp_path / "checkpoint", 2))
        return execute(settings, {"x": "1"}, "x: 1\n", name="job", tags={}, run_dir=tmp_path,
                       observers=[checkpointer])  # fmt: skip

    previous = signal.getsignal(signal.SIGTERM)
    signals.install()
    try:
        monkeypatch.setattr(tracking, "log_params", stopped_on_the_probe_arms_params)
        with pytest.raises(signals.Terminated):
            job()
    finally:
        signal.signal(signal.SIGTERM, previous)
    monkeypatch.setattr(tracking, "log_params", log_params)
    study_run, probe_run = runs
    assert tracking.find_child(study_run, "probe") == probe_run
    assert store.get_run(probe_run).info.status == "KILLED"

    run_id, _ = job()  # the job, run again
    assert run_id == study_run
    found = store.search_runs([store.get_run(run_id).info.experiment_id])
    assert len(found) == 3 and {r.info.status for r in found} == {"FINISHED"}
    assert probe_run in {r.info.run_id for r in found}
    assert "error" not in store.get_run(probe_run).data.tags  # it went on: not stopped after all
