"""MNIST-1D (Greydanus & Kobak): ten 1-D digit templates, padded, sheared, scaled, translated
and noised into 40-point signals by the ``mnist1d`` package's own generator, offline.

The package seeds NumPy's global generator (and Python's ``random``) with ``np.random.seed``
and draws from it. :func:`make_mnist1d` runs it with a seed of ours and puts both global
states back afterwards, so a caller's own use of the global generators sees nothing: memlab's
randomness (split, initialisation, probes) only ever comes from ``np.random.default_rng``.
The same arguments give the same arrays, bit for bit.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from pipeline.errors import ConfigError

__all__ = ["GENERATOR_OPTIONS", "Mnist1D", "make_mnist1d"]

#: The generator's settings a config may change, with the package's defaults (its
#: ``get_dataset_args``). ``seed`` is not here: it always comes from the caller.
GENERATOR_OPTIONS = {
    "num_samples": 5000,  # split evenly over the 10 classes (num_samples // 10 each)
    "train_split": 0.8,  # the package's own train share (kept with keep_official_split)
    "template_len": 12,
    "padding": [36, 60],
    "scale_coeff": 0.4,
    "max_translation": 48,
    "corr_noise_scale": 0.25,  # correlated (smooth) noise
    "iid_noise_scale": 2e-2,  # independent per-point noise
    "shear_scale": 0.75,
    "shuffle_seq": False,  # one fixed permutation of the 40 positions (spatial structure gone)
    "final_seq_length": 40,
}


class Mnist1D(NamedTuple):
    """The generated signals, in the package's order and train/test split."""

    X: np.ndarray  # (n_samples, final_seq_length) float32, standardised by the package
    y: np.ndarray  # (n_samples,) int64 in 0..9
    is_test: np.ndarray  # (n_samples,) bool: the package's own test rows (the last ones)


@contextlib.contextmanager
def _global_generators_kept() -> Iterator[None]:
    """Restore NumPy's and Python's global generator states, however the block ends."""
    numpy_state = np.random.get_state()  # noqa: NPY002 (saved, never drawn from)
    python_state = random.getstate()
    try:
        yield
    finally:
        np.random.set_state(numpy_state)  # noqa: NPY002
        random.setstate(python_state)


def make_mnist1d(seed: int, **options) -> Mnist1D:
    """Generate MNIST-1D with the package's ``make_dataset``, seeded with ``seed``.

    Parameters
    ----------
    seed : int
        In ``0 .. 2**32 - 1`` (what ``np.random.seed`` takes). The package's published data
        uses 42.
    **options
        Any of :data:`GENERATOR_OPTIONS` (the rest keep the package's defaults).

    Returns
    -------
    Mnist1D
        ``X`` float32 (n_samples, final_seq_length), ``y`` int64, and ``is_test``.

    Raises
    ------
    ConfigError
        For an unknown option, a seed out of range, or values the generator cannot use.
    """
    unknown = sorted(set(options) - set(GENERATOR_OPTIONS))
    if unknown:
        raise ConfigError(f"data.{unknown[0]} is not a setting of data=mnist1d")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ConfigError(f"data.seed must be a whole number in 0 .. 2**32 - 1, got {seed!r}")
    args = {**GENERATOR_OPTIONS, **options}
    _check(args)
    from mnist1d.data import make_dataset
    from mnist1d.utils import ObjectView

    args["padding"] = list(args["padding"])
    with _global_generators_kept():
        data = make_dataset(ObjectView({**args, "seed": seed}))
    X = np.concatenate([data["x"], data["x_test"]]).astype(np.float32)
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    is_test = np.arange(len(y)) >= len(data["y"])
    return Mnist1D(X, y, is_test)


def _check(args: dict) -> None:
    """One-line errors for values the generator would crash on or silently misuse."""

    def whole(key: str, low: int) -> int:
        value = args[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"data.{key} must be a whole number >= {low}, got {value!r}")
        return value

    whole("num_samples", 20)
    whole("template_len", 1)
    whole("max_translation", 1)
    whole("final_seq_length", 1)
    split = args["train_split"]
    if isinstance(split, bool) or not isinstance(split, int | float) or not 0 < split < 1:
        raise ConfigError(f"data.train_split must be in (0, 1), got {split!r}")
    padding = args["padding"]
    if (
        not isinstance(padding, list | tuple)
        or len(padding) != 2
        or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in padding)
        or padding[0] > padding[1]
    ):
        raise ConfigError(f"data.padding must be [low, high] whole numbers, got {padding!r}")
    for key in ("scale_coeff", "corr_noise_scale", "iid_noise_scale", "shear_scale"):
        value = args[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"data.{key} must be a number >= 0, got {value!r}")
    if not isinstance(args["shuffle_seq"], bool):
        raise ConfigError(f"data.shuffle_seq must be true or false, got {args['shuffle_seq']!r}")
