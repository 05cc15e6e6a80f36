"""``python -m pipeline.bench``: how fast is ``NumpyMLP`` next to its peers and the BLAS floor?

Table 1 trains the same network (ReLU hidden layers, softmax cross-entropy, plain SGD) on the
same examples with the same batch size and learning rate, one epoch at a time, in this one
process: ``NumpyMLP``, scikit-learn's ``MLPClassifier`` (``partial_fit`` epochs), PyTorch on the
CPU when it is installed, and the floor: only the matrix products one epoch of that network
needs (forward, weight gradients, deltas; same shapes and dtype). The candidates take turns
epoch by epoch, so that a busy machine slows them alike; each is reported by its best epoch.

Table 2 runs the real command line (``python -m pipeline +experiment=shuffled_labels`` on real
MNIST) in a child process, timing its parts: start-up, training, per-epoch evaluation,
per-epoch logging and the rest. Table 3 is the same kind of run on a 70,000-image pool (the
official training images, or the test images tiled), for its peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.errors import MemlabError

PEERS = {"numpy": "NumpyMLP", "sklearn": "MLPClassifier", "torch": "PyTorch", "floor": "floor"}
N_FEATURES, N_CLASSES = 784, 10
ROOT = Path(__file__).resolve().parents[1]
# Table 2: the shuffled_labels run, the 10,000 test images split 8,000 / 1,000 / 1,000.
RUN = (
    "+experiment=shuffled_labels data=mnist data.parts=[test] data.download=false "
    "split.train=0.8 split.val=0.1 split.test=0.1"
)
# Table 3: one epoch of the same experiment on the 70,000-image pool.
POOL_RUN = "+experiment=shuffled_labels data=mnist data.parts=[train,test] data.download=false "
POOL_RUN += "model.max_epochs=1"


# ---------------------------------------------------------------- table 1: the peers
def examples(n: int, mnist_dir: str, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` MNIST-shaped examples: the real test images tiled, else seeded uniform noise."""
    from pipeline.mnist import load_mnist

    try:
        X, y = load_mnist(mnist_dir, ["test"])["test"]
        source = f"real MNIST test images from {mnist_dir}, tiled"
    except MemlabError:
        rng = np.random.default_rng(seed)
        X, y = rng.random((n, N_FEATURES), dtype=np.float32), rng.integers(0, N_CLASSES, n)
        source = f"synthetic: no MNIST in {mnist_dir}"
    reps = -(-n // len(X))
    return np.tile(X, (reps, 1))[:n], np.tile(y, reps)[:n], source


def epoch_flops(sizes: list[int], n: int) -> float:
    """2 x multiply-adds of an epoch: forward, weight gradients, every delta but the input's."""
    layers = [a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    return 2.0 * n * (2 * sum(layers) + sum(layers[1:]))


def make_trainer(peer: str, a: argparse.Namespace, dtype: str):
    """``epoch(X, y)``: one epoch of ``peer`` over ``(X, y)``, its state kept between calls."""
    classes, same = np.arange(N_CLASSES), dict(batch_size=a.batch_size, random_state=a.seed)
    if peer == "numpy":
        from pipeline.models.numpy_mlp import NumpyMLP

        model = NumpyMLP(a.hidden, "relu", "cross_entropy", a.lr, dtype=dtype, **same)
        return lambda X, y: model.partial_fit(X, y, classes=classes)
    if peer == "sklearn":
        from sklearn.neural_network import MLPClassifier

        sgd = dict(solver="sgd", learning_rate_init=a.lr, momentum=0.0, nesterovs_momentum=False)
        model = MLPClassifier(a.hidden, activation="relu", alpha=0.0, shuffle=True, **sgd, **same)
        return lambda X, y: model.partial_fit(X, y, classes=classes)
    return (torch_trainer if peer == "torch" else floor_trainer)(a, dtype)


def _torch():
    """PyTorch when it is installed (the optional ``bench`` extra), else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_trainer(a: argparse.Namespace, dtype: str):
    """The textbook PyTorch loop, recording the running loss and accuracy as NumpyMLP does."""
    import torch

    sizes = [N_FEATURES, *a.hidden, N_CLASSES]
    with torch.random.fork_rng():  # seed the initialisation without touching global state
        torch.manual_seed(a.seed)
        layers = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
        model = torch.nn.Sequential(*layers[:-1]).to(getattr(torch, dtype))
    optimizer = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.0)
    loss_fn, generator = torch.nn.CrossEntropyLoss(), torch.Generator().manual_seed(a.seed)

    def epoch(X, y):
        X, y = torch.from_numpy(X), torch.from_numpy(y)
        order = torch.randperm(len(y), generator=generator)
        correct, total = torch.empty(len(y), dtype=torch.bool), 0.0
        for start in range(0, len(y), a.batch_size):
            idx = order[start : start + a.batch_size]
            xb, yb = X.index_select(0, idx), y.index_select(0, idx)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            correct[idx] = logits.argmax(dim=1) == yb
        return total / len(y)  # the epoch's running mean loss

    return epoch


def floor_trainer(a: argparse.Namespace, dtype: str):
    """Only the matrix products of an epoch, laid out as NumpyMLP's, into fixed buffers."""
    rng, bs = np.random.default_rng(a.seed), a.batch_size
    sizes = [N_FEATURES, *a.hidden, N_CLASSES]
    W = [rng.standard_normal(s).astype(dtype) for s in zip(sizes[:-1], sizes[1:], strict=True)]
    acts = [rng.random((bs, s)).astype(dtype) for s in sizes]  # acts[l]: (batch, sizes[l])
    deltas = [rng.standard_normal((bs, s)).astype(dtype) for s in sizes[1:]]
    grads = [np.empty_like(w) for w in W]

    def epoch(X, y):
        for start in range(0, len(X), bs):
            m = min(bs, len(X) - start)
            for i, w in enumerate(W):  # forward
                np.matmul(acts[i][:m], w, out=acts[i + 1][:m])
            for i in range(len(W) - 1, -1, -1):  # weight gradients and deltas
                np.matmul(acts[i][:m].T, deltas[i][:m], out=grads[i])
                if i > 0:
                    np.matmul(deltas[i][:m], W[i].T, out=deltas[i - 1][:m])

    return epoch


def peer_table(a: argparse.Namespace, X: np.ndarray, y: np.ndarray) -> list[str]:
    """Time every (peer, dtype) for ``a.epochs`` epochs, taking turns; the table as lines."""
    trainers, notes = {}, []
    for peer in a.peers:
        if peer == "torch":
            if (torch := _torch()) is None:
                notes.append("PyTorch is not installed: skipped (pip install torch==2.13.0).")
                continue
            torch.set_num_threads(a.threads)
            notes.append(f"PyTorch {torch.__version__} with torch.set_num_threads({a.threads}).")
        for dtype in a.dtypes:
            trainers[peer, dtype] = make_trainer(peer, a, dtype), (X.astype(dtype), y)
    for epoch, (X_d, y_d) in trainers.values():  # warm up caches, thread pools, allocators
        epoch(X_d[: 4 * a.batch_size], y_d[: 4 * a.batch_size])
    times = {key: [] for key in trainers}
    keys = list(trainers)
    for r in range(a.epochs):  # each round starts one candidate further along
        for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
            epoch, data = trainers[key]
            start = time.perf_counter()
            epoch(*data)
            times[key].append(time.perf_counter() - start)
    best = {key: min(t) for key, t in times.items()}
    flops = epoch_flops([N_FEATURES, *a.hidden, N_CLASSES], len(X))
    fastest = min([t for (peer, _), t in best.items() if peer != "floor"] or [np.nan])
    rows = [
        "| implementation | dtype | s/epoch, best | median | examples/s | GFLOP/s "
        "| x fastest | x floor |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (peer, dtype), t in best.items():
        floor = best.get(("floor", dtype), np.nan)
        rows.append(
            f"| {PEERS[peer]} | {dtype} | {t:.4g} | {statistics.median(times[peer, dtype]):.4g} "
            f"| {len(X) / t:,.0f} | {flops / t / 1e9:.1f} | {t / fastest:.2f} | {t / floor:.2f} |"
        )
    return rows + [""] + notes


# ------------------------------------------------- tables 2 and 3: runs of the CLI
def _child(out: str, overrides: list[str]) -> None:
    """Be ``python -m pipeline OVERRIDES``, timing its parts into the JSON file ``out``."""
    import runpy

    stamps = {"child_start": time.time()}
    import hydra  # noqa: F401 - what pipeline/__main__.py imports first

    import pipeline.run as run_module

    stamps["imports_done"] = time.time()
    sums = {"train": 0.0, "loop": 0.0, "log": 0.0, "epochs": 0}
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

    run_module.train_epochs = timed_train_epochs  # run.py looks it up at call time
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


def run_table(overrides: list[str], threads: int | None) -> list[str]:
    """Run the CLI in a temporary directory (its own ``mlflow.db``), timed part by part."""
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
    parts = [
        ("start-up: interpreter and imports", s["imports_done"] - launch),
        (
            "start-up: config, MLflow store and run, data, split, probe",
            s["first_fit"] - s["imports_done"],
        ),
        (f"training: {t['epochs']} epochs of partial_fit", t["train"]),
        ("per-epoch evaluation: validation loss and accuracy, fit check", evaluation),
        ("per-epoch logging: MLflow metrics, progress bar", t["log"]),
        (
            "rest: final evaluation, noise probe, figures, closing runs",
            s["end"] - s["first_fit"] - t["loop"],
        ),
        ("interpreter exit", exited - s["end"]),
    ]
    total = exited - launch
    rows = [f"`python -m pipeline {' '.join(overrides)}`", "", "| part | seconds | share |"]
    rows += ["|---|---:|---:|"] + [f"| {p} | {sec:.2f} | {sec / total:.0%} |" for p, sec in parts]
    rows += [f"| **total** | **{total:.2f}** | |", ""]
    rows.append(
        f"Per-epoch evaluation + logging = {(evaluation + t['log']) / t['train']:.1%} of "
        f"training time. Peak memory (max RSS): {r['maxrss'] / 1e9:.2f} GB."
    )
    return rows


def pool_70k(mnist_dir: str, tmp: str) -> tuple[Path, str]:
    """A directory holding 70,000 MNIST images: the official parts, or the test part tiled."""
    from pipeline.idx import write_idx
    from pipeline.mnist import load_mnist

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


# ------------------------------------------------------------------------ command line
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
        f"load average {load} (1, 5, 15 min)"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[512], help="hidden layer widths")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--examples", type=int, default=60_000, help="examples per epoch")
    p.add_argument("--epochs", type=int, default=5, help="timed epochs per implementation")
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate")
    p.add_argument("--dtypes", type=lambda s: s.split(","), default=["float32", "float64"])
    p.add_argument(
        "--peers", type=lambda s: s.split(","), default=list(PEERS), help=",".join(PEERS)
    )
    p.add_argument("--threads", type=int, help="BLAS and torch threads (default: NumPy's)")
    p.add_argument("--mnist-dir", default="data/mnist", help="where the MNIST IDX files are")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run", action=argparse.BooleanOptionalAction, default=True, help="table 2")
    p.add_argument("--run-epochs", type=int, default=10, help="max_epochs of table 2's run")
    p.add_argument("--run-overrides", nargs="*", help="table 2's overrides instead of the default")
    p.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True, help="table 3")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if unknown := set(a.peers) - set(PEERS):
        p.error(f"--peers: unknown {', '.join(sorted(unknown))}; choose from {', '.join(PEERS)}")
    a.hidden = tuple(a.hidden)
    return a


def main(argv: list[str] | None = None) -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    a = parse_args(argv)
    if a.child:
        return _child(a.child, a.overrides)
    blas = [i["num_threads"] for i in threadpool_info() if "numpy" in i["filepath"]]
    a.threads = a.threads or (blas + [1])[0]
    mnist_dir = str(Path(a.mnist_dir).resolve())
    X, y, source = examples(a.examples, a.mnist_dir, a.seed)
    shape = "-".join(map(str, [N_FEATURES, *a.hidden, N_CLASSES]))
    print(
        f"# memlab benchmark\n\n{machine(a.threads)}\n\n## 1. One epoch: NumpyMLP and its peers\n"
    )
    print(
        f"{shape}, ReLU, softmax cross-entropy, plain SGD (lr {a.lr}), batch {a.batch_size}, "
        f"{a.examples:,} examples ({source}); best and median of {a.epochs} epochs each. "
        "x floor: time / the floor of the same dtype.\n"
    )
    with threadpool_limits(a.threads, user_api="blas"):
        print("\n".join(peer_table(a, X, y)))
    if a.run:
        print("\n## 2. A whole run, end to end\n")
        default = [*RUN.split(), f"data.dir={mnist_dir}", f"model.max_epochs={a.run_epochs}"]
        if a.run_overrides or not source.startswith("synthetic"):
            print("\n".join(run_table(a.run_overrides or default, a.threads)))
        else:
            print(f"Skipped: no MNIST in {mnist_dir} (give --mnist-dir, or --run-overrides).")
        print(f"\n`python -m pipeline --help`: {help_seconds():.2f} s (best of 3).")
    if a.memory:
        print("\n## 3. Peak memory on a 70,000-image pool\n")
        with tempfile.TemporaryDirectory() as tmp:
            try:
                pool, note = pool_70k(mnist_dir, tmp)
            except MemlabError as err:  # no MNIST at all: only this table is skipped
                print(f"Skipped: {err}")
                return
            print(f"Pool: {note}.\n")
            print("\n".join(run_table([*POOL_RUN.split(), f"data.dir={pool}"], a.threads)))


if __name__ == "__main__":
    main()
