"""A finished sweep's seeds aggregated in MLflow: each configuration's means and intervals.

Called when a sweep ends (``pipeline.sweep.SweepParent.on_multirun_end``), in the launching
process, whatever the launcher. It reads the sweep's finished leaf runs, groups them into
configurations (runs that differ only in ``seed``; :mod:`pipeline.report.aggregate`) and
records, for every final metric and the paired probe-control comparisons,
``<metric>_mean``, ``_std``, ``_ci_low``, ``_ci_high`` (95%, Student t over seeds) and
``n_seeds``, with ``curves_across_seeds.png`` (mean and band per epoch) and ``seeds.json``
(the per-seed values). Epochs to fit are censored, not dropped, where a seed did not fit: with
``<metric>_fitted`` (k of ``n_seeds``), the mean only when all fitted, else
``<metric>_km_median`` with ``_km_median_ci_low`` and ``_ci_high``; the probe/control ratio is
``epochs_to_fit_ratio_geomean`` (the geometric mean of the per-seed ratios, with its
interval). The ``memlab.interval`` tag says which estimator each such metric got.
Where they go:

- one configuration: on the sweep's parent run itself;
- several: on one run per configuration, a child of the parent tagged
  ``memlab.sweep=aggregate`` and named by what varies (``...-p=0.4-5seeds``);
- several, each with one seed (a plain sweep without seeds): nowhere; the parent's
  ``memlab.aggregate`` tag says why.

With one seed there is no interval: only ``_mean`` and ``n_seeds = 1``, and the run's
``memlab.interval`` tag says so.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from pipeline.report.aggregate import (
    CONFIDENCE,
    SEED,
    aggregate,
    config_params,
    configurations,
    describe,
    seed_table,
)
from pipeline.report.table import leaf_runs, varied_params
from pipeline.tracking import store

AGGREGATE = "aggregate"  # the memlab.sweep tag of a configuration's aggregate run
FIGURE = "curves_across_seeds.png"


def aggregate_sweep(parent_run_id: str) -> dict[str, str]:
    """Aggregate the sweep under ``parent_run_id``; ``{run id: one line of what it holds}``."""
    client = MlflowClient()
    parent = client.get_run(parent_run_id)
    runs = mlflow.search_runs(experiment_ids=[parent.info.experiment_id], output_format="pandas")
    leaves = leaf_runs(runs, parent_run_id) if not runs.empty else runs
    finished = leaves[leaves["status"] == "FINISHED"] if not leaves.empty else leaves
    left_out = len(leaves) - len(finished)
    if left_out:
        store.set_tags(parent_run_id, {"memlab.left_out": f"{left_out} run(s) not FINISHED"})
    if finished.empty:
        store.set_tags(parent_run_id, {"memlab.aggregate": "none: no job finished"})
        return {}
    seeds = seed_table(finished)
    summaries = aggregate(seeds)
    configs = configurations(finished)
    if len(summaries) > 1 and all(len(rows) == 1 for _, rows in seeds.groupby("config")):
        why = "none: every configuration ran one seed (add e.g. seed=range(5) for intervals)"
        store.set_tags(parent_run_id, {"memlab.aggregate": why})
        return {}
    varied = [k for k in varied_params(finished) if f"params.{k}" in config_params(finished)]
    written = {}
    for config, summary in summaries.items():
        rows = finished[configs == config]
        per_seed = seeds[seeds["config"] == config]
        if len(summaries) == 1:
            target = parent_run_id
            store.set_tags(target, {"memlab.aggregate": "this run (one configuration)"})
        else:
            target = _configuration_run(parent, rows, varied, len(per_seed))
        _record(target, summary, rows, per_seed)
        written[target] = _line(describe(_params(rows), varied) or parent.info.run_name, summary)
    if len(summaries) > 1:
        store.set_tags(
            parent_run_id,
            {"memlab.aggregate": f"one child run per configuration (memlab.sweep={AGGREGATE})"},
        )
    return written


def _params(rows: pd.DataFrame) -> dict[str, str]:
    """The configuration's params (equal across its rows; the seed left out)."""
    first = rows.iloc[0]
    return {c.removeprefix("params."): first[c] for c in config_params(rows) if pd.notna(first[c])}


