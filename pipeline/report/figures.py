"""Figures of one run: learning curves, confusion matrix, first-layer weights, noise probe.

Each builder is a pure function that returns a fresh pyplot-free ``Figure`` (see
:mod:`pipeline.report.canvas`, which also saves them); :mod:`pipeline.tracking.record` logs them
to MLflow. First-layer weights of 1-D inputs (MNIST-1D) are drawn as curves, not images. Figures
that compare runs of a sweep are in :mod:`pipeline.report.sweep_figures`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from pipeline.report.canvas import as_float, mosaic, new_figure, suptitle

# History key -> line style, per panel. Keys absent from a history are skipped; the dashed
# clean/corrupted accuracies only exist when some training labels were corrupted.
_LOSS_CURVES = {
    "train_loss": dict(label="train", color="C0"),
    "val_loss": dict(label="validation", color="C1"),
}
_ACCURACY_CURVES = {
    "train_accuracy": dict(label="train", color="C0"),
    "val_accuracy": dict(label="validation", color="C1"),
    "train_accuracy_clean": dict(label="train, clean labels", color="C2", linestyle="--"),
    "train_accuracy_corrupted": dict(label="train, corrupted labels", color="C3", linestyle="--"),
}
# Diverging colour map for weights: blue negative, white zero, red positive.
_CMAP = "RdBu_r"
# Above this many epochs the curves are drawn without point markers (they would merge).
_MARKER_MAX_EPOCHS = 30


def learning_curves(history: Mapping[str, Sequence[float | None]], *, title: str = "") -> Figure:
    """Plot loss and accuracy per epoch, side by side.

    Parameters
    ----------
    history : mapping of str to sequence of float, each of shape (n_epochs,)
        Per-epoch values; epoch ``i`` (1-based) is entry ``i - 1``. Recognised keys are
        ``train_loss``, ``val_loss``, ``train_accuracy``, ``val_accuracy`` and, when labels
        were corrupted, ``train_accuracy_clean`` and ``train_accuracy_corrupted`` (drawn
        dashed). Missing keys are skipped, other keys ignored; ``None``/NaN values are gaps.
    title : str
        Figure title.

    Returns
    -------
    Figure
        Two axes: loss (left) and accuracy on a 0..1 scale (right).
    """
    fig = new_figure((10.0, 4.0))
    ax_loss, ax_acc = fig.subplots(1, 2)
    # A fixed legend place: "best" searches the curves for a free spot, a tenth of a second.
    for ax, curves, corner in (
        (ax_loss, _LOSS_CURVES, "upper right"),
        (ax_acc, _ACCURACY_CURVES, "lower right"),
    ):
        for key, style in curves.items():
            if key not in history:
                continue
            values = as_float(history[key])
            marker = "o" if values.size <= _MARKER_MAX_EPOCHS else None
            epochs = np.arange(1, values.size + 1)
            # clip_on=False keeps a curve sitting exactly on accuracy 1.0 fully visible.
            ax.plot(epochs, values, marker=marker, markersize=3, clip_on=False, **style)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(loc=corner)
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("loss")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0.0, 1.0)
    ax_acc.set_title("accuracy")
    if title:
        suptitle(fig, title)
    return fig


def confusion_matrix_figure(
    cm: np.ndarray, *, labels: Sequence[str] | None = None, title: str = ""
) -> Figure:
    """Draw a confusion matrix: counts in the cells, colour by fraction of each true class.

    Parameters
    ----------
    cm : ndarray of shape (n_classes, n_classes)
        Counts; row ``i`` is the true class, column ``j`` the predicted class.
    labels : sequence of str of length n_classes, optional
        Class names; defaults to ``0 .. n_classes - 1``.
    title : str
        Axes title; defaults to "confusion matrix".

    Returns
    -------
    Figure
        One matrix axes whose image holds the row-normalised matrix (rows with no samples
        are 0), plus a colour bar.
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square (n_classes, n_classes) array, got shape {cm.shape}")
    n_classes = cm.shape[0]
    labels = [str(c) for c in range(n_classes)] if labels is None else [str(c) for c in labels]
    if len(labels) != n_classes:
        raise ValueError(f"got {len(labels)} labels for a {n_classes}-class confusion matrix")

    row_totals = cm.sum(axis=1, keepdims=True)
    fractions = np.divide(cm, row_totals, out=np.zeros(cm.shape), where=row_totals > 0)

    side = min(9.0, 2.5 + 0.6 * n_classes)
    fig = new_figure((side + 1.0, side))
    ax = fig.add_subplot()
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, label="fraction of true class")
    fontsize = 10 if n_classes <= 10 else 7
    for i in range(n_classes):
        for j in range(n_classes):
            colour = "white" if fractions[i, j] > 0.5 else "black"
            ax.text(
                j, i, f"{cm[i, j]:g}", ha="center", va="center", color=colour, fontsize=fontsize
            )
    ticks = np.arange(n_classes)
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or "confusion matrix")
    return fig


