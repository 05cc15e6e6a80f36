"""Issue 26's flagship table: its two arms one after another, then at once.

The flagship (table 2's run: 8,000 MNIST images, both arms to fit) with ``train.workers=1``
(the probe, then the control, in the run's process) and ``train.workers=2`` (the control in a
worker from the start, while the probe trains in the run's process), the whole command timed,
each into its own new store. What training them at once saves is set against the control's
training time (the run with one worker measures it); every run's final metrics (timings and
system metrics aside) are compared between the two stores.
"""

from __future__ import annotations

import tempfile

from pipeline.bench.runs import wall
from pipeline.bench.whole_run import store_uri, timed_child
from pipeline.tracking.query import final_metrics


def arms_table(overrides: list[str]) -> tuple[list[str], dict]:
    """Time the flagship ``overrides`` with 1 and 2 workers. Returns the table's lines and
    ``{"one": wall s, "two": wall s, "probe": s, "control": s, "same": bool}`` (the arms'
    training seconds as the one-worker run measured them)."""
    runs, metrics = {}, {}
    for n in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            runs[n] = timed_child([*overrides, f"train.workers={n}"], tmp)
            metrics[n] = final_metrics(store_uri(tmp))
    probe, control = runs[1]["sums"]["arm_loops"]
    one, two = wall(runs[1]), wall(runs[2])
    same = metrics[1] == metrics[2] and bool(metrics[1])
    rows = [
        f"`python -m pipeline {' '.join(overrides)} train.workers=W`, the whole command, each "
        "into a new store. Training: each arm's time in `train_epochs` (epochs, evaluation, "
        "logging) with W = 1.",
        "",
        "| train.workers | wall s | how the arms train |",
        "|---:|---:|---|",
        f"| 1 | {one:.2f} | the probe ({probe:.2f} s), then the control ({control:.2f} s) |",
        f"| 2 | {two:.2f} | the control in a worker while the probe trains |",
        "",
        f"Saved: {one - two:.2f} s, {(one - two) / control:.0%} of the control's training. "
        f"Final metrics of every run: {'the same' if same else '**they differ**'} "
        f"({sum(map(len, metrics[1].values()))} values).",
    ]
    return rows, {"one": one, "two": two, "probe": probe, "control": control, "same": same}
