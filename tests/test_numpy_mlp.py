"""The NumPy MLP: exact gradients, memorization, sklearn conventions, divergence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from pipeline.errors import ConfigError, DivergenceError
from pipeline.models.numpy_mlp import NumpyMLP
from pipeline.settings import ModelSettings

ROOT = Path(__file__).resolve().parents[1]


def _tiny_problem(seed=0, n=7, n_features=6, n_classes=3):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, n_features))
    y = rng.integers(0, n_classes, n)
    return X, y


def _flat(model):
    return [*model.coefs_, *model.intercepts_]


# float32 needs a larger step (rounding error / eps) and looser tolerances than float64.
PRECISION = {
    "float64": dict(eps=1e-6, rtol=1e-5, atol=1e-8),
    "float32": dict(eps=1e-3, rtol=2e-3, atol=5e-5),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_gradients_match_finite_differences(activation, loss, dtype):
    X, y = _tiny_problem()
    model = NumpyMLP((5, 4), activation=activation, loss=loss, dtype=dtype, random_state=3)
    model._initialize(X, y, np.arange(3))
    _, coef_grads, intercept_grads = model.loss_and_gradients(X, y)
    analytic = [*coef_grads, *intercept_grads]
    eps, rtol, atol = PRECISION[dtype].values()
    for param, grad in zip(_flat(model), analytic, strict=True):
        assert grad.dtype == param.dtype == np.dtype(dtype)
        numeric = np.zeros(param.shape)
        for i in np.ndindex(param.shape):
            old = param[i]
            param[i] = old + eps
            up, up_at = model.loss_value(X, y), float(param[i])
            param[i] = old - eps
            down, down_at = model.loss_value(X, y), float(param[i])
            param[i] = old
            numeric[i] = (up - down) / (up_at - down_at)  # the step actually stored
        np.testing.assert_allclose(grad, numeric, rtol=rtol, atol=atol)


def test_float32_gradients_agree_with_float64():
    X, y = _tiny_problem(n=20)
    m64 = NumpyMLP((8,), activation="tanh", loss="cross_entropy", dtype="float64")
    m64._initialize(X, y, np.arange(3))
    m32 = NumpyMLP((8,), activation="tanh", loss="cross_entropy", dtype="float32")
    m32._initialize(X, y, np.arange(3))
    m32.coefs_ = [w.astype(np.float32) for w in m64.coefs_]
    m32.intercepts_ = [b.astype(np.float32) for b in m64.intercepts_]
    _, g64, _ = m64.loss_and_gradients(X, y)
    _, g32, _ = m32.loss_and_gradients(X, y)
    assert all(g.dtype == np.float32 for g in g32)
    for a, b in zip(g32, g64, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6)


def test_confident_cross_entropy_is_not_rounded_to_zero_in_float32():
    # A memorized example's loss (here 2 exp(-25) ~ 3e-11) is far below float32's resolution
    # near 1: the loss is taken in float64 from the logits, so it is still measured.
    model = NumpyMLP((3,), activation="relu", loss="cross_entropy", dtype="float32")
    model._initialize(np.zeros((1, 3)), None, np.arange(3))
    model.coefs_ = [np.eye(3, dtype=np.float32), 25 * np.eye(3, dtype=np.float32)]
    model.intercepts_ = [np.zeros(3, np.float32), np.zeros(3, np.float32)]
    X, y = np.eye(3, dtype=np.float32), np.arange(3)  # logits: 25 for the right class, else 0
    assert model.loss_value(X, y) == pytest.approx(np.log1p(2 * np.exp(-25.0)), rel=1e-6)
    model.set_params(learning_rate=1e-12).partial_fit(X, y)
    assert model.loss_curve_[-1] == pytest.approx(np.log1p(2 * np.exp(-25.0)), rel=1e-6)


def test_training_keeps_the_models_dtype():
    X, y = _tiny_problem(n=50)  # float64 data into a float32 model
    model = NumpyMLP((8,), momentum=0.9, weight_decay=0.01, dtype="float32").fit(X, y)
    assert all(p.dtype == np.float32 for p in (*_flat(model), *model._velocities))
    assert model.predict_proba(X).dtype == np.float32


def test_a_float64_model_trains_the_same_on_float32_data():
    X, y = _tiny_problem(n=50)
    X32 = X.astype(np.float32)
    a = NumpyMLP((8,), dtype="float64", max_epochs=3, batch_size=7).fit(X32, y)
    b = NumpyMLP((8,), dtype="float64", max_epochs=3, batch_size=7).fit(X32.astype(np.float64), y)
    for wa, wb in zip(_flat(a), _flat(b), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_predicting_in_blocks_of_rows_changes_nothing():
    rng = np.random.default_rng(2)
    X, y = rng.uniform(0, 1, (5000, 6)), rng.integers(0, 3, 5000)  # more rows than one block
    model = NumpyMLP((8,), loss="cross_entropy", max_epochs=2).fit(X[:100], y[:100])
    parts = np.vstack([model.predict_proba(X[:10]), model.predict_proba(X[10:])])
    np.testing.assert_allclose(model.predict_proba(X), parts, rtol=1e-6)
    halves = (model.loss_value(X[:2500], y[:2500]) + model.loss_value(X[2500:], y[2500:])) / 2
    assert model.loss_value(X, y) == pytest.approx(halves, rel=1e-9)


def test_memorizes_100_random_labels():
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, (100, 64)).astype(np.float32)
    y = rng.integers(0, 10, 100)
    model = NumpyMLP(
        (256,),
        activation="relu",
        loss="cross_entropy",
        learning_rate=0.1,
        momentum=0.9,
        batch_size=10,
        max_epochs=200,
        random_state=0,
    )
    model.fit(X, y)
    assert model.score(X, y) == 1.0


def test_video_network_has_13002_parameters():
    model = NumpyMLP((16, 16))
    model._initialize(np.zeros((1, 784)), None, np.arange(10))
    assert model.n_params == 13_002
    assert [w.shape for w in model.coefs_] == [(784, 16), (16, 16), (16, 10)]
    assert model.coefs_[0].dtype == np.float32


def test_partial_fit_is_one_epoch_and_records_it():
    X, y = _tiny_problem(n=50)
    model = NumpyMLP((8,), batch_size=7, learning_rate=0.5)
    model.partial_fit(X, y, classes=np.arange(3))
    assert model.n_iter_ == 1 and len(model.loss_curve_) == 1
    assert model.t_ == 8  # ceil(50 / 7) updates
    assert model.epoch_correct_.shape == (50,)
    model.partial_fit(X, y)
    assert model.n_iter_ == 2 and len(model.loss_curve_) == 2


def test_running_loss_is_the_mean_of_pre_update_batch_losses():
    X, y = _tiny_problem(n=30)
    model = NumpyMLP((8,), batch_size=30, learning_rate=0.5, loss="cross_entropy")
    model._initialize(X, y, np.arange(3))
    before = model.loss_value(X, y)
    predicted = model.predict(X)
    model.partial_fit(X, y)
    assert model.loss_curve_[0] == pytest.approx(before, rel=1e-6)
    np.testing.assert_array_equal(model.epoch_correct_, predicted == y)


def test_predict_proba_rows_sum_to_one_and_predict_agrees():
    X, y = _tiny_problem(n=40)
    for loss in ("mse", "cross_entropy"):
        model = NumpyMLP((8,), loss=loss, max_epochs=3).fit(X, y)
        proba = model.predict_proba(X)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(model.predict(X), model.classes_[proba.argmax(axis=1)])


def test_same_seed_same_weights_different_seed_different():
    X, y = _tiny_problem(n=40)
    a = NumpyMLP((8,), max_epochs=3, random_state=5).fit(X, y)
    b = NumpyMLP((8,), max_epochs=3, random_state=5).fit(X, y)
    c = NumpyMLP((8,), max_epochs=3, random_state=6).fit(X, y)
    for wa, wb in zip(_flat(a), _flat(b), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def test_weight_decay_shrinks_weights():
    X, y = _tiny_problem(n=40)
    plain = NumpyMLP((8,), max_epochs=20, random_state=1).fit(X, y)
    decayed = NumpyMLP((8,), max_epochs=20, weight_decay=0.5, random_state=1).fit(X, y)
    assert np.linalg.norm(decayed.coefs_[0]) < np.linalg.norm(plain.coefs_[0])


@pytest.mark.parametrize("kwargs", [dict(), dict(activation="relu", loss="cross_entropy")])
def test_huge_learning_rate_diverges_with_a_clear_error(kwargs):
    X, y = _tiny_problem(n=60, n_features=20)
    model = NumpyMLP((16,), learning_rate=1e6, batch_size=10, **kwargs)
    with pytest.raises(DivergenceError, match="smaller model.learning_rate"):
        model.fit(X, y)


INVALID = [
    (dict(activation="softsign"), "activation"),
    (dict(loss="hinge"), "loss"),
    (dict(learning_rate=-1.0), "learning_rate"),
    (dict(learning_rate=float("nan")), "learning_rate"),
    (dict(hidden_layer_sizes=(16, 0)), "hidden_layer_sizes"),
    (dict(hidden_layer_sizes=()), "hidden_layer_sizes"),
    (dict(momentum=1.0), "momentum"),
    (dict(weight_decay=float("inf")), "weight_decay"),
    (dict(batch_size=0), "batch_size"),
    (dict(max_epochs=2.5), "max_epochs"),
    (dict(dtype="float16"), "dtype"),
]


@pytest.mark.parametrize("kwargs, name", INVALID)
def test_invalid_parameters_raise_sklearns_error_naming_the_parameter(kwargs, name):
    # The estimator speaks scikit-learn, not the config: no "model." key in its message.
    X, y = _tiny_problem()
    with pytest.raises(InvalidParameterError, match=f"^The '{name}' parameter of NumpyMLP"):
        NumpyMLP(**kwargs).fit(X, y)


@pytest.mark.parametrize("kwargs, name", INVALID)
def test_the_settings_name_the_config_key(kwargs, name):
    # The settings edge, before any data is loaded: the same table, the config's key.
    conf = yaml.safe_load((ROOT / "conf" / "model" / "numpy_mlp.yaml").read_text())
    with pytest.raises(ConfigError, match=rf"^model\.{name}: .* for model=numpy_mlp") as info:
        ModelSettings.from_config({**conf, **kwargs})
    assert "\n" not in str(info.value)


def test_unfitted_model_raises_not_fitted_error():
    X, _ = _tiny_problem()
    for method in ("predict", "predict_proba"):
        with pytest.raises(NotFittedError):
            getattr(NumpyMLP(), method)(X)


def test_input_validation_neither_copies_nor_casts():
    # scikit-learn's validate_data passes numeric arrays as they are; each mini-batch is cast
    # to the model's dtype (see test_a_float64_model_trains_the_same_on_float32_data).
    X, y = _tiny_problem(n=30)
    X32 = X.astype(np.float32)
    model = NumpyMLP((8,), dtype="float64", max_epochs=1).fit(X32, y)
    assert model._validated(X32) is X32
    with pytest.raises(ValueError, match="features"):
        model.predict(X32[:, :-1])
