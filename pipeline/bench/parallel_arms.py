"""Issue 26's flagship table: its two arms one after another, then at once.

The flagship (table 2's run: 8,000 MNIST images, both arms to fit) with ``train.workers=1``
(the probe, then the control, in the run's process) and ``train.workers=2`` (the control in a
worker from the start, while the probe trains in the run's process), the whole command timed,
each into its own new store. The verdict is read in the run with two workers alone, so that
the noise between two whole commands (seconds, here) cannot decide it: the time the run's
process stood still waiting for the control's worker, against the control's training as the
one-worker run measured it (hidden: 1 - waited / control). What the whole command saved is
printed beside it. Every run's final metrics (timings and system metrics aside) are compared
between the two stores.
"""

from __future__ import annotations

import tempfile

from pipeline.bench.runs import wall
from pipeline.bench.whole_run import store_uri, timed_child
from pipeline.tracking.query import final_metrics


def arms_table(overrides: list[str]) -> tuple[list[str], dict]:
    """Time the flagship ``overrides`` with 1 and 2 workers. Returns the table's lines and
    ``{"one": wall s, "two": wall s, "probe": s, "control": s, "waited": s, "same": bool}``
    (the arms' training seconds as the one-worker run measured them; the two-worker run's
    wait for the control's worker)."""
    runs, metrics = {}, {}
    for n in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            runs[n] = timed_child([*overrides, f"train.workers={n}"], tmp)
            metrics[n] = final_metrics(store_uri(tmp))
    probe, control = runs[1]["sums"]["arm_loops"]
    one, two = wall(runs[1]), wall(runs[2])
    waited = runs[2]["sums"]["waited"]
    same = metrics[1] == metrics[2] and bool(metrics[1])
    rows = [
        f"`python -m pipeline {' '.join(overrides)} train.workers=W`, the whole command, each "
        "into a new store. Training: each arm's time in `train_epochs` (epochs, evaluation, "
        "logging) with W = 1.",
        "",
        "| train.workers | wall s | how the arms train |",
        "|---:|---:|---|",
        f"| 1 | {one:.2f} | the probe ({probe:.2f} s), then the control ({control:.2f} s) |",
        f"| 2 | {two:.2f} | the control in a worker while the probe trains; then the run "
        f"waited {waited:.2f} s for it |",
        "",
        f"Hidden: {1 - waited / control:.0%} of the control's training (1 - waited / control). "
        f"The whole command saved {one - two:.2f} s ({(one - two) / control:.0%} of the "
        "control's training; two commands apart, so with their noise). "
        f"Final metrics of every run: {'the same' if same else '**they differ**'} "
        f"({sum(map(len, metrics[1].values()))} values).",
    ]
    return rows, {
        "one": one,
        "two": two,
        "probe": probe,
        "control": control,
        "waited": waited,
        "same": same,
    }
