"""Table 8 of ``python -m pipeline.bench``: what the per-example recorder costs.

The recorder has three parts, timed apart, on the same examples and network as table 1:

- **in the running pass**: each mini-batch's gather of the label's probability (and, at the end
  of the epoch, putting it back in input order), which ``NumpyMLP._train_epoch`` does always;
  timed as exactly those operations on arrays of the same shapes, batch by batch;
- **in the epoch loop**: keeping every epoch's two (n,) rows and stacking them at the end
  (``train_epochs(record_examples=True)``), timed as exactly those operations;
- **at the end of a run**: the scores, summary metrics, the ``.npz`` and the pictures
  (``pipeline.tracking.example_record`` without MLflow), a fixed cost per run, in seconds.

The first two, over the training time of an epoch (NumpyMLP float32, timed here too), are the
recorder's overhead; issue 14's target is at most 5%. Timing the whole loop with the record on
and off is shown as well, but on a busy machine its difference is mostly noise.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

N_CLASSES = 10


def _best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def gather_seconds(n: int, batch_size: int, rng: np.random.Generator) -> float:
    """One epoch of the running pass's added work: gather p(label) per batch, reorder once."""
    output = rng.random((batch_size, N_CLASSES), dtype=np.float32)
    targets = rng.integers(0, N_CLASSES, n)
    order = rng.permutation(n)
    rows = np.arange(batch_size)

    def epoch():
        label_proba = np.empty(n, dtype=np.float32)
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            label_proba[start : start + m] = output[rows[:m], targets[start : start + m]]
        proba = np.empty(n, dtype=np.float32)
        proba[order] = label_proba

    return _best(epoch)


def collect_seconds(n: int, epochs: int, rng: np.random.Generator) -> float:
    """Per epoch: keeping the epoch's two rows and, amortised, stacking them at the end."""
    correct = rng.random(n) < 0.5
    proba = rng.random(n, dtype=np.float32)

    def run():
        kept_c, kept_p = [], []
        for _ in range(epochs):
            kept_c.append(correct.copy())  # the model hands over a new array every epoch
            kept_p.append(proba.astype(np.float32, copy=False))
        np.array(kept_c, dtype=bool).reshape(-1, n)
        np.array(kept_p, dtype=np.float32).reshape(-1, n)

    # The copy stands for the model's own allocation, which is not the recorder's cost.
    copies = _best(lambda: [correct.copy() for _ in range(epochs)])
    return max(0.0, _best(run) - copies) / epochs


def end_of_run_seconds(n: int, epochs: int, rng: np.random.Generator, image_shape) -> float:
    """Scores, metrics, the compressed ``.npz`` and the five pictures of one run's record."""
    from pipeline.arrays import save_arrays
    from pipeline.report import example_figures as fig
    from pipeline.study import examples as ex

    learned = rng.integers(1, epochs + 1, n)
    correct = np.arange(1, epochs + 1)[:, None] >= learned[None, :]
    record = ex.ExampleRecord(
        correct=correct,
        label_proba=np.where(correct, 0.9, 0.1).astype(np.float32),
        index=np.arange(n),
        label=rng.integers(0, N_CLASSES, n),
        true_label=rng.integers(0, N_CLASSES, n),
        corrupted=rng.random(n) < 0.2,
        inputs=rng.random((n, int(np.prod(image_shape))), dtype=np.float32),
    )
    start = time.perf_counter()
    ex.summary(record)
    scores = ex.scores(record)
    with tempfile.TemporaryDirectory() as tmp:
        save_arrays(Path(tmp, "examples.npz"), record.arrays(), compressed=True)
        figures = [
            fig.cartography_map(scores["confidence"], scores["variability"], record.mislabeled),
            fig.count_histogram(scores["forgetting_events"], record.mislabeled, xlabel="events"),
        ]
        for picks in ex.gallery_picks(record).values():
            captions = [str(i) for i in picks]
            figures.append(fig.image_gallery(record.inputs[picks], image_shape, captions))
        for k, figure in enumerate(figures):
            figure.savefig(Path(tmp, f"{k}.png"), format="png")
    return time.perf_counter() - start


def recorder_table(X, y, hidden, batch_size: int, lr: float, epochs: int, seed: int = 0):
    """Table 8's lines and ``{"overhead": share of training time}``."""
    from pipeline.models.numpy_mlp import NumpyMLP
    from pipeline.study.train import train_epochs

    rng = np.random.default_rng(seed)
    n = len(y)
    params = dict(hidden_layer_sizes=hidden, activation="relu", loss="cross_entropy",
                  learning_rate=lr, batch_size=batch_size, dtype="float32")  # fmt: skip
    loop = {}
    for record in (False, True, False, True):
        model = NumpyMLP(**params, random_state=seed)
        start = time.perf_counter()
        result = train_epochs(model, X, y, X[:1000], y[:1000], classes=np.arange(N_CLASSES),
                              max_epochs=epochs, record_examples=record)  # fmt: skip
        elapsed = time.perf_counter() - start
        loop[record] = min(loop.get(record, np.inf), elapsed / epochs)
        train = min(loop.get("train", np.inf), result.fit_seconds / epochs)
        loop["train"] = train
    gather = gather_seconds(n, batch_size, rng)
    collect = collect_seconds(n, max(epochs, 100), rng)
    side = int(round(np.sqrt(X.shape[1])))
    end = end_of_run_seconds(n, 100, rng, (side, side))
    overhead = (gather + collect) / loop["train"]
    rows = [
        "| part | seconds per epoch | share of an epoch's training |",
        "|---|---:|---:|",
        f"| training (partial_fit, NumpyMLP float32) | {loop['train']:.3f} | |",
        f"| running pass: gather p(label), reorder | {gather:.4f} | {gather / loop['train']:.2%} |",
        f"| epoch loop: keep and stack the rows | {collect:.4f} | {collect / loop['train']:.2%} |",
        f"| **recorder, per epoch** | **{gather + collect:.4f}** | **{overhead:.2%}** |",
        "",
        f"The whole epoch loop, record off / on: {loop[False]:.3f} / {loop[True]:.3f} s per epoch "
        "(best of 2; the difference is within this machine's noise). At the end of a run the "
        f"scores, `.npz` and pictures of a {n:,}-example, 100-epoch record take {end:.1f} s once.",
    ]
    return rows, {"overhead": overhead, "end_seconds": end}
