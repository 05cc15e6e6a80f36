"""scikit-learn's ``MLPClassifier`` behind the same surface as ``NumpyMLP``.

A second, independent implementation of the same training rule: mini-batch SGD (constant
step, classical momentum, L2 weight decay) on softmax cross-entropy. ``estimator_`` is a real
``MLPClassifier``; this wrapper decides what it sees and records what happened:

- **Same start, same order.** Initial weights and batch order are drawn exactly as ``NumpyMLP``
  draws them from ``random_state``, so the two models follow the same trajectory up to rounding.
- **One ``partial_fit`` = one epoch.** Each mini-batch of a seeded order is first scored with
  the current weights (``loss_curve_``: mean data loss, no penalty; ``epoch_correct_``), then
  given to ``MLPClassifier.partial_fit`` for one SGD step. MLPClassifier keeps its optimizer,
  and so the momentum, across incremental calls.
- **Same weight decay.** ``NumpyMLP`` adds ``weight_decay * W`` to the gradient of the mean
  batch loss; MLPClassifier's ``_backprop`` adds ``alpha * W / n_batch``. So
  ``alpha = weight_decay * n_batch``, set per call so a short last batch is treated the same.

``MLPClassifier`` only trains cross-entropy, so ``loss="mse"`` is refused rather than swapped.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit  # the logistic function MLPClassifier itself uses
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.neural_network import MLPClassifier

from pipeline.errors import ConfigError, DivergenceError
from pipeline.models.numpy_mlp import NumpyMLP

# Our activation names -> MLPClassifier's.
SKLEARN_ACTIVATIONS = {"sigmoid": "logistic", "relu": "relu", "tanh": "tanh"}
_HIDDEN = {"logistic": expit, "relu": lambda z: np.maximum(z, 0.0), "tanh": np.tanh}


def _cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean of ``logsumexp(z) - z_y`` over rows of ``logits`` (n, k); exact, never log(0)."""
    z = logits.astype(np.float64)
    zmax = z.max(axis=1)
    log_norm = zmax + np.log(np.exp(z - zmax[:, None]).sum(axis=1))
    return float((log_norm - z[np.arange(len(z)), targets]).mean())


