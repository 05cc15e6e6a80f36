"""Figures of a sweep: accuracy and epochs to fit against the swept quantity.

:func:`report_figures` turns the finished runs of a :func:`pipeline.report.table.build_table`
table into one figure per swept quantity and panel: against the label-noise fraction p (the
shape of Zhang et al. 2017, Fig. 1) and against the width of one-layer networks; the seeds
of each point are averaged, with the 95% interval of the mean as an error bar, except epochs
to fit, where a seed that did not fit is censored rather than left out (the mean only when
every seed fitted, else the Kaplan-Meier median and its interval, ``k/n`` fitted beside the
point: :func:`pipeline.report.aggregate.summarize_censored`, as in the table); for a width
sweep, also the double-descent figure (:func:`double_descent`: error and loss against the
number of parameters, the interpolation threshold n*K marked, as Belkin et al. 2019, Fig. 3).
:func:`metric_vs` is the plot underneath. Figures are pyplot-free (see
:mod:`pipeline.report.canvas`); :mod:`pipeline.report` saves them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from pipeline.report.aggregate import FIT, KM_MEDIAN, summarize, summarize_censored
from pipeline.report.canvas import as_float, new_figure, suptitle
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
    errors : mapping of str to array_like of float, optional
        Per series, the half-width of each point's 95% interval over seeds, shape
        (n_points,), or its distances below and above the point, shape (2, n_points) for an
        asymmetric interval; drawn as an error bar (NaN/``None``: no bar, e.g. one seed).
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
            yerr = np.asarray(bars, dtype=float)
            yerr = yerr if yerr.ndim == 2 else as_float(bars)  # (2, n): below and above
            ax.errorbar(x_values, y_values, yerr=yerr, marker="o", capsize=3, label=label, **style)
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


def _censored_points(
    rows: pd.DataFrame, x: pd.Series, xs: np.ndarray
) -> tuple[list[float], np.ndarray, list[tuple[int, int]]]:
    """Epochs to fit of ``rows`` at each of ``xs``, seeds that did not fit censored, not dropped.

    Per x, :func:`~pipeline.report.aggregate.summarize_censored` of the seeds' ``epochs_to_fit``,
    each unfitted seed censored at its ``epochs``: the mean when every seed fitted, else the
    Kaplan-Meier median (NaN, a gap, when half or more did not fit). Returns the points
    (n_points,), the error bars as (2, n_points) distances below and above, and ``(fitted,
    seeds)`` at each x. An upper bound not reached is drawn up to the most epochs a seed ran
    there (the interval goes on beyond what was watched); a bar is NaN without a point.
    """
    censor = rows["epochs"] if "epochs" in rows else pd.Series(np.nan, index=rows.index)
    points, bars, counts = [], [], []
    for value in xs:
        here = (x[rows.index] == value).to_numpy()
        found = summarize_censored(rows[FIT][here], censor[here])
        point = found.value if found.of else np.nan
        points.append(point)
        counts.append((found.n, found.of or 0))
        if found.estimator != KM_MEDIAN:  # all fitted: the t interval, none for one seed
            half = found.half_width
            bars.append((np.nan, np.nan) if half is None else (half, half))
            continue
        watched = np.nanmax(censor[here], initial=point)  # NaN point: no bar either way
        low = point if found.ci_low is None else found.ci_low
        high = watched if found.ci_high is None else found.ci_high
        bars.append((point - low, max(high - point, 0.0)))
    return points, np.array(bars, dtype=float).T, counts


def _sweep_figure(done, x, others, metrics: dict[str, str], **labels):
    """``metrics`` (column -> legend label) against ``x``, one line per metric and group.

    Groups are the combinations of the ``others`` columns (e.g. arm, model); repeats within a
    group (seeds) are averaged, with an error bar for the 95% interval of the mean (none for
    one seed), and a group without a run at some x has a gap there. A group keeps one colour,
    each metric its own line style. Epochs to fit are the exception: a seed that did not fit
    is censored, not left out (:func:`_censored_points`), and ``k/n`` fitted is written beside
    a point where some seed did not fit.
    """
    xs = np.sort(x.unique())
    metrics = {m: label for m, label in metrics.items() if done[m].notna().any()}
    groups = done.groupby(others, dropna=False, sort=True) if others else [((), done)]
    series: dict[str, list[float]] = {}
    errors: dict[str, list[float]] = {}
    styles: dict[str, dict] = {}
    fitted: dict[str, list[tuple[int, int]]] = {}  # per censored series: (k, n) at each x
    for i, (values, rows) in enumerate(groups):
        pairs = zip(others, values if isinstance(values, tuple) else (values,), strict=True)
        group = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in pairs if pd.notna(v))
        for j, (metric, label) in enumerate(metrics.items()):
            name = f"{label} ({group})" if group else label
            if metric == FIT:
                found = _censored_points(rows, x, xs)
                series[name], errors[name], fitted[name] = found
            else:
                by_x = rows[metric].groupby(x[rows.index])
                series[name] = by_x.mean().reindex(xs).tolist()
                half = by_x.agg(lambda v: summarize(v).half_width or np.nan).reindex(xs)
                errors[name] = half.astype(float).tolist()
            if others:
                styles[name] = {"color": f"C{i % 10}", "linestyle": ("-", "--", ":")[j % 3]}
    if not series:
        return None
    fig = metric_vs(xs, series, errors=errors, styles=styles, **labels)
    ax = fig.axes[0]
    for name, counts in fitted.items():  # "k/n" beside each point where a seed did not fit
        for x_value, y_value, (k, n) in zip(xs, series[name], counts, strict=True):
            if k < n and np.isfinite(y_value):
                ax.annotate(
                    f"{k}/{n}", (x_value, y_value), xytext=(4, 4), textcoords="offset points",
                    fontsize="small", color="0.3",
                )  # fmt: skip
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
    (
        "epochs_to_fit",
        {FIT: "epochs to fit"},
        "epochs to fit: the mean if every seed fitted,\nelse the Kaplan-Meier median "
        "(k/n fitted;\ngap: half or more did not fit)",
    ),
)


def double_descent(
    n_params: Sequence[float],
    errors: Mapping[str, Sequence[float]],
    losses: Mapping[str, Sequence[float]],
    *,
    threshold: float | None,
    title: str = "",
    half_widths: Mapping[str, Sequence[float]] | None = None,
) -> Figure:
    """Error and loss against the number of parameters (log x), the threshold n*K marked.

    Parameters
    ----------
    n_params : sequence of float, shape (n_points,)
        Trainable parameters of each model (increasing).
    errors, losses : mapping of str to sequence of float, each of shape (n_points,)
        Legend label (e.g. "train", "test") to 1 - accuracy, and to the mean data loss.
    threshold : float or None
        The interpolation threshold n*K (training examples x classes), drawn as a dashed
        vertical line in both panels; None draws none.
    half_widths : mapping of str to sequence of float, optional
        Error bars: the same labels as in ``errors`` and ``losses`` (``"test"`` for the error,
        ``"test loss"`` for the loss) to the 95% half-width over seeds at each point (NaN for
        a point of one seed: no bar).
    """
    x = as_float(n_params)
    fig = new_figure((11.0, 4.2))
    panels = fig.subplots(1, 2)
    ylabels = ("error (1 - accuracy)", "loss")
    bars = half_widths or {}
    for ax, series, ylabel, suffix in zip(
        panels, (errors, losses), ylabels, ("", " loss"), strict=True
    ):
        for i, (label, values) in enumerate(series.items()):
            y = as_float(values)
            ax.plot(x, y, marker="o", markersize=4, color=f"C{i}", label=label)
            if label + suffix in bars:
                yerr = as_float(bars[label + suffix])
                ax.errorbar(x, y, yerr=yerr, fmt="none", color=f"C{i}", capsize=3, elinewidth=1)
        if threshold is not None:
            ax.axvline(threshold, color="0.4", linestyle="--", linewidth=1)
            ax.annotate(
                f"n·K = {threshold:,.0f}", (threshold, 1.0), xycoords=("data", "axes fraction"),
                xytext=(3, -12), textcoords="offset points", fontsize="small", color="0.3",
            )  # fmt: skip
        ax.set_xscale("log")
        # Thousands of parameters, as Belkin et al. label theirs; no labels on minor ticks.
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}K"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("parameters")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0.0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        suptitle(fig, title)
    return fig


def _double_descent_figure(done: pd.DataFrame, runs: pd.DataFrame, x: pd.Series):
    """The double-descent figure of a one-layer width sweep, or None without the metrics."""
    needed = ("metrics.n_params", "metrics.test_loss", "metrics.final_train_loss")
    if not all(c in runs for c in needed):
        return None
    from pipeline.report.aggregate import summarize

    extra = runs.set_index("run_id").reindex(done["run_id"])
    n_params = pd.Series(extra["metrics.n_params"].to_numpy(float), index=done.index)
    points = pd.DataFrame(
        {
            "width": x,
            "n_params": n_params,
            "train": 1.0 - done["final_train_accuracy"],
            "test": 1.0 - done["test_accuracy"],
            "train_loss": extra["metrics.final_train_loss"].to_numpy(float),
            "test_loss": extra["metrics.test_loss"].to_numpy(float),
        }
    ).groupby("width")
    by_width = points.mean()  # repeats (seeds) averaged, with their 95% interval as error bars
    spread = points[["test", "test_loss"]].agg(lambda v: summarize(v).half_width or np.nan)
    if len(by_width) < 2 or by_width["n_params"].isna().any():
        return None
    # One hidden layer: n_params = (d + 1 + K) * H + K, so K is the intercept of the line.
    (h0, p0), (h1, p1) = list(by_width["n_params"].items())[:2]
    n_classes = round(p0 - h0 * (p1 - p0) / (h1 - h0))
    n_train = None
    if "params.n_train" in extra:
        values = pd.to_numeric(extra["params.n_train"], errors="coerce").dropna().unique()
        n_train = float(values[0]) if len(values) == 1 else None
    threshold = n_train * n_classes if n_train else None
    return double_descent(
        by_width["n_params"],
        {"train": by_width["train"], "test": by_width["test"]},
        {"train": by_width["train_loss"], "test": by_width["test_loss"]},
        threshold=threshold,
        half_widths={"test": spread["test"], "test loss": spread["test_loss"]},
        title=f"double descent: one hidden layer, widths {by_width.index.min():g} ... "
        f"{by_width.index.max():g}" + (f", n = {n_train:,.0f}" if n_train else ""),
    )


def report_figures(table: pd.DataFrame, runs: pd.DataFrame | None = None) -> dict:
    """Figures for the swept quantities, ``{file name: Figure}`` (empty if nothing applies).

    From the finished runs of a :func:`~pipeline.report.table.build_table` table: when
    ``probe.labels.fraction`` varies, ``accuracy_vs_p.png`` and ``epochs_to_fit_vs_p.png``;
    when one-layer ``model.hidden_layer_sizes`` varies, ``accuracy_vs_width.png`` and
    ``epochs_to_fit_vs_width.png`` (log x), and with ``runs`` (the MLflow runs the table
    was built from: ``metrics.n_params``, ``metrics.test_loss``, ``metrics.final_train_loss``,
    ``params.n_train``) ``double_descent.png`` against the number of parameters.
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
        if name == "width" and runs is not None:
            fig = _double_descent_figure(done, runs, x)
            if fig is not None:
                figures["double_descent.png"] = fig
    return figures
