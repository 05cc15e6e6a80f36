"""DVC stage ``prepare``: load the dataset and split it, seeded and stratified.

The split ``python -m pipeline`` makes for the same ``seed``, ``data`` and ``split``
(``pipeline.study.run.load_data``). Writes the six arrays and what the data is
(``repro/splits.npz``) and, as metrics, the split's fingerprint and sizes
(``repro/metrics/prepare.json``), the ``data_fingerprint`` tag of every MLflow run trained on
them.
"""

from __future__ import annotations

from pipeline.settings import DataSettings, SplitSettings, seed_from_config
from pipeline.stages.common import METRICS, SPLITS, run_stage, save_splits, stage_params, write_json
from pipeline.study.run import load_data, summarize_data

STAGE = "prepare"


def main() -> None:
    params = stage_params(STAGE)
    data = DataSettings.from_config(params["data"])
    split = SplitSettings.from_config(params["split"])
    dataset, splits = load_data(data, split, seed_from_config(params["seed"]))
    summary = summarize_data(dataset, splits)
    save_splits(SPLITS, splits, summary)
    write_json(
        METRICS / "prepare.json",
        {"data": summary.name, "fingerprint": summary.fingerprint, **summary.sizes},
    )


if __name__ == "__main__":
    run_stage(main)
