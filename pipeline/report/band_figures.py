"""Learning curves across seeds: the mean per epoch, with its 95% interval as a shaded band.

:func:`curves_with_bands` is a pure figure builder (see :mod:`pipeline.report.canvas`); the
numbers under each band come from :func:`pipeline.report.aggregate.band`. It is drawn on a
configuration's aggregate run in MLflow (``curves_across_seeds.png``) and by the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from pipeline.report.aggregate import band
from pipeline.report.canvas import new_figure, suptitle

# Panel -> the per-epoch metrics it shows, each with its line style and legend suffix.
_PANELS = {
    "training (labels trained on)": {
        "train_accuracy": ("-", ""),
        "train_accuracy_clean": ("--", ", clean labels"),
        "train_accuracy_corrupted": (":", ", corrupted labels"),
    },
    "validation": {"val_accuracy": ("-", "")},
}
CURVE_METRICS = tuple(m for metrics in _PANELS.values() for m in metrics)


def curves_with_bands(
    groups: Mapping[str, Mapping[str, Sequence[Sequence[float]]]], *, title: str = ""
) -> Figure:
    """Training and validation accuracy per epoch: a line per group, a band across its seeds.

    Parameters
    ----------
    groups : mapping of label to {metric: one curve per seed, each of shape (n_epochs,)}
        A label is a configuration, or an arm of one (``probe``, ``control``). Metrics are
        ``train_accuracy``, ``val_accuracy`` and, with corrupted labels,
        ``train_accuracy_clean`` and ``train_accuracy_corrupted``; missing ones are skipped.
    title : str
        Figure title.

    Returns
    -------
    Figure
        Two panels (training, validation); the shaded band is the 95% Student-t interval of
        the mean over seeds (none with one seed). The legend gives each group's seed count.
    """
    fig = new_figure((10.0, 4.0))
    panels = fig.subplots(1, 2, sharey=True)
    for ax, (panel, metrics) in zip(panels, _PANELS.items(), strict=True):
        for i, (label, curves) in enumerate(groups.items()):
            for metric, (style, suffix) in metrics.items():
                runs = [c for c in curves.get(metric, []) if len(c)]
                if not runs:
                    continue
                mean, low, high = band(runs)
                epochs = np.arange(1, len(mean) + 1)
                name = f"{label}{suffix} (n={len(runs)})"
                ax.plot(epochs, mean, color=f"C{i % 10}", linestyle=style, label=name)
                if len(runs) > 1:
                    ax.fill_between(epochs, low, high, color=f"C{i % 10}", alpha=0.2, lw=0)
        ax.set_xlabel("epoch")
        ax.set_title(panel)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(loc="best", fontsize="small")
    panels[0].set_ylabel("accuracy (mean, 95% band over seeds)")
    if title:
        suptitle(fig, title)
    return fig
