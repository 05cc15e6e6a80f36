"""Memorization probes: corrupt what a network is trained on, then ask what it does with noise.

Three families of probe, all pure functions of arrays and a seed:

- **Label corruption** (Zhang et al. 2017, "Understanding deep learning requires rethinking
  generalization"): a fraction of training labels is shuffled or redrawn, so those examples
  can only be fitted by memorizing them; ``split_accuracy`` tracks clean and corrupted apart.
- **Input randomization** (the same paper, section 2.1): the training images are replaced by
  permuted or synthetic pixels while the true labels are kept.
- **Noise inputs** after training are in :mod:`pipeline.study.noise`.

Only the training split is ever corrupted; validation and test keep true labels and inputs
(except under ``shuffled_pixels``: see ``randomize_inputs`` for why).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.options import INPUT_KINDS, LABEL_MODES

# Class-conditional noise between look-alike digits (Patrini et al. 2017, "Making deep neural
# networks robust to label noise: a loss correction approach", their MNIST setting).
ASYMMETRIC_FLIPS = {2: 7, 3: 8, 5: 6, 6: 5, 7: 1}


@dataclass(frozen=True)
class LabelCorruption:
    """Training labels after corruption, and which examples were chosen.

    Attributes
    ----------
    labels : ndarray of shape (n_samples,), int64
        The labels to train on.
    corrupted : ndarray of shape (n_samples,), bool
        True for the examples chosen for corruption. A chosen label may still be the true one
        (a shuffle can put it back, a random draw can hit it): this marks "chosen", not "wrong".
    """

    labels: np.ndarray
    corrupted: np.ndarray


def corrupt_labels(
    y: np.ndarray, fraction: float, mode: str, *, n_classes: int, seed: int
) -> LabelCorruption:
    """Corrupt exactly ``round(fraction * n_samples)`` training labels, chosen uniformly
    (``"asymmetric"``: ``round(fraction * n_source)``, see ``mode``).

    Parameters
    ----------
    y : ndarray of shape (n_samples,), int
        True training labels in ``0 .. n_classes - 1``. Not modified.
    fraction : float
        Fraction of examples to corrupt, in [0, 1] (config ``probe.labels.fraction``, checked
        by the settings: ``pipeline.options.FRACTION``).
    mode : {"shuffle", "random", "asymmetric"}
        ``"shuffle"`` permutes the chosen labels among themselves, so the class counts stay
        exactly the same. ``"random"`` replaces each chosen label with a class drawn uniformly
        from ``0 .. n_classes - 1``, as in Zhang et al. 2017 (config ``probe.labels.mode``).
        ``"asymmetric"`` is class-conditional noise between look-alike digits
        (``ASYMMETRIC_FLIPS``: 2 -> 7, 3 -> 8, 5 <-> 6, 7 -> 1, Patrini et al. 2017):
        ``fraction`` of the examples of those source classes, chosen uniformly among them, get
        their class's partner (every chosen label is wrong; the other classes keep theirs).
    n_classes : int
        Number of classes, used by ``"random"``.
    seed : int
        Seed for ``np.random.default_rng``; the same seed gives the same corruption.

    Returns
    -------
    LabelCorruption
        ``labels`` (int64, a new array) and the boolean ``corrupted`` mask.

    Raises
    ------
    ValueError
        If ``mode`` is not one of ``LABEL_MODES``, or ``fraction`` asks for more labels than
        there are (or fewer than none).
    """
    labels = np.array(y, dtype=np.int64)  # always a copy
    if labels.ndim != 1:
        raise ValueError(f"y must have shape (n_samples,), got {labels.shape}")
    n = labels.shape[0]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(n, size=round(fraction * n), replace=False)
    if mode == "asymmetric":
        if n_classes <= max(*ASYMMETRIC_FLIPS, *ASYMMETRIC_FLIPS.values()):
            raise ValueError(f"asymmetric label noise needs the 10 digit classes, not {n_classes}")
        source = np.flatnonzero(np.isin(labels, list(ASYMMETRIC_FLIPS)))
        chosen = rng.choice(source, size=round(fraction * len(source)), replace=False)
        labels[chosen] = [ASYMMETRIC_FLIPS[int(c)] for c in labels[chosen]]
    elif mode == "shuffle":
        labels[chosen] = rng.permutation(labels[chosen])
    elif mode == "random":
        labels[chosen] = rng.integers(0, n_classes, size=chosen.size)
    else:
        raise ValueError(f"mode must be one of {', '.join(LABEL_MODES)}, got {mode!r}")
    corrupted = np.zeros(n, dtype=bool)
    corrupted[chosen] = True
    return LabelCorruption(labels=labels, corrupted=corrupted)


def randomize_inputs(
    kind: str, X_train: np.ndarray, others: Sequence[np.ndarray] = (), *, seed: int
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Replace the training images by randomized ones, keeping the true labels.

    Parameters
    ----------
    kind : {"none", "shuffled_pixels", "random_pixels", "gaussian"}
        The randomization (config ``probe.inputs``):

        - ``"none"``: inputs returned as they are (not copied).
        - ``"shuffled_pixels"``: one pixel permutation, drawn once, applied to every image of
          ``X_train`` and of every array in ``others``. It is a fixed relabelling of the input
          coordinates, so a fully connected network can learn it as well as the original; the
          held-out data must go through the same permutation or it would be a different task.
        - ``"random_pixels"``: every training image gets its own independent permutation, which
          destroys all spatial structure while keeping each image's pixel histogram.
          ``others`` are returned unchanged.
        - ``"gaussian"``: every training image is replaced by Gaussian noise with the
          *per-feature* (per-pixel) mean and std of ``X_train``, not global ones: each input unit
          keeps its scale on real digits (always-blank border pixels stay blank), and all that is
          removed is the structure tying pixels to each other and to the label. Not clipped, so
          the moments match exactly in expectation. ``others`` are returned unchanged.
    X_train : ndarray of shape (n_train, n_features)
        Training inputs. Not modified.
    others : sequence of ndarray, each of shape (n_i, n_features)
        Held-out inputs (validation, test). Not modified.
    seed : int
        Seed for ``np.random.default_rng``.

    Returns
    -------
    X_train_new : ndarray of shape (n_train, n_features)
    others_new : tuple of ndarray, one per entry of ``others``
        Shapes and dtypes are kept.

    Raises
    ------
    ValueError
        For a ``kind`` not in ``INPUT_KINDS``.
    """
    check_2d(X_train)
    others = tuple(others)
    for X in others:
        check_2d(X, n_features=X_train.shape[1])
    rng = np.random.default_rng(seed)
    if kind == "none":
        return X_train, others
    if kind == "shuffled_pixels":
        perm = rng.permutation(X_train.shape[1])  # (n_features,)
        return X_train[:, perm], tuple(X[:, perm] for X in others)
    if kind == "random_pixels":
        # Shuffles each row independently (a copy); no (n_train, n_features) key matrix needed.
        return rng.permuted(X_train, axis=1), others
    if kind == "gaussian":
        return gaussian_like(rng, X_train, X_train.shape[0]), others
    raise ValueError(f"kind must be one of {', '.join(INPUT_KINDS)}, got {kind!r}")


