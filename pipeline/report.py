"""``python -m pipeline.report``: compare runs in a table and in figures.

Given an MLflow experiment, or a parent run (a sweep's parent; its children name it in their
``mlflow.parentRunId`` tag), the report takes the *leaf* runs (those that trained a model),
finds the params that differ between them and sets those against train and test accuracy,
epochs to fit, epochs and fit time. It prints the table and writes ``table.md``,
``table.csv`` and, when ``probe.labels.fraction`` varies, accuracy and epochs to fit against
p (the shape of Zhang et al. 2017, Fig. 1; ``*_vs_p.png``); when the width of one-layer
networks varies, the same against width (``*_vs_width.png``). Runs that did not finish are
listed, marked ``*``, and left out of the figures. Choosing runs, the table and the figures
are pure functions of ``mlflow.search_runs``' DataFrame; ``_select`` and ``main`` query
MLflow and write the files.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import MemlabError

METRICS = ("final_train_accuracy", "test_accuracy", "epochs_to_fit", "epochs", "fit_seconds")
# Varied params in this order (then the others alphabetically, the seed last), so that rows
# sort by what an experiment is about before what merely repeats it.
_PARAM_ORDER = ("model.name", "probe.labels.fraction", "model.hidden_layer_sizes", "probe.inputs")
_P, _WIDTH = "probe.labels.fraction", "model.hidden_layer_sizes"
_PARENT_TAG, _SWEEP_TAG = "tags.mlflow.parentRunId", "tags.memlab.sweep"


class ReportError(MemlabError):
    """The runs asked for cannot be found or compared."""


# ---------------------------------------------------------------------- pure: which runs
def leaf_runs(runs: pd.DataFrame, parent_id: str | None = None) -> pd.DataFrame:
    """The runs that trained a model: runs no other run names as its parent.

    With ``parent_id``, only its descendants (a sweep's jobs, or the probe/control arms of
    each job); else every leaf of ``runs`` except sweep parents still waiting for children.
    """
    parents = runs[_PARENT_TAG] if _PARENT_TAG in runs else pd.Series(None, index=runs.index)
    has_children = runs["run_id"].isin(set(parents.dropna()))
    if parent_id is None:
        is_sweep = runs[_SWEEP_TAG].eq("parent") if _SWEEP_TAG in runs else False
        return runs[~has_children & ~is_sweep]
    family, frontier = set(), {parent_id}
    while frontier:  # walk down the tree, one generation at a time
        frontier = set(runs.loc[parents.isin(frontier), "run_id"]) - family
        family |= frontier
    return runs[runs["run_id"].isin(family) & ~has_children]


# ---------------------------------------------------------------------- pure: the table
def _sort_key(value) -> tuple:
    """Numbers by value, then lists of numbers (``[16]`` < ``[128]``), then text, missing last."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (3, "")
    for rank, parse in ((0, float), (1, lambda t: tuple(float(v) for v in json.loads(t)))):
        try:
            return (rank, parse(str(value)))
        except (ValueError, TypeError):  # not a number / not a JSON list of numbers
            pass
    return (2, str(value))


def varied_params(runs: pd.DataFrame) -> list[str]:
    """The params (without ``params.``) whose values differ across ``runs``, in display order."""
    keys = [c.removeprefix("params.") for c in runs.columns if c.startswith("params.")]
    varied = [k for k in keys if runs[f"params.{k}"].nunique(dropna=False) > 1]
    first = [k for k in _PARAM_ORDER if k in varied]
    rest = sorted(k for k in varied if k not in first and k != "seed")
    return first + rest + (["seed"] if "seed" in varied else [])