def weight_tiles(weights: np.ndarray, image_shape: tuple[int, ...], *, title: str = "") -> Figure:
    """Show what each first-layer neuron looks for: one image tile per hidden neuron.

    For 1-D inputs (``image_shape == (length,)``, e.g. MNIST-1D) each tile is the weight
    vector drawn as a curve over the input positions instead (:func:`weight_curves`).

    Each tile is one column of ``weights`` reshaped to the input image, red for positive
    and blue for negative weights. The colour scale is symmetric around 0 **per tile**:
    neurons differ a lot in weight norm, and one global scale would wash most tiles out to
    white, hiding the pattern that is the point of the picture. Tiles are therefore
    comparable in shape, not in magnitude.

    Parameters
    ----------
    weights : ndarray of shape (n_features, n_hidden)
        First-layer weights in scikit-learn's ``coefs_[0]`` layout.
    image_shape : tuple of (int, int) or (int,)
        ``(height, width)`` of an input image, or ``(length,)`` of a 1-D signal; their
        product must equal ``n_features``.
    title : str
        Figure title; defaults to "first-layer weights (n_hidden neurons)".

    Returns
    -------
    Figure
        One axes holding one image: ``n_hidden`` tiles in a near-square grid, in neuron order,
        row by row, ``gap`` blank (NaN) pixels apart (:func:`pipeline.report.canvas.mosaic`),
        each divided by its own max|w|; plus a colour bar from -max|w| to +max|w| of a tile.

    Raises
    ------
    ValueError
        If ``weights`` is not 2-D or ``n_features != height * width``.
    """
    weights = np.asarray(weights, dtype=float)
    if len(image_shape) == 1:
        return weight_curves(weights, int(image_shape[0]), title=title)
    height, width = (int(s) for s in image_shape)
    n_hidden, n_rows, n_cols = _tile_grid(weights, height * width, image_shape)
    gap = max(1, round(0.15 * max(height, width)))  # blank pixels between tiles

    side = min(10.0, max(3.0, 0.45 * n_cols))
    fig = new_figure((side + 1.0, side * n_rows / n_cols))  # n_rows <= n_cols
    ax = fig.add_subplot()
    # Each tile scaled to its own max|w| (an all-zero tile stays white), then all of them laid
    # out in one image: one imshow, where one per neuron took seconds for hundreds of neurons.
    tiles = weights.T.reshape(n_hidden, height, width)
    scale = np.max(np.abs(tiles), axis=(1, 2), keepdims=True)
    scaled = np.divide(tiles, scale, out=np.zeros_like(tiles), where=scale > 0)
    ax.imshow(
        mosaic(scaled, n_cols, (gap, gap)), cmap=_CMAP, vmin=-1.0, vmax=1.0, interpolation="nearest"
    )
    ax.set_axis_off()
    colour_bar = fig.colorbar(ScalarMappable(Normalize(-1.0, 1.0), _CMAP), ax=ax, shrink=0.6)
    colour_bar.set_ticks([-1.0, 0.0, 1.0], labels=["-max|w|", "0", "+max|w|"])
    colour_bar.set_label("weight (scaled per tile)")
    ax.set_title(title or f"first-layer weights ({n_hidden} neurons)")
    return fig


