"""What both MLPs share: hyper-parameters, label encoding, the epoch skeleton, weights in and out.

``MLPBase`` is to ``NumpyMLP`` and ``SklearnMLP`` what scikit-learn's ``BaseMultilayerPerceptron``
is to ``MLPClassifier``: the hyper-parameters and their constraints (one table,
``_parameter_constraints``, in scikit-learn's own vocabulary and checked by its own
machinery), the input checks every scikit-learn estimator makes (``validate_data``,
``check_is_fitted``), the seeded initial weights and batch order, one ``partial_fit`` = one
epoch with the divergence guard and its message, and ``from_weights`` to rebuild a fitted model
from saved arrays. A subclass supplies only the arithmetic: ``_start`` (take the initial
weights), ``_train_epoch`` (one pass of mini-batch SGD, returning each example's running
correctness and label probability), scoring, and ``_restore`` (take saved weights).

The estimators speak scikit-learn, not the configuration: a bad value raises scikit-learn's
``InvalidParameterError`` naming the parameter, a model used before ``fit`` its
``NotFittedError``. Only the settings (``pipeline.settings``) translate these into config
keys such as ``model.learning_rate``.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from pipeline.errors import DivergenceError
from pipeline.models.layers import ACTIVATIONS, OUTPUTS, init_layers

DTYPES = ("float32", "float64")

_WIDTH = Interval(Integral, 1, None, closed="left")  # a hidden layer's number of units


class MLPBase(ClassifierMixin, BaseEstimator):
    """A multilayer perceptron trained by mini-batch SGD, one ``partial_fit`` per epoch.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int
        Width of each hidden layer; ``(16, 16)`` is the video network.
    activation : {"sigmoid", "relu", "tanh"}
        Hidden-layer activation.
    loss : {"mse", "cross_entropy", "squared"}
        ``mse`` pairs sigmoid outputs with the quadratic cost; ``cross_entropy`` pairs softmax
        outputs with the negative log-likelihood; ``squared`` leaves the outputs linear and
        takes Belkin et al.'s (2019) squared error to the one-hot label (``predict_proba``
        reads them through a softmax; training never does).
    learning_rate : float
        SGD step size (> 0).
    momentum : float
        Classical (heavy-ball) momentum in [0, 1).
    weight_decay : float
        L2 penalty coefficient on weights (not biases): each step adds ``weight_decay * W`` to
        the weight gradient.
    batch_size : int
        Mini-batch size; the last batch of an epoch may be smaller.
    max_epochs : int
        Epochs run by ``fit``.
    dtype : {"float32", "float64"}
        Precision of parameters and arithmetic.
    random_state : int
        Seed for initialisation and batch order; the only source of randomness.

    Attributes
    ----------
    coefs_, intercepts_ : lists of ndarray
        ``coefs_[l]`` is (fan_in, fan_out), ``intercepts_[l]`` (fan_out,).
    classes_ : ndarray (n_classes,)
    loss_curve_ : list of float
        Mean data loss of each epoch, every example scored just before its batch's update.
    epoch_correct_ : ndarray of bool, shape (n_samples,)
        Which examples the last epoch classified correctly, in input order.
    epoch_label_proba_ : ndarray of shape (n_samples,)
        The probability the last epoch gave each example's (trained-on) label, in input order
        (the same reading of the outputs as ``predict_proba``).
    n_features_in_ : int
        Input width, checked on every later call (``validate_data``).
    n_iter_ : int
        Epochs trained; ``t_`` counts SGD steps.
    """

    # Every hyper-parameter's allowed values, in the vocabulary of scikit-learn's own
    # estimators: the one table. The settings check each config key ``model.<name>`` against
    # it too (``check_parameter``), before any data is loaded.
    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like"],  # of widths: each one ``_WIDTH``
        "activation": [StrOptions(set(ACTIVATIONS))],
        "loss": [StrOptions(set(OUTPUTS))],
        "learning_rate": [Interval(Real, 0, math.inf, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, math.inf, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "dtype": [StrOptions(set(DTYPES))],
        "random_state": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        hidden_layer_sizes=(16, 16),
        activation="sigmoid",
        loss="mse",
        learning_rate=1.0,
        momentum=0.0,
        weight_decay=0.0,
        batch_size=32,
        max_epochs=30,
        dtype="float32",
        random_state=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.dtype = dtype
        self.random_state = random_state

    # ------------------------------------------------------------------ set-up
    @classmethod
    def check_parameter(cls, name: str, value) -> None:
        """Raise scikit-learn's ``InvalidParameterError`` if ``value`` is not allowed for ``name``.

        The check is ``_parameter_constraints[name]``; a list of hidden layer sizes must also
        be non-empty and each width a whole number >= 1 (a table entry cannot say so).
        """
        validate_parameter_constraints(
            {name: cls._parameter_constraints[name]}, {name: value}, caller_name=cls.__name__
        )
        if name == "hidden_layer_sizes":
            widths = list(value)
            if not widths or not all(_WIDTH.is_satisfied_by(w) for w in widths):
                raise InvalidParameterError(
                    f"The 'hidden_layer_sizes' parameter of {cls.__name__} must be a non-empty "
                    f"list of whole numbers >= 1. Got {value!r} instead."
                )

    def _validate_params(self) -> None:
        """Raise ``InvalidParameterError`` naming the first hyper-parameter that is invalid."""
        for name, value in self.get_params(deep=False).items():
            self.check_parameter(name, value)

    def _initialize(self, X: np.ndarray, y: np.ndarray, classes: np.ndarray) -> None:
        """Draw the initial weights (Glorot/He uniform, as scikit-learn does); reset all state.

        The generator seeded by ``random_state`` draws the weights first and then every
        epoch's batch order, so both models start alike and see the batches in the same order.
        """
        classes = np.asarray(classes)
        self.n_features_in_ = X.shape[1]
        self._dtype = np.dtype(self.dtype)
        self._rng = np.random.default_rng(self.random_state)
        sizes = [X.shape[1], *map(int, self.hidden_layer_sizes), len(classes)]
        coefs, intercepts = init_layers(sizes, self.activation, self._rng, self._dtype)
        self._start(coefs, intercepts, classes, X, y)
        self.loss_curve_ = []
        self.n_iter_ = 0
        self.t_ = 0

    @classmethod
    def from_weights(cls, params: dict, coefs, intercepts, classes) -> MLPBase:
        """A fitted model with the given hyper-parameters and weights, ready to predict."""
        model = cls(**params)
        model._validate_params()
        model.n_features_in_ = coefs[0].shape[0]
        model._dtype = np.dtype(model.dtype)
        model._rng = np.random.default_rng(model.random_state)
        model._restore(
            [np.asarray(w) for w in coefs], [np.asarray(b) for b in intercepts], np.asarray(classes)
        )
        model.loss_curve_, model.n_iter_, model.t_ = [], 0, 0
        return model

    def training_state(self) -> tuple[dict[str, np.ndarray], dict]:
        """Everything training needs to go on exactly as it would have: arrays and plain values.

        The weights, the optimizer's own arrays (``_optimizer_arrays``), the batch-order
        generator's state, the epoch and step counts and the loss curve. With
        :meth:`resume_training` a fresh model then trains on to the very same bits.
        """
        arrays = {f"coef_{i}": w for i, w in enumerate(self.coefs_)}
        arrays |= {f"intercept_{i}": b for i, b in enumerate(self.intercepts_)}
        arrays |= self._optimizer_arrays()
        values = {
            "params": {**self.get_params(), "hidden_layer_sizes": list(self.hidden_layer_sizes)},
            "classes": self.classes_.tolist(),
            "rng": self._rng.bit_generator.state,
            "n_iter_": self.n_iter_,
            "t_": self.t_,
            "loss_curve_": list(self.loss_curve_),
        }
        return arrays, values

    @classmethod
    def resume_training(cls, arrays: dict[str, np.ndarray], values: dict) -> MLPBase:
        """The model :meth:`training_state` described, ready to train on."""
        n_layers = len(values["params"]["hidden_layer_sizes"]) + 1
        coefs = [arrays[f"coef_{i}"] for i in range(n_layers)]
        intercepts = [arrays[f"intercept_{i}"] for i in range(n_layers)]
        model = cls.from_weights(values["params"], coefs, intercepts, values["classes"])
        model._set_optimizer_arrays(arrays)
        model._rng.bit_generator.state = values["rng"]
        model.n_iter_, model.t_ = values["n_iter_"], values["t_"]
        model.loss_curve_ = list(values["loss_curve_"])
        return model

    def _optimizer_arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} cannot save its training state yet")

    def _set_optimizer_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot restore its training state yet")

    @property
    def n_params(self) -> int:
        """Number of trainable parameters (weights and biases)."""
        return int(sum(p.size for p in (*self.coefs_, *self.intercepts_)))

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Map labels to column indices 0..n_classes-1, refusing unseen labels."""
        index = np.searchsorted(self.classes_, y)
        index = np.clip(index, 0, len(self.classes_) - 1)
        if not np.array_equal(self.classes_[index], y):
            unknown = sorted(set(np.asarray(y).tolist()) - set(self.classes_.tolist()))
            raise ValueError(
                f"labels {unknown[:5]} are not among the classes {self.classes_.tolist()}"
            )
        return index

    def _loss_limit(self) -> float:
        """A batch loss above this has exploded: 1000x an uninformed guess's (log k).

        The quadratic cost with sigmoid outputs is bounded and can only overflow.
        """
        return 1000.0 * math.log(len(self.classes_)) if self.loss == "cross_entropy" else math.inf

    def _validated(self, X) -> np.ndarray:
        """``X`` (n_samples, n_features) checked for a fitted model, as scikit-learn checks it.

        ``NotFittedError`` before ``fit``; ``ValueError`` for a wrong width, NaN, infinity,
        sparse or complex input. Numeric arrays pass as they are (no copy, no cast): each model
        casts a block of rows at a time into its own ``dtype``.
        """
        check_is_fitted(self)
        return validate_data(self, X, reset=False)

    # ------------------------------------------------------------------ public
    def partial_fit(self, X, y, classes=None):
        """Train for exactly one epoch over ``(X, y)`` in a seeded random order.

        The first call needs ``classes`` (or takes ``np.unique(y)``). Besides updating the
        weights it records, at no extra cost, how the epoch went *as it happened*: each
        example is scored in its mini-batch just before that batch's update.
        ``loss_curve_[-1]`` is the epoch's mean data loss, ``epoch_correct_`` (bool,
        (n_samples,)) says which examples were classified correctly and ``epoch_label_proba_``
        ((n_samples,)) the probability each was given of its label.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric; kept as it is (no copy), each mini-batch is cast to ``dtype``.
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), optional
            Every label training will see; only read on the first call.

        Raises
        ------
        InvalidParameterError
            On the first call, for a hyper-parameter ``_parameter_constraints`` refuses.
        ValueError
            For input scikit-learn's ``validate_data`` refuses, or a label not in ``classes``.
        DivergenceError
            If a computation overflows, the weights become non-finite, or a batch loss is not
            finite or exceeds ``_loss_limit``.
        """
        first_call = not hasattr(self, "classes_")
        if first_call:
            self._validate_params()
        X, y = validate_data(self, X, y, reset=first_call)
        check_classification_targets(y)
        if first_call:
            self._initialize(X, y, np.unique(y) if classes is None else np.unique(classes))
        targets = self._encode(y)
        n = X.shape[0]
        order = self._rng.permutation(n)
        with np.errstate(over="raise", invalid="raise"):
            try:
                total_loss, correct, label_proba = self._train_epoch(
                    X, y, targets, order, self._loss_limit()
                )
            except FloatingPointError as err:
                raise DivergenceError(
                    f"training diverged in epoch {self.n_iter_ + 1} ({err}): "
                    f"try a smaller model.learning_rate (now {self.learning_rate})"
                ) from None
        self.n_iter_ += 1
        self.loss_curve_.append(total_loss / n)
        self.epoch_correct_ = correct
        self.epoch_label_proba_ = label_proba
        return self

    def fit(self, X, y):
        """Train from a fresh initialisation for ``max_epochs`` epochs."""
        for fitted in [key for key in vars(self) if key.endswith("_") and not key.startswith("_")]:
            delattr(self, fitted)
        for _ in range(int(self.max_epochs)):
            self.partial_fit(X, y)
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted labels, (n_samples,): the most probable class."""
        proba = self.predict_proba(X)  # first: before fit, it raises NotFittedError
        return self.classes_[proba.argmax(axis=1)]

    def loss_value(self, X, y) -> float:
        """Mean data loss over ``(X, y)`` with the current weights (no weight decay)."""
        return self.loss_and_predict(X, y)[0]


def check_batch_loss(batch_loss: float, limit: float) -> None:
    """Raise ``FloatingPointError`` (turned into a ``DivergenceError``) for an exploded loss."""
    if not batch_loss <= limit:  # also catches NaN
        raise FloatingPointError(f"batch loss {batch_loss:.3g}")
