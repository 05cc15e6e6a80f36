"""Datasets as pixel activations: X float32 (n_samples, n_pixels) in [0, 1], y int64 (n_samples,).

"How much white" per pixel, as in the videos. ``digits`` is scikit-learn's bundled 8x8 set (no
network needed); ``mnist`` reads the official 28x28 IDX files (see ``pipeline.mnist``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.errors import ConfigError

DATASETS = ("digits", "mnist")


@dataclass(frozen=True)
class Dataset:
    """A pool of labelled images before splitting.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_pixels), float32 in [0, 1]
    y : ndarray of shape (n_samples,), int64
    image_shape : (height, width) of one image
    n_classes : number of classes (10 for digits)
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    image_shape: tuple[int, int]
    n_classes: int = 10


def load_digits() -> Dataset:
    """scikit-learn's 1,797 8x8 digits; raw values 0..16 scaled to [0, 1]."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    X = np.multiply(bunch.data, 1.0 / 16.0).astype(np.float32)
    return Dataset("digits", X, bunch.target.astype(np.int64), (8, 8))


def load_dataset(name: str, **options) -> Dataset:
    """Load the dataset called ``name`` (the ``data.name`` config value)."""
    if name == "digits":
        return load_digits()
    if name == "mnist":
        from pipeline.mnist import load_mnist_pool

        return load_mnist_pool(**options)
    raise ConfigError(f"data.name: {name!r} is not one of {', '.join(DATASETS)}")
