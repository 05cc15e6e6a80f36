"""A network that learned nothing says so, and why when it can tell."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from pipeline.models.numpy_mlp import NumpyMLP
from pipeline.models.sklearn_mlp import SklearnMLP
from pipeline.study.diagnose import dead_units, diagnose


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


def _trained(X, y, activation, loss, learning_rate, epochs: int = 5, model_class=NumpyMLP):
    model = model_class((64,), activation, loss, learning_rate, batch_size=10, random_state=0)
    for _ in range(epochs):
        model.partial_fit(X, y, classes=np.arange(10))
    return model, float(np.mean(model.predict(X) == y))


def test_dead_units_are_the_ones_silent_on_every_input():
    rng = np.random.default_rng(0)
    X = rng.random((50, 4))  # inputs >= 0
    W1 = np.abs(rng.normal(size=(4, 6)))  # every unit grows with the input...
    b1 = np.array([0.1, 0.1, 0.1, -100.0, -100.0, -100.0])  # ...but three can never fire
    W2, b2 = rng.normal(size=(6, 3)), np.zeros(3)
    assert dead_units([W1, W2], [b1, b2], X) == [0.5]
    W3, b3 = rng.normal(size=(3, 2)), np.zeros(2)
    W2[:, 1] = -np.abs(W2[:, 1]) - 1.0  # hidden layer 2, unit 1: fed only positive inputs
    shares = dead_units([W1, W2, W3], [b1, b2, b3], X)
    assert shares[0] == 0.5 and len(shares) == 2 and shares[1] >= 1 / 3


# MLPClassifier's step takes seconds to kill its network: with the slow tests.
@pytest.mark.parametrize(
    "model_class", [NumpyMLP, pytest.param(SklearnMLP, marks=pytest.mark.slow)]
)
def test_a_relu_network_killed_by_a_large_step_is_flagged_with_the_cause(digits, model_class):
    X, y = digits
    model, accuracy = _trained(X, y, "relu", "cross_entropy", 3.0, model_class=model_class)
    warnings = diagnose(model, X, y, accuracy)
    assert len(warnings) == 2
    assert "chance level" in warnings[0] and "learned nothing" in warnings[0]
    assert "dead units" in warnings[1] and "model.learning_rate=3 " in warnings[1]


def test_a_network_that_learned_gets_no_warning(digits):
    X, y = digits
    model, accuracy = _trained(X, y, "relu", "cross_entropy", learning_rate=0.1)
    assert accuracy > 0.9 and diagnose(model, X, y, accuracy) == []


def test_chance_without_dead_units_suggests_the_step_or_more_epochs(digits):
    X, y = digits
    model, _ = _trained(X, y, "sigmoid", "mse", learning_rate=1e-4, epochs=1)
    accuracy = float(np.mean(model.predict(X) == y))
    assert accuracy < 0.15  # a step this small has not moved it
    (warning,) = diagnose(model, X, y, accuracy)
    assert "learned nothing" in warning and "model.learning_rate (now 0.0001)" in warning
