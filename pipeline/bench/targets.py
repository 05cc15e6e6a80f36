"""The last table of ``python -m pipeline.bench``: issue 7's targets, judged on what was measured.

Also where the benchmark looks for MNIST when it is not told. No timing happens here.
"""

from __future__ import annotations

from pipeline.bench.whole_run import ROOT
from pipeline.errors import MemlabError

# Where to look for MNIST when --mnist-dir is not given: the project's data.dir, then the lab's
# shared copy in a checkout beside this one.
MNIST_DIRS = (str(ROOT / "data" / "mnist"), str(ROOT.parent / "shared" / "data" / "mnist"))


def find_mnist(candidates: tuple[str, ...] = MNIST_DIRS) -> str:
    """The first of ``candidates`` that holds MNIST's test part, else the first."""
    from pipeline.data.mnist import load_mnist

    for candidate in candidates:
        try:
            load_mnist(candidate, ["test"])
            return candidate
        except MemlabError:
            continue
    return candidates[0]


def targets(
    best: dict[tuple[str, str], float],
    run: dict[str, float] | None,
    help_s: float | None,
    pool: dict[str, float] | None,
    recorder: dict[str, float] | None = None,
) -> list[str]:
    """Issue 7's and 14's targets against this run's measurements, one row each (a table's
    lines)."""
    ours = best.get(("numpy", "float32"))
    rows = ["| target | measured | |", "|---|---|---|"]

    def row(target: str, measured: str, met: bool | None) -> None:
        verdict = "not measured" if met is None else ("met" if met else "**not met**")
        rows.append(f"| {target} | {measured} | {verdict} |")

    if ours is None:
        rows.append("| the speed targets | NumpyMLP float32 was not timed (--peers, --dtypes) | |")
    else:
        _speed_rows(row, best, ours)
    row(
        "per-epoch evaluation + logging <= 15% of training (table 2)",
        "table 2 skipped" if run is None else f"{run['overhead']:.1%}",
        None if run is None else run["overhead"] <= 0.15,
    )
    row(
        "`python -m pipeline --help` < 2 s",
        "not timed" if help_s is None else f"{help_s:.2f} s",
        None if help_s is None else help_s < 2,
    )
    row(
        "peak memory of a run on 70,000 images < 1.5 GB (table 3)",
        "table 3 skipped" if pool is None else f"{pool['peak_gb']:.2f} GB",
        None if pool is None else pool["peak_gb"] < 1.5,
    )
    row(
        "per-example recorder <= 5% of training time (table 4)",
        "table 4 skipped" if recorder is None else f"{recorder['overhead']:.2%}",
        None if recorder is None else recorder["overhead"] <= 0.05,
    )
    return rows


def _speed_rows(row, best: dict[tuple[str, str], float], ours: float) -> None:
    """The targets that compare NumpyMLP float32 (``ours`` s/epoch) with its peers."""
    floor = best.get(("floor", "float32"))
    for dtype in ("float32", "float64"):
        if (theirs := best.get(("sklearn", dtype))) is not None:
            measured = f"{theirs / ours:.2f}x"
            if floor is not None and theirs / ours < 2.5:  # is 2.5x possible at all?
                measured += (
                    f" (MLPClassifier runs at {theirs / floor:.2f}x the float32 floor: 2.5x "
                    f"would take {theirs / 2.5 / floor:.2f}x the floor)"
                )
            row(
                f"NumpyMLP float32 >= 2.5x the examples/s of MLPClassifier {dtype}",
                measured,
                theirs / ours >= 2.5,
            )
    torch = best.get(("torch", "float32"))
    row(
        "NumpyMLP float32 at least as fast as PyTorch float32",
        "not timed (not installed, or not in --peers)" if torch is None else f"{torch / ours:.2f}x",
        None if torch is None else torch >= ours,
    )
    if floor is not None:
        row(
            "NumpyMLP float32 within 1.3x of the floor", f"{ours / floor:.2f}x", ours <= 1.3 * floor
        )
