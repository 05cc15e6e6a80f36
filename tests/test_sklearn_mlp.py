"""The MLPClassifier wrapper: NumpyMLP's surface and training rule, step for step."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import log_loss
from sklearn.neural_network import MLPClassifier
from sklearn.utils._param_validation import InvalidParameterError

from pipeline.errors import ConfigError, DivergenceError
from pipeline.models.numpy_mlp import NumpyMLP
from pipeline.models.sklearn_mlp import SklearnMLP

CE = dict(loss="cross_entropy")


@functools.cache
def _digits():
    """sklearn's 8x8 digits, pixels scaled to [0, 1] float32, in a fixed shuffled order."""
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    return (X[order] / 16).astype(np.float32), y[order]


def _subset(n, start=0):
    X, y = _digits()
    return X[start : start + n], y[start : start + n]


def _flat(model):
    return [*model.coefs_, *model.intercepts_]


@pytest.mark.parametrize(
    "activation, expected", [("sigmoid", "logistic"), ("relu", "relu"), ("tanh", "tanh")]
)
def test_parameters_map_onto_mlpclassifier(activation, expected):
    X, y = _subset(40)  # batches of 16, 16 and 8: the short one must not leak into the params
    model = SklearnMLP(
        (8,),
        activation=activation,
        learning_rate=0.2,
        momentum=0.5,
        weight_decay=0.01,
        batch_size=16,
        **CE,
    ).partial_fit(X, y, classes=np.arange(10))
    est = model.estimator_
    assert type(est) is MLPClassifier
    assert est.activation == expected
    assert est.alpha == pytest.approx(0.01 * 16)
    assert est.batch_size == 16
    assert (est.solver, est.learning_rate, est.learning_rate_init) == ("sgd", "constant", 0.2)
    assert est.momentum == 0.5 and est.nesterovs_momentum is False and est.shuffle is False
    assert est.hidden_layer_sizes == (8,)


