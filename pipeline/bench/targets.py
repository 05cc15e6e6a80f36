"""The last table of ``python -m pipeline.bench``: the targets, judged on what was measured.

Also where the benchmark looks for MNIST when it is not told. No timing happens here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


TORCH_MISSING = "not installed (pip install torch==2.13.0)"


@dataclass
class Measured:
    """What one run of the benchmark measured, for the targets; None where a part was skipped.

    Seconds throughout. ``best``: table 1, ``(peer, dtype)`` -> s/epoch. ``threads``: thread
    count -> ``{"numpy", "torch", "floor"}`` -> s/epoch (``torch`` None when not installed);
    the counts asked for but above ``cores`` are not in it.
    """

    cores: int
    best: dict[tuple[str, str], float] = field(default_factory=dict)
    thread_counts: tuple[int, ...] = ()
    threads: dict[int, dict[str, float | None]] | None = None
    single: dict[str, float] | None = None  # runs.single_run_table
    sweep: dict[str, float] | None = None  # runs.sweep_table
    flagship: dict[str, float] | None = None  # whole_run.run_table (table 2)
    parallel: dict | None = None  # runs.throughput_table
    help_s: float | None = None
    pool: dict[str, float] | None = None  # whole_run.run_table (table 3)
    recorder: dict[str, float] | None = None  # recorder.recorder_table
    workers: dict | None = None  # worker_speedup.workers_table
    arms: dict | None = None  # parallel_arms.arms_table


def targets(m: Measured) -> list[str]:
    """Issues 16's and 26's targets, and the still-valid ones of issues 7 and 14, judged on
    ``m``: one row each, a table's lines."""
    rows = ["| target | measured | verdict |", "|---|---|---|"]

    def row(target: str, measured: str, met: bool | None) -> None:
        verdict = "not measured" if met is None else ("met" if met else "**not met**")
        rows.append(f"| {target} | {measured} | {verdict} |")

    _run_rows(row, m)
    _workers_rows(row, m)
    _arms_row(row, m)
    _thread_rows(row, m)
    ours, theirs = m.best.get(("numpy", "float32")), m.best.get(("sklearn", "float64"))
    row(
        "NumpyMLP float32 >= 2.5x the examples/s of MLPClassifier float64 (table 1)",
        "not timed (--peers, --dtypes)" if None in (ours, theirs) else f"{theirs / ours:.2f}x",
        None if None in (ours, theirs) else theirs / ours >= 2.5,
    )
    run = m.flagship
    row(
        "per-epoch evaluation + logging <= 15% of training (table 2)",
        "table 2 skipped" if run is None else f"{run['overhead']:.1%}",
        None if run is None else run["overhead"] <= 0.15,
    )
    row(
        "`python -m pipeline --help` < 2 s",
        "not timed" if m.help_s is None else f"{m.help_s:.2f} s",
        None if m.help_s is None else m.help_s < 2,
    )
    row(
        "peak memory of a run on 70,000 images < 1.5 GB (table 3)",
        "table 3 skipped" if m.pool is None else f"{m.pool['peak_gb']:.2f} GB",
        None if m.pool is None else m.pool["peak_gb"] < 1.5,
    )
    row(
        "per-example recorder <= 5% of training time (table 8)",
        "table 8 skipped" if m.recorder is None else f"{m.recorder['overhead']:.2%}",
        None if m.recorder is None else m.recorder["overhead"] <= 0.05,
    )
    return rows


def _arms_row(row, m: Measured) -> None:
    """Issue 26's flagship target: its arms at once hide most of the control's training (read
    in the two-worker run: how long it waited for the control's worker)."""
    target = (
        "flagship on 8,000 MNIST digits, `train.workers=2`: the control's training >= 80% hidden "
        "behind the probe's, the same final metrics (table 11)"
    )
    a = m.arms
    if a is None:
        row(target, "skipped (--no-arms, or no MNIST files)", None)
        return
    hidden = 1 - a["waited"] / a["control"]
    row(
        target,
        f"{hidden:.0%} (waited {a['waited']:.1f} s for a control that trains "
        f"{a['control']:.1f} s beside a {a['probe']:.1f} s probe; whole command "
        f"{a['one']:.1f} s -> {a['two']:.1f} s), "
        + ("the same metrics" if a["same"] else "**different metrics**"),
        hidden >= 0.8 and a["same"],
    )


