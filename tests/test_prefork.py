"""The tests' forked runs (``prefork.py``) are the command line's: what a fresh
``python -m pipeline`` prints and exits with, in the run's own folder and environment, and a
kill that reaches the run and reads as ``subprocess.Popen`` reads it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import prefork
import pytest
from helpers import ROOT, clean_env

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


def test_a_servers_python_forks_memlab_and_is_the_interpreter_for_the_rest(tmp_path):
    """The ``python`` of :meth:`prefork.Server.python`, first on another program's PATH (DVC's
    stages): ``python -m pipeline...`` is forked from the server that imported the project's
    code and ends as a fresh run does; anything else, and the code changed since, is Python."""
    root = tmp_path / "project"
    for folder in ("pipeline", "conf"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("*.pyc"))
    whose = root / "pipeline" / "whose.py"
    whose.write_text("import os\nprint(os.getppid())\n")
    env = clean_env(pythonpath=None)  # as DVC's: the project's code, from its folder
    env["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{env['PATH']}"  # this Python
    server = prefork.Server(env, root=root)
    try:
        on_path = {**env, "PATH": f"{server.python()}{os.pathsep}{env['PATH']}"}

        def python(*args: str, environment=on_path) -> subprocess.CompletedProcess:
            """``python ARGS`` as a program started with ``environment`` runs it."""
            found = shutil.which("python", path=environment["PATH"])
            return subprocess.run([found, *args], cwd=root, env=environment,
                                  capture_output=True, text=True)  # fmt: skip

        assert python("-m", "pipeline.whose").stdout == f"{server.process.pid}\n"  # forked
        bad = ["-m", "pipeline", "model.learning_rate=-1"]  # a bad setting: one line, exit 1
        child, alone = python(*bad), python(*bad, environment=env)
        assert (child.returncode, child.stdout, child.stderr) == (
            alone.returncode,
            alone.stdout,
            alone.stderr,
        )
        assert alone.returncode == 1
        assert python("-c", "import sys; print(sys.flags.no_site)").stdout == "0\n"  # Python's
        whose.write_text(whose.read_text() + "# changed\n")
        assert python("-m", "pipeline.whose").stdout == f"{os.getpid()}\n"  # Python's, afresh
    finally:
        server.stop()
