"""The squared loss on linear outputs (Belkin et al. 2019): its value, gradients and a fit."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models.numpy_mlp import NumpyMLP


def _tiny_problem(seed=0, n=7, n_features=6, n_classes=3):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, n_features)), rng.integers(0, n_classes, n)


def test_loss_is_the_summed_squared_error_to_one_hot_targets():
    X, y = _tiny_problem()
    model = NumpyMLP((4,), activation="relu", loss="squared", dtype="float64", random_state=1)
    model._initialize(X, y, np.arange(3))
    hidden = np.maximum(X @ model.coefs_[0] + model.intercepts_[0], 0)
    z = hidden @ model.coefs_[1] + model.intercepts_[1]  # linear outputs, (n, k)
    expected = np.mean(np.sum((z - np.eye(3)[y]) ** 2, axis=1))
    assert model.loss_value(X, y) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_gradients_match_finite_differences(activation):
    X, y = _tiny_problem()
    model = NumpyMLP((5,), activation=activation, loss="squared", dtype="float64", random_state=3)
    model._initialize(X, y, np.arange(3))
    _, coef_grads, intercept_grads = model.loss_and_gradients(X, y)
    params = [*model.coefs_, *model.intercepts_]
    for param, grad in zip(params, [*coef_grads, *intercept_grads], strict=True):
        numeric = np.zeros(param.shape)
        for i in np.ndindex(param.shape):
            old = param[i]
            param[i] = old + 1e-6
            up = model.loss_value(X, y)
            param[i] = old - 1e-6
            down = model.loss_value(X, y)
            param[i] = old
            numeric[i] = (up - down) / 2e-6
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_a_wide_network_interpolates_random_labels():
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 1, (40, 10)), rng.integers(0, 4, 40)
    model = NumpyMLP(
        (200,), activation="relu", loss="squared", learning_rate=0.05, momentum=0.9,
        batch_size=8, max_epochs=300, random_state=0,
    ).fit(X, y)  # fmt: skip
    assert model.score(X, y) == 1.0
    assert model.loss_value(X, y) < 0.05


def test_predict_proba_is_the_softmax_of_the_outputs_and_predict_unchanged():
    # Linear outputs are any real numbers: read through a softmax, rows are probabilities.
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 1, (60, 10)), rng.integers(0, 4, 60)
    for dtype in ("float32", "float64"):
        model = NumpyMLP(
            (16,), activation="relu", loss="squared", learning_rate=0.05, max_epochs=5,
            dtype=dtype,
        ).fit(X, y)  # fmt: skip
        proba = model.predict_proba(X)
        assert proba.dtype == np.dtype(dtype)
        assert ((proba >= 0) & (proba <= 1)).all()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
        output, _ = model._outputs(X)  # the raw linear outputs
        expected = np.exp(output - output.max(axis=1, keepdims=True))
        np.testing.assert_allclose(proba, expected / expected.sum(axis=1, keepdims=True), rtol=1e-5)
        predicted = model.classes_[output.argmax(axis=1)]  # the largest raw output
        np.testing.assert_array_equal(model.predict(X), predicted)
        np.testing.assert_array_equal(model.loss_and_predict(X, y)[1], predicted)


def test_epoch_label_proba_is_predict_proba_of_the_label_before_the_update():
    rng = np.random.default_rng(1)
    X, y = rng.uniform(0, 1, (30, 6)), rng.integers(0, 3, 30)
    model = NumpyMLP((8,), loss="squared", learning_rate=0.05, batch_size=30, dtype="float64")
    model._initialize(X, y, np.arange(3))
    before = model.predict_proba(X)[np.arange(30), y]
    model.partial_fit(X, y)  # one batch: every example scored with the initial weights
    np.testing.assert_allclose(model.epoch_label_proba_, before, rtol=1e-12)
    assert ((model.epoch_label_proba_ > 0) & (model.epoch_label_proba_ < 1)).all()
