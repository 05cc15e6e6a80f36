"""``python -m pipeline.report``: compare runs in a table and in figures, seeds aggregated.

Given an MLflow experiment, or a parent run (a sweep's parent; its children name it in their
``mlflow.parentRunId`` tag), the report takes the *leaf* runs (those that trained a model) and
groups them by configuration (runs that differ only in ``seed``;
:mod:`pipeline.report.aggregate`). It prints, and writes as ``table.md`` and ``table.csv``, one
row per configuration (and arm) with the params that differ and each result as
``mean ± half-width (n)``, the 95% Student-t interval over seeds (no interval with one seed);
for probe/control runs also the paired comparisons of the same seed (``paired.csv``). The runs
themselves, one row per seed, are in ``table_seeds.csv``. Figures: when
``probe.labels.fraction`` varies, accuracy and epochs to fit against p (the shape of Zhang et
al. 2017, Fig. 1; ``*_vs_p.png``); when the width of one-layer networks varies, the same
against width (``*_vs_width.png``), with error bars over seeds; and ``curves.png``, accuracy
per epoch as mean and band. Runs that did not finish are listed and left out of the means and
figures. Choosing runs and the tables (:mod:`pipeline.report.table`) and the figures
(:mod:`pipeline.report.sweep_figures`, :mod:`pipeline.report.band_figures`) are pure functions
of ``mlflow.search_runs``' DataFrame; here ``main`` asks its ``source`` for the runs and
writes the files. The source is the caller's: ``python -m pipeline.report`` passes the MLflow
queries (``pipeline.tracking.query``), so the report draws and tabulates and knows no MLflow
(the tracking layer draws the report's figures into runs; the report never calls back).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import pandas as pd

from pipeline.errors import MemlabError
from pipeline.report.table import (
    build_table,
    configuration_table,
    display_table,
    markdown,
    metric_table,
    shown_columns,
)


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


class RunSource(Protocol):
    """Where the report's runs come from (``pipeline.tracking.query`` is one: MLflow's)."""

    def use_store(self, tracking_uri: str | None) -> object:
        """Read from ``tracking_uri`` (None: the default); ``MemlabError`` if there is none."""

    def find_runs(
        self, experiment: str, parent: str | None, latest_sweep: bool
    ) -> tuple[str, pd.DataFrame]:
        """The report's name and its leaf runs (``mlflow.search_runs``' columns)."""

    def metric_histories(
        self, run_ids: list[str], metrics: Sequence[str]
    ) -> dict[str, dict[str, list[float]]]:
        """``{run_id: {metric: [value per epoch, in step order]}}``."""


# Per-epoch curves are drawn when a report compares at most this many configurations (x arms).
MAX_CURVES = 12


def _band_groups(
    runs: pd.DataFrame, source: RunSource
) -> dict[str, dict[str, list[list[float]]]] | None:
    """Each finished configuration's (and arm's) per-epoch curves, one per seed, by label."""
    from pipeline.report.aggregate import config_params, describe
    from pipeline.report.band_figures import CURVE_METRICS
    from pipeline.report.table import varied_params

    done = runs[runs["status"] == "FINISHED"]
    keys = set(config_params(done))
    varied = [k for k in varied_params(done) if f"params.{k}" in keys]
    arms = done["tags.arm"] if "tags.arm" in done else pd.Series(None, index=done.index)
    labels = {}
    for index, row in done.iterrows():
        name = describe({k: row[f"params.{k}"] for k in varied}, varied)
        arm = arms[index] if pd.notna(arms[index]) else ""
        labels[row["run_id"]] = " ".join(part for part in (name, arm) if part) or "all seeds"
    if not labels or len(set(labels.values())) > MAX_CURVES:
        return None
    found = source.metric_histories(list(labels), CURVE_METRICS)
    groups: dict[str, dict[str, list[list[float]]]] = {}
    for run_id, label in labels.items():
        for metric, values in found[run_id].items():
            groups.setdefault(label, {}).setdefault(metric, []).append(values)
    return groups


def main(argv: Sequence[str] | None = None, *, source: RunSource) -> int:
    """Run the report on the runs ``source`` finds; 0 on success, 1 with one line on stderr
    for a problem to fix."""
    from pipeline.report.aggregate import configurations
    from pipeline.report.band_figures import curves_with_bands
    from pipeline.report.canvas import save_figure
    from pipeline.report.sweep_figures import report_figures

    args = parse_args(argv)
    try:
        source.use_store(args.tracking_uri)
        name, runs = source.find_runs(args.experiment, args.parent, args.latest_sweep)
    except MemlabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    table = build_table(runs)
    grouped, paired = configuration_table(runs)
    out = args.out or Path("reports") / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(markdown(shown_columns(grouped)) if len(grouped) else "")
    grouped.to_csv(out / "table.csv", index=False)
    table.to_csv(out / "table_seeds.csv", index=False)
    metric_table(runs).to_csv(out / "metrics.csv", index=False)
    written = ["table.md", "table.csv", "table_seeds.csv", "metrics.csv"]
    if len(paired):
        paired.to_csv(out / "paired.csv", index=False)
        written.append("paired.csv")
    for file_name, fig in report_figures(table, runs).items():
        save_figure(fig, out / file_name)
        written.append(file_name)
    groups = _band_groups(runs, source)
    if groups:
        title = "accuracy per epoch: mean over seeds, 95% band"
        save_figure(curves_with_bands(groups, title=title), out / "curves.png")
        written.append("curves.png")
    n_configs = configurations(runs[runs["status"] == "FINISHED"]).nunique()
    print(f"{name}: {len(table)} runs, {n_configs} configuration(s); mean ± 95% half-width (n)")
    if len(grouped):
        print(shown_columns(grouped).fillna("-").to_string(index=False))
    if len(paired):
        print("paired, probe vs control of the same seed (difference, ratio):")
        print(shown_columns(paired).fillna("-").to_string(index=False))
    unfinished = table[table["status"] != "FINISHED"]
    if len(unfinished):
        print(f"* {len(unfinished)} run(s) not FINISHED, left out of the means and figures:")
        print(display_table(unfinished).to_string(index=False))
    print(f"wrote {out}: {', '.join(written)}")
    return 0