@pytest.mark.parametrize("batch_size", [20, 32])  # one full batch; one shorter than batch_size
def test_one_step_is_sgd_on_the_mean_loss_plus_weight_decay(batch_size):
    # NumpyMLP's gradients are checked against finite differences; with alpha mapped from
    # weight_decay, MLPClassifier's single step must be W - lr * (grad + weight_decay * W).
    X, y = _subset(20)
    params = dict(
        hidden_layer_sizes=(6,),
        activation="tanh",
        learning_rate=0.3,
        weight_decay=0.05,
        batch_size=batch_size,
        dtype="float64",
        **CE,
    )
    reference = NumpyMLP(**params)
    reference._initialize(X, y, np.arange(10))
    W0, b0 = [w.copy() for w in reference.coefs_], [b.copy() for b in reference.intercepts_]
    _, coef_grads, intercept_grads = reference.loss_and_gradients(X, y)
    model = SklearnMLP(**params).partial_fit(X, y, classes=np.arange(10))
    assert model.t_ == 1
    for W, w0, g in zip(model.coefs_, W0, coef_grads, strict=True):
        np.testing.assert_allclose(W, w0 - 0.3 * (g + 0.05 * w0), rtol=1e-10, atol=1e-12)
    for b, c0, g in zip(model.intercepts_, b0, intercept_grads, strict=True):
        np.testing.assert_allclose(b, c0 - 0.3 * g, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh"])
def test_follows_numpy_mlp_step_for_step(activation):
    # Same init, same batch order, same momentum and weight decay: the same trajectory.
    # 100 examples in batches of 32 end with a batch of 4, where a wrong alpha would show.
    X, y = _subset(100)
    params = dict(
        hidden_layer_sizes=(12,),
        activation=activation,
        learning_rate=0.3,
        momentum=0.9,
        weight_decay=0.05,
        batch_size=32,
        dtype="float64",
        **CE,
    )
    ours, reference = SklearnMLP(**params), NumpyMLP(**params)
    for _ in range(3):
        ours.partial_fit(X, y, classes=np.arange(10))
        reference.partial_fit(X, y, classes=np.arange(10))
        np.testing.assert_array_equal(ours.epoch_correct_, reference.epoch_correct_)
    np.testing.assert_allclose(ours.loss_curve_, reference.loss_curve_, rtol=1e-9)
    for a, b in zip(_flat(ours), _flat(reference), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    start = NumpyMLP(**params)
    start._initialize(X, y, np.arange(10))
    assert np.abs(ours.coefs_[0] - start.coefs_[0]).max() > 0.05  # it moved: a real match


@pytest.mark.filterwarnings("error")  # e.g. MLPClassifier's warning on a short last batch
def test_partial_fit_is_one_epoch_and_records_it():
    X, y = _subset(50)
    model = SklearnMLP((8,), batch_size=7, learning_rate=0.5, **CE)
    model.partial_fit(X.astype(np.float64), y, classes=np.arange(10))
    assert model.n_iter_ == 1 and len(model.loss_curve_) == 1
    assert model.t_ == 8  # ceil(50 / 7) SGD steps
    assert model.epoch_correct_.shape == (50,) and model.epoch_correct_.dtype == bool
    assert model.coefs_[0].dtype == np.float32  # the default dtype, whatever X was
    model.partial_fit(X, y, classes=np.arange(10))
    assert model.n_iter_ == 2 and len(model.loss_curve_) == 2


@pytest.mark.parametrize("n_classes", [10, 2])  # two classes: MLPClassifier has one output
def test_loss_value_is_sklearns_log_loss_and_predictions_agree(n_classes):
    X, y = _subset(60)
    y = y % n_classes
    model = SklearnMLP((8,), learning_rate=0.5, max_epochs=3, dtype="float64", **CE).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (60, n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert model.loss_value(X, y) == pytest.approx(log_loss(y, proba), rel=1e-9)
    np.testing.assert_array_equal(model.predict(X), model.classes_[proba.argmax(axis=1)])
    n_outputs = n_classes if n_classes > 2 else 1
    assert model.n_params == 64 * 8 + 8 + 8 * n_outputs + n_outputs


def test_same_seed_same_weights_different_seed_different():
    X, y = _subset(60)
    a = SklearnMLP((8,), max_epochs=2, random_state=5, **CE).fit(X, y)
    b = SklearnMLP((8,), max_epochs=2, random_state=5, **CE).fit(X, y)
    c = SklearnMLP((8,), max_epochs=2, random_state=6, **CE).fit(X, y)
    for wa, wb in zip(_flat(a), _flat(b), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def test_learns_digits():
    X_train, y_train = _subset(1000)
    X_test, y_test = _subset(797, start=1000)
    model = SklearnMLP(
        (64,), activation="relu", learning_rate=0.1, batch_size=32, max_epochs=10, **CE
    ).fit(X_train, y_train)
    assert model.score(X_test, y_test) >= 0.9


def test_memorizes_100_random_labels():
    X, _ = _subset(100)
    y = np.random.default_rng(1).integers(0, 10, 100)
    model = SklearnMLP(
        (256,), activation="relu", learning_rate=0.1, momentum=0.9, batch_size=20, **CE
    )
    for _ in range(40):  # seeds 0-4 first fit these labels in 18-23 epochs
        model.partial_fit(X, y, classes=np.arange(10))
        if model.score(X, y) == 1.0:
            break
    assert model.score(X, y) == 1.0


@pytest.mark.filterwarnings("error")  # diverging must end in our error, not in warnings
@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_huge_learning_rate_diverges_with_a_clear_error(activation):
    X, y = _subset(60)
    model = SklearnMLP((16,), activation=activation, learning_rate=1e6, batch_size=10, **CE)
    with pytest.raises(DivergenceError, match=r"epoch \d+ .*smaller model\.learning_rate \(now"):
        model.fit(X, y)


@pytest.mark.parametrize("loss", ["mse", "squared"])
def test_quadratic_costs_are_refused_in_one_line_before_any_data(loss):
    from pathlib import Path

    import yaml

    from pipeline.settings import ModelSettings

    conf = Path(__file__).resolve().parents[1] / "conf" / "model" / "sklearn_mlp.yaml"
    with pytest.raises(ConfigError) as info:  # the settings, made before any data is loaded
        ModelSettings.from_config({**yaml.safe_load(conf.read_text()), "loss": loss})
    message = str(info.value)
    assert message.startswith(f"model.loss: '{loss}' is not allowed for model=sklearn_mlp")
    assert "'cross_entropy'" in message and "\n" not in message


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(activation="softsign"), "activation"),
        (dict(loss="hinge"), "loss"),
        (dict(loss="mse"), "loss"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(momentum=1.0), "momentum"),
        (dict(weight_decay=-1.0), "weight_decay"),
        (dict(batch_size=0), "batch_size"),
        (dict(dtype="float16"), "dtype"),
    ],
)
def test_invalid_parameters_raise_sklearns_error_naming_the_parameter(kwargs, name):
    X, y = _subset(20)
    with pytest.raises(InvalidParameterError, match=f"^The '{name}' parameter of SklearnMLP"):
        SklearnMLP(**{**CE, **kwargs}).fit(X, y)


def test_one_class_is_refused_with_a_clear_error():
    X, _ = _subset(5)
    with pytest.raises(ValueError, match=r"two classes to train; got one class, \[0\]"):
        SklearnMLP(**CE).fit(X, np.zeros(5, dtype=int))


def test_loss_and_predict_agree_with_loss_value_and_predict():
    X, y = load_digits(return_X_y=True)
    X = (X[:300] / 16).astype(np.float32)
    y = y[:300]
    for cls in (NumpyMLP, SklearnMLP):
        model = cls((16,), activation="relu", loss="cross_entropy", learning_rate=0.1, max_epochs=3)
        model.fit(X, y)
        loss, predictions = model.loss_and_predict(X, y)
        assert loss == model.loss_value(X, y)
        np.testing.assert_array_equal(predictions, model.predict(X))
