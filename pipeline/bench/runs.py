"""Issue 16's run targets: what ``python -m pipeline`` costs beyond its training.

- **one run**: ``python -m pipeline`` (the default config: the video network on digits, 60
  epochs), first into a new SQLite store (that run creates it), then ``repeats`` more into it;
- **a sweep**: ``-m +experiment=label_noise_sweep`` (6 jobs, one after another in one process
  under Hydra's basic launcher): its wall time against its jobs' training summed;
- **sweep throughput**: a ``-m`` sweep of ``2n`` jobs (the one run with 300 epochs, over
  ``seed``) under the joblib launcher, one at a time (``n_jobs=1``: in the launching process)
  and ``n`` at a time (``n`` worker processes): ``T1 / Tn``, what ``n`` jobs at a time buy.

Each command is a fresh child process timed by :func:`pipeline.bench.whole_run.timed_child`.
"Training" is the time inside ``pipeline.study.run.train_epochs``: the epochs with their
per-epoch evaluation and logging; the rest of the wall time is the run's overhead.
"""

from __future__ import annotations

import tempfile

from pipeline.bench.whole_run import store_uri, timed_child
from pipeline.errors import MemlabError

SINGLE = ["model.max_epochs=60"]  # the default config, its 60 epochs said out loud
SWEEP = ["-m", "+experiment=label_noise_sweep"]
# A throughput job: the one run with 300 epochs (about 3 s of training here), so that what the
# sweep measures is training more than the processes' start.
JOB = ["model.max_epochs=300"]


def wall(record: dict) -> float:
    """Seconds from launching the child to its exit."""
    return record["exited"] - record["launch"]


