"""``python -m pipeline`` leaves without Python's teardown, but nothing an exit owes is skipped."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import atexit, sys, threading, time
    from pathlib import Path
    from pipeline.runtime.quick_exit import leave

    out = Path(sys.argv[1])
    atexit.register(lambda: (out / "atexit").write_text("ran"))
    def late():
        time.sleep(0.3)
        (out / "thread").write_text("joined")
    threading.Thread(target=late).start()  # not a daemon: an exit waits for it
    sys.stdout.write("unflushed")  # no newline: still in the buffer
    leave(eval(sys.argv[2]))
    """
)


@pytest.mark.parametrize(("code", "status"), [("None", 0), ("3", 3), ("'bad input'", 1)])
def test_leave_runs_handlers_joins_threads_flushes_and_keeps_the_status(tmp_path, code, status):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), code], capture_output=True, text=True
    )
    assert proc.returncode == status, proc.stderr
    assert proc.stdout == "unflushed"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "joined"
    assert proc.stderr.strip() == ("bad input" if status == 1 else "")
