"""Seeded, stratified train / validation / test splits, and a fingerprint to recognise them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from pipeline.errors import ConfigError

# The six arrays that are the data; the fingerprint covers exactly these.
DATA_FIELDS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")


@dataclass(frozen=True)
class Splits:
    """The three parts of a pool. X arrays are (n, n_pixels) float32, y arrays (n,) int64.

    ``index_<part>`` (n,) int64, when known, is each row's index into the pool the split was
    drawn from, so that an example (a memorized image, say) can be found again.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    index_train: np.ndarray | None = None
    index_val: np.ndarray | None = None
    index_test: np.ndarray | None = None

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def _stratified_take(y: np.ndarray, fraction: float, rng: np.random.Generator):
    """Indices of a stratified sample of ``fraction`` of ``y`` and of the rest."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    seed = int(rng.integers(2**31 - 1))
    try:
        taken, rest = train_test_split(index, train_size=fraction, stratify=y, random_state=seed)
    except ValueError as err:  # e.g. a class too small to appear in every part
        raise ConfigError(f"split: cannot stratify {len(y)} examples this way ({err})") from None
    return np.sort(taken), np.sort(rest)


def stratified_split(
    X: np.ndarray,
    y: np.ndarray,
    *,
    train: float,
    val: float,
    test: float,
    seed: int,
    fixed_test: np.ndarray | None = None,
) -> Splits:
    """Split ``(X, y)`` into stratified train / validation / test parts.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    train, val, test : fractions of the pool, each in (0, 1), adding up to 1 (the settings
        check them: ``pipeline.settings.SplitSettings``)
    seed : the only source of randomness; the same seed gives the same split
    fixed_test : bool (n_samples,), optional
        Rows that are the test set as given (e.g. MNIST's official test images); the rest is
        split into train and validation in the ratio ``train : val``, and ``test`` is unused.

    Returns
    -------
    Splits
    """
    rng = np.random.default_rng(seed)
    if fixed_test is not None:
        test_idx, pool = np.flatnonzero(fixed_test), np.flatnonzero(~fixed_test)
        in_train, in_val = _stratified_take(y[pool], train / (train + val), rng)
        train_idx, val_idx = pool[in_train], pool[in_val]
    else:
        train_idx, rest = _stratified_take(y, train, rng)
        val_in_rest, test_in_rest = _stratified_take(y[rest], val / (val + test), rng)
        val_idx, test_idx = rest[val_in_rest], rest[test_in_rest]
    parts = (train_idx, val_idx, test_idx)
    data = [array for idx in parts for array in (X[idx], y[idx])]
    return Splits(*data, *(idx.astype(np.int64) for idx in parts))


def fingerprint(splits: Splits) -> str:
    """A short SHA-256 over the data arrays' dtype, shape and bytes: equal splits, equal prints.

    The pool indices are not part of it: the same data is the same data, however it was found.
    """
    digest = hashlib.sha256()
    for name in DATA_FIELDS:
        array = np.ascontiguousarray(getattr(splits, name))
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]
