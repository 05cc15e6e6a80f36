"""Which process records a run, and whether that process is still alive.

MLflow knows no liveness: a run whose process was killed with SIGKILL (the OOM killer, a node
that died, a scheduler past its grace period) stays RUNNING forever. So every run memlab
opens carries its owner: the host, the process id and the process's start time (the pid alone
could be a new process's by now). A later run on the same host that finds a RUNNING run whose
owner is gone marks it KILLED (``pipeline.tracking.store.close_dead_runs``); a run on another
host cannot be judged from here and is left as it is.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

HOST, PID, STARTED = "memlab.host", "memlab.pid", "memlab.pid_started"


def _stat(pid: int) -> list[str]:
    """Fields 3 on of ``/proc/<pid>/stat`` (state, ppid, ...); [] where there is none."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            stat = file.read()
    except OSError:
        return []
    # The command name (field 2) is in parentheses and may hold spaces: count from its end.
    return stat.rsplit(")", 1)[1].split()


def _started(pid: int) -> str:
    """When process ``pid`` started, in clock ticks since boot ('' where /proc is missing)."""
    fields = _stat(pid)
    return fields[19] if fields else ""


def tags() -> dict[str, str]:
    """This process as a run's owner: ``{memlab.host, memlab.pid, memlab.pid_started}``."""
    pid = os.getpid()
    return {HOST: socket.gethostname(), PID: str(pid), STARTED: _started(pid)}


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (ended, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    fields = _stat(pid)
    return not (fields and fields[0] in ("Z", "X"))


def alive(owner: Mapping[str, str]) -> bool | None:
    """Whether the process named by a run's owner tags runs still; None when it cannot be
    told (another host, or no owner recorded)."""
    if owner.get(HOST) != socket.gethostname() or not owner.get(PID, "").isdigit():
        return None
    pid = int(owner[PID])
    if not running(pid):
        return False
    fields = _stat(pid)
    started = owner.get(STARTED, "")
    return not (started and fields) or fields[19] == started
