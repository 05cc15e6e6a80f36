"""Redraw a run's pictures from its artifacts alone, finding every image again in the dataset's
pool by its index (this is how the PNGs beside this file were made).

    python experiments/examples/draw.py STORE_URI RUN_ID PREFIX [DATA_DIR]

A run with a per-example record (``examples/examples.npz``) gets its cartography map,
forgetting-events histogram and galleries; a ``memorization_scores`` run
(``memorization/scores.csv``) its histogram and gallery. E.g.
``sqlite:///mlflow.db 897bb2de... p0.2_ ../shared/data/mnist`` writes ``p0.2_*.png`` here.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from pipeline.data.datasets import load_dataset
from pipeline.report.canvas import save_figure
from pipeline.report.example_figures import memorization_figures, record_figures
from pipeline.study.examples import ExampleRecord


def main(uri: str, run_id: str, prefix: str, data_dir: str = "../shared/data/mnist") -> None:
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    pool = load_dataset("mnist", dir=data_dir, parts=["test"], download=False)
    names = {
        a.path
        for folder in ("examples", "memorization")
        for a in client.list_artifacts(run_id, folder)
    }
    with tempfile.TemporaryDirectory() as tmp:
        if "examples/examples.npz" in names:
            path = client.download_artifacts(run_id, "examples/examples.npz", tmp)
            with np.load(path, allow_pickle=False) as arrays:
                record = ExampleRecord.from_arrays(arrays)
            assert (pool.y[record.index] == record.true_label).all()  # found again
            record = ExampleRecord(**record.arrays(), inputs=pool.X[record.index])
            title = run.data.tags["mlflow.runName"]
            drawn = record_figures(record, pool.image_shape, title=title)
        else:
            path = client.download_artifacts(run_id, "memorization/scores.csv", tmp)
            with open(path) as handle:
                rows = list(csv.DictReader(handle))
            table = {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}
            index = table["index"].astype(int)
            assert (pool.y[index] == table["true_label"]).all()  # found again
            n_models = int(run.data.metrics["mem_models"])
            drawn = memorization_figures(table, pool.X[index], pool.image_shape, n_models)
    for name, figure in drawn.items():
        save_figure(figure, Path(__file__).parent / f"{prefix}{name}")


if __name__ == "__main__":
    main(*sys.argv[1:])