def split_accuracy(
    y_pred: np.ndarray, y_trained: np.ndarray, corrupted: np.ndarray
) -> tuple[float | None, float | None]:
    """Accuracy against the trained-on labels, on the clean and on the corrupted examples.

    Parameters
    ----------
    y_pred : ndarray of shape (n_samples,), int
        Predicted classes on the training split.
    y_trained : ndarray of shape (n_samples,), int
        The labels the model was trained on (``LabelCorruption.labels``).
    corrupted : ndarray of shape (n_samples,), bool
        ``LabelCorruption.corrupted``.

    Returns
    -------
    clean : float or None
        Accuracy on examples not chosen for corruption; None if there are none.
    corrupted : float or None
        Accuracy on the chosen examples (how much is memorized); None if there are none.
    """
    y_pred, y_trained = np.asarray(y_pred), np.asarray(y_trained)
    corrupted = np.asarray(corrupted, dtype=bool)
    if not y_pred.shape == y_trained.shape == corrupted.shape == (len(y_pred),):
        raise ValueError(
            f"need (n_samples,) arrays, got {y_pred.shape}, {y_trained.shape}, {corrupted.shape}"
        )
    hit = y_pred == y_trained  # (n_samples,)

    def _accuracy(mask: np.ndarray) -> float | None:
        return float(hit[mask].mean()) if mask.any() else None

    return _accuracy(~corrupted), _accuracy(corrupted)


def gaussian_like(rng: np.random.Generator, X: np.ndarray, n: int) -> np.ndarray:
    """Draw ``(n, n_features)`` Gaussian noise with the per-feature mean and std of ``X``."""
    dtype = draw_dtype(X)  # float32 for float32 data: half the memory on full MNIST
    mean = X.mean(axis=0, dtype=np.float64).astype(dtype)  # (n_features,)
    std = X.std(axis=0, dtype=np.float64).astype(dtype)  # (n_features,)
    noise = rng.standard_normal((n, X.shape[1]), dtype=dtype)  # (n, n_features)
    noise *= std
    noise += mean
    return noise.astype(X.dtype, copy=False)


def draw_dtype(X: np.ndarray) -> type[np.floating]:
    """The dtype to draw random numbers in: float32 for float32 data, else float64."""
    return np.float32 if X.dtype == np.float32 else np.float64


def check_2d(X: np.ndarray, n_features: int | None = None) -> None:
    if np.ndim(X) != 2 or (n_features is not None and X.shape[1] != n_features):
        raise ValueError(f"expected shape (n_samples, {n_features or 'n_features'}), got {X.shape}")
