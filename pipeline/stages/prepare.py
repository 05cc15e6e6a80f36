"""DVC stage ``prepare``: load the dataset and split it, seeded and stratified.

Exactly the split ``python -m pipeline`` makes for the same ``seed``, ``data`` and ``split``.
Writes the six arrays (``repro/splits.npz``) and, as metrics, the split sizes and their
fingerprint (``repro/metrics/prepare.json``), the ``data_fingerprint`` tag of every MLflow
run trained on them.
"""

from __future__ import annotations

from typing import Any

from pipeline.data.datasets import Dataset, load_dataset
from pipeline.data.split import Splits, fingerprint, stratified_split
from pipeline.stages.common import METRICS, SPLITS, check_seed, run_stage, stage_params
from pipeline.stages.files import save_splits, write_json
from pipeline.study.seeds import derive_seed

STAGE = "prepare"


def prepare(data: dict[str, Any], split: dict[str, float], seed: int) -> tuple[Dataset, Splits]:
    """Load the ``data`` config's dataset and split it by the ``split`` fractions."""
    options = {key: value for key, value in data.items() if key != "name"}
    dataset = load_dataset(data["name"], **options)
    splits = stratified_split(
        dataset.X,
        dataset.y,
        **split,
        seed=derive_seed(seed, "split"),
        fixed_test=dataset.fixed_test,
    )
    return dataset, splits


def describe(dataset: Dataset, splits: Splits) -> dict[str, Any]:
    """What the split is: dataset, fingerprint and sizes (the stage's metrics)."""
    sizes = {f"n_{part}": n for part, n in splits.sizes().items()}
    return {"data": dataset.name, "fingerprint": fingerprint(splits), **sizes}


def main() -> None:
    params = stage_params(STAGE)
    dataset, splits = prepare(params["data"], params["split"], check_seed(params["seed"]))
    save_splits(SPLITS, splits, n_classes=dataset.n_classes)
    write_json(METRICS / "prepare.json", describe(dataset, splits))


if __name__ == "__main__":
    run_stage(main)
