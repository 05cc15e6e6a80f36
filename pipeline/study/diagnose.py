"""Warnings about a trained network that learned nothing, and a likely reason why.

A network can end at chance level with a finite loss and no error: a step too large for ReLU
units can switch them off for every input ("dead" units, whose gradient is then zero for good),
and training goes on without learning. The numbers of such a run are real but say nothing of
the question asked, so the run says so. Plain NumPy over a fitted model's weights, no I/O.
"""

from __future__ import annotations

import numpy as np

from pipeline.models.layers import forward

# Training accuracy within this of chance (always answering the commonest class) is "nothing".
CHANCE_MARGIN = 0.02
# Share of a hidden layer's ReLUs that never fire before the layer counts as mostly dead.
DEAD_SHARE = 0.5
# Rows of the training set the dead-unit count looks at (a unit silent on all of them is dead).
DEAD_ROWS = 2048


def dead_units(coefs, intercepts, X: np.ndarray) -> list[float]:
    """For each hidden ReLU layer, the share of its units that output 0 for every row of ``X``.

    ``coefs[l]`` is (fan_in, fan_out) and ``intercepts[l]`` (fan_out,), as in ``coefs_`` and
    ``intercepts_``; ``X`` is (n, n_features).
    """
    activations = forward(coefs, intercepts, "relu", X)
    return [float(np.mean(a.max(axis=0) <= 0)) for a in activations[1:-1]]


def diagnose(model, X_train: np.ndarray, y_train: np.ndarray, train_accuracy: float) -> list[str]:
    """One-line warnings when training learned nothing (empty when all is well).

    Parameters
    ----------
    model : a fitted NumpyMLP or SklearnMLP (``coefs_``, ``intercepts_``, ``activation``,
        ``learning_rate``)
    X_train : ndarray (n_train, n_features); y_train : ndarray (n_train,), the labels trained on
    train_accuracy : the final training accuracy against ``y_train``
    """
    learning_rate = model.learning_rate
    chance = float(np.bincount(y_train).max() / len(y_train))
    if train_accuracy > chance + CHANCE_MARGIN:
        return []
    warnings = [
        f"training accuracy {train_accuracy:.3f} is chance level ({chance:.3f}, always "
        "answering the commonest class): the network learned nothing"
    ]
    if model.activation == "relu":
        rows = X_train[:DEAD_ROWS]
        for layer, share in enumerate(dead_units(model.coefs_, model.intercepts_, rows), 1):
            if share >= DEAD_SHARE:
                warnings.append(
                    f"{share:.0%} of the ReLUs in hidden layer {layer} never fire on "
                    f"{len(rows):,} training images (dead units): "
                    f"model.learning_rate={learning_rate:g} is probably too large"
                )
    if len(warnings) == 1:
        warnings[0] += f"; try another model.learning_rate (now {learning_rate:g}) or more epochs"
    return warnings
