"""Figures of which examples were learned, forgotten or memorized (one run, or one study).

The dataset cartography map (Swayamdipta et al. 2020), galleries of training images with their
trained-on and true labels, and histograms of forgetting events and memorization scores. Each
builder is a pure function returning a fresh pyplot-free ``Figure`` (:mod:`pipeline.report.canvas`);
:mod:`pipeline.tracking.example_record` logs them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from pipeline.report.canvas import axes_title, mosaic, new_figure, suptitle, tile_corner
from pipeline.study import examples as ex

CLEAN, MISLABELED = "C0", "C3"  # blue: trained on the true label; red: on a wrong one


def cartography_map(
    confidence: np.ndarray, variability: np.ndarray, mislabeled: np.ndarray, *, title: str = ""
) -> Figure:
    """Confidence against variability, one dot per training example, mislabeled ones in red.

    Parameters
    ----------
    confidence, variability : ndarray of shape (n,)
        Mean and standard deviation over epochs of each example's label probability.
    mislabeled : ndarray of bool, shape (n,)
        Trained on a label that is not the true one.

    Returns
    -------
    Figure
        One axes, variability on x and confidence on y (cartography's layout): easy-to-learn
        top left, hard-to-learn bottom left, ambiguous to the right.
    """
    mislabeled = np.asarray(mislabeled, dtype=bool)
    fig = new_figure((6.0, 5.0))
    ax = fig.add_subplot()
    size = max(2.0, min(12.0, 8000.0 / max(1, len(mislabeled))))
    for mask, colour, label in (
        (~mislabeled, CLEAN, "clean"),
        (mislabeled, MISLABELED, "wrong label"),
    ):
        if mask.any():
            ax.scatter(
                variability[mask],
                confidence[mask],
                s=size,
                c=colour,
                alpha=0.5,
                linewidths=0,
                label=f"{label} ({int(mask.sum())})",
            )
    ax.set_xlabel("variability (std of p(label) over epochs)")
    ax.set_ylabel("confidence (mean p(label) over epochs)")
    ax.set_xlim(left=0.0)
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", markerscale=2.0)
    axes_title(ax, title or "dataset cartography")
    return fig


def image_gallery(
    images: np.ndarray,
    image_shape: tuple[int, ...],
    captions: Sequence[str],
    *,
    highlight: Sequence[bool] | None = None,
    title: str = "",
    n_cols: int = 8,
) -> Figure:
    """A grid of input images, each with a caption (e.g. its trained-on and true label).

    Parameters
    ----------
    images : ndarray of shape (k, n_features)
        Inputs, ``n_features = prod(image_shape)``; each drawn on its own grey scale, or, for
        1-D inputs (MNIST-1D), as a curve.
    image_shape : (height, width), or (length,)
    captions : k strings
    highlight : k bools, optional
        Captions drawn in red (e.g. examples trained on a wrong label).
    """
    images = np.asarray(images, dtype=float)
    if len(image_shape) == 1:  # signals: curves, not one-pixel-high images
        return _signal_gallery(images, captions, highlight, title=title, n_cols=n_cols)
    k, (height, width) = len(images), (int(s) for s in image_shape)
    n_rows = max(1, math.ceil(k / n_cols))  # always n_cols wide, so the title has room
    # One image holds them all (one axes draws many times faster than one per picture), each
    # on its own grey scale, with room above each for its two-line caption.
    gap = (max(2, round(0.6 * height)), max(1, round(0.3 * width)))
    tiles = images.reshape(k, height, width)
    low = tiles.min(axis=(1, 2), keepdims=True, initial=np.inf)
    span = tiles.max(axis=(1, 2), keepdims=True, initial=-np.inf) - low
    scaled = np.divide(tiles - low, span, out=np.zeros_like(tiles), where=span > 0)
    fig = new_figure((1.3 * n_cols, 1.5 * n_rows + 0.4))
    ax = fig.add_subplot()
    ax.imshow(
        mosaic(scaled, n_cols, gap), cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest"
    )
    ax.set_xlim(-0.5, n_cols * (width + gap[1]) - gap[1] - 0.5)
    ax.set_axis_off()
    for i, caption in enumerate(captions):
        top, left = tile_corner(i, n_cols, (height, width), gap)
        colour = MISLABELED if highlight is not None and highlight[i] else "black"
        ax.text(
            left + (width - 1) / 2,
            top - 0.8,
            caption,
            ha="center",
            va="bottom",
            fontsize=7,
            color=colour,
        )
    if k == 0:
        ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
    suptitle(fig, title, fontsize=10)
    return fig


def _signal_gallery(signals, captions, highlight, *, title: str, n_cols: int) -> Figure:
    """:func:`image_gallery` of 1-D inputs (MNIST-1D): one small curve per axes."""
    k = len(signals)
    n_rows = max(1, math.ceil(k / n_cols))
    fig = new_figure((1.3 * n_cols, 1.5 * n_rows + 0.4))
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i >= k:
            continue
        ax.set_axis_on()
        ax.plot(signals[i], color="black", linewidth=0.8)
        ax.set_xticks([])
        ax.set_yticks([])
        colour = MISLABELED if highlight is not None and highlight[i] else "black"
        ax.set_title(captions[i], fontsize=7, color=colour)
    if k == 0:
        axes[0].text(0.5, 0.5, "none", ha="center", va="center", transform=axes[0].transAxes)
    suptitle(fig, title, fontsize=10)
    return fig


def count_histogram(
    values: np.ndarray, mislabeled: np.ndarray, *, xlabel: str, title: str = ""
) -> Figure:
    """Stacked bars of an integer score (e.g. forgetting events), clean and mislabeled apart."""
    values = np.asarray(values, dtype=int)
    edges = np.arange(values.min(initial=0), values.max(initial=0) + 2) - 0.5
    return _stacked_histogram(values, mislabeled, edges, xlabel=xlabel, title=title)


def score_histogram(
    values: np.ndarray, mislabeled: np.ndarray, *, xlabel: str, title: str = "", bins: int = 40
) -> Figure:
    """Stacked histogram of a real-valued score (e.g. memorization), clean and mislabeled apart."""
    values = np.asarray(values, dtype=float)
    return _stacked_histogram(values, mislabeled, bins, xlabel=xlabel, title=title)


def _stacked_histogram(values, mislabeled, bins, *, xlabel: str, title: str) -> Figure:
    """The finite ``values`` of clean and of mislabeled examples, stacked, on a log count axis."""
    mislabeled = np.asarray(mislabeled, dtype=bool)
    finite = np.isfinite(values)
    parts = [values[finite & ~mislabeled], values[finite & mislabeled]]
    fig = new_figure((7.0, 4.0))
    ax = fig.add_subplot()
    labels = [f"clean ({len(parts[0])})", f"wrong label ({len(parts[1])})"]
    ax.hist(parts, bins=bins, stacked=True, color=[CLEAN, MISLABELED], label=labels)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("examples (log scale)")
    ax.legend()
    axes_title(ax, title)
    return fig


GALLERIES = {
    "never_learned": "never learned",
    "most_forgotten": "most forgotten",
    "learned_last": "learned last",
}


def captions(record: ex.ExampleRecord, picks: np.ndarray, detail: np.ndarray, what: str):
    """Captions ``#index: label (true t)`` and ``what value``, and which picks are mislabeled."""
    out = []
    for i, value in zip(picks, detail[picks], strict=True):
        label, true = int(record.label[i]), int(record.true_label[i])
        shown = f"{label}" if label == true else f"{label} (true {true})"
        out.append(f"#{int(record.index[i])}: {shown}\n{what} {value:g}")
    return out, record.mislabeled[picks]


def record_figures(
    record: ex.ExampleRecord, image_shape: tuple[int, ...], *, title: str
) -> dict[str, Figure]:
    """Every picture of a per-example record, by file name: the cartography map, the
    forgetting-events histogram and (when ``record.inputs`` is there) the three galleries."""
    scores = ex.scores(record)
    wrong = record.mislabeled
    drawn = {
        "cartography.png": cartography_map(
            scores["confidence"],
            scores["variability"],
            wrong,
            title=f"dataset cartography\n{title}",
        ),
        "forgetting_events.png": count_histogram(
            scores["forgetting_events"],
            wrong,
            xlabel="forgetting events (never learned = one per epoch)",
            title=f"forgetting events per training example\n{title}",
        ),
    }
    detail = {
        "never_learned": ("conf.", scores["confidence"].round(2)),
        "most_forgotten": ("forgotten", scores["forgetting_events"]),
        "learned_last": ("from epoch", scores["learned_epoch"]),
    }
    if record.inputs is None:
        return drawn
    for kind, picks in ex.gallery_picks(record).items():
        what, values = detail[kind]
        text, highlight = captions(record, picks, values, what)
        drawn[f"gallery_{kind}.png"] = image_gallery(
            record.inputs[picks],
            image_shape,
            text,
            highlight=highlight,
            title=f"{GALLERIES[kind]}: {len(picks)} shown (#pool index: label trained on; red "
            f"if wrong)\n{title}",
        )
    return drawn


def memorization_figures(
    table: dict[str, np.ndarray],
    inputs: np.ndarray,
    image_shape,
    n_models: int,
    k: int = 32,
    *,
    reliability: dict[str, np.ndarray] | None = None,
) -> dict[str, Figure]:
    """The memorization study's pictures, by file name: the histogram of the scores, the ``k``
    most memorized images and, given ``reliability`` (``MemorizationResult.reliability()``),
    the split-half reliability against the number of models. ``table`` is
    ``MemorizationResult.table()`` (or its CSV read back; a table from before the intervals,
    with ``se`` instead of ``ci_low``, still draws); ``inputs`` (n, n_features) the pool's
    images in the table's order."""
    mem, n_out = (np.asarray(table[c], dtype=float) for c in ("mem", "n_out"))
    if "ci_low" in table:
        low, high = (np.asarray(table[c], dtype=float) for c in ("ci_low", "ci_high"))
    else:  # an old table: mem ± 1.96 se
        se = np.asarray(table["se"], dtype=float)
        low, high = mem - 1.96 * se, mem + 1.96 * se
    label, true = np.asarray(table["label"], int), np.asarray(table["true_label"], int)
    wrong = label != true
    ranked = np.flatnonzero(np.isfinite(mem))
    # Highest score first; among equal scores the surest (highest lower bound, most models
    # without it).
    picks = ranked[np.lexsort((-n_out[ranked], -low[ranked], -mem[ranked]))][:k]
    captions = [
        f"#{int(table['index'][i])}: {label[i]}"
        + ("" if label[i] == true[i] else f" (true {true[i]})")
        + f"\nmem {mem[i]:.2f} [{low[i]:.2f}, {high[i]:.2f}]"
        for i in picks
    ]
    drawn = {
        "histogram.png": score_histogram(
            mem,
            wrong,
            xlabel="memorization score: P(right | trained on it) - P(right | not)",
            title=f"memorization scores of {len(ranked)} examples ({n_models} models)",
        ),
        "gallery_most_memorized.png": image_gallery(
            inputs[picks],
            image_shape,
            captions,
            highlight=wrong[picks],
            title=f"the {len(picks)} most memorized training images (#pool index: label trained "
            "on; score [95% interval]; red if wrong)",
        ),
    }
    if reliability is not None and len(reliability["models_per_half"]):
        drawn["reliability.png"] = reliability_curve(reliability, n_models)
    return drawn


def reliability_curve(reliability: dict[str, np.ndarray], n_models: int) -> Figure:
    """Split-half reliability of the memorization scores against the number of models.

    ``reliability`` as ``pipeline.study.memorization.reliability_curve`` returns it: per
    number of models in each half, the correlation of the two halves' scores, and the
    Spearman-Brown prediction for the two halves together (plotted at twice the models).
    """
    m = np.asarray(reliability["models_per_half"], dtype=float)
    fig = new_figure((6.0, 4.0))
    ax = fig.add_subplot()
    ax.plot(m, reliability["split_half"], "o-", color="C0", label="split half: m models vs m")
    ax.plot(
        2 * m,
        reliability["spearman_brown"],
        "s--",
        color="C1",
        label="Spearman-Brown: predicted for 2m models",
    )
    ax.set_xlabel("models")
    ax.set_ylabel("reliability (correlation of scores)")
    ax.set_ylim(min(0.0, float(np.nanmin(reliability["split_half"], initial=0.0))), 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(f"how many models are enough? ({n_models} trained)")
    return fig
