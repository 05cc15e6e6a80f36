"""A job killed outright (``kill -9``) while it trains and saves checkpoints, at a random
moment, or with no checkpoint to go on from, then run again with the same command in the same
folder, leaves the very record of a job that was never stopped: every epoch of every metric
once, every final metric once, one model per arm, every figure, the same statuses, no second
run (``tests/crashes.py`` has the job and the points; the record's end is in
``test_crash_recording.py``)."""

from __future__ import annotations

import random
import signal
import subprocess

import pytest
from crashes import TRAINING, finished, job, reference_record, resumes_to, seeded
from helpers import store_uri
from records import differences, snapshot

pytestmark = pytest.mark.slow

# Its points come before any figure is drawn, so its runs draw their own and train both arms
# in their own process (the random moment may fall among the figures). test_crash_recording.py
# kills jobs whose figure workers draw and whose control arm trains in a worker.
DRAWN = "here"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, empty_store):
    return reference_record(tmp_path_factory, empty_store, DRAWN)


@pytest.mark.parametrize("place", TRAINING, ids=[f"{p}@{n}" for p, n in TRAINING])
def test_a_job_killed_while_it_trains_resumes_to_the_record_of_one_never_stopped(
    reference, tmp_path, empty_store, place
):
    point = f"{place[0]}@{place[1]}"
    problems = resumes_to(reference[0], seeded(tmp_path, empty_store, point), point, DRAWN)
    assert not problems, "\n".join(problems)


def test_a_job_killed_at_a_random_moment_resumes_to_the_same_record(
    reference, tmp_path, empty_store
):
    whole, seconds = reference
    seeded(tmp_path, empty_store)
    moment = random.uniform(1.0, seconds)
    process = job(tmp_path, drawn=DRAWN)
    try:
        process.wait(timeout=moment)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    code, stderr = finished(job(tmp_path, drawn=DRAWN))
    assert code == 0, stderr
    assert differences(snapshot(store_uri(tmp_path)), whole) == [], f"killed at {moment:.1f} s"


def test_without_checkpoints_a_killed_run_is_marked_killed_by_the_next(tmp_path, empty_store):
    """No checkpoint to go on from: the job run again starts afresh, and the run left RUNNING
    by the killed process is found and marked KILLED, not left RUNNING forever."""
    seeded(tmp_path, empty_store)
    code, _ = finished(job(tmp_path, "train.checkpoint_every=0", kill_at="epoch@3", drawn=DRAWN))
    assert code == -signal.SIGKILL
    code, stderr = finished(job(tmp_path, "train.checkpoint_every=0", drawn=DRAWN))
    assert code == 0, stderr
    runs = snapshot(store_uri(tmp_path))
    statuses = sorted(run["status"] for entries in runs.values() for run in entries)
    assert statuses == ["FINISHED"] * 3 + ["KILLED"] * 2  # the dead parent and its probe arm
