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
official training images, or the test images tiled), for its peak memory. Both live in
:mod:`pipeline.bench.whole_run`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.bench.kernels import kernel_table, machine
from pipeline.bench.recorder import recorder_table
from pipeline.bench.targets import MNIST_DIRS, find_mnist, targets
from pipeline.bench.whole_run import POOL_RUN, RUN, help_seconds, pool_70k, run_child, run_table
from pipeline.errors import MemlabError

PEERS = {"numpy": "NumpyMLP", "sklearn": "MLPClassifier", "torch": "PyTorch", "floor": "floor"}
N_FEATURES, N_CLASSES = 784, 10


# ---------------------------------------------------------------- table 1: the peers
def examples(n: int, mnist_dir: str, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` MNIST-shaped examples: the real test images tiled, else seeded uniform noise."""
    from pipeline.data.mnist import load_mnist

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


def peer_table(
    a: argparse.Namespace, X: np.ndarray, y: np.ndarray
) -> tuple[list[str], dict[tuple[str, str], float]]:
    """Time every (peer, dtype) for ``a.epochs`` epochs, taking turns.

    Returns the table's lines and each (peer, dtype)'s best seconds per epoch.
    """
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
    return rows + [""] + notes, best


# ------------------------------------------------------------------------ command line
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
    p.add_argument(
        "--mnist-dir",
        help=f"where the MNIST IDX files are (default: the first of {', '.join(MNIST_DIRS)} "
        "that has them; synthetic pixels if none)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run", action=argparse.BooleanOptionalAction, default=True, help="table 2")
    p.add_argument("--run-epochs", type=int, default=10, help="max_epochs of table 2's run")
    p.add_argument("--run-overrides", nargs="*", help="table 2's overrides instead of the default")
    p.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True, help="table 3")
    p.add_argument(
        "--numerics",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="table 4: reproducible vs native numerics",
    )
    p.add_argument("--numerics-epochs", type=int, default=3, help="max_epochs of table 4's runs")
    p.add_argument(
        "--recorder",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="table 5: the per-example recorder",
    )
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
        return run_child(a.child, a.overrides)
    blas = [i["num_threads"] for i in threadpool_info() if "numpy" in i["filepath"]]
    a.threads = a.threads or (blas + [1])[0]
    a.mnist_dir = a.mnist_dir or find_mnist()
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
        rows, best = peer_table(a, X, y)
        print("\n".join(rows))
    run = help_s = pool = None
    if a.run:
        print("\n## 2. A whole run, end to end\n")
        default = [*RUN.split(), f"data.dir={mnist_dir}", f"model.max_epochs={a.run_epochs}"]
        if a.run_overrides or not source.startswith("synthetic"):
            rows, run = run_table(a.run_overrides or default, a.threads)
            print("\n".join(rows))
        else:
            print(f"Skipped: no MNIST in {mnist_dir} (give --mnist-dir, or --run-overrides).")
        help_s = help_seconds()
        print(f"\n`python -m pipeline --help`: {help_s:.2f} s (best of 3).")
    if a.memory:
        print("\n## 3. Peak memory on a 70,000-image pool\n")
        with tempfile.TemporaryDirectory() as tmp:
            try:
                pool_dir, note = pool_70k(mnist_dir, tmp)
            except MemlabError as err:  # no MNIST at all: only this table is skipped
                print(f"Skipped: {err}")
            else:
                print(f"Pool: {note}.\n")
                rows, pool = run_table([*POOL_RUN.split(), f"data.dir={pool_dir}"], a.threads)
                print("\n".join(rows))
    if a.numerics:
        print("\n## 4. The cost of reproducible numerics\n")
        if source.startswith("synthetic"):
            print(f"Skipped: no MNIST in {mnist_dir} (give --mnist-dir).")
        else:
            overrides = [*RUN.split(), f"data.dir={mnist_dir}"]
            overrides += [f"model.max_epochs={a.numerics_epochs}", "train.progress=false"]
            print("\n".join(kernel_table(overrides, n_train=8_000)))
    recorder = None
    if a.recorder:
        print("\n## 5. The per-example recorder (issue 14)\n")
        with threadpool_limits(a.threads, user_api="blas"):
            rows, recorder = recorder_table(X, y, a.hidden, a.batch_size, a.lr, a.epochs, a.seed)
        print("\n".join(rows))
    print("\n## The targets (issues 7 and 14), as measured above\n")
    print("\n".join(targets(best, run, help_s, pool, recorder)))


if __name__ == "__main__":
    main()
