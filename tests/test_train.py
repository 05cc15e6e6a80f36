"""The epoch loop: ``epochs_to_fit`` is exact, and finding it costs little."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models.numpy_mlp import NumpyMLP
from pipeline.study.train import _fitted, train_epochs


class Lookup:
    """A 'model' whose prediction for row i is ``predictions[i]`` (X holds the row numbers)."""

    def __init__(self, predictions: np.ndarray):
        self.predictions = predictions
        self.rows_scored = 0

    def predict(self, X: np.ndarray) -> np.ndarray:
        self.rows_scored += len(X)
        return self.predictions[X[:, 0]]


def _case(rng: np.random.Generator, n: int, errors: int, running_errors: int):
    y = rng.integers(0, 10, n)
    predictions = y.copy()
    wrong = rng.choice(n, errors, replace=False)
    predictions[wrong] = (y[wrong] + 1) % 10
    correct = np.ones(n, dtype=bool)
    correct[rng.choice(n, running_errors, replace=False)] = False
    return np.arange(n)[:, None], y, Lookup(predictions), correct


@pytest.mark.parametrize("block", [1, 128, 1000, 4096])
@pytest.mark.parametrize("threshold", [1.0, 0.999, 0.99, 0.5])
def test_the_fit_check_is_the_full_pass_accuracy(threshold, block):
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(1, 3000))
        errors = int(rng.integers(0, n + 1)) if rng.random() < 0.3 else int(rng.integers(0, 5))
        running_errors = int(rng.integers(0, n + 1))  # the running pass may say anything
        X, y, model, correct = _case(rng, n, min(errors, n), running_errors)
        expected = float(np.mean(model.predictions == y)) >= threshold
        assert _fitted(model, X, y, correct, threshold, block=block) == expected


@pytest.mark.parametrize(
    ("n", "errors", "threshold", "fitted"),
    [(1000, 1, 0.999, True), (1000, 2, 0.999, False), (100, 1, 0.99, True), (100, 2, 0.99, False)],
)
def test_the_fit_check_at_the_threshold_itself(n, errors, threshold, fitted):
    rng = np.random.default_rng(n + errors)
    for running_errors in (0, errors, n // 2):
        X, y, model, correct = _case(rng, n, errors, running_errors)
        assert _fitted(model, X, y, correct, threshold) == fitted


def test_an_unfitted_model_is_caught_without_a_full_pass():
    rng = np.random.default_rng(1)
    X, y, model, correct = _case(rng, 8000, errors=20, running_errors=0)
    assert not _fitted(model, X, y, correct, 1.0, block=1024)
    assert model.rows_scored < len(y) / 2  # 20 errors in 8,000: one in the first few blocks
    X, y, model, correct = _case(rng, 8000, errors=4000, running_errors=4000)
    assert not _fitted(model, X, y, correct, 1.0, block=1024)
    assert model.rows_scored == 128  # far from fitted: one small block
    X, y, model, correct = _case(rng, 8000, errors=0, running_errors=30)
    assert _fitted(model, X, y, correct, 1.0, block=1024)
    assert model.rows_scored == 2 * len(y) + 30  # fitted: the blocks, then the full pass


def test_the_suspects_are_scored_first():
    rng = np.random.default_rng(2)
    X, y, model, correct = _case(rng, 8000, errors=0, running_errors=5)
    model.predictions[~correct] = (y[~correct] + 1) % 10  # the running pass's errors remain
    assert not _fitted(model, X, y, correct, 1.0, block=1024)
    assert model.rows_scored == 5


def test_epochs_to_fit_is_the_first_epoch_that_fits_the_whole_training_set():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 12)).astype(np.float32)
    y = rng.integers(0, 3, 120)  # random labels: fitted only by memorizing
    model = NumpyMLP(
        hidden_layer_sizes=(64,),
        activation="relu",
        loss="cross_entropy",
        learning_rate=0.1,
        momentum=0.9,
        batch_size=16,
        random_state=0,
    )
    full_pass = []
    result = train_epochs(
        model,
        X,
        y,
        X[:10],
        y[:10],
        classes=np.arange(3),
        max_epochs=200,
        stop_at_fit=True,
        on_epoch=lambda epoch, m: full_pass.append(float(np.mean(model.predict(X) == y))),
    )
    assert result.epochs_to_fit is not None and result.epochs == result.epochs_to_fit
    assert full_pass[-1] == 1.0 and max(full_pass[:-1]) < 1.0