def single_run_table(tmp: str, repeats: int = 3) -> tuple[list[str], dict[str, float]]:
    """Time the one run into the new store in ``tmp``: once to create it, then ``repeats`` times.

    Returns the table's lines and ``first``, ``wall`` (the best), ``median`` and ``loop`` (the
    best run's training) in seconds.
    """
    first = timed_child(SINGLE, tmp)
    timed = sorted((timed_child(SINGLE, tmp) for _ in range(repeats)), key=wall)
    best, median = timed[0], timed[len(timed) // 2]
    rows = [
        f"`python -m pipeline {' '.join(SINGLE)}` (the default config: the video network on "
        "digits), each a new process, into one new SQLite store. Training: the time inside "
        "`train_epochs` (the epochs, their evaluation and logging); overhead: the rest.",
        "",
        "| run | wall s | training s | overhead s |",
        "|---|---:|---:|---:|",
    ]
    for what, r in (
        ("first run, new store", first),
        (f"best of {repeats}", best),
        (f"median of {repeats}", median),
    ):
        loop = r["sums"]["loop"]
        rows.append(f"| {what} | {wall(r):.2f} | {loop:.2f} | {wall(r) - loop:.2f} |")
    measured = {"first": wall(first), "wall": wall(best), "median": wall(median)}
    return rows, {**measured, "loop": best["sums"]["loop"]}


def sweep_table() -> tuple[list[str], dict[str, float]]:
    """Time the 6-job label-noise sweep; its jobs run in the timed process (basic launcher)."""
    with tempfile.TemporaryDirectory() as tmp:
        r = timed_child(SWEEP, tmp)
    sums, total = r["sums"], wall(r)
    rows = [
        f"`python -m pipeline {' '.join(SWEEP)}` (digits, Hydra's basic launcher: "
        f"{sums['arms']} jobs one after another in one process, {sums['epochs']} epochs in all), "
        "into a new SQLite store.",
        "",
        "| part | seconds | share |",
        "|---|---:|---:|",
        f"| training: `train_epochs`, summed over the jobs | {sums['loop']:.2f} "
        f"| {sums['loop'] / total:.0%} |",
        f"| of which partial_fit | {sums['train']:.2f} | {sums['train'] / total:.0%} |",
        f"| the rest: start-up, imports, store, figures, records | {total - sums['loop']:.2f} "
        f"| {1 - sums['loop'] / total:.0%} |",
        f"| **total** | **{total:.2f}** | |",
    ]
    return rows, {"wall": total, "loop": sums["loop"], "jobs": sums["arms"]}


def parallel_overrides(jobs: int, workers: int) -> list[str]:
    """``JOB`` ``jobs`` times (a sweep over ``jobs`` seeds), ``workers`` at a time."""
    seeds = ",".join(str(seed) for seed in range(jobs))
    return [
        "-m",
        *JOB,
        f"seed={seeds}",
        "hydra/launcher=joblib",
        f"hydra.launcher.n_jobs={workers}",
    ]


def throughput_table(n: int, tmp: str) -> tuple[list[str], dict[str, float | str | None]]:
    """A sweep of ``2n`` one-run jobs with one joblib worker, then ``n``, into the store in
    ``tmp``. Returns the table's lines and ``n``, ``jobs``, ``t1`` and ``tn`` (the two walls;
    None if a sweep did not finish), ``threads`` (the BLAS threads the jobs' runs recorded)
    and ``note`` (why a wall is missing)."""
    jobs, walls, note = 2 * n, {}, None
    timed_child(SINGLE, tmp)  # creates the store: no timed sweep pays for that
    for workers in (1, n):
        command = f"python -m pipeline {' '.join(parallel_overrides(jobs, workers))}"
        try:
            record = timed_child(parallel_overrides(jobs, workers), tmp, timeout=30 * jobs + 60)
            walls[workers] = wall(record)
        except RuntimeError as err:
            walls[workers], note = None, f"`{command}` did not finish ({str(err)[-300:]})"
            break
    threads, done = sweep_jobs(store_uri(tmp))
    if note:
        note += f"; {done} of its {jobs} jobs' runs FINISHED in MLflow"
        note += ": it hung on its way out" if done == jobs else ""
    rows = [
        f"`{command.replace(f'n_jobs={n}', 'n_jobs=W')}` with W = 1 and W = {n} workers "
        f"({n} cores). BLAS threads per job: {threads}.",
        "",
        "| workers | wall s | jobs per minute | throughput x one worker's |",
        "|---:|---:|---:|---:|",
    ]
    one = walls.get(1)
    for workers, seconds in walls.items():
        if seconds is None:
            rows.append(f"| {workers} | not measured | | |")
        else:
            ratio = f"{one / seconds:.2f}" if one else ""
            rows.append(f"| {workers} | {seconds:.2f} | {60 * jobs / seconds:.1f} | {ratio} |")
    rows += ["", note] if note else []
    return rows, {
        "n": n,
        "jobs": jobs,
        "t1": one,
        "tn": walls.get(n),
        "threads": threads,
        "note": note,
    }


def sweep_jobs(tracking_uri: str) -> tuple[str, int]:
    """The newest sweep's jobs in the store: the BLAS threads they ran (and who chose that),
    and how many of them FINISHED. Read from their MLflow tags (``pipeline.tracking.query``)."""
    from pipeline.tracking.query import find_runs, use_store

    use_store(tracking_uri)
    try:  # the default config's experiment, where the one-run jobs are recorded
        _, jobs = find_runs("memlab", None, latest_sweep=True)
    except MemlabError:
        return "unknown (no sweep recorded)", 0
    finished = int((jobs["status"] == "FINISHED").sum())
    if "tags.numerics.blas_threads" not in jobs:
        return "unknown (no job recorded it)", finished
    counts = ", ".join(sorted(set(jobs["tags.numerics.blas_threads"].dropna())))
    modes = sorted(set(jobs["tags.numerics.mode"].dropna()))
    chooser = "chosen by memlab: numerics=reproducible" if modes == ["reproducible"] else ""
    return f"{counts} ({chooser or 'numerics=' + ', '.join(modes)})", finished
