"""A multilayer perceptron written out in NumPy: forward pass, backpropagation, mini-batch SGD.

This is the network of the 3Blue1Brown videos (and of Nielsen's book) made fast and batched:
every layer works on a whole mini-batch ``(n_samples, n_features)`` at once, each activation's
derivative sits beside the activation (in :mod:`pipeline.models.layers`), and the names follow
the mathematics (``activations``, ``delta``). It speaks scikit-learn's estimator language
(``fit``, ``partial_fit``, ``predict_proba``, ``score``, ``coefs_``, ``intercepts_``,
``loss_curve_``) so it plugs into the same training loop as ``MLPClassifier``.

Three output/cost pairs (``OUTPUTS`` in :mod:`pipeline.models.layers`):

- ``loss="mse"``: sigmoid outputs and the videos' quadratic cost C = 1/(2n) sum ||y - a||^2;
- ``loss="cross_entropy"``: softmax outputs and the mean negative log-likelihood;
- ``loss="squared"``: linear outputs z and Belkin et al.'s (2019) C = 1/n sum ||z - y||^2.

Class probabilities (``predict_proba``, ``epoch_label_proba_``) are the softmax outputs
themselves; the sigmoid outputs normalised to sum to one; and, for the linear outputs, their
softmax, the usual reading of a network's outputs as probabilities (Bridle 1990, "Probabilistic
interpretation of feedforward classification network outputs"). That link is only a reading:
the squared loss and its gradient are taken on the raw outputs, and the predicted class is
the largest raw output.

Speed: an epoch should cost little more than its matrix products (``python -m pipeline.bench``
measures this). Each mini-batch is gathered into a reusable buffer, every layer writes into
preallocated arrays, the learning rate and the 1/n of the mean are folded into the output
layer's delta (the smallest array) so a weight update is one in-place subtraction, zero momentum
or weight decay costs nothing, and all large arrays stay in the model's dtype.
"""

from __future__ import annotations

import numpy as np

from pipeline.models.base import MLPBase, check_batch_loss
from pipeline.models.layers import OUTPUTS, Workspace, backward, forward, output_delta, softmax

_PREDICT_ROWS = 4096  # rows per forward pass when predicting: bounded memory, efficient BLAS


class NumpyMLP(MLPBase):
    """Multilayer perceptron trained by mini-batch SGD with momentum and L2 weight decay.

    The hyper-parameters and the epoch skeleton (seeded batch order, divergence guard) are
    ``MLPBase``'s; this class is the arithmetic: forward, backpropagation, the update.
    """

    # ------------------------------------------------------------------ set-up
    def _start(self, coefs, intercepts, classes, X, y) -> None:
        """Take the initial weights; momentum starts at rest."""
        self._restore(coefs, intercepts, classes)

    def _restore(self, coefs, intercepts, classes) -> None:
        self.classes_ = classes
        self.coefs_ = [w.astype(self._dtype, copy=False) for w in coefs]
        self.intercepts_ = [b.astype(self._dtype, copy=False) for b in intercepts]
        self._velocities = [np.zeros_like(p) for p in (*self.coefs_, *self.intercepts_)]

    def _optimizer_arrays(self) -> dict[str, np.ndarray]:
        """The momentum: one velocity per weight matrix and bias vector."""
        return {f"velocity_{i}": v for i, v in enumerate(self._velocities)}

    def _set_optimizer_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for i, v in enumerate(self._velocities):
            np.copyto(v, arrays[f"velocity_{i}"], casting="no")

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

    def _train_epoch(self, X, y, targets, order, limit):
        """One pass of mini-batch SGD over ``X`` in ``order``.

        Returns (summed loss, correct (n,), label probability (n,)), both per example in input
        order, as scored in its mini-batch before the update.
        """
        n, bs = X.shape[0], int(self.batch_size)
        ordered_targets = targets[order]  # batch b's targets are the slice [b*bs, (b+1)*bs)
        predicted = np.empty(n, dtype=np.intp)  # each example's predicted column, in order
        label_proba = np.empty(n, dtype=self._dtype)  # p(trained-on label), in order
        rows = np.arange(min(bs, n))
        work = Workspace.allocate(min(bs, n), self.coefs_, self.intercepts_, self._dtype)
        lr = float(self.learning_rate)
        total_loss = 0.0
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            m = len(idx)
            tb = ordered_targets[start : start + m]
            if X.dtype == self._dtype:  # gather the batch without allocating
                xb = np.take(X, idx, axis=0, out=work.x[:m], mode="clip")
            else:
                xb = work.x[:m]
                xb[...] = X[idx]
            activations = forward(self.coefs_, self.intercepts_, self.activation, xb, work.z)
            output = activations[-1]
            batch_loss = OUTPUTS[self.loss](output, tb) / m
            check_batch_loss(batch_loss, limit)
            np.argmax(output, axis=1, out=predicted[start : start + m])
            # p(label), read as predict_proba reads the outputs, before delta overwrites them
            if self.loss == "squared":  # linear outputs: their softmax
                label_proba[start : start + m] = softmax(output)[rows[:m], tb]
            else:
                label_proba[start : start + m] = output[rows[:m], tb]
                if self.loss == "mse":  # independent sigmoids: normalised
                    label_proba[start : start + m] /= output.sum(axis=1)
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
            total_loss += batch_loss * m
            self.t_ += 1
        correct = np.empty(n, dtype=bool)
        correct[order] = predicted == ordered_targets
        proba = np.empty(n, dtype=self._dtype)
        proba[order] = label_proba
        return total_loss, correct, proba

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

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, (n_samples, n_classes), in the model's dtype.

        With ``loss="cross_entropy"`` the softmax outputs themselves. With ``loss="mse"`` the
        sigmoid outputs are independent, so they are normalised to sum to one. With
        ``loss="squared"`` the outputs are linear (any real number): their softmax (module
        docstring). The predicted class is the largest output either way.
        """
        X = self._validated(X)
        with np.errstate(over="ignore"):  # saturated sigmoids are fine when only predicting
            output, _ = self._outputs(X)
        if self.loss == "mse":
            output += np.finfo(output.dtype).tiny  # all-saturated rows stay well defined
            output /= output.sum(axis=1, keepdims=True)
        elif self.loss == "squared":
            output = softmax(output)
        return output

    def predict(self, X) -> np.ndarray:
        """Predicted labels, (n_samples,): the class of the largest output.

        For ``loss="squared"`` the largest raw output, as training counts it correct: the
        softmax keeps the order, but rounded to the dtype it could tie two close outputs.
        """
        if self.loss != "squared":
            return super().predict(X)
        X = self._validated(X)
        with np.errstate(over="ignore"):
            output, _ = self._outputs(X)
        return self.classes_[output.argmax(axis=1)]

    def loss_and_predict(self, X, y) -> tuple[float, np.ndarray]:
        """Mean data loss over ``(X, y)`` and the predicted labels (n_samples,), in one pass."""
        X = self._validated(X)
        targets = self._encode(np.asarray(y))
        with np.errstate(over="ignore"):
            output, total = self._outputs(X, targets)
        return total / len(targets), self.classes_[output.argmax(axis=1)]
