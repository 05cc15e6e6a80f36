"""The canvas every figure is drawn on: a pyplot-free ``Figure``, and the one way to save it.

Every figure builder (:mod:`pipeline.report.figures` for one run,
:mod:`pipeline.report.sweep_figures` for a sweep) is a pure function that returns a fresh
:class:`matplotlib.figure.Figure` from :func:`new_figure`. None touches
``matplotlib.pyplot``: a ``Figure`` made directly owns its own canvas, so no backend is
selected, no window can open, and nothing is shared between calls (no "current figure",
nothing to close). The caller decides where a figure goes, usually through
:func:`save_figure`, the only function that writes a file.
"""

from __future__ import annotations

import math
import os
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100


def as_float(values: Sequence[float | None]) -> np.ndarray:
    """Return ``values`` as a 1-D float array, with ``None`` turned into NaN (a gap)."""
    return np.asarray(list(values), dtype=float).reshape(-1)


def mosaic(tiles: np.ndarray, n_cols: int, gap: tuple[int, int]) -> np.ndarray:
    """Lay ``tiles`` of shape (k, height, width) out in one image, row by row, ``n_cols`` a row.

    ``gap`` is (rows, columns) of blank pixels before each tile and between tiles; blank pixels
    are NaN, which ``imshow`` leaves transparent. One image in one ``imshow`` draws in a
    fraction of the time of hundreds of images or axes.
    """
    k, height, width = tiles.shape
    gap_y, gap_x = gap
    n_rows = max(1, math.ceil(k / n_cols))
    out = np.full((n_rows * (height + gap_y), n_cols * (width + gap_x) - gap_x), np.nan)
    for i, tile in enumerate(tiles):
        top, left = tile_corner(i, n_cols, (height, width), gap)
        out[top : top + height, left : left + width] = tile
    return out


def tile_corner(i: int, n_cols: int, shape: tuple[int, int], gap: tuple[int, int]):
    """(top row, left column) of tile ``i`` in :func:`mosaic`'s image."""
    row, col = divmod(i, n_cols)
    return row * (shape[0] + gap[0]) + gap[0], col * (shape[1] + gap[1])


def new_figure(figsize: tuple[float, float]) -> Figure:
    """Return an empty pyplot-free figure with the house defaults."""
    return Figure(figsize=figsize, dpi=DPI, layout="constrained")


def wrapped(text: str, width: float, fontsize: float = 12.0) -> str:
    """``text`` with each line wrapped to ``width`` inches of ``fontsize``-point type (at a
    ``-`` or a space where it can), so that a title never runs past the frame.

    By convention a title's first line says what the figure shows and the next ones which run
    it comes from: a run's name (``numpy_mlp-label_noise_sweep-p=0.2-data=mnist-...``) is often
    wider than the figure.
    """
    chars = max(20, int(width * 72 / (0.6 * fontsize)))  # about 0.6 em a character
    return "\n".join(textwrap.fill(line, chars) or line for line in text.split("\n"))


def suptitle(fig: Figure, text: str, fontsize: float = 12.0) -> None:
    """Title ``fig`` with ``text``, each line :func:`wrapped` to the figure's width."""
    fig.suptitle(wrapped(text, fig.get_figwidth(), fontsize), fontsize=fontsize)


def axes_title(ax, text: str, fontsize: float = 12.0) -> None:
    """Title the axes ``ax`` with ``text``, each line :func:`wrapped` to most of the figure's
    width (an axes title may spread past its axes, not past the frame)."""
    ax.set_title(wrapped(text, 0.85 * ax.figure.get_figwidth(), fontsize), fontsize=fontsize)


def write_png(fig: Figure, handle: BinaryIO) -> None:
    """Draw ``fig`` once and write it to the binary file ``handle`` as a PNG.

    Once: the Agg canvas lays the figure out (constrained layout) as it draws it, where
    ``Figure.savefig`` draws it twice, the first time only to lay it out; the pixels and the
    file's bytes are the same. zlib's fastest level: a third less time on a busy picture, a
    few % more bytes.
    """
    FigureCanvasAgg(fig).print_png(handle, pil_kwargs={"compress_level": 1})


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as a PNG at ``path``, creating the parent directory.

    Atomic: the image goes to a temporary file in the same directory, then is renamed over
    ``path``, so a reader never sees a half-written file.

    Parameters
    ----------
    fig : Figure
        The figure to save (left open; a pyplot-free figure needs no closing).
    path : str or PathLike
        Destination; must end in ``.png``.

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"figures are saved as PNG; give a path ending in .png, not {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes the file private; a figure is for sharing
        with os.fdopen(fd, "wb") as handle:
            write_png(fig, handle)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path
