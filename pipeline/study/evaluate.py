"""Held-out evaluation: loss, accuracy and the confusion matrix of a fitted classifier."""

from __future__ import annotations

import numpy as np


def evaluate(model, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Mean data loss and accuracy of ``model`` on ``(X, y)``.

    Parameters
    ----------
    model : a fitted NumpyMLP or SklearnMLP
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)

    Returns
    -------
    dict with ``loss`` and ``accuracy``
    """
    loss, predictions = model.loss_and_predict(X, y)  # one forward pass for both
    return {"loss": loss, "accuracy": float(np.mean(predictions == y))}


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = predicted class."""
    counts = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)
