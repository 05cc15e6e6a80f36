"""DVC stage ``prepare``: load the dataset and split it, seeded and stratified.

The split ``python -m pipeline`` makes for the same ``seed``, ``data`` and ``split``
(``pipeline.data.prepared.load_split``, which ``pipeline.study.run.load_data`` calls). Writes
the six arrays and what the data is (``repro/splits.npz``) and, as metrics, the split's
fingerprint and sizes (``repro/metrics/prepare.json``), the ``data_fingerprint`` tag of every
MLflow run trained on them.

This stage imports the data layer and nothing of the models, the study or MLflow, so that
``dvc repro`` splits again only when the data code (or ``seed``, ``data``, ``split``) changed.
It therefore checks its params with the data layer's own check (``check_data``) and the
leaf tables (``pipeline.options``), as ``pipeline.settings`` does, but without it: the settings
know every model.
"""

from __future__ import annotations

from typing import Any

from pipeline.constraints import Number, Optional, check
from pipeline.data.datasets import check_data
from pipeline.data.prepared import load_split, summarize_data
from pipeline.errors import ConfigError
from pipeline.options import SPLIT_FRACTION
from pipeline.stages.common import METRICS, SPLITS, run_stage, save_splits, stage_params, write_json
from pipeline.study.seeds import derive_seed

STAGE = "prepare"
# pipeline.settings.CONSTRAINTS["seed"] (a test keeps the two equal).
SEED = Number(low=0, integer=True)
SPLIT_KEYS = ("train", "val", "test", "seed")


def split_seed(seed: Any, split: dict[str, Any]) -> int:
    """The split's own seed: from ``split.seed``, else from the run's ``seed`` (checked)."""
    check("seed", seed, SEED)
    check("split.seed", split.get("seed"), Optional(SEED))
    return derive_seed(seed if split.get("seed") is None else split["seed"], "split")


def fractions(split: dict[str, Any]) -> dict[str, float]:
    """``split.train``, ``split.val``, ``split.test``, checked; any other key is refused.

    The checks of ``pipeline.settings.SplitSettings``: each part a ``SPLIT_FRACTION``, and
    together the whole pool.
    """
    unknown = sorted(set(split) - set(SPLIT_KEYS))
    if unknown:
        raise ConfigError(f"split.{unknown[0]} is not a setting (split: {', '.join(SPLIT_KEYS)})")
    for key in ("train", "val", "test"):
        check(f"split.{key}", split.get(key), SPLIT_FRACTION)
    parts = {key: float(split[key]) for key in ("train", "val", "test")}
    total = sum(parts.values())
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"split.train + split.val + split.test must add up to 1, got {total:g}")
    return parts


def main() -> None:
    params = stage_params(STAGE)
    data, split = params["data"], params["split"]
    check_data(data)
    options = {k: v for k, v in data.items() if k != "name"}
    dataset, splits = load_split(
        data["name"], options, **fractions(split), seed=split_seed(params["seed"], split)
    )
    summary = summarize_data(dataset, splits)
    save_splits(SPLITS, splits, summary)
    write_json(
        METRICS / "prepare.json",
        {"data": summary.name, "fingerprint": summary.fingerprint, **summary.sizes},
    )


if __name__ == "__main__":
    run_stage(main)