def build_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its name, the varied params, ``arm``, the results, status and id.

    Parameters
    ----------
    runs : DataFrame, one row per run
        As ``mlflow.search_runs`` returns it: ``run_id``, ``status``, ``params.*``,
        ``metrics.*``, ``tags.*`` (and ``start_time``, used to order ties).

    Returns
    -------
    DataFrame
        Columns ``run``, each varied param (the logged text, e.g. ``"0.2"`` or ``"[512]"``),
        ``arm`` when some run has one, each of ``METRICS`` (float; NaN when absent, e.g.
        ``epochs_to_fit`` of a run that never fitted), ``status`` and ``run_id``. Sorted by
        the varied params (numerically where they are numbers), then arm, then start time.
    """
    if "start_time" in runs:
        runs = runs.sort_values("start_time", kind="stable")
    varied = varied_params(runs)
    table = pd.DataFrame(index=runs.index)
    name = runs["tags.mlflow.runName"] if "tags.mlflow.runName" in runs else runs["run_id"]
    table["run"] = name.fillna(runs["run_id"])
    for key in varied:
        table[key] = runs[f"params.{key}"]
    if "tags.arm" in runs and runs["tags.arm"].notna().any():
        table["arm"] = runs["tags.arm"]
        varied = [*varied, "arm"]
    for metric in METRICS:  # all of them, NaN where absent: every report has the same shape
        column = f"metrics.{metric}"
        table[metric] = runs[column].astype(float) if column in runs else np.nan
    table["status"] = runs["status"]
    table["run_id"] = runs["run_id"]
    if varied:
        table = table.sort_values(varied, key=_ranks, kind="stable")
    return table.reset_index(drop=True)


def _ranks(column: pd.Series) -> pd.Series:
    """Each value's position in :func:`_sort_key` order (what ``sort_values`` sorts by)."""
    keys = column.map(_sort_key)
    position = {key: i for i, key in enumerate(sorted(set(keys)))}
    return keys.map(position)


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` as text for people: rounded results, ``-`` for missing, ``*`` if unfinished."""
    shown = table.drop(columns="run_id").astype(object)
    for metric in METRICS:
        if metric in shown:
            digits = 3 if metric.endswith("accuracy") else 1 if metric == "fit_seconds" else 0
            shown[metric] = [f"{v:.{digits}f}" if pd.notna(v) else "-" for v in table[metric]]
    shown["status"] = table["status"].map(lambda s: s if s == "FINISHED" else f"{s} *")
    return shown.fillna("-")


def markdown(shown: pd.DataFrame) -> str:
    """A Markdown table of ``shown``: pandas' (tabulate, which dvc brings), else our own."""
    try:
        align = ["right" if c in METRICS else "left" for c in shown.columns]
        return shown.to_markdown(index=False, disable_numparse=True, colalign=align) + "\n"
    except ImportError:
        return plain_markdown(shown)


def plain_markdown(shown: pd.DataFrame) -> str:
    """A GitHub Markdown table of ``shown``, one line per row, no alignment padding."""
    rows = [list(shown.columns), *shown.astype(str).to_numpy().tolist()]
    lines = ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("---" for _ in shown.columns) + "|")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- pure: the figures
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
    group (seeds) are averaged, and a group without a run at some x has a gap there. A group
    keeps one colour, each metric its own line style.
    """
    from pipeline.figures import metric_vs

    xs = np.sort(x.unique())
    metrics = {m: label for m, label in metrics.items() if done[m].notna().any()}
    groups = done.groupby(others, dropna=False, sort=True) if others else [((), done)]
    series: dict[str, list[float]] = {}
    for values, rows in groups:
        pairs = zip(others, values if isinstance(values, tuple) else (values,), strict=True)
        group = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in pairs if pd.notna(v))
        for metric, label in metrics.items():
            means = rows[metric].groupby(x[rows.index]).mean().reindex(xs)
            series[f"{label} ({group})" if group else label] = means.tolist()
    if not series:
        return None
    fig = metric_vs(xs, series, **labels)
    ax = fig.axes[0]
    if others:
        for i, line in enumerate(ax.get_lines()):
            line.set_color(f"C{i // len(metrics)}")
            line.set_linestyle(("-", "--", ":")[i % len(metrics) % 3])
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

    From the finished runs of a :func:`build_table` table: when ``probe.labels.fraction``
    varies, ``accuracy_vs_p.png`` and ``epochs_to_fit_vs_p.png``; when one-layer
    ``model.hidden_layer_sizes`` varies, ``accuracy_vs_width.png`` and
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


# ---------------------------------------------------------------------- the MLflow edge
def _select(experiment: str, parent: str | None, latest_sweep: bool) -> tuple[str, pd.DataFrame]:
    """Query MLflow: the report's name and the leaf runs it compares."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    if parent is not None:
        try:
            parent_run = client.get_run(parent)
        except MlflowException:
            raise ReportError(f"no run with id {parent!r} in {mlflow.get_tracking_uri()}") from None
        experiment_id, name = parent_run.info.experiment_id, parent_run.info.run_name
    else:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            known = ", ".join(e.name for e in client.search_experiments()) or "none"
            raise ReportError(
                f"no experiment {experiment!r} in {mlflow.get_tracking_uri()} "
                f"(experiments there: {known}); choose one with --experiment"
            )
        experiment_id, name = found.experiment_id, experiment
    runs = mlflow.search_runs(experiment_ids=[experiment_id], output_format="pandas")
    if runs.empty:
        raise ReportError(f"experiment {name!r} has no runs yet: run `python -m pipeline` first")
    if latest_sweep:
        sweeps = runs[runs[_SWEEP_TAG].eq("parent")] if _SWEEP_TAG in runs else runs.iloc[:0]
        if sweeps.empty:
            raise ReportError(
                f"experiment {experiment!r} has no sweep (no run tagged memlab.sweep=parent): "
                "run one with `python -m pipeline -m ...`"
            )
        newest = sweeps.sort_values("start_time").iloc[-1]
        parent, name = newest["run_id"], newest["tags.mlflow.runName"]
    leaves = leaf_runs(runs, parent)
    if parent is not None and leaves.empty:
        raise ReportError(
            f"run {parent} ({name}) has no child runs: give a sweep's parent run id, "
            "or use --latest-sweep"
        )
    if leaves.empty:
        raise ReportError(f"experiment {name!r} has no runs that trained a model")
    return name, leaves


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.report",
        description="Compare the runs of an MLflow experiment or of a sweep: a table "
        "(printed, and written as table.md and table.csv) and figures.",
    )
    parser.add_argument("--experiment", default="memlab", help="MLflow experiment (memlab)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--parent", metavar="RUN_ID", help="a sweep's parent run: its children")
    which.add_argument("--latest-sweep", action="store_true", help="the newest sweep's runs")
    parser.add_argument("--tracking-uri", help="MLflow store (default: MLflow's default)")
    parser.add_argument("--out", type=Path, help="output directory (default: reports/<name>)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the report; 0 on success, 1 with one line on stderr for a problem to fix."""
    import logging

    import mlflow

    from pipeline.figures import save_figure

    args = parse_args(argv)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        if args.tracking_uri:
            mlflow.set_tracking_uri(args.tracking_uri)
        uri = mlflow.get_tracking_uri()
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
            raise ReportError(
                f"no MLflow store at {uri}: run where you trained or pass --tracking-uri"
            )
        name, runs = _select(args.experiment, args.parent, args.latest_sweep)
    except MemlabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    table = build_table(runs)
    shown = display_table(table)
    out = args.out or Path("reports") / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(markdown(shown))
    table.to_csv(out / "table.csv", index=False)
    written = ["table.md", "table.csv"]
    for file_name, fig in report_figures(table).items():
        save_figure(fig, out / file_name)
        written.append(file_name)
    print(f"{name}: {len(table)} runs")
    print(shown.to_string(index=False))
    unfinished = int((table["status"] != "FINISHED").sum())
    if unfinished:
        print(f"* {unfinished} run(s) not FINISHED: listed, left out of the figures")
    print(f"wrote {out}: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
