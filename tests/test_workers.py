"""Worker processes for independent trainings: results in order, the run's numerics in each
worker, and a worker that dies ends the map in one line."""

from __future__ import annotations

import os
import signal
import time

import pytest

from pipeline.errors import ConfigError
from pipeline.runtime import workers


def slow_square(k: int) -> int:
    """The first items finish last: the results must still come back in order."""
    time.sleep(0.05 * (5 - k))
    return k * k


def blas_in_worker(_: int) -> tuple[int, str | None, str | None]:
    """This process's BLAS threads and kernel, and its NumPy loops setting."""
    from pipeline import numerics

    blas = numerics.blas_info() or {}
    env = os.environ.get("NPY_DISABLE_CPU_FEATURES")
    return blas.get("num_threads"), blas.get("architecture"), env


def die_on_two(k: int) -> int:
    if k == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return k


def refuse(k: int) -> int:
    raise ConfigError(f"item {k} refused")


def test_results_come_back_in_the_items_order_from_several_processes():
    got = list(workers.parallel_map(slow_square, range(5), workers=2))
    assert got == [0, 1, 4, 9, 16]


def test_each_worker_runs_the_parents_numerics():
    from pipeline import numerics

    parent = numerics.blas_info()
    found = set(workers.parallel_map(blas_in_worker, range(4), workers=2))
    assert found == {(1, parent["architecture"], os.environ.get("NPY_DISABLE_CPU_FEATURES"))}


def test_a_worker_that_dies_ends_the_map_in_one_line():
    with pytest.raises(workers.WorkerDied) as died:
        list(workers.parallel_map(die_on_two, range(4), workers=2))
    message = str(died.value)
    assert "\n" not in message and "worker process died" in message and "train.workers" in message


def test_an_error_in_a_worker_comes_back_as_itself():
    with pytest.raises(ConfigError, match="item 0 refused"):
        list(workers.parallel_map(refuse, range(3), workers=2))


def test_one_worker_or_none_is_the_builtin_map(monkeypatch):
    monkeypatch.delenv("MEMLAB_TRAIN_WORKERS", raising=False)
    assert workers.mapper(1) is map and workers.mapper(0) is map
    assert workers.count(None, cores=3) == 3 and workers.count(2, cores=3) == 2


def test_auto_is_memlab_train_workers_where_it_is_set_and_a_bad_one_is_one_line(monkeypatch):
    monkeypatch.setenv("MEMLAB_TRAIN_WORKERS", "1")
    assert workers.count(None, cores=3) == 1 and workers.count(2, cores=3) == 2
    assert workers.elsewhere(None) is None and workers.mapper(None) is map
    monkeypatch.setenv("MEMLAB_TRAIN_WORKERS", "two")
    with pytest.raises(ConfigError, match="MEMLAB_TRAIN_WORKERS must be a whole number >= 0"):
        workers.count(None)
