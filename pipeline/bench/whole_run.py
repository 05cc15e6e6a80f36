"""Tables 2 and 3 of ``python -m pipeline.bench``: the real command line, timed part by part.

Table 2 runs ``python -m pipeline +experiment=shuffled_labels`` on real MNIST in a child
process (``python -m pipeline.bench --child``) that wraps the training loop to time start-up,
training, per-epoch evaluation, per-epoch logging and the rest. Table 3 is the same kind of run
on a 70,000-image pool, for its peak memory.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import resource
import signal
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
# Table 2 times the arms one after another, what the run costs beyond training them; table 11
# what training them at once (train.workers=2) saves.
ONE_AT_A_TIME = "train.workers=1"
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
    # Summed over every call: both arms of a run, every job of a sweep (the basic launcher runs
    # them in this process; joblib's workers are other processes, not timed).
    sums = {"train": 0.0, "loop": 0.0, "log": 0.0, "flush": 0.0, "epochs": 0, "arms": 0}
    sums["arm_loops"] = []
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
        sums["arms"] += 1
        model.partial_fit = timed(model.partial_fit, "train")
        on_epoch = timed(on_epoch, "log") if on_epoch else None
        start = time.perf_counter()
        try:
            return timed(train_epochs, "loop")(model, *args, on_epoch=on_epoch, **kwargs)
        finally:  # each arm's own, in the order they ran here
            sums["arm_loops"].append(time.perf_counter() - start)

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

    # With train.workers >= 2 an arm trains in a worker (runtime.workers.Elsewhere): how long
    # this process stood still waiting for it, the part of its training not hidden.
    sums["waited"] = 0.0
    from pipeline.runtime.workers import Elsewhere

    result = Elsewhere.result

    def timed_result(self):
        start = time.perf_counter()
        try:
            return result(self)
        finally:
            sums["waited"] += time.perf_counter() - start

    # Both are looked up at call time: train_epochs by pipeline.study.run.fit_arm, and
    # store.epoch_metrics by pipeline.tracking.record.
    run_module.train_epochs = timed_train_epochs
    store.epoch_metrics = timed_epoch_metrics
    Elsewhere.result = timed_result

    def write() -> None:
        stamps["end"] = time.time()
        Path(out).write_text(json.dumps({"stamps": stamps, "sums": sums, "maxrss": _peak_rss()}))

    # `python -m pipeline` ends in pipeline.runtime.quick_exit.leave, which runs the atexit
    # handlers and then os._exit: code after run_module never runs. Registered first, this
    # handler runs last.
    atexit.register(write)
    sys.argv = ["pipeline", *overrides]
    runpy.run_module("pipeline", run_name="__main__")  # exactly `python -m pipeline`


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


def child_env(threads: int | None = None) -> dict[str, str]:
    """A timed child's environment: this checkout importable, no MLflow variables of ours,
    and memlab's own choice of BLAS kernel (not the native one the benchmark runs)."""
    from pipeline import numerics

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.pop(numerics.KERNEL_ENV, None)
    env.pop("OPENBLAS_CORETYPE", None)
    if shell := env.pop(numerics.SHELL_ENV, ""):
        env["OPENBLAS_CORETYPE"] = shell
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    if threads:
        env.update({f"{lib}_NUM_THREADS": str(threads) for lib in ("OPENBLAS", "OMP", "MKL")})
    return env


def store_uri(tmp: str) -> str:
    """The MLflow store of the timed runs in the directory ``tmp``."""
    return f"sqlite:///{Path(tmp, 'mlflow.db')}"


def timed_child(
    overrides: list[str], tmp: str, threads: int | None = None, timeout: float | None = None
) -> dict:
    """Run ``python -m pipeline OVERRIDES`` (a ``-m`` sweep too) timed, in the directory ``tmp``.

    Its MLflow store is ``tmp/mlflow.db`` (so runs in the same ``tmp`` share one store). Returns
    the child's record (``stamps``, ``sums``: seconds summed over every arm and job, ``maxrss``)
    with ``launch`` and ``exited``, the wall-clock times around the whole process. A child still
    running after ``timeout`` seconds is killed with everything it started (a RuntimeError).
    """
    out = Path(tmp, "timings.json")
    out.unlink(missing_ok=True)
    store = f"mlflow.tracking_uri={store_uri(tmp)}"
    cmd = [sys.executable, "-m", "pipeline.bench", "--child", str(out), "--", *overrides, store]
    launch = time.time()
    with subprocess.Popen(
        cmd, cwd=tmp, env=child_env(threads), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,  # its own process group: a hung sweep ends whole
    ) as proc:  # fmt: skip
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise RuntimeError(f"it had not exited after {timeout:.0f} s") from None
    exited = time.time()
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"the timed run failed: {stderr.strip()[-2000:]}")
    return {**json.loads(out.read_text()), "launch": launch, "exited": exited}


def run_table(overrides: list[str], threads: int | None) -> tuple[list[str], dict[str, float]]:
    """Run the CLI in a temporary directory (its own ``mlflow.db``), timed part by part.

    Returns the table's lines and what the targets need: ``overhead`` (per-epoch evaluation
    and logging over training time), ``peak_gb`` (the run's peak resident memory), ``wall``
    and ``loop`` (seconds in ``train_epochs``: training with its per-epoch evaluation).
    """
    with tempfile.TemporaryDirectory() as tmp:
        r = timed_child(overrides, tmp, threads)
    launch, exited = r["launch"], r["exited"]
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
    return rows, {"overhead": overhead, "peak_gb": peak_gb, "wall": total, "loop": t["loop"]}


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
    env, times = child_env(), []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline", "--help"], env=env, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)