def _workers_rows(row, m: Measured) -> None:
    """Issue 26's target: the memorization study on 4,000 MNIST images, 2 workers against 1."""
    target = (
        "memorization study, 32 models on 4,000 MNIST images: `train.workers=2` >= 1.5x "
        "`train.workers=1`, whole command, the same score table (table 10)"
    )
    found = (m.workers or {}).get("MNIST, 4,000 training images", {})
    if m.workers is None or 2 not in found:
        why = "skipped (--no-workers)" if m.workers is None else "no MNIST files, or one core"
        row(target, why, None)
        return
    (one, _), (two, same) = found[1], found[2]
    same_text = "the same bytes" if same else "**a different score table**"
    row(
        target,
        f"{one / two:.2f}x ({one:.1f} s -> {two:.1f} s), {same_text}",
        one >= 1.5 * two and same,
    )


def _run_rows(row, m: Measured) -> None:
    """Issue 16's targets for whole runs: one run, a sweep, the flagship, N jobs at once."""
    s = m.single
    row(
        "`python -m pipeline` (digits, 60 epochs) <= 4 s wall, best of 3 (table 4)",
        "skipped (--no-single)"
        if s is None
        else f"{s['wall']:.2f} s (median {s['median']:.2f} s; training {s['loop']:.2f} s, "
        f"overhead {s['wall'] - s['loop']:.2f} s; first run, new store: {s['first']:.2f} s)",
        None if s is None else s["wall"] <= 4,
    )
    s = m.sweep
    row(
        "6-job `label_noise_sweep` (digits, basic launcher) >= 50% of its wall time training "
        "(table 5)",
        "skipped (--no-sweep)"
        if s is None
        else f"{s['loop'] / s['wall']:.0%} ({s['loop']:.2f} s of {s['wall']:.2f} s)",
        None if s is None else s["loop"] / s["wall"] >= 0.5,
    )
    s = m.flagship
    row(
        "flagship on 8,000 MNIST digits, both arms to fit <= 1.3x its training time (table 2)",
        "skipped (--no-run)"
        if s is None
        else f"{s['wall'] / s['loop']:.2f}x ({s['wall']:.2f} s wall, {s['loop']:.2f} s training)",
        None if s is None else s["wall"] <= 1.3 * s["loop"],
    )
    s = m.parallel
    if s is None or s["tn"] is None or s["t1"] is None:
        measured = "skipped (--no-parallel)" if s is None else s["note"]
        row(
            "sweep throughput with N jobs on N cores >= 0.8 N x one job's (table 6)", measured, None
        )
    else:
        n, ratio = s["n"], s["t1"] / s["tn"]
        row(
            f"sweep throughput with {n} jobs on {n} cores >= {0.8 * n:.1f}x one job's (table 6)",
            f"{ratio:.2f}x ({s['jobs']} jobs: one at a time {s['t1']:.2f} s, {n} at a time "
            f"{s['tn']:.2f} s; BLAS threads per job: {s['threads']})",
            ratio >= 0.8 * n,
        )


def _thread_rows(row, m: Measured) -> None:
    """Issue 16's thread targets: ahead of PyTorch at each count, <= 1.3x the floor at 4."""
    for count in m.thread_counts:
        target = f"NumpyMLP float32 ahead of PyTorch at {count} thread(s) (table 9)"
        t = (m.threads or {}).get(count)
        if m.threads is None:
            row(target, "skipped (--no-thread-table)", None)
        elif t is None:
            row(target, f"not measured: this machine has {m.cores} cores", None)
        elif t["torch"] is None:
            row(target, f"PyTorch {TORCH_MISSING}", None)
        else:
            row(
                target,
                f"PyTorch / NumpyMLP {t['torch'] / t['numpy']:.2f}x",
                t["numpy"] < t["torch"],
            )
    target = "NumpyMLP float32 <= 1.3x the floor at 4 threads (table 9)"
    t = (m.threads or {}).get(4)
    if m.threads is None:
        row(target, "skipped (--no-thread-table)", None)
    elif t is None:
        row(target, f"not measured: this machine has {m.cores} cores", None)
    else:
        row(target, f"{t['numpy'] / t['floor']:.2f}x", t["numpy"] <= 1.3 * t["floor"])
