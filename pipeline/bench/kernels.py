"""Table 7 of ``python -m pipeline.bench``: what reproducible numerics cost in training speed.

The same run (table 2's) under ``numerics=reproducible`` (Haswell kernel, one BLAS thread),
with the machine's own kernel on one thread, and under ``numerics=native`` (its own kernel and
thread count). Each is a fresh ``python -m pipeline`` child, since OpenBLAS's kernel is
fixed once NumPy has loaded it; only the epochs of ``partial_fit`` are timed.
"""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path

import numpy as np

from pipeline.bench.whole_run import store_uri, timed_child


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def modes() -> list[tuple[str, list[str]]]:
    """(what, overrides) for each row: reproducible, the native kernel on 1 thread, native.

    The middle row tells the kernel's cost (against the first) from the threads' (the last).
    """
    return [
        ("reproducible (the default)", ["numerics=reproducible"]),
        ("native kernel, 1 thread", ["numerics=native", "numerics.blas_threads=1"]),
        (
            f"native: this machine's kernel, OpenBLAS's threads ({cores()} cores)",
            ["numerics=native"],
        ),
    ]


def train_seconds(overrides: list[str]) -> tuple[float, int, dict[str, str]]:
    """Seconds of training per epoch of ``python -m pipeline OVERRIDES``, its epochs, its tags."""
    from pipeline.tracking.query import newest_run_tags

    with tempfile.TemporaryDirectory() as tmp:
        sums = timed_child(overrides, tmp)["sums"]
        tags = newest_run_tags(store_uri(tmp))
    return sums["train"] / max(sums["epochs"], 1), sums["epochs"], tags


def kernel_table(overrides: list[str], n_train: int, repeats: int = 2) -> list[str]:
    """The table's lines: s/epoch (best of ``repeats`` runs), examples/s, x reproducible."""
    rows = [
        f"`python -m pipeline {' '.join(overrides)}` with each numerics option; training time "
        f"only, best of {repeats} runs.",
        "",
        "| numerics | kernel | threads | s/epoch | examples/s | x reproducible |",
        "|---|---|---:|---:|---:|---:|",
    ]
    base = None
    for what, extra in modes():
        timed = [train_seconds([*overrides, *extra]) for _ in range(repeats)]
        seconds, _, tags = min(timed, key=lambda t: t[0])
        base = base or seconds
        rows.append(
            f"| {what} | {tags.get('numerics.blas_kernel', '?')} | "
            f"{tags.get('numerics.blas_threads', '?')} | {seconds:.3f} | "
            f"{n_train / seconds:,.0f} | {base / seconds:.2f}x |"
        )
    rows += [
        "",
        "x reproducible: speed relative to the default (above 1: faster). Only the first row's "
        "bits are the same on every x86-64 machine.",
    ]
    return rows


def machine(threads: int) -> str:
    """What this ran on: CPUs, NumPy's BLAS, the threads used, the load."""
    from threadpoolctl import threadpool_info

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
        "?",
    )
    blas = [
        f"{i['internal_api']} {i['version']} ({i.get('architecture')})"
        for i in threadpool_info()
        if "numpy" in i["filepath"]
    ]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({cpu}); Python {platform.python_version()}; NumPy "
        f"{np.__version__} with {', '.join(blas) or 'unknown BLAS'}; {threads} BLAS thread(s); "
        f"load average at the start {load} (1, 5, 15 min)"
    )
