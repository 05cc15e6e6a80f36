"""Kill points: the places where the crash test ends this process with SIGKILL.

A run's record must come out whole whenever its process is killed (README, "What a stopped
run leaves"). Timing luck cannot show that; named points can. With ``MEMLAB_KILL_AT=NAME``,
:func:`point` kills the process the first time the run reaches ``NAME``; with
``MEMLAB_KILL_AT=NAME@N``, the N-th time. Unset, a point costs a dictionary look-up.
``tests/test_crash_*.py`` kill a run at each point, run the same command again and compare
the record with that of a run never stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections import Counter
from collections.abc import Iterator

ENV = "MEMLAB_KILL_AT"


def _armed() -> tuple[str, int] | None:
    """The point and the count ``MEMLAB_KILL_AT`` names, if any."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    name, _, count = text.partition("@")
    return name, int(count or 1)


_ARMED = _armed()
_reached: Counter[str] = Counter()


def point(name: str) -> None:
    """Kill this process with SIGKILL here, if ``MEMLAB_KILL_AT`` names this point."""
    if _ARMED is None or _ARMED[0] != name:
        return
    _reached[name] += 1
    if _reached[name] == _ARMED[1]:
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def after_call(owner: object, attribute: str, name: str) -> Iterator[None]:
    """Inside the block, ``owner.attribute(...)`` is followed by :func:`point` ``(name)``.

    For a point inside a library's own sequence (MLflow's model logging: its files are
    uploaded, and the model is not yet marked READY). Patches nothing unless armed for ``name``.
    """
    if _ARMED is None or _ARMED[0] != name:
        yield
        return
    original = getattr(owner, attribute)

    def then_point(*args, **kwargs):
        result = original(*args, **kwargs)
        point(name)
        return result

    setattr(owner, attribute, then_point)
    try:
        yield
    finally:
        setattr(owner, attribute, original)
