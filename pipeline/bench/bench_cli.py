"""``python -m pipeline.bench``: is NumpyMLP fast, and does a run cost what its training costs?

Prints, in one run: the machine and its load, then the tables (each in its module) and the
targets of issues 7, 14, 16 and 26, each with the number measured above and its verdict:

1. one epoch of NumpyMLP and its peers (:mod:`.peers`);
2. the flagship on MNIST, end to end, part by part; 3. its peak memory on 70,000 images
   (:mod:`.whole_run`);
4. one ``python -m pipeline``; 5. a 6-job sweep; 6. N jobs at once (:mod:`.runs`);
7. what reproducible numerics cost (:mod:`.kernels`); 8. the per-example recorder
   (:mod:`.recorder`);
9. NumpyMLP, PyTorch and the floor at 1, 2 and 4 threads (:mod:`.peers`), last but one:
   PyTorch's spinning threads and more BLAS threads can slow what runs after them on a busy
   machine;
10. the memorization study's models in 1, 2, ... worker processes (:mod:`.worker_speedup`);
11. the flagship's arms one after another and at once (:mod:`.parallel_arms`).

Each table can be skipped (``--no-run``, ``--no-memory``, ``--no-single``, ...); its targets
then say "not measured".
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from pipeline.bench.kernels import cores, kernel_table, machine
from pipeline.bench.parallel_arms import arms_table
from pipeline.bench.peers import N_FEATURES, PEERS, examples, peer_table, thread_table
from pipeline.bench.recorder import recorder_table
from pipeline.bench.runs import single_run_table, sweep_table, throughput_table
from pipeline.bench.targets import MNIST_DIRS, Measured, find_mnist, targets
from pipeline.bench.whole_run import (
    ONE_AT_A_TIME,
    POOL_RUN,
    RUN,
    help_seconds,
    pool_70k,
    run_child,
    run_table,
)
from pipeline.bench.worker_speedup import workers_table
from pipeline.errors import MemlabError

TABLES = {  # --name / --no-name: what each table is
    "run": "table 2: the flagship on MNIST, both arms to fit, part by part",
    "memory": "table 3: peak memory on 70,000 images",
    "single": "table 4: one `python -m pipeline`, best of 3",
    "sweep": "table 5: the 6-job label_noise_sweep",
    "parallel": "table 6: N jobs at once on N cores (joblib) against one",
    "numerics": "table 7: reproducible vs native numerics",
    "recorder": "table 8: the per-example recorder",
    "thread-table": "table 9: NumpyMLP, PyTorch and the floor at --thread-counts threads",
    "workers": "table 10: the memorization study's 32 models in 1, 2, ... worker processes",
    "arms": "table 11: the flagship on MNIST with its arms one after another and at once",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[512], help="hidden layer widths")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument(
        "--examples", type=int, default=20_000, help="examples per epoch (tables 1, 8, 9)"
    )
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per implementation")
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate")
    p.add_argument("--dtypes", type=lambda s: s.split(","), default=["float32", "float64"])
    p.add_argument(
        "--peers", type=lambda s: s.split(","), default=list(PEERS), help=",".join(PEERS)
    )
    p.add_argument("--threads", type=int, help="table 1's BLAS and torch threads (NumPy's)")
    p.add_argument(
        "--mnist-dir",
        help=f"where the MNIST IDX files are (default: the first of {', '.join(MNIST_DIRS)} "
        "that has them; synthetic pixels if none)",
    )
    p.add_argument("--seed", type=int, default=0)
    for name, what in TABLES.items():
        p.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=True, help=what)
    p.add_argument("--run-epochs", type=int, help="cap table 2's max_epochs (default: to fit)")
    p.add_argument("--run-overrides", nargs="*", help="table 2's overrides instead of the default")
    p.add_argument("--jobs", type=int, default=cores(), help="table 6's N (default: the cores)")
    p.add_argument(
        "--thread-counts", type=lambda s: tuple(map(int, s.split(","))), default=(1, 2, 4)
    )
    p.add_argument("--numerics-epochs", type=int, default=3, help="max_epochs of table 7's runs")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if unknown := set(a.peers) - set(PEERS):
        p.error(f"--peers: unknown {', '.join(sorted(unknown))}; choose from {', '.join(PEERS)}")
    a.hidden = tuple(a.hidden)
    return a


def section(title: str, rows: list[str] | None = None) -> None:
    """Print a section's title and, when given, its lines."""
    print(f"\n## {title}\n")
    if rows:
        print("\n".join(rows))


