"""Figures of a sweep: accuracy and epochs to fit against the swept quantity.

:func:`report_figures` turns the finished runs of a :func:`pipeline.report.table.build_table`
table into one figure per swept quantity and panel: against the label-noise fraction p (the
shape of Zhang et al. 2017, Fig. 1) and against the width of one-layer networks; the seeds
of each point are averaged, with the 95% interval of the mean as an error bar.
:func:`metric_vs` is the plot underneath. Figures are pyplot-free (see
:mod:`pipeline.report.canvas`); :mod:`pipeline.report` saves them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.report.aggregate import summarize
from pipeline.report.canvas import as_float, new_figure
from pipeline.report.table import METRICS

_P, _WIDTH = "probe.labels.fraction", "model.hidden_layer_sizes"


def metric_vs(
    x: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
    errors: Mapping[str, Sequence[float | None]] | None = None,
    styles: Mapping[str, Mapping] | None = None,
) -> Figure:
    """Plot several metrics against one swept quantity (lines with markers).

    Parameters
    ----------
    x : sequence of float, shape (n_points,)
        The swept values, e.g. label-noise fraction or hidden width.
    series : mapping of str to sequence of float, each of shape (n_points,)
        Legend label to values; NaN/``None`` values are left as gaps.
    xlabel, ylabel, title : str
        Axis labels and axes title.
    logx : bool
        Use a logarithmic x axis (e.g. for widths 16, 32, ..., 1024).
    errors : mapping of str to sequence of float, optional
        Per series, the half-width of each point's 95% interval over seeds, drawn as an error
        bar (NaN/``None``: no bar, e.g. one seed).
    styles : mapping of str to dict, optional
        Per series, extra line properties (``color``, ``linestyle``).

    Returns
    -------
    Figure
        One axes with one line per series.
    """
    x_values = as_float(x)
    fig = new_figure((6.0, 4.0))
    ax = fig.add_subplot()
    for label, values in series.items():
        y_values = as_float(values)
        if y_values.size != x_values.size:
            raise ValueError(
                f"series {label!r} has {y_values.size} values for {x_values.size} x values"
            )
        style = dict((styles or {}).get(label, {}))
        bars = (errors or {}).get(label)
        if bars is None:
            ax.plot(x_values, y_values, marker="o", label=label, **style)
        else:
            ax.errorbar(
                x_values, y_values, yerr=as_float(bars), marker="o", capsize=3, label=label, **style
            )
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if series:
        ax.legend()
    if title:
        ax.set_title(title)
    return fig


def _sweep_axis(done: pd.DataFrame, column: str) -> pd.Series | None:
    """The swept quantity as numbers, one per run: p, or the width of one-layer networks."""
    if column not in done or done[column].nunique() < 2:
        return None
    if column == _P:
        return done[column].astype(float)
    layers = done[column].map(lambda text: json.loads(text) if isinstance(text, str) else None)
    if not all(isinstance(v, list) and len(v) == 1 for v in layers):
        return None
    return layers.map(lambda v: float(v[0]))


def _sweep_figure(done, x, others, metrics: dict[str, str], **labels):
    """``metrics`` (column -> legend label) against ``x``, one line per metric and group.

    Groups are the combinations of the ``others`` columns (e.g. arm, model); repeats within a
    group (seeds) are averaged, with an error bar for the 95% interval of the mean (none for
    one seed), and a group without a run at some x has a gap there. A group keeps one colour,
    each metric its own line style.
    """
    xs = np.sort(x.unique())
    metrics = {m: label for m, label in metrics.items() if done[m].notna().any()}
    groups = done.groupby(others, dropna=False, sort=True) if others else [((), done)]
    series: dict[str, list[float]] = {}
    errors: dict[str, list[float]] = {}
    styles: dict[str, dict] = {}
    for i, (values, rows) in enumerate(groups):
        pairs = zip(others, values if isinstance(values, tuple) else (values,), strict=True)
        group = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in pairs if pd.notna(v))
        for j, (metric, label) in enumerate(metrics.items()):
            by_x = rows[metric].groupby(x[rows.index])
            name = f"{label} ({group})" if group else label
            series[name] = by_x.mean().reindex(xs).tolist()
            half = by_x.agg(lambda v: summarize(v).half_width or np.nan).reindex(xs)
            errors[name] = half.astype(float).tolist()
            if others:
                styles[name] = {"color": f"C{i % 10}", "linestyle": ("-", "--", ":")[j % 3]}
    if not series:
        return None
    fig = metric_vs(xs, series, errors=errors, styles=styles, **labels)
    ax = fig.axes[0]
    if len(series) > 2:  # keep the legend off the data
        fig.set_size_inches(10.0, 4.0)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    if labels.get("logx"):  # label the widths themselves, not powers of ten
        ax.set_xticks(xs, [f"{v:g}" for v in xs])
        ax.minorticks_off()
    return fig


# Swept quantity: name -> (column, x label); then per quantity: file stem, metrics, y label.
_AXES = {
    "p": (_P, "fraction of training labels corrupted, p"),
    "width": (_WIDTH, "hidden units (one layer)"),
}
_PANELS = (
    ("accuracy", {"final_train_accuracy": "train", "test_accuracy": "test"}, "accuracy"),
    ("epochs_to_fit", {"epochs_to_fit": "epochs to fit"}, "epochs to fit (gap: never fitted)"),
)


def report_figures(table: pd.DataFrame) -> dict:
    """Figures for the swept quantities, ``{file name: Figure}`` (empty if nothing applies).

    From the finished runs of a :func:`~pipeline.report.table.build_table` table: when
    ``probe.labels.fraction`` varies, ``accuracy_vs_p.png`` and ``epochs_to_fit_vs_p.png``;
    when one-layer ``model.hidden_layer_sizes`` varies, ``accuracy_vs_width.png`` and
    ``epochs_to_fit_vs_width.png`` (log x).
    """
    done = table[table["status"] == "FINISHED"]
    varied = [c for c in done.columns if c not in ("run", "status", "run_id", *METRICS)]
    figures = {}
    for name, (column, xlabel) in _AXES.items():
        x = _sweep_axis(done, column)
        if x is None:
            continue
        others = [c for c in varied if c not in (column, "seed")]
        for stem, metrics, ylabel in _PANELS:
            title = f"{stem.replace('_', ' ')} against {name}"
            fig = _sweep_figure(
                done, x, others, metrics, xlabel=xlabel, ylabel=ylabel, title=title,
                logx=name == "width",
            )  # fmt: skip
            if fig is not None:
                if stem == "accuracy":
                    fig.axes[0].set_ylim(0.0, 1.02)
                figures[f"{stem}_vs_{name}.png"] = fig
    return figures


def curves_by_run(histories: Mapping[str, Mapping[str, Sequence[float]]]) -> Figure:
    """Training and validation accuracy per epoch, one line per run, in two panels.

    Parameters
    ----------
    histories : mapping of run label to {metric name: values for epochs 1..n}
        Uses ``train_accuracy`` (solid, left) and ``val_accuracy`` (right).
    """
    fig = new_figure((10.0, 4.0))
    panels = fig.subplots(1, 2, sharey=True)
    metrics = ("train_accuracy", "val_accuracy")
    titles = ("training (labels trained on)", "validation")
    for ax, metric, title in zip(panels, metrics, titles, strict=True):
        for i, (label, history) in enumerate(histories.items()):
            values = as_float(history.get(metric, []))
            ax.plot(np.arange(1, len(values) + 1), values, color=f"C{i % 10}", label=label)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    panels[0].set_ylabel("accuracy")
    panels[1].legend(loc="best", fontsize="small")
    return fig


def short_labels(names: Sequence[str]) -> list[str]:
    """Run names with the dash-separated parts they all share removed (``p=0.2``, ``probe``)."""
    parts = [name.split("-") for name in names]
    common = set.intersection(*(set(p) for p in parts)) if parts else set()
    return [
        "-".join(x for x in p if x not in common) or name
        for p, name in zip(parts, names, strict=True)
    ]
