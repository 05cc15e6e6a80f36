"""``python -m pipeline.report``: compare runs in a table and in figures.

Given an MLflow experiment, or a parent run (a sweep's parent; its children name it in their
``mlflow.parentRunId`` tag), the report takes the *leaf* runs (those that trained a model),
finds the params that differ between them and sets those against train and test accuracy,
epochs to fit, epochs and fit time. It prints the table and writes ``table.md``,
``table.csv`` and, when ``probe.labels.fraction`` varies, accuracy and epochs to fit against
p (the shape of Zhang et al. 2017, Fig. 1; ``*_vs_p.png``); when the width of one-layer
networks varies, the same against width (``*_vs_width.png``). Runs that did not finish are
listed, marked ``*``, and left out of the figures. Choosing runs and the table
(:mod:`pipeline.report.table`) and the figures (:mod:`pipeline.report.sweep_figures`) are pure
functions of ``mlflow.search_runs``' DataFrame; here ``_select`` and ``main`` query MLflow
and write the files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pipeline.errors import MemlabError
from pipeline.report.table import SWEEP_TAG, build_table, display_table, leaf_runs, markdown


class ReportError(MemlabError):
    """The runs asked for cannot be found or compared."""


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
        sweeps = runs[runs[SWEEP_TAG].eq("parent")] if SWEEP_TAG in runs else runs.iloc[:0]
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


# Per-epoch curves are drawn when a report compares at most this many runs.
MAX_CURVES = 12


def _histories(table: pd.DataFrame) -> dict[str, dict[str, list[float]]]:
    """Each run's per-epoch train and validation accuracy, keyed by a short label."""
    import mlflow

    from pipeline.report.sweep_figures import short_labels

    client = mlflow.MlflowClient()
    labels = short_labels(list(table["run"]))
    histories = {}
    for label, run_id in zip(labels, table["run_id"], strict=True):
        histories[label] = {
            metric: [
                m.value
                for m in sorted(client.get_metric_history(run_id, metric), key=lambda m: m.step)
            ]
            for metric in ("train_accuracy", "val_accuracy")
        }
    return histories


def main(argv: Sequence[str] | None = None) -> int:
    """Run the report; 0 on success, 1 with one line on stderr for a problem to fix."""
    import logging

    import mlflow

    from pipeline.report.canvas import save_figure
    from pipeline.report.sweep_figures import curves_by_run, report_figures

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
    for file_name, fig in report_figures(table, runs).items():
        save_figure(fig, out / file_name)
        written.append(file_name)
    if len(table) <= MAX_CURVES:
        save_figure(curves_by_run(_histories(table)), out / "curves.png")
        written.append("curves.png")
    print(f"{name}: {len(table)} runs")
    print(shown.to_string(index=False))
    unfinished = int((table["status"] != "FINISHED").sum())
    if unfinished:
        print(f"* {unfinished} run(s) not FINISHED: listed, left out of the figures")
    print(f"wrote {out}: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
