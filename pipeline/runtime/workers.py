"""Independent trainings in worker processes: the run's numerics in each, results in order.

``numerics=reproducible`` pins one BLAS thread per process, so one process trains on one core.
A study whose models do not depend on each other (the memorization study's subset models, the
label-issue study's folds and repeats) can train them on every core its job may use, with the
very same bits: :func:`mapper` gives the study core a ``map``-like callable that runs
``fn(item)`` for each item in ``workers`` processes and yields the results in the items' order,
whatever order they finish in. The core takes the callable and knows no processes; with the
builtin ``map`` it trains one model after another in its own process.

Why the bits do not change: each worker loads NumPy with the parent's OpenBLAS kernel and NumPy
loops (``OPENBLAS_CORETYPE`` and ``NPY_DISABLE_CPU_FEATURES``, which ``import pipeline`` set
in the environment the workers inherit), and applies the parent's ``NumericsSettings`` before
it computes anything (``numerics.apply``: the same thread count, ``blas_threads: null`` as one
thread, and the check that kernel and loops are the configured ones). A model's result depends
only on its item and on ``fn``'s inputs, never on which worker or when.

The workers come from ``multiprocessing``'s fork server (the one the figure workers use:
forked from a process with no threads, so safe). ``fn`` with everything it carries (the
training pool, say) goes to each worker once, as it starts; each task sends only its item.
Workers ignore Ctrl-C (the run's process handles it and stops them) and end when the run's
process is gone, however it ended. A worker that dies (killed, out of memory) fails the map in
one line (``WorkerDied``); an exception raised by ``fn`` comes back as itself.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from pipeline.errors import MemlabError

T = TypeVar("T")
R = TypeVar("R")
Mapper = Callable[[Callable[[T], R], Iterable[T]], Iterable[R]]


# What the workers train with (the study core, the models, scikit-learn): imported once, by the
# fork server, rather than by each worker (seconds each).
PRELOAD = ("pipeline.study.run",)


class WorkerDied(MemlabError):
    """A worker process ended before it sent its result back (killed, out of memory)."""


def count(wanted: int | None, cores: int | None = None) -> int:
    """How many workers ``train.workers`` asks for: ``wanted``; None (auto) is
    ``MEMLAB_TRAIN_WORKERS`` where it is set, else ``cores``, this job's share of the machine
    (default: every core this process may run on)."""
    if wanted is not None:
        return wanted
    configured = from_environment("MEMLAB_TRAIN_WORKERS")
    if configured is not None:
        return configured
    return cores if cores is not None else len(os.sched_getaffinity(0))


def from_environment(name: str) -> int | None:
    """The whole number >= 0 in the environment variable ``name`` (None where it is unset);
    anything else is a one-line ``ConfigError``."""
    configured = os.environ.get(name)
    if configured is None:
        return None
    if not configured.strip().isdigit():
        from pipeline.errors import ConfigError

        raise ConfigError(f"{name} must be a whole number >= 0, not {configured!r}")
    return int(configured)


def mapper(workers: int | None, numerics: Any = None) -> Mapper:
    """A ``map`` for a study core: the builtin one for 0 or 1 workers (one model after another
    in this process), else :func:`parallel_map` with ``workers`` processes.

    ``numerics``: the run's ``NumericsSettings`` (None: the defaults), applied in each worker.
    A program started as a script file (``python script.py``) trains in its own process, as
    its figures are drawn there (``tracking.painter``): a worker would run that script again
    (``multiprocessing`` imports the main module), and memlab cannot know that it is guarded
    by ``if __name__ == "__main__"``. The same bits, one model after another.
    """
    n = count(workers)
    if n <= 1 or _main_is_a_script():
        return map

    def parallel(fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        return parallel_map(fn, items, workers=n, numerics=numerics)

    return parallel


def preload(context) -> None:
    """Have the fork server import the training code (``PRELOAD``) once, with what it imports
    already, if it is not running yet: each worker then starts in a fork, not in seconds of
    imports. Adds to the modules asked for before (the figure workers'), never drops them."""
    from multiprocessing import forkserver

    asked = getattr(getattr(forkserver, "_forkserver", None), "_preload_modules", ["__main__"])
    context.set_forkserver_preload(list(dict.fromkeys([*asked, *PRELOAD])))


def _main_is_a_script() -> bool:
    import sys

    main = sys.modules.get("__main__")
    return bool(getattr(main, "__file__", None)) and getattr(main, "__spec__", None) is None


def parallel_map(
    fn: Callable[[T], R], items: Iterable[T], *, workers: int, numerics: Any = None
) -> Iterator[R]:
    """``fn(item)`` for every item in ``workers`` processes (at most one per item), yielded in
    the items' order. ``fn`` must pickle (a module-level function, a ``functools.partial`` of
    one, or an instance of a module-level class); it is sent to each worker once. Called from
    a script, the script must guard its work with ``if __name__ == "__main__"`` (the workers
    import it, see :func:`mapper`).

    The workers start when the first result is asked for and stop when the last is yielded,
    or at once when the caller stops early (an error, Ctrl-C, the generator closed).
    """
    items = list(items)
    if not items:
        return
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    preload(context)
    pool = ProcessPoolExecutor(
        min(workers, len(items)),
        mp_context=context,
        initializer=_worker_start,
        initargs=(fn, numerics, os.getpid()),
    )
    finished = False
    try:
        futures = [pool.submit(_call, item) for item in items]
        started = _started(pool)
        for future in futures:
            try:
                yield future.result()
            except BrokenProcessPool:
                raise WorkerDied(_died(started, workers)) from None
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            _stop(pool)


class Elsewhere:
    """``fn(item)`` started at once in a worker process of its own (the run's numerics, as in
    :func:`parallel_map`), while this process goes on; :meth:`result` waits for it.

    A context manager: leaving it stops the worker unless its result was taken (an error or
    Ctrl-C in this process, then, does not wait for a training nobody will use).
    """

    def __init__(self, fn: Callable[[T], R], item: T, numerics: Any = None):
        import multiprocessing

        context = multiprocessing.get_context("forkserver")
        preload(context)
        self._pool = ProcessPoolExecutor(
            1, mp_context=context, initializer=_worker_start, initargs=(fn, numerics, os.getpid())
        )
        self._future = self._pool.submit(_call, item)
        self._started = _started(self._pool)
        self._taken = False

    def result(self) -> Any:
        try:
            found = self._future.result()
        except BrokenProcessPool:
            raise WorkerDied(_died(self._started, 2)) from None
        self._taken = True
        return found

    def __enter__(self) -> Elsewhere:
        return self

    def __exit__(self, *_) -> None:
        if self._taken:
            self._pool.shutdown(wait=True)
        else:
            _stop(self._pool)


def elsewhere(workers: int | None, numerics: Any = None) -> Callable[..., Elsewhere] | None:
    """What a study core starts a training in another process with (``Elsewhere(fn, item)``),
    or None when it has one process to train in: ``workers`` (``train.workers``) is 0 or 1, or
    the program is a script (see :func:`mapper`)."""
    if count(workers) <= 1 or _main_is_a_script():
        return None
    return functools.partial(Elsewhere, numerics=numerics)


def _started(pool: ProcessPoolExecutor) -> list:
    """The pool's worker processes (CPython's own; started by the first ``submit``), kept by
    the caller: a broken pool's manager thread forgets them."""
    return list((getattr(pool, "_processes", None) or {}).values())


def _died(processes: list, workers: int) -> str:
    """The one line for a worker that died, with the signal that killed it where known."""
    for process in processes:  # a dead worker may not be reaped yet: its exit code, then
        process.join(timeout=1)
    codes = [p.exitcode for p in processes]
    names = sorted({signal.Signals(-c).name for c in codes if c is not None and -c in _SIGNALS})
    how = f" ({', '.join(names)})" if names else ""
    return (
        f"a training worker process died{how}, out of memory or killed: run again with fewer "
        f"than train.workers={workers}, or train.workers=1 to train in the run's own process"
    )


_SIGNALS = {s.value for s in signal.Signals}


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop the workers now: queued items are dropped and running ones are not waited for."""
    processes = _started(pool)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


# ------------------------------------------------------------------ in the worker
_fn: Callable | None = None
_failed: BaseException | None = None


def _worker_start(fn: Callable, numerics: Any, run_pid: int) -> None:
    """Keep ``fn``, apply the run's numerics, ignore Ctrl-C, and end with the run's process.

    A worker whose numerics cannot be applied (another kernel loaded) keeps the error and
    raises it for each item: the run ends with its one line, not with a broken pool.
    """
    global _fn, _failed
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_end_with, args=(run_pid,), name="memlab-run-watch", daemon=True
    ).start()
    _fn = fn
    try:
        from pipeline import numerics as pinned

        pinned.apply(numerics, cores=1)  # blas_threads: null (numerics=native): one thread
    except BaseException as err:  # noqa: BLE001 (raised again for each item, in the run)
        _failed = err


def _call(item: Any) -> Any:
    if _failed is not None:
        raise _failed
    return _fn(item)


def _end_with(run_pid: int, every: float = 0.5) -> None:
    """End this process once ``run_pid`` has stopped running (killed outright, it cannot stop
    its workers itself)."""
    import time

    from pipeline.runtime.owner import running

    while running(run_pid):
        time.sleep(every)
    os._exit(0)