class SklearnMLP(ClassifierMixin, BaseEstimator):
    """``MLPClassifier`` (solver="sgd") trained one epoch per ``partial_fit``, like ``NumpyMLP``.

    Parameters
    ----------
    hidden_layer_sizes, activation, learning_rate, momentum, weight_decay, batch_size, \
max_epochs, dtype, random_state
        As in ``NumpyMLP`` (same defaults). MLPClassifier receives them as
        ``hidden_layer_sizes``, ``activation`` (``sigmoid`` is its ``logistic``),
        ``learning_rate_init``, ``momentum`` (``nesterovs_momentum=False``),
        ``alpha = weight_decay * batch_size`` (module docstring), ``batch_size``, ``max_iter``.
    loss : {"cross_entropy"}
        The only loss MLPClassifier trains; ``"mse"`` raises ``ConfigError``. The default is
        ``NumpyMLP``'s, so it must be set explicitly.

    Attributes
    ----------
    estimator_ : MLPClassifier
        The fitted scikit-learn model (its own ``loss_curve_`` is per step and includes the
        penalty; ours is per epoch and does not).
    loss_curve_ : list of float
        Mean data loss of each epoch, every example scored just before its batch's update.
    epoch_correct_ : ndarray of bool, shape (n_samples,)
        Which examples the last epoch classified correctly, in input order.
    n_iter_ : int
        Epochs trained. ``t_`` counts SGD steps.
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
        """Raise ``ConfigError`` for a value this model cannot train with."""
        if self.loss == "mse":
            raise ConfigError(
                "model.loss: 'mse' is not available for sklearn_mlp (MLPClassifier only trains "
                "cross-entropy); use model.loss=cross_entropy or model=numpy_mlp"
            )
        if self.loss != "cross_entropy":
            raise ConfigError(f"model.loss: {self.loss!r} is not one of cross_entropy")
        # Every other parameter means the same as in NumpyMLP, so it is checked the same way.
        NumpyMLP(**self.get_params())._validate_params()

    def _initialize(self, X: np.ndarray, y: np.ndarray, classes: np.ndarray) -> None:
        """Build ``estimator_`` holding NumpyMLP's initial weights for this seed; reset state."""
        self._validate_params()
        template = NumpyMLP(**self.get_params())
        template._initialize(X.shape[1], classes)  # the weights, then the batch-order generator
        self._rng = template._rng
        self._dtype = template._dtype
        estimator = MLPClassifier(
            hidden_layer_sizes=tuple(map(int, self.hidden_layer_sizes)),
            activation=SKLEARN_ACTIVATIONS[self.activation],
            solver="sgd",
            alpha=self.weight_decay * int(self.batch_size),
            batch_size=int(self.batch_size),
            learning_rate="constant",
            learning_rate_init=float(self.learning_rate),
            momentum=float(self.momentum),
            nesterovs_momentum=False,
            shuffle=False,
            max_iter=int(self.max_epochs),
            random_state=self.random_state,
        )
        # MLPClassifier sets up its bookkeeping (label binarizer, layer count, output
        # activation) only inside a training call. Let it take one throwaway step on one
        # example, then put the template's weights in place and drop its optimizer, so the
        # first real step builds a fresh one (zero momentum) around these very arrays.
        estimator.set_params(batch_size=1)
        estimator.partial_fit(X[:1].astype(self._dtype), y[:1], classes=classes)
        coefs = [w.copy() for w in template.coefs_]
        intercepts = [b.copy() for b in template.intercepts_]
        if len(classes) == 2:
            # Two classes: MLPClassifier has one logistic output for the logit difference.
            coefs[-1] = coefs[-1][:, 1:] - coefs[-1][:, :1]
            intercepts[-1] = intercepts[-1][1:] - intercepts[-1][:1]
        estimator.coefs_, estimator.intercepts_ = coefs, intercepts
        del estimator._optimizer
        estimator.loss_curve_, estimator.t_ = [], 0
        estimator.set_params(batch_size=int(self.batch_size))
        self.estimator_ = estimator
        self.loss_curve_ = []
        self.n_iter_ = 0
        self.t_ = 0

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices, ``coefs_[l]`` of shape (fan_in, fan_out)."""
        return self.estimator_.coefs_

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors, ``intercepts_[l]`` of shape (fan_out,)."""
        return self.estimator_.intercepts_

    @property
    def classes_(self) -> np.ndarray:
        """Sorted class labels, (n_classes,)."""
        return self.estimator_.classes_

    @property
    def n_params(self) -> int:
        """Number of trainable parameters (weights and biases)."""
        return int(sum(p.size for p in (*self.coefs_, *self.intercepts_)))

    # Labels -> column indices 0..n_classes-1, refusing unseen labels; it only reads classes_.
    _encode = NumpyMLP._encode

    def _logits(self, X: np.ndarray) -> np.ndarray:
        """Output pre-activations, (n_samples, n_classes), computed from ``estimator_``'s weights.

        MLPClassifier exposes only probabilities, and a cross-entropy taken from a clipped
        probability is capped (at -log(eps), about 16 in float32), so the loss is computed from
        the logits. With two classes the single logistic output is the logit of class 1.
        """
        hidden = _HIDDEN[self.estimator_.activation]
        a = X
        for W, b in zip(self.coefs_[:-1], self.intercepts_[:-1], strict=True):
            a = hidden(a @ W + b)  # (n, fan_out)
        z = a @ self.coefs_[-1] + self.intercepts_[-1]
        return np.hstack([np.zeros_like(z), z]) if z.shape[1] == 1 else z

    # ------------------------------------------------------------------ public
    def partial_fit(self, X, y, classes=None):
        """Train for exactly one epoch over ``(X, y)`` in a seeded random order.

        The first call needs ``classes`` (or takes ``np.unique(y)``); later calls ignore it.
        Each mini-batch is scored with the current weights and then given to
        ``estimator_.partial_fit`` for one SGD step. ``loss_curve_[-1]`` is the epoch's mean
        data loss and ``epoch_correct_`` (bool, (n_samples,)) says which examples were
        classified correctly.

        Raises
        ------
        DivergenceError
            If a computation overflows, the weights become non-finite, or a batch loss is not
            finite or exceeds 1000x the loss of an uninformed guess.
        """
        y = np.asarray(y)
        X = np.asarray(X)
        if not hasattr(self, "estimator_"):
            self._initialize(X, y, np.unique(y) if classes is None else np.unique(classes))
        X = X.astype(self._dtype, copy=False)
        targets = self._encode(y)
        n = X.shape[0]
        order = self._rng.permutation(n)
        correct = np.empty(n, dtype=bool)
        total_loss = 0.0
        bs = int(self.batch_size)
        limit = 1000.0 * math.log(len(self.classes_))  # 1000x an uninformed guess's loss
        with np.errstate(over="raise", invalid="raise"):
            for start in range(0, n, bs):
                idx = order[start : start + bs]
                tb = targets[idx]
                try:
                    logits = self._logits(X[idx])
                    batch_loss = _cross_entropy(logits, tb)
                    if not batch_loss <= limit:  # also catches NaN
                        raise FloatingPointError(f"batch loss {batch_loss:.3g}")
                    correct[idx] = logits.argmax(axis=1) == tb
                    self._step(X[idx], y[idx])
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

    def _step(self, Xb: np.ndarray, yb: np.ndarray) -> None:
        """One SGD step of ``estimator_`` on the batch ``Xb`` (m, n_features), ``yb`` (m,)."""
        m, bs, est = len(yb), int(self.batch_size), self.estimator_
        # MLPClassifier's penalty gradient is alpha * W / m, ours weight_decay * W: on a short
        # last batch alpha follows m (and batch_size too, or MLPClassifier warns and clips).
        if m != bs:
            est.set_params(batch_size=m, alpha=self.weight_decay * m)
        try:
            est.partial_fit(Xb, yb)
        except ValueError:  # MLPClassifier's check for non-finite weights after the step
            if all(np.isfinite(p).all() for p in (*est.coefs_, *est.intercepts_)):
                raise
            raise FloatingPointError("non-finite weights") from None
        finally:
            if m != bs:
                est.set_params(batch_size=bs, alpha=self.weight_decay * bs)

    def fit(self, X, y):
        """Train from a fresh initialisation for ``max_epochs`` epochs."""
        self.__dict__.pop("estimator_", None)
        for _ in range(int(self.max_epochs)):
            self.partial_fit(X, y)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities from ``estimator_``, (n_samples, n_classes)."""
        with np.errstate(over="ignore"):
            return self.estimator_.predict_proba(np.asarray(X, dtype=self._dtype))

    def predict(self, X) -> np.ndarray:
        """Predicted labels from ``estimator_``, (n_samples,)."""
        with np.errstate(over="ignore"):
            return self.estimator_.predict(np.asarray(X, dtype=self._dtype))

    def loss_value(self, X, y) -> float:
        """Mean cross-entropy over ``(X, y)`` with the current weights (no weight decay)."""
        return self.loss_and_predict(X, y)[0]

    def loss_and_predict(self, X, y) -> tuple[float, np.ndarray]:
        """Mean cross-entropy over ``(X, y)`` and the predicted labels (n_samples,), in one pass."""
        X = np.asarray(X, dtype=self._dtype)
        with np.errstate(over="ignore"):
            logits = self._logits(X)
        loss = _cross_entropy(logits, self._encode(np.asarray(y)))
        return loss, self.classes_[logits.argmax(axis=1)]
