"""A multilayer perceptron written out in NumPy: forward pass, backpropagation, mini-batch SGD.

This is the network of the 3Blue1Brown videos (and of Nielsen's book) made fast and batched:
every layer works on a whole mini-batch ``(n_samples, n_features)`` at once, each activation's
derivative sits beside the activation, and the names follow the mathematics (``activations``,
``deltas``). It speaks scikit-learn's estimator language (``fit``, ``partial_fit``,
``predict_proba``, ``score``, ``coefs_``, ``intercepts_``, ``loss_curve_``) so it plugs into the
same training loop as ``MLPClassifier``.

Two output/cost pairs:

- ``loss="mse"``: sigmoid outputs and the videos' quadratic cost C = 1/(2n) sum ||y - a||^2;
- ``loss="cross_entropy"``: softmax outputs and the mean negative log-likelihood.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from pipeline.errors import ConfigError, DivergenceError


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # In place: z is a fresh pre-activation buffer nobody else holds.
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    return np.reciprocal(z, out=z)


def _sigmoid_derivative(a: np.ndarray) -> np.ndarray:
    return a * (1.0 - a)


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0, out=z)


def _relu_derivative(a: np.ndarray) -> np.ndarray:
    return (a > 0).astype(a.dtype)


def _tanh(z: np.ndarray) -> np.ndarray:
    return np.tanh(z, out=z)


def _tanh_derivative(a: np.ndarray) -> np.ndarray:
    return 1.0 - a * a


# Activation and its derivative, the derivative written in terms of the activation's output.
ACTIVATIONS = {"sigmoid": _sigmoid, "relu": _relu, "tanh": _tanh}
DERIVATIVES = {"sigmoid": _sigmoid_derivative, "relu": _relu_derivative, "tanh": _tanh_derivative}
LOSSES = ("mse", "cross_entropy")
DTYPES = ("float32", "float64")


def _softmax(z: np.ndarray) -> np.ndarray:
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _check_choice(key: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"model.{key}: {value!r} is not one of {', '.join(map(str, allowed))}")


class NumpyMLP(ClassifierMixin, BaseEstimator):
    """Multilayer perceptron trained by mini-batch SGD with momentum and L2 weight decay.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int
        Width of each hidden layer; ``(16, 16)`` is the video network.
    activation : {"sigmoid", "relu", "tanh"}
        Hidden-layer activation.
    loss : {"mse", "cross_entropy"}
        ``mse`` pairs sigmoid outputs with the quadratic cost; ``cross_entropy`` pairs softmax
        outputs with the negative log-likelihood.
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
    """

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
    def _validate_params(self) -> None:
        _check_choice("activation", self.activation, tuple(ACTIVATIONS))
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("dtype", self.dtype, DTYPES)
        sizes = tuple(self.hidden_layer_sizes)
        if not sizes or any(int(h) != h or h < 1 for h in sizes):
            raise ConfigError(
                f"model.hidden_layer_sizes: every layer needs at least 1 unit, got {list(sizes)}"
            )
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ConfigError(f"model.learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"model.momentum must be in [0, 1), got {self.momentum}")
        if not self.weight_decay >= 0:
            raise ConfigError(f"model.weight_decay must be >= 0, got {self.weight_decay}")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise ConfigError(
                f"model.batch_size must be a whole number >= 1, got {self.batch_size}"
            )
        if int(self.max_epochs) != self.max_epochs or self.max_epochs < 1:
            raise ConfigError(
                f"model.max_epochs must be a whole number >= 1, got {self.max_epochs}"
            )

    def _initialize(self, n_features: int, classes: np.ndarray) -> None:
        """Draw the weights (Glorot/He uniform, as scikit-learn does) and reset all state."""
        self._validate_params()
        self.classes_ = np.asarray(classes)
        self.n_features_in_ = n_features
        self._dtype = np.dtype(self.dtype)
        self._rng = np.random.default_rng(self.random_state)
        sizes = [n_features, *map(int, self.hidden_layer_sizes), len(self.classes_)]
        self.coefs_, self.intercepts_ = [], []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            hidden_relu = self.activation == "relu" and i < len(sizes) - 2
            if hidden_relu:
                bound = math.sqrt(6.0 / fan_in)  # He: keeps ReLU activations' variance
            else:
                factor = 2.0 if self.activation == "sigmoid" else 6.0  # sklearn's Glorot factors
                bound = math.sqrt(factor / (fan_in + fan_out))
            self.coefs_.append(
                self._rng.uniform(-bound, bound, (fan_in, fan_out)).astype(self._dtype)
            )
            self.intercepts_.append(self._rng.uniform(-bound, bound, fan_out).astype(self._dtype))
        self._velocities = [np.zeros_like(p) for p in (*self.coefs_, *self.intercepts_)]
        self.loss_curve_ = []
        self.n_iter_ = 0
        self.t_ = 0

    @property
    def n_params(self) -> int:
        """Number of trainable parameters (weights and biases)."""
        return int(sum(w.size for w in self.coefs_) + sum(b.size for b in self.intercepts_))

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

    # ----------------------------------------------------------- forward/backward
    def _forward(self, X: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Activations of every layer, input first, and the output layer's pre-activations.

        ``activations[l]`` is (n_samples, sizes[l]); ``logits`` is (n_samples, n_classes).
        """
        activations = [X]
        hidden = ACTIVATIONS[self.activation]
        last = len(self.coefs_) - 1
        for i, (W, b) in enumerate(zip(self.coefs_, self.intercepts_, strict=True)):
            z = activations[-1] @ W  # (n, fan_out), a fresh buffer the activation reuses
            z += b
            if i < last:
                activations.append(hidden(z))
        logits = z.copy()
        activations.append(_sigmoid(z) if self.loss == "mse" else _softmax(z))
        return activations, logits

    def _data_loss(self, output: np.ndarray, logits: np.ndarray, targets: np.ndarray) -> float:
        """Mean data loss of ``output``/``logits`` (n, k) against integer ``targets`` (n,)."""
        n = output.shape[0]
        rows = np.arange(n)
        if self.loss == "mse":
            diff = output.copy()
            diff[rows, targets] -= 1.0
            return float(np.einsum("ij,ij->", diff, diff, dtype=np.float64) / (2 * n))
        # -log softmax(z)_y = logsumexp(z) - z_y, computed stably (no log of an underflowed 0).
        z = logits.astype(np.float64)
        zmax = z.max(axis=1)
        log_norm = zmax + np.log(np.exp(z - zmax[:, None]).sum(axis=1))
        return float((log_norm - z[rows, targets]).mean())

    def _backward(self, activations, targets):
        """Gradients of the mean data loss for one batch, by backpropagation.

        Returns ``(coef_grads, intercept_grads)`` shaped like ``coefs_`` and ``intercepts_``.
        """
        output = activations[-1]
        n = output.shape[0]
        # delta = dC/dz at the output layer, already divided by n for the mean.
        delta = output.copy()
        delta[np.arange(n), targets] -= 1.0
        if self.loss == "mse":
            delta *= _sigmoid_derivative(output)  # (a - y) * sigma'(z)
        delta *= 1.0 / n
        derivative = DERIVATIVES[self.activation]
        n_layers = len(self.coefs_)
        coef_grads, intercept_grads = [None] * n_layers, [None] * n_layers
        for layer in range(n_layers - 1, -1, -1):
            coef_grads[layer] = activations[layer].T @ delta  # (fan_in, fan_out)
            intercept_grads[layer] = delta.sum(axis=0)
            if layer > 0:  # the input layer needs no delta
                delta = delta @ self.coefs_[layer].T
                delta *= derivative(activations[layer])
        return coef_grads, intercept_grads

    def _update(self, coef_grads, intercept_grads) -> None:
        """One SGD step with momentum and L2 weight decay, in place."""
        lr, mu = self._dtype.type(self.learning_rate), self._dtype.type(self.momentum)
        if self.weight_decay:
            wd = self._dtype.type(self.weight_decay)
            for g, W in zip(coef_grads, self.coefs_, strict=True):
                g += wd * W
        params = (*self.coefs_, *self.intercepts_)
        grads = (*coef_grads, *intercept_grads)
        for p, g, v in zip(params, grads, self._velocities, strict=True):
            if mu:
                v *= mu
                v -= lr * g
                p += v
            else:
                p -= lr * g

    # ------------------------------------------------------------------ public
    def loss_and_gradients(self, X, y):
        """Mean data loss over ``(X, y)`` (no weight decay) and its exact gradients.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)

        Returns
        -------
        loss : float
        coef_grads : list of ndarray, shapes of ``coefs_``
        intercept_grads : list of ndarray, shapes of ``intercepts_``
        """
        X = np.asarray(X, dtype=self._dtype)
        targets = self._encode(np.asarray(y))
        activations, logits = self._forward(X)
        loss = self._data_loss(activations[-1], logits, targets)
        coef_grads, intercept_grads = self._backward(activations, targets)
        return loss, coef_grads, intercept_grads

    def partial_fit(self, X, y, classes=None):
        """Train for exactly one epoch over ``(X, y)`` in a seeded random order.

        The first call needs ``classes`` (or takes ``np.unique(y)``). Besides updating the
        weights it records, at no extra cost, how the epoch went *as it happened*: each
        example is scored in its mini-batch just before that batch's update.
        ``loss_curve_[-1]`` is the epoch's mean data loss and ``epoch_correct_`` (bool,
        (n_samples,)) says which examples were classified correctly.

        Raises
        ------
        DivergenceError
            If an activation overflows, or a batch loss is not finite or exceeds 1000x the
            loss of an uninformed guess.
        """
        X = np.asarray(X)
        y = np.asarray(y)
        if not hasattr(self, "coefs_"):
            self._initialize(X.shape[1], np.unique(y) if classes is None else np.unique(classes))
        if X.dtype != self._dtype:
            X = X.astype(self._dtype)
        targets = self._encode(y)
        n = X.shape[0]
        order = self._rng.permutation(n)
        correct = np.empty(n, dtype=bool)
        total_loss = 0.0
        bs = int(self.batch_size)
        # A loss 1000x that of an uninformed guess (log k for cross-entropy) has exploded;
        # the quadratic cost with sigmoid outputs is bounded and can only overflow.
        limit = 1000.0 * math.log(len(self.classes_)) if self.loss == "cross_entropy" else math.inf
        with np.errstate(over="raise", invalid="raise"):
            for start in range(0, n, bs):
                idx = order[start : start + bs]
                tb = targets[idx]
                try:
                    activations, logits = self._forward(X[idx])
                    batch_loss = self._data_loss(activations[-1], logits, tb)
                    if not batch_loss <= limit:  # also catches NaN
                        raise FloatingPointError(f"batch loss {batch_loss:.3g}")
                    correct[idx] = activations[-1].argmax(axis=1) == tb
                    self._update(*self._backward(activations, tb))
                except FloatingPointError as err:
                    raise DivergenceError(
                        f"training diverged in epoch {self.n_iter_ + 1} ({err}): "
                        f"try a smaller model.learning_rate (now {self.learning_rate})"
                    ) from None
                total_loss += batch_loss * len(idx)
                self.t_ += 1
        self.n_iter_ += 1
        self.loss_curve_.append(total_loss / n)
        self.epoch_correct_ = correct
        return self

    def fit(self, X, y):
        """Train from a fresh initialisation for ``max_epochs`` epochs."""
        for attr in ("coefs_", "intercepts_"):
            self.__dict__.pop(attr, None)
        for _ in range(int(self.max_epochs)):
            self.partial_fit(X, y)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, (n_samples, n_classes).

        With ``loss="mse"`` the sigmoid outputs are independent, so they are normalised to sum
        to one; the predicted class is the same either way.
        """
        X = np.asarray(X, dtype=self._dtype)
        with np.errstate(over="ignore"):  # saturated sigmoids are fine when only predicting
            output = self._forward(X)[0][-1]
        if self.loss == "mse":
            output += np.finfo(output.dtype).tiny  # all-saturated rows stay well defined
            output /= output.sum(axis=1, keepdims=True)
        return output

    def predict(self, X) -> np.ndarray:
        """Predicted labels, (n_samples,)."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def loss_value(self, X, y) -> float:
        """Mean data loss over ``(X, y)`` with the current weights (no weight decay)."""
        X = np.asarray(X, dtype=self._dtype)
        with np.errstate(over="ignore"):
            activations, logits = self._forward(X)
        return self._data_loss(activations[-1], logits, self._encode(np.asarray(y)))
