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

``MLPClassifier`` only trains cross-entropy, so ``loss="mse"`` and ``loss="squared"`` are
refused (``_parameter_constraints``) rather than swapped. Every output comes from
``estimator_`` itself: probabilities and predictions from its ``predict_proba`` and
``predict``, the logits the loss is taken from from its own forward pass.
"""

from __future__ import annotations

import numpy as np
from sklearn.neural_network import MLPClassifier
from sklearn.utils._param_validation import StrOptions

from pipeline.models.base import MLPBase, check_batch_loss
from pipeline.models.layers import OUTPUTS

# Our activation names -> MLPClassifier's.
SKLEARN_ACTIVATIONS = {"sigmoid": "logistic", "relu": "relu", "tanh": "tanh"}


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Summed ``logsumexp(z) - z_y`` over the rows of ``logits`` (n, k), as NumpyMLP's loss.

    The layers' softmax output works in place: it gets a copy, never ``logits`` itself.
    """
    return OUTPUTS["cross_entropy"](logits.copy(), targets)


class SklearnMLP(MLPBase):
    """``MLPClassifier`` (solver="sgd") trained one epoch per ``partial_fit``, like ``NumpyMLP``.

    Parameters are ``MLPBase``'s. MLPClassifier receives them as ``hidden_layer_sizes``,
    ``activation`` (``sigmoid`` is its ``logistic``), ``learning_rate_init``, ``momentum``
    (``nesterovs_momentum=False``), ``alpha = weight_decay * batch_size`` (module docstring),
    ``batch_size``, ``max_iter``. ``loss`` must be ``"cross_entropy"``, the only loss
    MLPClassifier trains: ``"mse"`` or ``"squared"`` raises ``InvalidParameterError``, and
    since ``"mse"`` is ``MLPBase``'s default it must be set explicitly.

    Attributes
    ----------
    estimator_ : MLPClassifier
        The fitted scikit-learn model (its own ``loss_curve_`` is per step and includes the
        penalty; ours is per epoch and does not). ``coefs_``, ``intercepts_`` and ``classes_``
        are its.
    """

    # MLPBase's table, but MLPClassifier trains cross-entropy only.
    _parameter_constraints: dict = {
        **MLPBase._parameter_constraints,
        "loss": [StrOptions({"cross_entropy"})],
    }

    # ------------------------------------------------------------------ set-up
    def _start(self, coefs, intercepts, classes, X, y) -> None:
        """Build ``estimator_`` around the initial weights, with a fresh optimizer."""
        if len(classes) < 2:  # MLPClassifier's single logistic output needs two
            raise ValueError(
                f"SklearnMLP needs at least two classes to train; got one class, {classes.tolist()}"
            )
        if len(classes) == 2:
            # Two classes: MLPClassifier has one logistic output for the logit difference.
            coefs[-1] = coefs[-1][:, 1:] - coefs[-1][:, :1]
            intercepts[-1] = intercepts[-1][1:] - intercepts[-1][:1]
        self._build(X[:1], y[:1], classes, coefs, intercepts)

    def _restore(self, coefs, intercepts, classes) -> None:
        X = np.zeros((1, coefs[0].shape[0]), self._dtype)
        self._build(X, classes[:1], classes, coefs, intercepts)

    def _build(self, X1, y1, classes, coefs, intercepts) -> None:
        """An ``MLPClassifier`` holding ``coefs`` and ``intercepts`` (copied), ready to step.

        MLPClassifier sets up its bookkeeping (label binarizer, layer count, output
        activation) only inside a training call. It takes one throwaway step on the one
        example ``(X1, y1)``; then the weights are put in place and its optimizer dropped, so
        the first real step builds a fresh one (zero momentum) around these very arrays.
        """
        estimator = MLPClassifier(
            hidden_layer_sizes=tuple(map(int, self.hidden_layer_sizes)),
            activation=SKLEARN_ACTIVATIONS[self.activation],
            solver="sgd",
            alpha=self.weight_decay * int(self.batch_size),
            batch_size=1,
            learning_rate="constant",
            learning_rate_init=float(self.learning_rate),
            momentum=float(self.momentum),
            nesterovs_momentum=False,
            shuffle=False,
            max_iter=int(self.max_epochs),
            random_state=self.random_state,
        )
        estimator.partial_fit(X1.astype(self._dtype), y1, classes=classes)
        estimator.coefs_ = [w.astype(self._dtype, copy=True) for w in coefs]
        estimator.intercepts_ = [b.astype(self._dtype, copy=True) for b in intercepts]
        del estimator._optimizer
        estimator.loss_curve_, estimator.t_ = [], 0
        estimator.set_params(batch_size=int(self.batch_size))
        self.estimator_ = estimator

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

    def _logits(self, X: np.ndarray) -> np.ndarray:
        """Output pre-activations of ``X`` (n_samples, n_features), (n_samples, n_classes).

        MLPClassifier exposes only probabilities, and a cross-entropy taken from a clipped
        probability is capped (at -log(eps), about 16 in float32), so the loss is computed from
        the logits. They come from MLPClassifier's own forward pass (``_forward_pass_fast``)
        with its output function set aside for the call. With two classes the single logistic
        output is the logit of class 1.
        """
        estimator = self.estimator_
        output_function = estimator.out_activation_  # "softmax", or "logistic" for two classes
        estimator.out_activation_ = "identity"
        try:
            z = estimator._forward_pass_fast(X, check_input=False)
        finally:
            estimator.out_activation_ = output_function
        return np.hstack([np.zeros_like(z), z]) if z.shape[1] == 1 else z

    # ----------------------------------------------------------------- update
    def _train_epoch(self, X, y, targets, order, limit):
        """Score each mini-batch of ``order``, then give it to ``estimator_`` for one step.

        Returns (summed loss, correct (n,), label probability (n,)), per example in input order.
        """
        X = X.astype(self._dtype, copy=False)
        n, bs = X.shape[0], int(self.batch_size)
        correct = np.empty(n, dtype=bool)
        label_proba = np.empty(n, dtype=self._dtype)
        total_loss = 0.0
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            tb = targets[idx]
            logits = self._logits(X[idx])
            proba = logits.copy()  # the output function turns it into probabilities in place
            batch_loss = OUTPUTS["cross_entropy"](proba, tb) / len(idx)
            check_batch_loss(batch_loss, limit)
            correct[idx] = logits.argmax(axis=1) == tb
            label_proba[idx] = proba[np.arange(len(idx)), tb]
            self._step(X[idx], y[idx])
            total_loss += batch_loss * len(idx)
            self.t_ += 1
        return total_loss, correct, label_proba

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

    # ------------------------------------------------------------------ public
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities from ``estimator_``, (n_samples, n_classes)."""
        X = self._validated(X).astype(self._dtype, copy=False)
        with np.errstate(over="ignore"):
            return self.estimator_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        """Predicted labels from ``estimator_``, (n_samples,)."""
        X = self._validated(X).astype(self._dtype, copy=False)
        with np.errstate(over="ignore"):
            return self.estimator_.predict(X)

    def loss_and_predict(self, X, y) -> tuple[float, np.ndarray]:
        """Mean cross-entropy over ``(X, y)`` and the predicted labels (n_samples,), in one pass."""
        X = self._validated(X).astype(self._dtype, copy=False)
        with np.errstate(over="ignore"):
            logits = self._logits(X)
        loss = cross_entropy(logits, self._encode(np.asarray(y))) / len(logits)
        return loss, self.classes_[logits.argmax(axis=1)]
