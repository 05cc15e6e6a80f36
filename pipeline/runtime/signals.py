"""SIGTERM ends a run the way Ctrl-C does: KILLED in MLflow, with every measured epoch kept.

SLURM (time limit, preemption), ``kill``, ``timeout`` and ``docker stop`` all send SIGTERM,
whose default action ends Python at once: no ``finally`` runs, and the MLflow run stays RUNNING
forever. ``install()`` turns SIGTERM into ``Terminated``, a ``KeyboardInterrupt``, so that the
code that already ends a Ctrl-C'd run honestly (``store.run``, ``store.epoch_metrics``) does
the same for SIGTERM. Called once by the entry point, before the run starts.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

# The exit status of a process ended by SIGTERM (128 + 15), what schedulers and shells expect.
EXIT_STATUS = 143


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    # Only the first SIGTERM interrupts; a second one (SLURM repeats it) must not interrupt the
    # handler that is already ending the run.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated("terminated (SIGTERM)")


def install() -> None:
    """Make SIGTERM raise ``Terminated`` in the main thread (a no-op elsewhere)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)