def _tile_grid(weights: np.ndarray, n_features: int, image_shape) -> tuple[int, int, int]:
    """``(n_hidden, n_rows, n_cols)``: one tile per neuron in a near-square grid, rows <= cols.

    Refuses weights that are not ``(n_features, n_hidden)`` for inputs of ``image_shape``.
    """
    if weights.ndim != 2 or weights.shape[0] != n_features:
        raise ValueError(
            f"weights of shape {weights.shape} do not match image_shape {tuple(image_shape)}: "
            f"expected ({n_features}, n_hidden) first-layer weights"
        )
    n_hidden = weights.shape[1]
    n_cols = max(1, math.ceil(math.sqrt(n_hidden)))
    return n_hidden, max(1, math.ceil(n_hidden / n_cols)), n_cols


def weight_curves(weights: np.ndarray, length: int, *, title: str = "") -> Figure:
    """First-layer weights of 1-D inputs: one small curve per hidden neuron, in a grid.

    Each curve is a neuron's weights against input position, scaled per tile to its own
    max|w| like :func:`weight_tiles` (shapes comparable, magnitudes not), over a grey zero
    line; the part above zero is shaded red, below blue.

    Parameters
    ----------
    weights : ndarray of shape (length, n_hidden)
    length : int
        Points per input signal.
    title : str
        Figure title; defaults to "first-layer weights (n_hidden neurons)".
    """
    weights = np.asarray(weights, dtype=float)
    n_hidden, n_rows, n_cols = _tile_grid(weights, length, (length,))
    gap, height = max(1.0, 0.15 * length), 0.6 * length  # a tile is length wide, height tall
    side = min(10.0, max(5.0, 0.9 * n_cols))
    fig = new_figure((side, side * n_rows / n_cols * (height + gap) / (length + gap)))
    ax = fig.add_subplot()
    positions = np.arange(length, dtype=float)
    for k in range(n_hidden):
        w = weights[:, k]
        scale = float(np.max(np.abs(w))) or 1.0
        row, col = divmod(k, n_cols)
        x = col * (length + gap) + positions
        middle = -row * (height + gap) - height / 2
        y = middle + w / scale * (height / 2)
        ax.plot(x[[0, -1]], [middle, middle], color="0.75", linewidth=0.6)
        ax.fill_between(x, middle, y, where=y >= middle, color="C3", alpha=0.3, linewidth=0)
        ax.fill_between(x, middle, y, where=y <= middle, color="C0", alpha=0.3, linewidth=0)
        ax.plot(x, y, color="k", linewidth=0.8)
    ax.set_xlim(-gap, n_cols * (length + gap))
    ax.set_ylim(-n_rows * (height + gap), gap)
    ax.set_axis_off()
    ax.set_title(title or f"first-layer weights ({n_hidden} neurons)")
    return fig


def class_histogram(fractions: Mapping[str, Sequence[float]], *, title: str = "") -> Figure:
    """Grouped bars: for each noise kind, the fraction of noise images predicted as each class.

    Parameters
    ----------
    fractions : mapping of str to sequence of float, each of shape (n_classes,)
        Noise kind (e.g. "uniform", "gaussian") to per-class prediction fractions.
    title : str
        Axes title; defaults to "predictions on noise images".

    Returns
    -------
    Figure
        One axes with one bar group per class (one bar container per noise kind) and a
        dotted line at the uniform level ``1 / n_classes``.
    """
    if not fractions:
        raise ValueError("fractions is empty: give at least one noise kind")
    series = {kind: as_float(values) for kind, values in fractions.items()}
    lengths = {values.size for values in series.values()}
    if len(lengths) != 1:
        raise ValueError(f"every noise kind needs one fraction per class, got lengths {lengths}")
    n_classes = lengths.pop()

    fig = new_figure((max(6.0, 0.6 * n_classes + 2.0), 4.0))
    ax = fig.add_subplot()
    classes = np.arange(n_classes)
    bar_width = 0.8 / len(series)
    for k, (kind, values) in enumerate(series.items()):
        offset = (k - (len(series) - 1) / 2) * bar_width
        ax.bar(classes + offset, values, width=bar_width, label=kind)
    ax.axhline(1.0 / n_classes, color="grey", linestyle=":", label=f"chance level (1/{n_classes})")
    ax.set_xticks(classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("fraction of noise images")
    ax.set_ylim(0.0, 1.0)
    ax.legend()
    ax.set_title(title or "predictions on noise images")
    return fig
