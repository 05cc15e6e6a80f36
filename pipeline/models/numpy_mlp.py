"""A multilayer perceptron written out in NumPy: forward pass, backpropagation, mini-batch SGD.

This is the network of the 3Blue1Brown videos (and of Nielsen's book) made fast and batched:
every layer works on a whole mini-batch ``(n_samples, n_features)`` at once, each activation's
derivative sits beside the activation, and the names follow the mathematics (``activations``,
``delta``). It speaks scikit-learn's estimator language (``fit``, ``partial_fit``,
``predict_proba``, ``score``, ``coefs_``, ``intercepts_``, ``loss_curve_``) so it plugs into the
same training loop as ``MLPClassifier``.

Two output/cost pairs:

- ``loss="mse"``: sigmoid outputs and the videos' quadratic cost C = 1/(2n) sum ||y - a||^2;
- ``loss="cross_entropy"``: softmax outputs and the mean negative log-likelihood.

Speed: an epoch should cost little more than its matrix products (``python -m pipeline.bench``
measures this). Each mini-batch is gathered into a reusable buffer, every layer writes into
preallocated arrays, the learning rate and the 1/n of the mean are folded into the output
layer's delta (the smallest array) so a weight update is one in-place subtraction, zero momentum
or weight decay costs nothing, and all large arrays stay in the model's dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from pipeline.errors import ConfigError, DivergenceError

# Each hidden activation overwrites its pre-activation buffer z; its backward multiplies
# delta = dC/da in place by the derivative, written in terms of the activation's output a.


def _sigmoid(z: np.ndarray) -> np.ndarray:
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    return np.reciprocal(z, out=z)


def _sigmoid_backward(delta: np.ndarray, a: np.ndarray) -> None:
    delta *= a
    delta *= 1.0 - a  # sigma'(z) = a (1 - a)


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0, out=z)


def _relu_backward(delta: np.ndarray, a: np.ndarray) -> None:
    delta *= a > 0  # a boolean mask: 1 where the unit was active


def _tanh(z: np.ndarray) -> np.ndarray:
    return np.tanh(z, out=z)


def _tanh_backward(delta: np.ndarray, a: np.ndarray) -> None:
    delta *= 1.0 - a * a


# Hidden activation -> (forward, backward).
ACTIVATIONS = {
    "sigmoid": (_sigmoid, _sigmoid_backward),
    "relu": (_relu, _relu_backward),
    "tanh": (_tanh, _tanh_backward),
}
DTYPES = ("float32", "float64")
_PREDICT_ROWS = 4096  # rows per forward pass when predicting: bounded memory, efficient BLAS


# Each output function turns the logits z (n, k) in place into the output activations and
# returns the data loss summed over rows (0.0 without targets). Both work in float64: k is
# small, and the loss of a memorized example (1e-9, say) would round to 0 in float32.


def _softmax_cross_entropy(z: np.ndarray, targets: np.ndarray | None) -> float:
    z64 = z.astype(np.float64)
    rows = np.arange(len(z64))
    # Shift each row's largest logit to 0 so exp cannot overflow. (Row maxima and sums over
    # k ~ 10 columns: argmax + gather and einsum are ~5x faster here than .max/.sum(axis=1).)
    z64 -= z64[rows, z64.argmax(axis=1)][:, None]
    picked = None if targets is None else z64[rows, targets]  # (n,)
    np.exp(z64, out=z64)
    norm = np.einsum("ij->i", z64)[:, None]  # (n, 1), in [1, k]
    np.divide(z64, norm, out=z)  # the probabilities, back in the model's dtype
    if targets is None:
        return 0.0
    return float(np.log(norm).sum() - picked.sum())  # -log p_y = log norm - (z_y - max z)


def _sigmoid_quadratic(z: np.ndarray, targets: np.ndarray | None) -> float:
    a = _sigmoid(z)
    if targets is None:
        return 0.0
    diff = a.astype(np.float64)
    diff[np.arange(len(a)), targets] -= 1.0  # a - y
    return float(np.einsum("ij,ij->", diff, diff) / 2)


OUTPUTS = {"mse": _sigmoid_quadratic, "cross_entropy": _softmax_cross_entropy}


def _check_choice(key: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"model.{key}: {value!r} is not one of {', '.join(map(str, allowed))}")


@dataclass
class _Workspace:
    """Arrays every mini-batch of an epoch reuses; a shorter last batch uses their leading rows.

    ``x`` is (batch, n_features); ``z[l]`` and ``deltas[l]`` are (batch, sizes[l + 1]); the
    steps have the shapes of ``coefs_`` and ``intercepts_`` and hold learning rate x gradient.
    """

    x: np.ndarray
    z: list[np.ndarray]
    deltas: list[np.ndarray]
    coef_steps: list[np.ndarray]
    intercept_steps: list[np.ndarray]


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
        _check_choice("loss", self.loss, tuple(OUTPUTS))
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

    def _workspace(self, rows: int) -> _Workspace:
        widths = [w.shape[1] for w in self.coefs_]
        return _Workspace(
            x=np.empty((rows, self.n_features_in_), self._dtype),
            z=[np.empty((rows, k), self._dtype) for k in widths],
            deltas=[np.empty((rows, k), self._dtype) for k in widths[:-1]],
            coef_steps=[np.empty_like(w) for w in self.coefs_],
            intercept_steps=[np.empty_like(b) for b in self.intercepts_],
        )

    # ----------------------------------------------------------- forward/backward
    def _forward(self, X: np.ndarray, buffers=None) -> list[np.ndarray]:
        """Activations of every layer, input first: ``activations[l]`` is (n, sizes[l]).

        The last entry is left as the output layer's pre-activations (logits) for the output
        function to finish in place. With ``buffers`` (``_Workspace.z``) no array is allocated.
        """
        activations = [X]
        hidden, _ = ACTIVATIONS[self.activation]
        last = len(self.coefs_) - 1
        for i, (W, b) in enumerate(zip(self.coefs_, self.intercepts_, strict=True)):
            out = None if buffers is None else buffers[i][: len(X)]
            z = np.matmul(activations[-1], W, out=out)  # (n, fan_out)
            z += b
            activations.append(hidden(z) if i < last else z)
        return activations

    def _output_delta(self, output: np.ndarray, targets: np.ndarray, scale: float) -> np.ndarray:
        """Turn the output activations (n, k), in place, into ``scale`` x dC/dz of the output."""
        if self.loss == "mse":
            derivative = output * (1.0 - output)  # sigma'(z), taken before output changes
        output[np.arange(len(output)), targets] -= 1.0  # a - y
        if self.loss == "mse":
            output *= derivative
        output *= scale  # the 1/n of the mean, and in training the learning rate too
        return output

    def _backward(self, activations, delta, coef_grads, intercept_grads, deltas=None) -> None:
        """Backpropagate the output layer's ``delta`` (n, k) through every layer.

        Fills ``coef_grads[l]`` (fan_in, fan_out) and ``intercept_grads[l]`` (fan_out,) in
        place, scaled as ``delta`` is; ``deltas`` (``_Workspace.deltas``) saves allocations.
        """
        _, backward = ACTIVATIONS[self.activation]
        for layer in range(len(self.coefs_) - 1, -1, -1):
            np.matmul(activations[layer].T, delta, out=coef_grads[layer])
            np.sum(delta, axis=0, out=intercept_grads[layer])
            if layer > 0:  # the input layer needs no delta
                out = None if deltas is None else deltas[layer - 1][: len(delta)]
                delta = np.matmul(delta, self.coefs_[layer].T, out=out)  # dC/da, (n, fan_in)
                backward(delta, activations[layer])  # now dC/dz

    def _step(self, coef_steps, intercept_steps) -> None:
        """One SGD step in place; the steps hold learning rate x gradient of the mean loss."""
        if self.weight_decay:
            decay = float(self.learning_rate * self.weight_decay)
            for step, W in zip(coef_steps, self.coefs_, strict=True):
                step += decay * W
        params = (*self.coefs_, *self.intercepts_)
        steps = (*coef_steps, *intercept_steps)
        if self.momentum:
            mu = float(self.momentum)
            for p, step, v in zip(params, steps, self._velocities, strict=True):
                v *= mu
                v -= step
                p += v
        else:
            for p, step in zip(params, steps, strict=True):
                p -= step

    def _outputs(self, X, targets=None) -> tuple[np.ndarray, float]:
        """Output activations (n, k) of ``X``, a block of rows at a time, and the summed loss."""
        X = np.asarray(X)
        output = np.empty((len(X), len(self.classes_)), self._dtype)
        total = 0.0
        for start in range(0, len(X), _PREDICT_ROWS):
            rows = slice(start, start + _PREDICT_ROWS)
            z = self._forward(np.asarray(X[rows], dtype=self._dtype))[-1]
            total += OUTPUTS[self.loss](z, None if targets is None else targets[rows])
            output[rows] = z
        return output, total

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
        activations = self._forward(X)
        loss = OUTPUTS[self.loss](activations[-1], targets) / len(X)
        delta = self._output_delta(activations[-1], targets, 1.0 / len(X))
        coef_grads = [np.empty_like(W) for W in self.coefs_]
        intercept_grads = [np.empty_like(b) for b in self.intercepts_]
        self._backward(activations, delta, coef_grads, intercept_grads)
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
        targets = self._encode(y)
        n, bs = X.shape[0], int(self.batch_size)
        order = self._rng.permutation(n)
        ordered_targets = targets[order]  # batch b's targets are the slice [b*bs, (b+1)*bs)
        predicted = np.empty(n, dtype=np.intp)  # each example's predicted column, in order
        work = self._workspace(min(bs, n))
        lr = float(self.learning_rate)
        total_loss = 0.0
        # A loss 1000x that of an uninformed guess (log k for cross-entropy) has exploded;
        # the quadratic cost with sigmoid outputs is bounded and can only overflow.
        limit = 1000.0 * math.log(len(self.classes_)) if self.loss == "cross_entropy" else math.inf
        with np.errstate(over="raise", invalid="raise"):
            for start in range(0, n, bs):
                idx = order[start : start + bs]
                m = len(idx)
                tb = ordered_targets[start : start + m]
                try:
                    if X.dtype == self._dtype:  # gather the batch without allocating
                        xb = np.take(X, idx, axis=0, out=work.x[:m], mode="clip")
                    else:
                        xb = work.x[:m]
                        xb[...] = X[idx]
                    activations = self._forward(xb, work.z)
                    output = activations[-1]
                    batch_loss = OUTPUTS[self.loss](output, tb) / m
                    if not batch_loss <= limit:  # also catches NaN
                        raise FloatingPointError(f"batch loss {batch_loss:.3g}")
                    np.argmax(output, axis=1, out=predicted[start : start + m])
                    delta = self._output_delta(output, tb, lr / m)
                    self._backward(
                        activations, delta, work.coef_steps, work.intercept_steps, work.deltas
                    )
                    self._step(work.coef_steps, work.intercept_steps)
                except FloatingPointError as err:
                    raise DivergenceError(
                        f"training diverged in epoch {self.n_iter_ + 1} ({err}): "
                        f"try a smaller model.learning_rate (now {self.learning_rate})"
                    ) from None
                total_loss += batch_loss * m
                self.t_ += 1
        correct = np.empty(n, dtype=bool)
        correct[order] = predicted == ordered_targets
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
        with np.errstate(over="ignore"):  # saturated sigmoids are fine when only predicting
            output, _ = self._outputs(X)
        if self.loss == "mse":
            output += np.finfo(output.dtype).tiny  # all-saturated rows stay well defined
            output /= output.sum(axis=1, keepdims=True)
        return output

    def predict(self, X) -> np.ndarray:
        """Predicted labels, (n_samples,)."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def loss_value(self, X, y) -> float:
        """Mean data loss over ``(X, y)`` with the current weights (no weight decay)."""
        return self.loss_and_predict(X, y)[0]

    def loss_and_predict(self, X, y) -> tuple[float, np.ndarray]:
        """Mean data loss over ``(X, y)`` and the predicted labels (n_samples,), in one pass."""
        targets = self._encode(np.asarray(y))
        with np.errstate(over="ignore"):
            output, total = self._outputs(X, targets)
        return total / len(targets), self.classes_[output.argmax(axis=1)]
