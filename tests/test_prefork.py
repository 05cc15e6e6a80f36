"""The tests' forked runs (``prefork.py``) are the command line's: what a fresh
``python -m pipeline`` prints and exits with, in the run's own folder and environment, and a
kill that reaches the run and reads as ``subprocess.Popen`` reads it."""

from __future__ import annotations

import signal
import subprocess
import sys

import prefork
import pytest
from helpers import clean_env

# Fresh interpreters beside forked ones, and a server of their own where no other test has
# started one: seconds of CPU that `make test-fast` does without.
pytestmark = pytest.mark.slow


def fresh(workdir, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pipeline", *args]
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)


def forked(workdir, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    process = prefork.start(["-m", "pipeline", *args], workdir, env, clean_env())
    assert isinstance(process, prefork.Forked)  # not a fresh interpreter after all
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_a_forked_run_prints_and_exits_as_a_fresh_one(tmp_path):
    for args, env in [
        (["model.learning_rate=-1"], clean_env()),  # a bad setting: one line, exit 1
        (["model.max_epochs=1"], clean_env(MEMLAB_TRAIN_WORKERS="two")),  # the run's environment
        (["--cfg", "hydra", "--package", "hydra.runtime"], clean_env()),  # its folder, its argv
    ]:
        alone, child = fresh(tmp_path, *args, env=env), forked(tmp_path, *args, env=env)
        assert (child.returncode, child.stdout, child.stderr) == (
            alone.returncode,
            alone.stdout,
            alone.stderr,
        ), args
    assert alone.returncode == 0 and f"cwd: {tmp_path}" in alone.stdout


def test_a_forked_run_killed_reads_as_killed(tmp_path):
    command = ["-m", "pipeline", "model.max_epochs=100000"]
    process = prefork.start(command, tmp_path, clean_env(), clean_env())
    process.kill()
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert isinstance(process, prefork.Forked)
    process.kill()  # ended: a no-op, never a signal to whatever has its pid now
    assert process.communicate(timeout=60)[0] == ""
