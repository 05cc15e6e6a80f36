"""The data a study runs on: the dataset loaded, split, and summed up in one small record.

``load_split`` is the one composition of ``datasets.load_dataset`` and
``split.stratified_split`` that ``python -m pipeline`` (through ``pipeline.study.run``) and the
DVC stage ``prepare`` both use; ``DataSummary`` says what the split is (its fingerprint tags
every run trained on it). Plain arrays and config-free arguments: the data layer knows no
settings, so the DVC stage that only splits depends on nothing but this layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.data.datasets import Dataset, load_dataset
from pipeline.data.split import Splits, fingerprint, stratified_split


@dataclass(frozen=True)
class DataSummary:
    """The data a study ran on: which pool, how it was split, and the split's fingerprint."""

    name: str
    fingerprint: str  # of the six split arrays (pipeline.data.split.fingerprint)
    sizes: dict[str, int]  # n_train, n_val, n_test
    n_classes: int
    image_shape: tuple[int, ...]  # one input's shape, for drawing it


def load_split(
    name: str, options: dict[str, Any], *, train: float, val: float, test: float, seed: int
) -> tuple[Dataset, Splits]:
    """Load the dataset ``name`` (with its ``options``) and split it, stratified, by ``seed``.

    ``seed`` is the split's own seed (``pipeline.study.seeds.derive_seed(..., "split")``), not
    the run's.
    """
    dataset = load_dataset(name, **options)
    splits = stratified_split(
        dataset.X,
        dataset.y,
        train=train,
        val=val,
        test=test,
        seed=seed,
        fixed_test=dataset.fixed_test,
    )
    return dataset, splits


def summarize_data(dataset: Dataset, splits: Splits) -> DataSummary:
    """What ``splits`` of ``dataset`` are: name, fingerprint, sizes, classes, image shape."""
    sizes = {f"n_{part}": n for part, n in splits.sizes().items()}
    return DataSummary(
        name=dataset.name,
        fingerprint=fingerprint(splits),
        sizes=sizes,
        n_classes=dataset.n_classes,
        image_shape=dataset.image_shape,
    )
