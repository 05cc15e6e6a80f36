"""The epoch loop shared by both models: train one epoch, measure, report, maybe stop.

Plain Python over arrays: it knows nothing of Hydra or MLflow. Whoever calls it passes an
``on_epoch`` callback to log or draw a progress bar.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pipeline.study.evaluate import evaluate


@dataclass
class TrainResult:
    """What happened during training.

    ``history`` maps each per-epoch metric to its values for epochs 1..``epochs``;
    ``epochs_to_fit`` is the first epoch at whose end the full-pass training accuracy reached the
    threshold (or None); ``history["train_accuracy"]`` holds the running values. With
    ``record_examples``, ``correct`` (bool) and ``label_proba`` (float32), both
    (epochs, n_train), are every epoch's ``epoch_correct_`` and ``epoch_label_proba_``.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epochs: int = 0
    epochs_to_fit: int | None = None
    fit_seconds: float = 0.0
    correct: np.ndarray | None = None
    label_proba: np.ndarray | None = None


# The fit check scores the training set in blocks, this many rows first and doubling up to the
# last, and stops at the first block that settles the answer: an unfitted model usually costs
# one small block per epoch, and only a fitted one a whole pass.
FIT_CHECK_FIRST_BLOCK = 128
FIT_CHECK_BLOCK = 4096


def train_epochs(
    model,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    classes: np.ndarray,
    max_epochs: int,
    fit_threshold: float = 1.0,
    stop_at_fit: bool = False,
    corrupted: np.ndarray | None = None,
    record_examples: bool = False,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    start: TrainResult | None = None,
    after_epoch: Callable[[TrainResult], None] | None = None,
) -> TrainResult:
    """Train ``model`` one ``partial_fit`` epoch at a time and measure every epoch.

    Training metrics are the epoch's running ones (each example scored in its mini-batch just
    before that batch's update, so they cost nothing); validation metrics are measured after
    the epoch. ``epochs_to_fit`` is exact: the first epoch at whose end the model classifies
    at least ``fit_threshold`` of the training set correctly (checked after every epoch, in
    blocks that stop at the first one to settle it; see ``_fitted``).

    Parameters
    ----------
    model : NumpyMLP or SklearnMLP (anything with partial_fit, loss_curve_, epoch_correct_ and,
        with record_examples, epoch_label_proba_)
    X_train : ndarray (n_train, n_features); y_train : ndarray (n_train,), the labels trained on
    X_val : ndarray (n_val, n_features); y_val : ndarray (n_val,), true labels
    classes : every class label, for the first partial_fit
    max_epochs : epochs to run at most
    fit_threshold : training accuracy that counts as fitted
    stop_at_fit : stop at the first epoch that reaches ``fit_threshold``
    corrupted : bool (n_train,) or None; when given, also report ``train_accuracy_clean`` and
        ``train_accuracy_corrupted`` (against the labels trained on)
    record_examples : keep every epoch's per-example running correctness and label
        probability (``TrainResult.correct``, ``TrainResult.label_proba``)
    on_epoch : called as ``on_epoch(epoch, metrics)`` after every epoch; with ``start``, first
        for each epoch it holds (a job that goes on from a checkpoint tells its whole history,
        so that whoever records it can write what its store is missing)
    start : the result of the epochs already trained, to go on from (a checkpoint); ``model``
        must then be the model as it was at their end
    after_epoch : called with the result so far after every epoch, once its fit check is done
        (to save a checkpoint)
    """
    result = copy.deepcopy(start) if start is not None else TrainResult()
    if on_epoch is not None:  # the epochs restored from a checkpoint are told again, in order
        for epoch in range(1, result.epochs + 1):
            on_epoch(epoch, {name: values[epoch - 1] for name, values in result.history.items()})
    n = len(y_train)
    # One (n_train,) row per epoch, with record_examples.
    correct_rows = list(result.correct) if result.correct is not None else []
    proba_rows = list(result.label_proba) if result.label_proba is not None else []
    if result.epochs_to_fit is not None and stop_at_fit:
        return result  # it had stopped already
    for epoch in range(result.epochs + 1, max_epochs + 1):
        start = time.perf_counter()
        model.partial_fit(X_train, y_train, classes=classes)
        result.fit_seconds += time.perf_counter() - start
        correct = model.epoch_correct_
        if record_examples:
            correct_rows.append(correct)
            proba_rows.append(model.epoch_label_proba_.astype(np.float32, copy=False))
        metrics = {"train_loss": model.loss_curve_[-1], "train_accuracy": float(correct.mean())}
        if corrupted is not None and corrupted.any() and not corrupted.all():
            metrics["train_accuracy_clean"] = float(correct[~corrupted].mean())
            metrics["train_accuracy_corrupted"] = float(correct[corrupted].mean())
        val = evaluate(model, X_val, y_val)
        metrics["val_loss"], metrics["val_accuracy"] = val["loss"], val["accuracy"]
        for name, value in metrics.items():
            result.history.setdefault(name, []).append(value)
        result.epochs = epoch
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        if result.epochs_to_fit is None and _fitted(
            model, X_train, y_train, correct, fit_threshold
        ):
            result.epochs_to_fit = epoch
        if after_epoch is not None:
            _stack_examples(result, correct_rows, proba_rows, n, record_examples)
            after_epoch(result)
        if result.epochs_to_fit is not None and stop_at_fit:
            break
    _stack_examples(result, correct_rows, proba_rows, n, record_examples)
    return result


def _stack_examples(result: TrainResult, correct_rows, proba_rows, n: int, record: bool) -> None:
    """Put the per-example rows so far into ``result`` as (epochs, n) arrays."""
    if record:
        result.correct = np.array(correct_rows, dtype=bool).reshape(-1, n)
        result.label_proba = np.array(proba_rows, dtype=np.float32).reshape(-1, n)


def _fitted(
    model, X_train, y_train, correct: np.ndarray, threshold: float, block: int = FIT_CHECK_BLOCK
) -> bool:
    """Whether the model, as it is now, classifies at least ``threshold`` of the training set.

    The answer of ``np.mean(model.predict(X_train) == y_train) >= threshold``, found cheaply:
    the examples the epoch's running pass got wrong (``correct`` False: the likeliest to be
    wrong still) are scored first, then the others, in growing blocks, stopping as soon as so
    many are wrong that the threshold is out of reach. Only a model that passes every block
    gets the full pass itself (blocks of other sizes can round a near-tie differently), so
    ``epochs_to_fit`` agrees with the full-pass ``final_train_accuracy``.
    """
    n = len(y_train)
    if n == 0:
        return False
    correct = np.asarray(correct, dtype=bool)
    errors = 0
    suspects = np.flatnonzero(~correct)
    for lo, hi in _blocks(len(suspects), block):
        rows = suspects[lo:hi]
        errors += int(np.count_nonzero(model.predict(X_train[rows]) != y_train[rows]))
        if (n - errors) / n < threshold:
            return False
    for lo, hi in _blocks(n, block):
        wrong = model.predict(X_train[lo:hi]) != y_train[lo:hi]
        errors += int(np.count_nonzero(wrong & correct[lo:hi]))  # suspects are counted already
        if (n - errors) / n < threshold:
            return False
    return float(np.mean(model.predict(X_train) == y_train)) >= threshold


def _blocks(n: int, largest: int):
    """``(lo, hi)`` bounds covering ``range(n)``: FIT_CHECK_FIRST_BLOCK rows, then doubling."""
    lo, size = 0, min(FIT_CHECK_FIRST_BLOCK, largest)
    while lo < n:
        yield lo, min(n, lo + size)
        lo, size = lo + size, min(2 * size, largest)
