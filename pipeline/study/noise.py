"""The noise probe: show a trained network pure noise. Which digit does it see, how surely?

"If you give it random noise it might guess 5": ``noise_images`` draws the noise (uniform, or
Gaussian with the training inputs' per-pixel moments), and ``noise_summary`` sums up the
model's predictions on it against real held-out digits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from pipeline.options import NOISE_KINDS
from pipeline.study.probes import check_2d, draw_dtype, gaussian_like


def noise_images(kind: str, n: int, *, reference: np.ndarray, seed: int) -> np.ndarray:
    """Draw images of pure noise to show a trained model.

    Parameters
    ----------
    kind : {"uniform", "gaussian"}
        ``"uniform"``: every pixel drawn from U[0, 1]. ``"gaussian"``: every pixel drawn from a
        Gaussian with the per-feature mean and standard deviation of ``reference`` (the same
        choice as ``randomize_inputs``), then clipped to [0, 1], the range of real pixels.
    n : int
        Number of images.
    reference : ndarray of shape (n_ref, n_features)
        The training inputs: they fix n_features, the dtype and the Gaussian's moments.
    seed : int
        Seed for ``np.random.default_rng``.

    Returns
    -------
    ndarray of shape (n, n_features)
        Noise images with the dtype of ``reference``.

    Raises
    ------
    ValueError
        If ``kind`` is not one of ``NOISE_KINDS``.
    """
    check_2d(reference)
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        noise = rng.random((n, reference.shape[1]), dtype=draw_dtype(reference))
        return noise.astype(reference.dtype, copy=False)
    if kind == "gaussian":
        return np.clip(gaussian_like(rng, reference, n), 0, 1)
    raise ValueError(f"kind must be one of {', '.join(NOISE_KINDS)}, got {kind!r}")


@dataclass(frozen=True)
class NoiseResult:
    """What a trained model made of pure noise, against real held-out digits.

    Attributes
    ----------
    kind : the noise kind (``uniform``, ``gaussian``)
    class_fractions : ndarray (n_classes,), fraction of noise images predicted as each class
    top_class : the most predicted class (the lowest on a tie)
    mean_max_prob : mean confidence (max probability) on noise
    frac_confident : fraction of noise images predicted with confidence > 0.9
    real_mean_max_prob : mean confidence on the real digits, for comparison
    auroc : how well confidence separates real (positive) from noise; 0.5 means the model is
        as sure about noise as about digits, 1.0 that it is always surer on digits
    """

    kind: str
    class_fractions: np.ndarray
    top_class: int
    mean_max_prob: float
    frac_confident: float
    real_mean_max_prob: float
    auroc: float

    def metrics(self) -> dict[str, float]:
        """Flat metric names, all starting with ``noise_{kind}_``."""
        prefix = f"noise_{self.kind}_"
        out = {f"{prefix}class_{k}": float(f) for k, f in enumerate(self.class_fractions)}
        out[f"{prefix}top_class"] = float(self.top_class)
        out[f"{prefix}mean_max_prob"] = self.mean_max_prob
        out[f"{prefix}frac_max_prob_gt_0.9"] = self.frac_confident
        out[f"{prefix}real_mean_max_prob"] = self.real_mean_max_prob
        out[f"{prefix}auroc"] = self.auroc
        return out


def noise_summary(kind: str, proba_noise: np.ndarray, proba_real: np.ndarray) -> NoiseResult:
    """Summarise a trained model's predictions on noise, against real held-out digits.

    Parameters
    ----------
    kind : str
        Noise kind, recorded with the result.
    proba_noise : ndarray of shape (n_noise, n_classes)
        Predicted class probabilities on noise images.
    proba_real : ndarray of shape (n_real, n_classes)
        Predicted class probabilities on held-out real digits.
    """
    check_2d(proba_noise)
    check_2d(proba_real, n_features=proba_noise.shape[1])
    if not (len(proba_noise) and len(proba_real)):
        raise ValueError("noise_summary needs at least one noise and one real prediction")
    n_classes = proba_noise.shape[1]
    counts = np.bincount(proba_noise.argmax(axis=1), minlength=n_classes)  # (n_classes,)
    max_noise = proba_noise.max(axis=1)  # (n_noise,)
    max_real = proba_real.max(axis=1)  # (n_real,)
    is_real = np.concatenate([np.ones(len(max_real)), np.zeros(len(max_noise))])
    return NoiseResult(
        kind=kind,
        class_fractions=counts / len(proba_noise),
        top_class=int(counts.argmax()),
        mean_max_prob=float(max_noise.mean()),
        frac_confident=float((max_noise > 0.9).mean()),
        real_mean_max_prob=float(max_real.mean()),
        auroc=float(roc_auc_score(is_real, np.concatenate([max_real, max_noise]))),
    )
