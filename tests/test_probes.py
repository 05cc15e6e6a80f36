"""Properties of the memorization probes: label corruption, input randomization, noise inputs."""

import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.options import INPUT_KINDS
from pipeline.settings import ProbeSettings
from pipeline.study.noise import noise_images, noise_summary
from pipeline.study.probes import (
    LabelCorruption,
    corrupt_labels,
    randomize_inputs,
    split_accuracy,
)

N_CLASSES = 10


def _labels(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, N_CLASSES, size=n)


def _images(n: int, n_features: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, n_features), dtype=np.float32)


# --- label corruption -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["shuffle", "random"])
@pytest.mark.parametrize("n", [1, 7, 100, 1001])
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 0.99, 1.0])
def test_corrupted_count_is_exact(mode, n, fraction):
    out = corrupt_labels(_labels(n), fraction, mode, n_classes=N_CLASSES, seed=3)
    assert isinstance(out, LabelCorruption)
    assert out.corrupted.dtype == np.bool_ and out.corrupted.shape == (n,)
    assert out.labels.dtype == np.int64 and out.labels.shape == (n,)
    assert out.corrupted.sum() == round(fraction * n)


@pytest.mark.parametrize("mode", ["shuffle", "random"])
def test_labels_outside_the_mask_are_unchanged(mode):
    y = _labels(500)
    out = corrupt_labels(y, 0.3, mode, n_classes=N_CLASSES, seed=1)
    np.testing.assert_array_equal(out.labels[~out.corrupted], y[~out.corrupted])


@pytest.mark.parametrize("fraction", [0.2, 1.0])
def test_shuffle_keeps_class_counts_and_changes_labels(fraction):
    y = _labels(1000)
    out = corrupt_labels(y, fraction, "shuffle", n_classes=N_CLASSES, seed=2)
    np.testing.assert_array_equal(
        np.bincount(out.labels, minlength=N_CLASSES), np.bincount(y, minlength=N_CLASSES)
    )
    chosen = out.corrupted
    np.testing.assert_array_equal(np.sort(out.labels[chosen]), np.sort(y[chosen]))
    # With 10 classes, a random shuffle leaves about 10% of chosen labels on their truth.
    assert np.mean(out.labels[chosen] != y[chosen]) > 0.7


def test_random_mode_draws_from_all_classes():
    y = np.zeros(2000, dtype=np.int64)  # every true label is 0: anything else was drawn
    out = corrupt_labels(y, 0.5, "random", n_classes=N_CLASSES, seed=4)
    assert set(np.unique(out.labels[out.corrupted])) == set(range(N_CLASSES))
    assert np.all(out.labels[~out.corrupted] == 0)
    # Uniform draws coincide with the true class about 1 time in n_classes.
    assert 0.05 < np.mean(out.labels[out.corrupted] == 0) < 0.15


def test_fraction_zero_returns_an_unchanged_copy():
    y = _labels(50)
    for mode in ("shuffle", "random"):
        out = corrupt_labels(y, 0.0, mode, n_classes=N_CLASSES, seed=0)
        np.testing.assert_array_equal(out.labels, y)
        assert not out.corrupted.any()
        assert not np.shares_memory(out.labels, y)


@pytest.mark.parametrize("mode", ["shuffle", "random"])
def test_corruption_is_determined_by_the_seed(mode):
    y = _labels(300)
    y_before = y.copy()
    a = corrupt_labels(y, 0.5, mode, n_classes=N_CLASSES, seed=11)
    b = corrupt_labels(y, 0.5, mode, n_classes=N_CLASSES, seed=11)
    c = corrupt_labels(y, 0.5, mode, n_classes=N_CLASSES, seed=12)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.corrupted, b.corrupted)
    assert not np.array_equal(a.corrupted, c.corrupted)
    np.testing.assert_array_equal(y, y_before)  # the input is not mutated


def _probe(labels: dict | None = None, **section) -> ProbeSettings:
    """The probe settings made from a config section (the edge that checks every value)."""
    labels = {"fraction": 0.0, "mode": "shuffle", **(labels or {})}
    return ProbeSettings.from_config({"labels": labels, "inputs": "none", **section})


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan")])
def test_fraction_out_of_range_is_a_config_error(fraction):
    # Checked once, by the settings; the core trusts them (and numpy refuses nonsense anyway).
    with pytest.raises(ConfigError, match=r"probe\.labels\.fraction must be in \[0, 1\]"):
        _probe({"fraction": fraction})


def test_unknown_mode_is_a_config_error():
    with pytest.raises(
        ConfigError, match=r"probe\.labels\.mode: 'x' is not one of shuffle, random"
    ):
        _probe({"mode": "x"})


