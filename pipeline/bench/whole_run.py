"""Tables 2 and 3 of ``python -m pipeline.bench``: the real command line, timed part by part.

Table 2 runs ``python -m pipeline +experiment=shuffled_labels`` on real MNIST in a child
process (``python -m pipeline.bench --child``) that wraps the training loop to time start-up,
training, per-epoch evaluation, per-epoch logging and the rest. Table 3 is the same kind of run
on a 70,000-image pool, for its peak memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.errors import MemlabError

ROOT = Path(__file__).resolve().parents[2]
# Table 2: the shuffled_labels run, the 10,000 test images split 8,000 / 1,000 / 1,000.
RUN = (
    "+experiment=shuffled_labels data=mnist data.parts=[test] data.download=false "
    "split.train=0.8 split.val=0.1 split.test=0.1"
)
# Table 3: one epoch of the same experiment on the 70,000-image pool.
POOL_RUN = "+experiment=shuffled_labels data=mnist data.parts=[train,test] data.download=false "
POOL_RUN += "model.max_epochs=1"


def run_child(out: str, overrides: list[str]) -> None:
    """Be ``python -m pipeline OVERRIDES``, timing its parts into the JSON file ``out``."""
    import runpy

    stamps = {"child_start": time.time()}
    import pipeline.__main__  # noqa: F401 - the entry point and what it imports first (Hydra)
    import pipeline.study.run as run_module
    from pipeline.tracking import store

    stamps["imports_done"] = time.time()
    sums = {"train": 0.0, "loop": 0.0, "log": 0.0, "flush": 0.0, "epochs": 0}
    train_epochs = run_module.train_epochs

    def timed(fn, key):
        def wrapper(*args, **kwargs):
            if key == "train":
                stamps.setdefault("first_fit", time.time())
                sums["epochs"] += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                sums[key] += time.perf_counter() - start

        return wrapper

    def timed_train_epochs(model, *args, on_epoch=None, **kwargs):
        model.partial_fit = timed(model.partial_fit, "train")
        on_epoch = timed(on_epoch, "log") if on_epoch else None
        return timed(train_epochs, "loop")(model, *args, on_epoch=on_epoch, **kwargs)

    epoch_metrics = store.epoch_metrics

    @contextlib.contextmanager
    def timed_epoch_metrics(*args, **kwargs):
        """Per-epoch logging also includes writing the epochs still held when training ends."""
        with contextlib.ExitStack() as stack:
            log = stack.enter_context(epoch_metrics(*args, **kwargs))
            yield log
            start = time.perf_counter()
            stack.close()  # the last write happens here, after train_epochs has returned
            sums["flush"] += time.perf_counter() - start

    # Both are looked up at call time: train_epochs by pipeline.study.run.fit_arm, and
    # store.epoch_metrics by pipeline.tracking.record.
    run_module.train_epochs = timed_train_epochs
    store.epoch_metrics = timed_epoch_metrics
    sys.argv = ["pipeline", *overrides]
    runpy.run_module("pipeline", run_name="__main__")  # exactly `python -m pipeline`
    stamps["end"] = time.time()
    Path(out).write_text(json.dumps({"stamps": stamps, "sums": sums, "maxrss": _peak_rss()}))


def _peak_rss() -> int:
    """This process's peak resident memory in bytes.

    Linux's ``VmHWM`` is this program's own; ``ru_maxrss`` survives ``exec`` and so can be the
    peak of the process that launched it (here the benchmark, holding its arrays).
    """
    status = Path("/proc/self/status")
    for line in status.read_text().splitlines() if status.exists() else []:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def run_table(overrides: list[str], threads: int | None) -> tuple[list[str], dict[str, float]]:
    """Run the CLI in a temporary directory (its own ``mlflow.db``), timed part by part.

    Returns the table's lines and what the targets need: ``overhead`` (per-epoch evaluation
    and logging over training time) and ``peak_gb`` (the run's peak resident memory).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    if threads:
        env.update({f"{lib}_NUM_THREADS": str(threads) for lib in ("OPENBLAS", "OMP", "MKL")})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "timings.json")
        launch = time.time()
        cmd = [sys.executable, "-m", "pipeline.bench", "--child", str(out), "--", *overrides]
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        exited = time.time()
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"the timed run failed: {proc.stderr.strip()[-2000:]}")
        r = json.loads(out.read_text())
    s, t = r["stamps"], r["sums"]
    evaluation = t["loop"] - t["train"] - t["log"]
    logging, flushed = t["log"] + t["flush"], t["flush"]  # the last write comes after the loop
    parts = [
        ("start-up: interpreter and imports", s["imports_done"] - launch),
        (
            "start-up: config, MLflow store and run, data, split, probe",
            s["first_fit"] - s["imports_done"],
        ),
        (f"training: {t['epochs']} epochs of partial_fit", t["train"]),
        ("per-epoch evaluation: validation loss and accuracy, fit check", evaluation),
        ("per-epoch logging: MLflow metrics, progress bar", logging),
        (
            "rest: final evaluation, noise probe, figures, closing runs",
            s["end"] - s["first_fit"] - t["loop"] - flushed,
        ),
        ("interpreter exit", exited - s["end"]),
    ]
    total = exited - launch
    rows = [f"`python -m pipeline {' '.join(overrides)}`", "", "| part | seconds | share |"]
    rows += ["|---|---:|---:|"] + [f"| {p} | {sec:.2f} | {sec / total:.0%} |" for p, sec in parts]
    rows += [f"| **total** | **{total:.2f}** | |", ""]
    overhead, peak_gb = (evaluation + logging) / t["train"], r["maxrss"] / 1e9
    rows.append(
        f"Per-epoch evaluation + logging = {overhead:.1%} of "
        f"training time. Peak memory (max RSS): {peak_gb:.2f} GB."
    )
    return rows, {"overhead": overhead, "peak_gb": peak_gb}


def pool_70k(mnist_dir: str, tmp: str) -> tuple[Path, str]:
    """A directory holding 70,000 MNIST images: the official parts, or the test part tiled."""
    from pipeline.data.idx import write_idx
    from pipeline.data.mnist import load_mnist

    try:
        load_mnist(mnist_dir, ["train"])
        return Path(mnist_dir).resolve(), "the official 70,000 images"
    except MemlabError:  # no training part: write the 10,000 test images 6 times over as one
        X, y = load_mnist(mnist_dir, ["test"])["test"]
        images = np.rint(X * 255).astype(np.uint8).reshape(-1, 28, 28)
        for part, reps in (("train", 6), ("t10k", 1)):
            write_idx(Path(tmp, f"{part}-images-idx3-ubyte"), np.tile(images, (reps, 1, 1)))
            write_idx(Path(tmp, f"{part}-labels-idx1-ubyte"), np.tile(y.astype(np.uint8), reps))
        return Path(tmp), "the 10,000 test images, and the same tiled 6x as the training part"


def help_seconds(repeats: int = 3) -> float:
    """Best wall time of ``python -m pipeline --help``."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline", "--help"], env=env, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)