def _configuration_run(parent, rows: pd.DataFrame, varied: list[str], n_seeds: int) -> str:
    """A finished child of the sweep's parent that will hold one configuration's aggregate."""
    params = _params(rows)
    name = f"{parent.info.run_name}-{describe(params, varied) or 'config'}-{n_seeds}seeds"
    tags = {"mlflow.parentRunId": parent.info.run_id, "memlab.sweep": AGGREGATE}
    for key in ("experiment", "model"):
        if key in parent.data.tags:
            tags[key] = parent.data.tags[key]
    client = MlflowClient()
    run_id = client.create_run(parent.info.experiment_id, run_name=name, tags=tags).info.run_id
    store.log_params(run_id, params)
    client.set_terminated(run_id, "FINISHED")
    return run_id


def _record(run_id: str, summary: dict, rows: pd.DataFrame, per_seed: pd.DataFrame) -> None:
    """Write one configuration's means, intervals, seeds, figure and per-seed values."""
    n_seeds = len(per_seed)
    metrics: dict[str, float] = {"n_seeds": n_seeds}
    for name, found in summary.items():
        metrics |= found.metrics(name)
        if found.of is None and found.n != n_seeds:  # measured by fewer seeds
            metrics[f"{name}_n"] = found.n
    store.log_metrics(run_id, metrics)
    interval = (
        f"{CONFIDENCE:.0%} Student t over {n_seeds} seeds (scipy.stats.t.interval)"
        if n_seeds > 1
        else "none: one seed, so no interval (only the mean, which is that seed's value)"
    )
    special = [f"{name}: {found.describe()}" for name, found in summary.items() if found.of]
    if special:  # fitting statistics: censoring-aware, k of n fitted
        interval += "; " + "; ".join(special)
    randomness = rows["tags.randomness"].dropna().unique() if "tags.randomness" in rows else []
    tags = {
        "memlab.interval": interval,
        "memlab.seeds": ",".join(per_seed[SEED].astype(str)),
        "memlab.randomness": " / ".join(randomness) or "unknown",
    }
    store.set_tags(run_id, tags)
    store.log_dict(run_id, {"seeds": per_seed.to_dict(orient="records")}, "seeds.json")
    store.log_figure(run_id, _bands(rows), FIGURE)


def _bands(rows: pd.DataFrame):
    """Per-epoch accuracy of a configuration's runs, as mean and band per arm."""
    from pipeline.report.band_figures import CURVE_METRICS, curves_with_bands
    from pipeline.tracking.query import metric_histories

    histories = metric_histories(list(rows["run_id"]), CURVE_METRICS)
    arms = rows["tags.arm"] if "tags.arm" in rows else pd.Series(None, index=rows.index)
    groups: dict[str, dict[str, list]] = {}
    for run_id, arm in zip(rows["run_id"], arms, strict=True):
        group = groups.setdefault(arm if pd.notna(arm) else "mean over seeds", {})
        for metric, values in histories[run_id].items():
            group.setdefault(metric, []).append(values)
    return curves_with_bands(groups, title="accuracy per epoch across seeds")


_HEADLINE = (
    "test_accuracy",
    "probe_test_accuracy",
    "control_test_accuracy",
    "probe_minus_control_test_accuracy",
    "epochs_to_fit_ratio",
)


def _line(name: str, summary: dict) -> str:
    shown = [f"{m} {summary[m].text()}" for m in _HEADLINE if m in summary]
    return f"{name}: " + "; ".join(shown)


def record_sweep_aggregates(parent_run_id: str) -> list[str]:
    """:func:`aggregate_sweep` for the end of a sweep: lines to print, never an exception.

    The sweep's runs are recorded whatever happens here; a failure becomes a warning line.
    """
    try:
        written = aggregate_sweep(parent_run_id)
    except Exception as err:  # the sweep itself succeeded; say what went wrong, once
        return [f"warning: seeds were not aggregated ({type(err).__name__}: {err})"]
    lines = [f"seeds aggregated (mean ± 95% half-width (n)) {line}" for line in written.values()]
    return lines
