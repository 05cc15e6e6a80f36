"""Datasets as pixel activations: X float32 (n_samples, n_pixels), y int64 (n_samples,).

"How much white" per pixel in [0, 1], as in the videos. ``digits`` is scikit-learn's bundled
8x8 set (no network needed); ``mnist``, ``fashion_mnist`` and ``kmnist`` read their official
28x28 IDX files (see ``pipeline.data.mnist``). ``mnist1d`` is generated offline by the
``mnist1d`` package (``pipeline.data.mnist1d``): 40-point 1-D signals, standardised by the
package (mean 0, standard deviation 1, not in [0, 1]), with ``image_shape`` ``(40,)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.data.mnist1d import GENERATOR_OPTIONS
from pipeline.errors import ConfigError

DATASETS = ("digits", "mnist", "fashion_mnist", "kmnist", "mnist1d")
IDX_NAMES = ("mnist", "fashion_mnist", "kmnist")  # the same IDX machinery, other files


@dataclass(frozen=True)
class Dataset:
    """A pool of labelled images before splitting.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_pixels), float32 (in [0, 1] but for mnist1d)
    y : ndarray of shape (n_samples,), int64
    image_shape : (height, width) of one image, or (length,) of a 1-D signal (mnist1d)
    n_classes : number of classes (10 for digits)
    fixed_test : bool (n_samples,) or None; rows that must form the held-out test set (the
        official test images when ``data.keep_official_split`` is on), else None
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    image_shape: tuple[int, ...]
    n_classes: int = 10
    fixed_test: np.ndarray | None = None


def load_digits() -> Dataset:
    """scikit-learn's 1,797 8x8 digits; raw values 0..16 scaled to [0, 1]."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    X = np.multiply(bunch.data, 1.0 / 16.0).astype(np.float32)
    return Dataset("digits", X, bunch.target.astype(np.int64), (8, 8))


_IDX_OPTIONS = ("dir", "parts", "download", "mirrors", "verify", "timeout", "keep_official_split")
# The settings each dataset takes besides its name (conf/data/<name>.yaml); the first one
# must be present (it shows the dataset was chosen with its group, not renamed).
DATASET_OPTIONS = {
    "digits": (),
    "mnist": _IDX_OPTIONS,
    "fashion_mnist": _IDX_OPTIONS,
    "kmnist": _IDX_OPTIONS,
    # seed: conf/data/mnist1d.yaml takes memlab's ${seed}; the rest are the generator's.
    "mnist1d": ("seed", "keep_official_split", *GENERATOR_OPTIONS),
}


def check_data(data: dict) -> None:
    """Refuse a ``data`` config that does not describe one dataset (a ``ConfigError``).

    ``data.name=mnist`` on top of ``data: digits`` renames the dataset without bringing its
    settings; the dataset is chosen with the group, ``data=mnist``.
    """
    name = data.get("name")
    if name not in DATASETS:
        raise ConfigError(f"data.name: {name!r} is not one of {', '.join(DATASETS)}")
    options = DATASET_OPTIONS[name]
    unknown = sorted(set(data) - {"name", *options})
    if unknown:
        known = ", ".join(options) or "none"
        raise ConfigError(
            f"data.{unknown[0]} is not a setting of data={name} (its settings: {known})"
        )
    if options and options[0] not in data:
        raise ConfigError(
            f"data.{options[0]} is missing: choose the dataset with data={name}, which brings "
            f"its settings (data.name={name} only renames)"
        )


def load_dataset(name: str, **options) -> Dataset:
    """Load the dataset called ``name`` (the ``data.name`` config value)."""
    check_data({"name": name, **options})
    if name == "digits":
        return load_digits()
    if name in IDX_NAMES:
        return load_mnist_pool(**options, dataset=name)
    if name == "mnist1d":
        return load_mnist1d(**options)
    raise ConfigError(f"data.name: {name!r} is not one of {', '.join(DATASETS)}")


def load_mnist_pool(
    dir: str,
    parts=("train", "test"),
    download: bool = False,
    mirrors=None,
    verify: bool = True,
    timeout: float = 30.0,
    keep_official_split: bool = False,
    dataset: str = "mnist",
) -> Dataset:
    """Pool the requested official parts of MNIST (or of ``dataset``: fashion_mnist, kmnist)
    into one dataset (see ``pipeline.data.mnist``).

    With ``keep_official_split`` the official test images become the held-out test set and
    only the rest is split into train and validation; it needs both parts.
    """
    from pipeline.data.mnist import load_mnist

    parts = [parts] if isinstance(parts, str) else list(parts)
    if keep_official_split and sorted(parts) != ["test", "train"]:
        raise ConfigError(
            "data.keep_official_split needs data.parts=[train,test], got "
            f"[{','.join(parts)}]; set data.keep_official_split=false to split the pool"
        )
    loaded = load_mnist(
        dir,
        parts,
        download=download,
        mirrors=tuple(mirrors) if mirrors else None,
        verify=verify,
        timeout=timeout,
        dataset=dataset,
    )
    X = np.concatenate([loaded[p][0] for p in parts]) if len(parts) > 1 else loaded[parts[0]][0]
    y = np.concatenate([loaded[p][1] for p in parts]) if len(parts) > 1 else loaded[parts[0]][1]
    fixed_test = None
    if keep_official_split:
        fixed_test = np.concatenate([np.full(len(loaded[p][1]), p == "test") for p in parts])
    return Dataset(dataset, X, y, (28, 28), fixed_test=fixed_test)


def load_mnist1d(seed: int, keep_official_split: bool = False, **generator) -> Dataset:
    """MNIST-1D from the package's generator (``pipeline.data.mnist1d``), seeded with ``seed``.

    With ``keep_official_split`` the package's own test rows (the last ``1 - train_split``)
    are the held-out test set, as in its published accuracies; else the pool is split like
    every dataset.
    """
    from pipeline.data.mnist1d import make_mnist1d

    data = make_mnist1d(seed, **generator)
    fixed_test = data.is_test if keep_official_split else None
    return Dataset("mnist1d", data.X, data.y, (data.X.shape[1],), fixed_test=fixed_test)
