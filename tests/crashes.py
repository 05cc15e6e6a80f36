"""The kill tests' job and kill points (``tests/test_crash_*.py``): a job killed outright
(``kill -9``) at a point, then run again with the same command in the same folder, must leave
the very record of a job that was never stopped (``pipeline.runtime.faults`` names the points;
docs/stopped-runs.md). Two files share the points out, so that two test workers run them."""

from __future__ import annotations

import shutil
import signal
import time
import uuid
from pathlib import Path

from helpers import clean_env, processes_marked, start_cli, store_uri
from records import differences, snapshot

# The flagship, small: two arms of 6 epochs, a checkpoint every 2, every figure and the model.
JOB = ["+experiment=shuffled_labels", "model.hidden_layer_sizes=[16]", "model.max_epochs=6",
       "train.stop_at_fit=false", "train.progress=false", "train.checkpoint_every=2"]  # fmt: skip

# (point, the how-manyth time it is reached): one place of each phase of a job. Training and
# checkpoints first (tests/test_crash_training.py), then the record (test_crash_recording.py).
# Each case is two whole jobs: a point that leaves the record as another does goes (epoch@2
# as epochs-flushed@1: epochs in the store, no checkpoint; model-logged@1 as figure-logged@5:
# the model in, figures missing); the random moment below tries any other.
TRAINING = [
    ("store-half-made", 1),  # a new store's tables made, not yet in place
    ("run-created", 1),  # the study's run exists, nothing in it yet
    ("run-created", 2),  # the probe arm's run exists, nothing in it yet
    ("epochs-flushed", 1),  # the first epoch written, no checkpoint yet
    ("checkpoint-arrays-written", 1),  # between a checkpoint's arrays and its json
    ("checkpoint-saved", 2),  # the checkpoint at epoch 4 saved, the store still at epoch 1
]
RECORDING = [
    ("arm-metrics-logged", 1),  # the probe's final metrics stored, its model not yet
    ("model-files-logged", 1),  # the probe's model uploaded, not yet marked READY
    ("run-created", 3),  # the control arm's run exists, the probe's figures not yet logged
    ("arm-recorded", 2),  # both arms recorded, no comparison on the study's run yet
    ("comparison-logged", 1),  # the comparison stored, the figures not yet all logged
    ("figure-logged", 5),  # some figures logged, the rest not
    ("run-ending", 3),  # every figure logged, the study's run not yet FINISHED
]


def job(
    workdir: Path, *extra: str, kill_at: str | None = None, marker: str = "", drawn: str = "workers"
):
    """``python -m pipeline JOB`` in ``workdir`` (its own store), folder ``workdir/job``; its
    figures ``drawn`` by memlab's figure ``"workers"`` while its control arm trains in a worker
    (memlab's default on two cores or more), or ``"here"``: drawn and trained in the run's
    process, one arm after another (the training points: a kill there finds no figure to draw,
    and the worker's fork server costs each job about 4.5 CPU-seconds of imports, while the
    record is the same either way: the run's process tells, checkpoints and records each arm in
    its turn, ``pipeline.study.run.run_study``)."""
    here = drawn == "here"  # else memlab's defaults: the job's cores
    env = clean_env("MEMLAB_KILL", figure_workers="0" if here else None,
                    train_workers="1" if here else None, MEMLAB_TEST_MARKER=marker)  # fmt: skip
    if kill_at:
        env["MEMLAB_KILL_AT"] = kill_at
    return start_cli(workdir, *JOB, f"hydra.run.dir={workdir / 'job'}", *extra, env=env)


def finished(process, timeout: float = 300) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=timeout)
    return process.returncode, stderr


def seeded(workdir: Path, empty_store: Path, point: str = "") -> Path:
    """``workdir`` with a copy of the session's new store (conftest's ``empty_store``) as its
    ``mlflow.db``: MLflow's migrations take seconds a job. Not for a kill in the store's
    making, which needs the job to make it."""
    if not point.startswith("store-"):
        shutil.copyfile(empty_store, workdir / "mlflow.db")
    return workdir


def reference_record(tmp_path_factory, empty_store: Path, drawn: str) -> tuple[dict, float]:
    """The record of the job never stopped, and how long it took (each file's module fixture)."""
    workdir = seeded(tmp_path_factory.mktemp("whole"), empty_store)
    start = time.monotonic()
    code, stderr = finished(job(workdir, drawn=drawn))
    assert code == 0, stderr
    return snapshot(store_uri(workdir)), time.monotonic() - start


def resumes_to(whole: dict, workdir: Path, point: str, drawn: str) -> list[str]:
    """What the record of the job killed at ``point`` and run again lacks or has twice,
    against the record ``whole`` of the job never stopped."""
    problems = killed_then_resumed(workdir, point, drawn)
    return problems or [f"{point}: {d}" for d in differences(snapshot(store_uri(workdir)), whole)]


def killed_then_resumed(workdir: Path, point: str, drawn: str) -> list[str]:
    """Kill the job at ``point``, run it again; what its record then lacks or has twice."""
    marker = uuid.uuid4().hex
    code, stderr = finished(job(workdir, kill_at=point, marker=marker, drawn=drawn))
    problems = (
        [] if code == -signal.SIGKILL else [f"{point}: not killed there ({code}): {stderr[-500:]}"]
    )
    deadline = time.monotonic() + 5
    while processes_marked(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left := processes_marked(marker):
        problems.append(f"{point}: processes left 5 s after the kill: {left}")
    code, stderr = finished(job(workdir, drawn=drawn))
    if code != 0:
        problems.append(f"{point}: the job run again failed: {stderr[-1000:]}")
    if left := [p.name for p in workdir.rglob("*") if ".tmp" in p.name or "creating" in p.name]:
        problems.append(f"{point}: temporary files left: {left}")
    return problems
