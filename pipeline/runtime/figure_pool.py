"""The figure workers: a few processes that draw while the run goes on.

Drawing is matplotlib in Python: a tenth to a third of a second of one core per figure, and an
arm has eight. The workers come from a fork server that has imported matplotlib and the figure
builders once (``multiprocessing``'s ``forkserver``: forked from a process with no threads, so
safe). :func:`start` starts them in the background, and they draw a first small figure (fonts
loaded, caches filled), while the run trains. They ignore Ctrl-C (the run's process handles
it) and end when the run's process is gone, however it ended. ``MEMLAB_FIGURE_WORKERS=N`` sets
how many; 0 draws in the run's own process (the same pictures, one after another), as does a
program started as a script file (``python script.py``): a worker would run that script again
(``multiprocessing`` re-imports the main module), and memlab cannot know that it is guarded by
``if __name__ == "__main__"``. :func:`submit` hands a drawing to them (or draws it here) and
returns its future; whoever records the figures (``pipeline.tracking.painter``) logs them.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from pipeline.runtime.workers import PRELOAD as TRAINING_MODULES
from pipeline.runtime.workers import from_environment

BUILDERS = ("pipeline.report.figures", "pipeline.report.example_figures")
MAX_WORKERS = 4

_pool: ProcessPoolExecutor | None = None
_folder: Path | None = None  # where the workers leave their PNGs until they are logged
_started = False
_ready = threading.Event()
_wanted: int | None = None  # the workers start() was asked for


def workers() -> int:
    """How many worker processes draw: ``MEMLAB_FIGURE_WORKERS``; else 0 (draw in the run's
    process) for a program started as a script; else what :func:`start` was given; else this
    process's cores, at most 4."""
    configured = from_environment("MEMLAB_FIGURE_WORKERS")
    if configured is not None:
        return configured
    main = sys.modules.get("__main__")
    if getattr(main, "__file__", None) and getattr(main, "__spec__", None) is None:
        return 0  # a script: a worker would run it again
    if _wanted is not None:
        return _wanted
    return min(MAX_WORKERS, len(os.sched_getaffinity(0)))


def submit(job: tuple) -> Future:
    """Draw ``job`` (``(name, builder, args, kwargs)``, see :func:`draw`) in a worker, or here
    when there are none (or one died); its future holds ``{path in the run: PNG file}``."""
    pool = _ready_pool()
    try:
        return pool.submit(draw, *job, str(_folder)) if pool else _draw_here(job)
    except BrokenProcessPool:  # a worker died (out of memory?): draw here from now on
        _retire_pool()
        return _draw_here(job)


def _draw_here(job) -> Future:
    """``draw`` in this process, its result or error kept in a future like a worker's."""
    future: Future = Future()
    try:
        future.set_result(draw(*job, str(_new_folder())))
    except Exception as err:  # raised where a worker's would be: in finish()
        future.set_exception(err)
    return future


def result(future: Future, job) -> dict[str, str]:
    """What a worker drew; drawn again here if the worker died before it could say."""
    try:
        return future.result()
    except BrokenProcessPool:
        _retire_pool()
        return _draw_here(job).result()


def draw(name: str, builder: str | Callable, args, kwargs, folder: str) -> dict[str, str]:
    """Build the figure(s) and save each as a PNG under ``folder``: {path in the run: file}."""
    from pipeline.report.canvas import save_figure

    if isinstance(builder, str):
        module, function = builder.rsplit(".", 1)
        builder = getattr(importlib.import_module(f"pipeline.report.{module}"), function)
    drawn = builder(*args, **kwargs)
    figures = drawn.items() if isinstance(drawn, dict) else [("", drawn)]
    saved = {}
    for file, figure in figures:
        artifact = f"{name}/{file}" if file and name else file or name
        local = Path(tempfile.mkdtemp(dir=folder)) / os.path.basename(artifact)
        saved[artifact] = str(save_figure(figure, local))
    return saved


def start(count: int | None = None) -> None:
    """Start ``count`` worker processes (default :func:`workers`), once per process, in the
    background: the fork server imports for a second, and the run goes on meanwhile. Each
    worker then draws a first small figure. ``MEMLAB_FIGURE_WORKERS`` has the last word."""
    global _started, _wanted
    if not _started:
        _wanted = count
        n = workers()  # a bad MEMLAB_FIGURE_WORKERS is a one-line error, here
        _started = True
        # Not a daemon: a process that ends early (a bad store) waits for the workers to be up,
        # then stops them in order, instead of leaving them half started.
        threading.Thread(target=_open_pool, args=(n,), name="memlab-figure-workers").start()


def _ready_pool() -> ProcessPoolExecutor | None:
    """The worker pool once it is up (None: draw in the run's process)."""
    start()
    _ready.wait()
    return _pool


def _open_pool(n: int) -> None:
    global _pool
    try:
        if n > 0:
            import multiprocessing

            context = multiprocessing.get_context("forkserver")
            # The training workers (runtime.workers) fork from the same server: it imports
            # their code too, while the run starts, so that they start at once.
            context.set_forkserver_preload([*BUILDERS, *TRAINING_MODULES])
            _new_folder()
            pool = ProcessPoolExecutor(
                n, mp_context=context, initializer=_worker_start, initargs=(os.getpid(),)
            )
            for _ in range(n):  # each submit finds no idle worker and starts one
                pool.submit(_warm_up)
            _pool = pool
    except Exception:  # no processes to be had here (no /dev/shm, a process limit): draw here
        _pool = None
    finally:
        _ready.set()


def _new_folder() -> Path:
    """The folder the figures wait in until they are logged; :func:`close` removes it (and
    stops the workers) as the process ends, whether they drew or the run's process did."""
    global _folder
    if _folder is None:
        _folder = Path(tempfile.mkdtemp(prefix="memlab-figures-"))
        atexit.register(close)
    return _folder


def _worker_start(run_pid: int) -> None:
    """A worker ignores Ctrl-C (the run's process handles it) and ends when the run's process
    is gone, however it ended: killed outright, it cannot stop its workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_end_with, args=(run_pid,), name="memlab-run-watch", daemon=True
    ).start()


def _end_with(run_pid: int, every: float = 0.5) -> None:
    """End this process once ``run_pid`` has stopped running."""
    import time

    from pipeline.runtime.owner import running

    while running(run_pid):
        time.sleep(every)
    os._exit(0)


def _warm_up() -> None:
    """Draw a small figure with text: the fonts and matplotlib's caches, ready for the run's."""
    import io

    from pipeline.report.canvas import write_png
    from pipeline.report.figures import learning_curves

    write_png(learning_curves({"train_loss": [1.0, 0.5]}, title="warm"), io.BytesIO())


def _retire_pool() -> None:
    """Stop using a pool whose worker died: the run's process draws what is left."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


def close() -> None:
    """Stop the workers and remove what they left (figures of runs never finished)."""
    global _pool, _folder, _started, _wanted
    if _started:
        _ready.wait()
    _started, _wanted = False, None
    _ready.clear()
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
        _pool = None
    if _folder is not None:
        shutil.rmtree(_folder, ignore_errors=True)
        _folder = None
