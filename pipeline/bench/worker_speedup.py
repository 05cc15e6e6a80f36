"""Issue 26's table: the memorization study's models trained by 1, 2, ... worker processes.

``+experiment=memorization_scores`` with ``memorization.n_models=32``, the whole command timed
(start-up, data, every model, scoring, the record), once with ``train.workers=1`` (one model
after another in the run's process) and once per larger worker count, each into its own new
store; then the score tables (``memorization/scores.csv``, every example's score and interval)
compared byte for byte with the serial one's. On the 8x8 digits and on 4,000 MNIST images
(``split.train=0.4``, as the issue states it) when the MNIST files are at hand.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from pipeline.bench.runs import wall
from pipeline.bench.whole_run import timed_child

STUDY = ["+experiment=memorization_scores", "train.progress=false"]
MNIST_4000 = "data=mnist data.parts=[test] data.download=false split.train=0.4 split.val=0.1"
MNIST_4000 += " split.test=0.5"


def counts(cores: int) -> list[int]:
    """The worker counts timed: 1, 2 and every core when there are more."""
    return sorted({1, min(2, cores), cores})


def scores_digest(tmp: str) -> str:
    """The SHA-256 of the one score table the run in ``tmp`` logged."""
    (table,) = Path(tmp).rglob("memorization/scores.csv")
    return hashlib.sha256(table.read_bytes()).hexdigest()


def workers_table(cores: int, mnist_dir: str | None, n_models: int = 32) -> tuple[list[str], dict]:
    """Time the study at each of :func:`counts` workers, on digits and (given ``mnist_dir``)
    on 4,000 MNIST images, ``n_models`` models each. Returns the table's lines and ``{data:
    {workers: (wall s, same scores as serial)}}``."""
    datasets = {"digits (1,257 training images)": []}
    if mnist_dir:
        datasets["MNIST, 4,000 training images"] = [*MNIST_4000.split(), f"data.dir={mnist_dir}"]
    study = [*STUDY, f"memorization.n_models={n_models}"]
    rows = [
        f"`python -m pipeline {' '.join(study)} train.workers=W`, the whole command, each into "
        "a new store; `scores.csv` (every example's score and interval) compared with W = 1's.",
        "",
        "| data | workers | wall s | speed-up | scores.csv |",
        "|---|---:|---:|---:|---|",
    ]
    measured: dict[str, dict[int, tuple[float, bool]]] = {}
    for data, overrides in datasets.items():
        serial = None
        for n in counts(cores):
            with tempfile.TemporaryDirectory() as tmp:
                seconds = wall(timed_child([*study, *overrides, f"train.workers={n}"], tmp))
                digest = scores_digest(tmp)
            serial = serial or (seconds, digest)
            same = digest == serial[1]
            measured.setdefault(data, {})[n] = (seconds, same)
            rows.append(
                f"| {data} | {n} | {seconds:.1f} | {serial[0] / seconds:.2f}x "
                f"| {'the same bytes' if same else '**differs**'} ({digest[:12]}) |"
            )
    return rows, measured