def test_the_core_names_its_parameter_not_a_config_key():
    with pytest.raises(ValueError, match=r"^mode must be one of shuffle, random"):
        corrupt_labels(_labels(10), 0.5, "x", n_classes=N_CLASSES, seed=0)
    with pytest.raises(ValueError, match=r"^kind must be one of none, "):
        randomize_inputs("blur", _images(3), seed=0)
    with pytest.raises(ValueError, match=r"^kind must be one of uniform, gaussian"):
        noise_images("pink", 3, reference=_images(2), seed=0)


# --- input randomization --------------------------------------------------------------------


@pytest.mark.parametrize("kind", INPUT_KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_randomization_keeps_shapes_dtypes_and_inputs(kind, dtype):
    X, X_val, X_test = _images(30).astype(dtype), _images(7, seed=1), _images(5, seed=2)
    copies = [A.copy() for A in (X, X_val, X_test)]
    X_new, others = randomize_inputs(kind, X, (X_val, X_test), seed=0)
    assert X_new.shape == X.shape and X_new.dtype == dtype
    assert len(others) == 2
    for new, old in zip(others, (X_val, X_test), strict=True):
        assert new.shape == old.shape and new.dtype == old.dtype
    for A, copy in zip((X, X_val, X_test), copies, strict=True):
        np.testing.assert_array_equal(A, copy)


def test_none_returns_inputs_as_they_are():
    X, X_val = _images(4), _images(3, seed=1)
    X_new, (X_val_new,) = randomize_inputs("none", X, [X_val], seed=0)
    assert X_new is X and X_val_new is X_val


def _recover_permutation(X: np.ndarray, X_new: np.ndarray) -> np.ndarray:
    """The column permutation p with X_new = X[:, p], read off rows of distinct values."""
    return np.array([np.flatnonzero(X[0] == v)[0] for v in X_new[0]])


def test_shuffled_pixels_is_one_permutation_for_every_image_and_split():
    X, X_val, X_test = _images(20), _images(6, seed=1), _images(4, seed=2)
    X_new, (X_val_new, X_test_new) = randomize_inputs("shuffled_pixels", X, (X_val, X_test), seed=5)
    p = _recover_permutation(X, X_new)
    np.testing.assert_array_equal(np.sort(p), np.arange(X.shape[1]))
    assert not np.array_equal(p, np.arange(X.shape[1]))
    np.testing.assert_array_equal(X_new, X[:, p])
    np.testing.assert_array_equal(X_val_new, X_val[:, p])
    np.testing.assert_array_equal(X_test_new, X_test[:, p])


def test_random_pixels_permutes_each_row_differently_and_leaves_others():
    n, d = 50, 16
    X = (np.arange(n * d, dtype=np.float32).reshape(n, d)) / (n * d)  # distinct values per row
    X_val = _images(5, d, seed=1)
    X_new, (X_val_new,) = randomize_inputs("random_pixels", X, (X_val,), seed=6)
    np.testing.assert_array_equal(np.sort(X_new, axis=1), np.sort(X, axis=1))
    perms = np.round(X_new * (n * d)).astype(int) - np.arange(n)[:, None] * d  # (n, d)
    assert len({tuple(p) for p in perms}) == n  # 50 draws from 16! orderings: all distinct
    np.testing.assert_array_equal(X_val_new, X_val)


def test_gaussian_matches_per_feature_mean_and_std():
    rng = np.random.default_rng(0)
    mean, std = np.linspace(0.1, 0.9, 8), np.linspace(0.0, 0.3, 8)
    X = (mean + std * rng.standard_normal((20_000, 8))).astype(np.float32)
    X_val = _images(3, 8)
    X_new, (X_val_new,) = randomize_inputs("gaussian", X, (X_val,), seed=7)
    np.testing.assert_allclose(X_new.mean(axis=0), X.mean(axis=0), atol=0.01)
    np.testing.assert_allclose(X_new.std(axis=0), X.std(axis=0), atol=0.01)
    assert not np.any(X_new[:, 1:] == X[:, 1:])  # fresh noise, not the data
    np.testing.assert_allclose(X_new[:, 0], X[0, 0])  # a constant pixel stays constant
    np.testing.assert_array_equal(X_val_new, X_val)


@pytest.mark.parametrize("kind", ["shuffled_pixels", "random_pixels", "gaussian"])
def test_randomization_is_determined_by_the_seed(kind):
    X = _images(10)
    a, _ = randomize_inputs(kind, X, seed=1)
    b, _ = randomize_inputs(kind, X, seed=1)
    c, _ = randomize_inputs(kind, X, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_unknown_input_kind_is_a_config_error():
    with pytest.raises(ConfigError, match=r"probe\.inputs: 'blur' is not one of none, "):
        _probe(inputs="blur")


# --- noise inputs ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["uniform", "gaussian"])
def test_noise_images_shape_dtype_range_and_seed(kind):
    reference = _images(200, 12).astype(np.float64)
    before = reference.copy()
    a = noise_images(kind, 5000, reference=reference, seed=0)
    assert a.shape == (5000, 12) and a.dtype == np.float64
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, noise_images(kind, 5000, reference=reference, seed=0))
    assert not np.array_equal(a, noise_images(kind, 5000, reference=reference, seed=1))
    np.testing.assert_array_equal(reference, before)


def test_uniform_noise_has_uniform_moments():
    a = noise_images("uniform", 20_000, reference=_images(2, 4), seed=0)
    assert a.dtype == np.float32
    np.testing.assert_allclose(a.mean(axis=0), 0.5, atol=0.01)
    np.testing.assert_allclose(a.std(axis=0), np.sqrt(1 / 12), atol=0.01)


def test_gaussian_noise_follows_the_reference():
    rng = np.random.default_rng(0)
    reference = (np.array([0.2, 0.5, 0.8]) + 0.05 * rng.standard_normal((5000, 3))).astype(
        np.float32
    )
    a = noise_images("gaussian", 20_000, reference=reference, seed=3)
    np.testing.assert_allclose(a.mean(axis=0), reference.mean(axis=0), atol=0.01)
    np.testing.assert_allclose(a.std(axis=0), reference.std(axis=0), atol=0.01)


def test_unknown_noise_kind_is_a_config_error():
    with pytest.raises(ConfigError, match=r"probe\.noise\.kinds .*'pink' is not one of uniform"):
        _probe(noise={"n": 3, "kinds": ["pink"]})


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def noise_metrics(kind, proba_noise, proba_real) -> dict[str, float]:
    """The noise probe's summary as the flat metrics MLflow and DVC get."""
    return noise_summary(kind, proba_noise, proba_real).metrics()


def test_noise_metrics_names_and_class_fractions():
    rng = np.random.default_rng(0)
    proba_noise, proba_real = (
        _softmax(rng.normal(size=(300, 10))),
        _softmax(rng.normal(size=(50, 10))),
    )
    metrics = noise_metrics("uniform", proba_noise, proba_real)
    assert all(name.startswith("noise_uniform_") for name in metrics)
    assert all(type(value) is float for value in metrics.values())
    fractions = [metrics[f"noise_uniform_class_{k}"] for k in range(10)]
    assert sum(fractions) == pytest.approx(1.0)
    counts = np.bincount(proba_noise.argmax(axis=1), minlength=10)
    np.testing.assert_allclose(fractions, counts / 300)
    assert metrics["noise_uniform_top_class"] == float(counts.argmax())
    max_noise = proba_noise.max(axis=1)
    assert metrics["noise_uniform_mean_max_prob"] == pytest.approx(max_noise.mean())
    assert metrics["noise_uniform_frac_max_prob_gt_0.9"] == pytest.approx(np.mean(max_noise > 0.9))
    expected = proba_real.max(axis=1).mean()
    assert metrics["noise_uniform_real_mean_max_prob"] == pytest.approx(expected)


def test_a_model_constant_on_noise_has_that_top_class():
    proba_noise = np.full((40, 10), 0.02)
    proba_noise[:, 8] = 0.82  # always "8", confidently
    metrics = noise_metrics("gaussian", proba_noise, _softmax(np.eye(10) * 5))
    assert metrics["noise_gaussian_top_class"] == 8.0
    assert metrics["noise_gaussian_class_8"] == 1.0
    assert metrics["noise_gaussian_mean_max_prob"] == pytest.approx(0.82)
    assert metrics["noise_gaussian_frac_max_prob_gt_0.9"] == 0.0


def test_auroc_is_one_when_real_is_always_surer_and_half_when_identical():
    rng = np.random.default_rng(1)
    unsure = _softmax(rng.normal(scale=0.1, size=(100, 10)))  # max prob ~0.12
    sure = _softmax(10 * np.eye(10)[rng.integers(0, 10, size=60)])  # max prob ~1
    assert noise_metrics("uniform", unsure, sure)["noise_uniform_auroc"] == 1.0
    assert noise_metrics("uniform", sure, unsure)["noise_uniform_auroc"] == 0.0
    assert noise_metrics("uniform", unsure, unsure)["noise_uniform_auroc"] == pytest.approx(0.5)


# --- split accuracy -------------------------------------------------------------------------


def test_split_accuracy_on_a_hand_example():
    y_trained = np.array([0, 1, 2, 3, 4, 5])
    corrupted = np.array([False, False, False, False, True, True])
    y_pred = np.array([0, 1, 2, 9, 4, 9])  # clean: 3 of 4 right; corrupted: 1 of 2
    assert split_accuracy(y_pred, y_trained, corrupted) == (0.75, 0.5)


def test_split_accuracy_is_none_for_an_empty_subset():
    y = np.array([1, 2, 3])
    assert split_accuracy(y, y, np.zeros(3, dtype=bool)) == (1.0, None)
    assert split_accuracy(y, y + 1, np.ones(3, dtype=bool)) == (None, 0.0)
