"""Redraw a run's per-example pictures from its ``examples.npz`` alone, finding every image again
in the dataset's pool by its index (this is how the PNGs beside this file were made).

    python experiments/examples/draw.py STORE_URI RUN_ID PREFIX [data.dir]

e.g. ``sqlite:///mlflow.db 897bb2de... p0.2_ ../shared/data/mnist``; writes PREFIX*.png here.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from pipeline.data.datasets import load_dataset
from pipeline.report.canvas import save_figure
from pipeline.report.example_figures import record_figures
from pipeline.study.examples import ExampleRecord


def main(uri: str, run_id: str, prefix: str, data_dir: str = "../shared/data/mnist") -> None:
    client = MlflowClient(uri)
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, "examples/examples.npz", tmp)
        with np.load(path, allow_pickle=False) as arrays:
            record = ExampleRecord.from_arrays(arrays)
    pool = load_dataset("mnist", dir=data_dir, parts=["test"], download=False)
    assert (pool.y[record.index] == record.true_label).all()  # the same examples, found again
    record = ExampleRecord(**record.arrays(), inputs=pool.X[record.index])
    title = client.get_run(run_id).data.tags["mlflow.runName"]
    for name, figure in record_figures(record, pool.image_shape, title=title).items():
        save_figure(figure, Path(__file__).parent / f"{prefix}{name}")


if __name__ == "__main__":
    main(*sys.argv[1:])
