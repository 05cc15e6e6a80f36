"""Seeded, stratified splits and their fingerprints."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.data.datasets import load_digits
from pipeline.data.split import fingerprint, stratified_split
from pipeline.errors import ConfigError
from pipeline.settings import SplitSettings


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_digits_are_activations_in_unit_interval(digits):
    assert digits.X.dtype == np.float32 and digits.X.shape == (1797, 64)
    assert digits.X.min() == 0.0 and digits.X.max() == 1.0
    assert digits.y.dtype == np.int64 and set(digits.y.tolist()) == set(range(10))


def test_split_is_a_stratified_partition(digits):
    s = stratified_split(digits.X, digits.y, train=0.7, val=0.15, test=0.15, seed=0)
    sizes = s.sizes()
    assert sum(sizes.values()) == 1797
    assert abs(sizes["train"] - 0.7 * 1797) <= 1 and abs(sizes["val"] - sizes["test"]) <= 1
    pool = np.bincount(digits.y) / len(digits.y)
    for y in (s.y_train, s.y_val, s.y_test):
        np.testing.assert_allclose(np.bincount(y, minlength=10) / len(y), pool, atol=0.02)
    # A partition: every image is in exactly one part.
    rows = np.concatenate([s.X_train, s.X_val, s.X_test])
    assert len(np.unique(rows, axis=0)) == len(np.unique(digits.X, axis=0))


def test_same_seed_same_split_and_fingerprint(digits):
    a = stratified_split(digits.X, digits.y, train=0.7, val=0.15, test=0.15, seed=3)
    b = stratified_split(digits.X, digits.y, train=0.7, val=0.15, test=0.15, seed=3)
    c = stratified_split(digits.X, digits.y, train=0.7, val=0.15, test=0.15, seed=4)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(c)


@pytest.mark.parametrize(
    "fractions, key",
    [
        ((0.7, 0.2, 0.2), "add up to 1"),
        ((1.0, 0.0, 0.0), "split.train"),
        ((0.8, -0.1, 0.3), "split.val"),
    ],
)
def test_fractions_that_do_not_fit_are_refused_by_the_settings(fractions, key):
    # Checked once, at the edge: ``stratified_split`` trusts the settings it is given.
    train, val, test = fractions
    with pytest.raises(ConfigError, match=key):
        SplitSettings.from_config({"train": train, "val": val, "test": test, "seed": None})
