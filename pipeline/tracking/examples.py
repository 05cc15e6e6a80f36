"""How the per-example record of an arm is recorded in MLflow.

``examples.npz`` (the record itself: every epoch's correctness and label probability of every
training example, and who each example is; read it with ``np.load(path, allow_pickle=False)``
and ``pipeline.study.examples.ExampleRecord.from_arrays``), the summary metrics
(``examples_*``, with corrupted-vs-clean AUROCs when some labels are wrong), and the pictures:
the cartography map, the forgetting-events histogram and three galleries.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from pipeline.arrays import save_arrays
from pipeline.study import examples as ex
from pipeline.study.results import ArmResult, DataSummary
from pipeline.tracking import store

FOLDER = "examples"  # the artifacts' folder in the run
GALLERIES = {
    "never_learned": "never learned",
    "most_forgotten": "most forgotten",
    "learned_last": "learned last",
}


def log_arrays(run_id: str, arrays: dict[str, np.ndarray], artifact_file: str) -> None:
    """Log ``arrays`` as one compressed, pickle-free ``.npz`` artifact at ``artifact_file``."""
    path = Path(artifact_file)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / path.name
        save_arrays(local, arrays, compressed=True)
        MlflowClient().log_artifact(run_id, str(local), path.parent.as_posix() or None)


def captions(record: ex.ExampleRecord, picks: np.ndarray, detail: np.ndarray, what: str):
    """``#index label->true`` captions (and ``what``), and which picks have a wrong label."""
    out = []
    for i, value in zip(picks, detail[picks], strict=True):
        label, true = int(record.label[i]), int(record.true_label[i])
        shown = f"{label}" if label == true else f"{label} (true {true})"
        out.append(f"#{int(record.index[i])}: {shown}\n{what} {value:g}")
    return out, record.mislabeled[picks]


def record_examples(run_id: str, arm: ArmResult, data: DataSummary, *, title: str) -> None:
    """Record ``arm.examples`` in ``run_id``: the record, its metrics and its pictures."""
    from pipeline.report import example_figures as fig

    record = arm.examples
    if record is None:
        return
    log_arrays(run_id, record.arrays(), f"{FOLDER}/examples.npz")
    store.log_metrics(run_id, arm.example_metrics(), step=arm.training.epochs)
    scores = ex.scores(record)
    wrong = record.mislabeled
    drawn = {
        "cartography.png": fig.cartography_map(
            scores["confidence"], scores["variability"], wrong, title=f"{title}: cartography"
        ),
        "forgetting_events.png": fig.count_histogram(
            scores["forgetting_events"],
            wrong,
            xlabel="forgetting events (never learned = one per epoch)",
            title=f"{title}: forgetting events per training example",
        ),
    }
    detail = {
        "never_learned": ("conf.", scores["confidence"].round(2)),
        "most_forgotten": ("forgotten", scores["forgetting_events"]),
        "learned_last": ("from epoch", scores["learned_epoch"]),
    }
    if record.inputs is not None:
        for kind, picks in ex.gallery_picks(record).items():
            what, values = detail[kind]
            text, highlight = captions(record, picks, values, what)
            drawn[f"gallery_{kind}.png"] = fig.image_gallery(
                record.inputs[picks],
                data.image_shape,
                text,
                highlight=highlight,
                title=f"{title}: {GALLERIES[kind]} ({len(picks)} shown; label trained on, "
                "red if wrong)",
            )
    for name, figure in drawn.items():
        store.log_figure(run_id, figure, f"{FOLDER}/{name}")
