"""Figures drawn beside the run and logged in it before it ends.

:func:`paint` hands a figure's builder (a pure function of :mod:`pipeline.report`) and its
arguments to the figure workers (``pipeline.runtime.figure_pool``) and returns at once, so the
run goes on (its model is logged, its next arm trains) while the figure is drawn.
:func:`finish` logs a run's figures as they come back; ``store.run`` calls it before it ends a
run FINISHED, so a finished run holds every figure. An arm's run leaves its figures to its
study's run instead (:func:`hand_over`), and a job of an in-process sweep (the basic launcher)
to the sweep's parent: they draw while the next arm or job trains, and are all logged before
that run ends. A run that fails keeps the figures drawn already (:func:`salvage`).
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from pipeline.runtime import faults, figure_pool

# owner run -> [(the run a figure goes in, its future, what to draw)]
_pending: dict[str, list[tuple[str, Future, tuple]]] = defaultdict(list)


def paint(run_id: str, name: str, builder: str | Callable, /, *args, **kwargs) -> None:
    """Draw ``builder(*args, **kwargs)`` beside the run and log it in ``run_id`` as ``name``.

    ``builder`` is a function, or its name in :mod:`pipeline.report` (``"figures.weight_tiles"``):
    named, it is imported by the workers only, and the run's process never loads matplotlib.
    ``name`` is the PNG's path in the run; for a builder that returns several figures (a dict
    of file name to figure), the folder they go in ("" for the run's top).
    """
    job = (name, builder, args, kwargs)
    _pending[run_id].append((run_id, figure_pool.submit(job), job))


def hand_over(run_id: str, owner: str) -> None:
    """Leave ``run_id``'s figures to be finished with ``owner``'s (a study's run, for its
    arms): the arm's run ends now, and its figures are drawn while the next arm trains."""
    _pending[owner].extend(_pending.pop(run_id, []))


def finish(owner: str) -> None:
    """Log every figure of ``owner`` (and of the runs it took over) as it is drawn; the
    first drawing error is raised."""
    from mlflow.tracking import MlflowClient

    figures = _pending.pop(owner, [])
    client = MlflowClient()
    try:
        for run_id, future, job in figures:
            for artifact, local in figure_pool.result(future, job).items():
                client.log_artifact(run_id, local, os.path.dirname(artifact) or None)
                Path(local).unlink()
                faults.point("figure-logged")
    finally:
        for _, future, _ in figures:
            future.cancel()


def salvage(owner: str) -> None:
    """A run that failed or was stopped: log the figures of ``owner`` drawn already, drop
    the rest. Never raises (the run is ending with an error of its own)."""
    from mlflow.tracking import MlflowClient

    for run_id, future, _ in _pending.pop(owner, []):
        if future.cancel() or not future.done() or future.exception() is not None:
            continue
        with contextlib.suppress(Exception):
            for artifact, local in future.result().items():
                MlflowClient().log_artifact(run_id, local, os.path.dirname(artifact) or None)
