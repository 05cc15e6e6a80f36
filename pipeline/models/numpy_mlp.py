"""A multilayer perceptron written out in NumPy: forward pass, backpropagation, mini-batch SGD.

This is the network of the 3Blue1Brown videos (and of Nielsen's book) made fast and batched:
every layer works on a whole mini-batch ``(n_samples, n_features)`` at once, each activation's
derivative sits beside the activation (in :mod:`pipeline.models.layers`), and the names follow
the mathematics (``activations``, ``delta``). It speaks scikit-learn's estimator language
(``fit``, ``partial_fit``, ``predict_proba``, ``score``, ``coefs_``, ``intercepts_``,
``loss_curve_``) so it plugs into the same training loop as ``MLPClassifier``.

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

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from pipeline.errors import DivergenceError
from pipeline.models.hyperparameters import check_hyperparameters
from pipeline.models.layers import OUTPUTS, Workspace, backward, forward, init_layers, output_delta

_PREDICT_ROWS = 4096  # rows per forward pass when predicting: bounded memory, efficient BLAS


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
        check_hyperparameters(self)

    def _initialize(self, n_features: int, classes: np.ndarray) -> None:
        """Draw the weights (Glorot/He uniform, as scikit-learn does) and reset all state."""
        self._validate_params()
        self.classes_ = np.asarray(classes)
        self.n_features_in_ = n_features
        self._dtype = np.dtype(self.dtype)
        self._rng = np.random.default_rng(self.random_state)
        sizes = [n_features, *map(int, self.hidden_layer_sizes), len(self.classes_)]
        self.coefs_, self.intercepts_ = init_layers(sizes, self.activation, self._rng, self._dtype)
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

    # ----------------------------------------------------------------- update
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
            xb = np.asarray(X[rows], dtype=self._dtype)
            z = forward(self.coefs_, self.intercepts_, self.activation, xb)[-1]
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
        activations = forward(self.coefs_, self.intercepts_, self.activation, X)
        loss = OUTPUTS[self.loss](activations[-1], targets) / len(X)
        delta = output_delta(self.loss, activations[-1], targets, 1.0 / len(X))
        coef_grads = [np.empty_like(W) for W in self.coefs_]
        intercept_grads = [np.empty_like(b) for b in self.intercepts_]
        backward(self.coefs_, self.activation, activations, delta, coef_grads, intercept_grads)
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
        work = Workspace.allocate(min(bs, n), self.coefs_, self.intercepts_, self._dtype)
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
                    activations = forward(
                        self.coefs_, self.intercepts_, self.activation, xb, work.z
                    )
                    output = activations[-1]
                    batch_loss = OUTPUTS[self.loss](output, tb) / m
                    if not batch_loss <= limit:  # also catches NaN
                        raise FloatingPointError(f"batch loss {batch_loss:.3g}")
                    np.argmax(output, axis=1, out=predicted[start : start + m])
                    delta = output_delta(self.loss, output, tb, lr / m)
                    backward(
                        self.coefs_,
                        self.activation,
                        activations,
                        delta,
                        work.coef_steps,
                        work.intercept_steps,
                        work.deltas,
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