def main(argv: list[str] | None = None) -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    a = parse_args(argv)
    if a.child:
        return run_child(a.child, a.overrides)
    blas = [i["num_threads"] for i in threadpool_info() if "numpy" in i["filepath"]]
    a.threads = a.threads or (blas + [1])[0]
    a.mnist_dir = a.mnist_dir or find_mnist()
    mnist_dir = str(Path(a.mnist_dir).resolve())
    X, y, source = examples(a.examples, a.mnist_dir, a.seed)
    synthetic = source.startswith("synthetic")
    m = Measured(cores=cores(), thread_counts=a.thread_counts)
    print(f"# memlab benchmark\n\n{machine(a.threads)}")
    section("1. One epoch: NumpyMLP and its peers")
    shape = "-".join(map(str, [N_FEATURES, *a.hidden, 10]))
    print(
        f"{shape}, ReLU, softmax cross-entropy, plain SGD (lr {a.lr}), batch {a.batch_size}, "
        f"{a.examples:,} examples ({source}); best and median of {a.epochs} epochs each. "
        "x floor: time / the floor of the same dtype. NumPy runs this machine's own BLAS "
        "kernel here (as with numerics=native: a speed comparison), memlab's runs the "
        "reproducible Haswell one by default (table 7 says what that costs).\n"
    )
    with threadpool_limits(a.threads, user_api="blas"):
        rows, m.best = peer_table(a, X, y)
    print("\n".join(rows))
    if a.run:
        section("2. The flagship, end to end")
        default = [*RUN.split(), f"data.dir={mnist_dir}", ONE_AT_A_TIME]
        default += [f"model.max_epochs={a.run_epochs}"] if a.run_epochs else []
        if a.run_overrides or not synthetic:
            rows, m.flagship = run_table(a.run_overrides or default, a.threads)
            print("\n".join(rows))
        else:
            print(f"Skipped: no MNIST in {mnist_dir} (give --mnist-dir, or --run-overrides).")
        m.help_s = help_seconds()
        print(f"\n`python -m pipeline --help`: {m.help_s:.2f} s (best of 3).")
    if a.memory:
        section("3. Peak memory on a 70,000-image pool")
        with tempfile.TemporaryDirectory() as tmp:
            try:
                pool_dir, note = pool_70k(mnist_dir, tmp)
            except MemlabError as err:  # no MNIST at all: only this table is skipped
                print(f"Skipped: {err}")
            else:
                print(f"Pool: {note}.\n")
                rows, m.pool = run_table([*POOL_RUN.split(), f"data.dir={pool_dir}"], a.threads)
                print("\n".join(rows))
    with tempfile.TemporaryDirectory() as tmp:
        if a.single:
            rows, m.single = single_run_table(tmp)
            section("4. One run: `python -m pipeline`", rows)
        if a.sweep:
            rows, m.sweep = sweep_table()
            section("5. A sweep: 6 jobs, one after another", rows)
    if a.parallel:
        with tempfile.TemporaryDirectory() as tmp:
            rows, m.parallel = throughput_table(a.jobs, tmp)
        section(f"6. Sweep throughput: {a.jobs} jobs at a time", rows)
    if a.numerics:
        section("7. The cost of reproducible numerics")
        if synthetic:
            print(f"Skipped: no MNIST in {mnist_dir} (give --mnist-dir).")
        else:
            overrides = [*RUN.split(), f"data.dir={mnist_dir}"]
            overrides += [f"model.max_epochs={a.numerics_epochs}", "train.progress=false"]
            print("\n".join(kernel_table(overrides, n_train=8_000, repeats=1)))
    if a.recorder:
        with threadpool_limits(a.threads, user_api="blas"):
            rows, m.recorder = recorder_table(X, y, a.hidden, a.batch_size, a.lr, a.epochs, a.seed)
        section("8. The per-example recorder (issue 14)", rows)
    if a.thread_table:
        rows, m.threads = thread_table(a, X, y, a.thread_counts, m.cores)
        section("9. Threads: NumpyMLP, PyTorch and the floor, float32", rows)
    if a.workers:
        rows, m.workers = workers_table(m.cores, None if synthetic else mnist_dir)
        section("10. Independent trainings in worker processes (issue 26)", rows)
    if a.arms:
        section("11. The flagship's two arms at once (issue 26)")
        if synthetic:
            print(f"Skipped: no MNIST in {mnist_dir} (give --mnist-dir).")
        else:
            overrides = [*RUN.split(), f"data.dir={mnist_dir}", "train.progress=false"]
            overrides += [f"model.max_epochs={a.run_epochs}"] if a.run_epochs else []
            rows, m.arms = arms_table(overrides)
            print("\n".join(rows))
    section("The targets (issues 7, 14, 16 and 26), as measured above", targets(m))
    print(f"\nLoad average at the end: {_load()} (1, 5, 15 min).")


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())
