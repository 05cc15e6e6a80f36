"""Tables 1 and 9 of ``python -m pipeline.bench``: how fast is ``NumpyMLP`` next to its peers?

Table 1 trains the same network (ReLU hidden layers, softmax cross-entropy, plain SGD) on the
same examples with the same batch size and learning rate, one epoch at a time, in this one
process: ``NumpyMLP``, scikit-learn's ``MLPClassifier`` (``partial_fit`` epochs), PyTorch on the
CPU when it is installed, and the floor: only the matrix products one epoch of that network
needs (forward, weight gradients, deltas; same shapes and dtype). The candidates take turns
epoch by epoch, so that a busy machine slows them alike; each is reported by its best epoch.

Table 9 is table 1 for NumpyMLP, PyTorch and the floor in float32 at 1, 2 and 4 BLAS and torch
threads (the counts above this machine's cores are not measured).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from pipeline.bench.targets import TORCH_MISSING
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
                notes.append(f"PyTorch is {TORCH_MISSING}: skipped.")
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
            f"| {len(X) / t:,.0f} | {flops / t / 1e9:.4g} | {t / fastest:.2f} | {t / floor:.2f} |"
        )
    return rows + [""] + notes, best


# ------------------------------------------------------------ table 9: threads
def thread_table(
    a: argparse.Namespace, X: np.ndarray, y: np.ndarray, counts: tuple[int, ...], cores: int
) -> tuple[list[str], dict[int, dict[str, float | None]]]:
    """Table 1's float32 NumpyMLP, PyTorch and floor at each of ``counts`` threads.

    Returns the table's lines and, per count measured (not those above ``cores``), each
    peer's best seconds per epoch (``torch``: None when PyTorch is not installed).
    """
    from threadpoolctl import threadpool_limits

    peers = ["numpy", "torch", "floor"] if _torch() is not None else ["numpy", "floor"]
    rows = [
        "| threads | NumpyMLP s/epoch | PyTorch s/epoch | floor s/epoch | NumpyMLP x floor "
        "| PyTorch / NumpyMLP |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    measured = {}
    for count in counts:
        if count > cores:
            rows.append(f"| {count} | not measured: this machine has {cores} cores | | | | |")
            continue
        b = argparse.Namespace(**{**vars(a), "threads": count, "peers": peers})
        b.dtypes = ["float32"]
        with threadpool_limits(count, user_api="blas"):
            _, best = peer_table(b, X, y)
        ours, floor = best["numpy", "float32"], best["floor", "float32"]
        torch = best.get(("torch", "float32"))
        measured[count] = {"numpy": ours, "torch": torch, "floor": floor}
        theirs = TORCH_MISSING if torch is None else f"{torch:.4g}"
        ratio = "" if torch is None else f"{torch / ours:.2f}"
        rows.append(
            f"| {count} | {ours:.4g} | {theirs} | {floor:.4g} | {ours / floor:.2f} | {ratio} |"
        )
    return rows, measured
