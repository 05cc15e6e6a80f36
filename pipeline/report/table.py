"""The report's table: which runs to compare, what varies between them, sorted and shown.

Pure functions of the DataFrame ``mlflow.search_runs`` returns (one row per run, columns
``run_id``, ``status``, ``params.*``, ``metrics.*``, ``tags.*``): :func:`leaf_runs` picks the
runs that trained a model, :func:`build_table` sets the params that differ against the
results, :func:`display_table` and :func:`markdown` turn it into text for people.
:mod:`pipeline.report` queries MLflow and writes the files.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

METRICS = ("final_train_accuracy", "test_accuracy", "epochs_to_fit", "epochs", "fit_seconds")
# Varied params in this order (then the others alphabetically, the seed last), so that rows
# sort by what an experiment is about before what merely repeats it.
_PARAM_ORDER = ("model.name", "probe.labels.fraction", "model.hidden_layer_sizes", "probe.inputs")
PARENT_TAG, SWEEP_TAG = "tags.mlflow.parentRunId", "tags.memlab.sweep"


def leaf_runs(runs: pd.DataFrame, parent_id: str | None = None) -> pd.DataFrame:
    """The runs that trained a model: runs no other run names as its parent.

    With ``parent_id``, only its descendants (a sweep's jobs, or the probe/control arms of
    each job); else every leaf of ``runs`` except sweep parents still waiting for children.
    A sweep's aggregate runs (``memlab.sweep=aggregate``) are never leaves.
    """
    if SWEEP_TAG in runs:  # a configuration's aggregate over seeds trained nothing itself
        runs = runs[runs[SWEEP_TAG].ne("aggregate")]
    parents = runs[PARENT_TAG] if PARENT_TAG in runs else pd.Series(None, index=runs.index)
    has_children = runs["run_id"].isin(set(parents.dropna()))
    if parent_id is None:
        is_sweep = runs[SWEEP_TAG].eq("parent") if SWEEP_TAG in runs else False
        return runs[~has_children & ~is_sweep]
    family, frontier = set(), {parent_id}
    while frontier:  # walk down the tree, one generation at a time
        frontier = set(runs.loc[parents.isin(frontier), "run_id"]) - family
        family |= frontier
    return runs[runs["run_id"].isin(family) & ~has_children]


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


# Decimals shown for each result; the rest get 3.
DIGITS = {"epochs_to_fit": 0, "epochs": 0, "fit_seconds": 1, "epochs_to_fit_ratio": 2}


def configuration_table(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The finished runs grouped by configuration: ``(results, paired)``, one row per group.

    Parameters
    ----------
    runs : DataFrame, one row per leaf run (as for :func:`build_table`)

    Returns
    -------
    results : DataFrame
        One row per configuration and arm: the varied configuration params (the logged text),
        ``arm`` when some run has one, ``n_seeds``, then per metric of ``METRICS`` the text
        ``mean ± half-width (n)`` (:meth:`~pipeline.report.aggregate.Summary.text`; ``n``
        seeds measured it) and the numbers ``<metric>_estimate``, ``_ci_low``, ``_ci_high``
        with ``<metric>_estimator`` saying what the estimate is. Epochs to fit say ``k of n
        fitted``, and are the Kaplan-Meier median unless every seed fitted (censored seeds
        are not left out: :func:`~pipeline.report.aggregate.summarize_censored`).
    paired : DataFrame
        One row per configuration with a probe and a control: the varied params and, per
        comparison of :data:`~pipeline.report.aggregate.PAIRED` (probe minus control test
        accuracy; the epochs-to-fit ratio as the geometric mean of the per-seed ratios), the
        same text and numbers over the seed pairs.
    """
    from pipeline.report.aggregate import PAIRED, aggregate, config_params, seed_table, summarize

    done = runs[runs["status"] == "FINISHED"]
    if done.empty:
        return pd.DataFrame(), pd.DataFrame()
    seeds = seed_table(done)
    keys = set(config_params(done))
    varied = [k for k in varied_params(done) if f"params.{k}" in keys]
    arms = done["tags.arm"].dropna().unique() if "tags.arm" in done else []
    arms = sorted(arms, key=lambda a: (a != "probe", a)) or [None]
    results, paired = [], []
    for config, summary in aggregate(seeds).items():
        first = seeds[seeds["config"] == config].iloc[0]
        params = done.loc[done["run_id"].eq(first["run_id"]) | _parent(done).eq(first["run_id"])]
        base = {k: params.iloc[0][f"params.{k}"] for k in varied}
        n_seeds = int((seeds["config"] == config).sum())
        for arm in arms:
            prefix = f"{arm}_" if arm else ""
            if arm and not any(name.startswith(prefix) for name in summary):
                continue
            row = {**base, **({"arm": arm} if arm else {}), "n_seeds": n_seeds}
            for metric in METRICS:
                row |= _cells(metric, summary.get(prefix + metric) or summarize([]))
            results.append(row)
        if any(name in summary for name in PAIRED):
            row = {**base, "n_seeds": n_seeds}
            for name in PAIRED:
                row |= _cells(name, summary.get(name) or summarize([]))
            paired.append(row)
    # Sorted by the varied params; within a configuration the probe comes before its control.
    return _sorted(pd.DataFrame(results), varied), _sorted(pd.DataFrame(paired), varied)


def metric_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every final metric of the finished runs over the seeds of each configuration, one row
    per configuration and metric (``table.csv`` shows only :data:`METRICS`).

    Columns: the varied configuration params, ``metric`` (arm metrics prefixed with their arm,
    ``probe_test_accuracy``; the paired comparisons as in ``paired``), ``text`` (as in the
    tables: ``mean ± half-width (n)``), ``estimate``, ``estimator``, ``ci_low``, ``ci_high``
    and ``n`` (the seeds that measured it). What a study README quotes beside its table.
    """
    from pipeline.report.aggregate import aggregate, config_params, seed_table

    done = runs[runs["status"] == "FINISHED"]
    if done.empty:
        return pd.DataFrame()
    seeds = seed_table(done)
    keys = set(config_params(done))
    varied = [k for k in varied_params(done) if f"params.{k}" in keys]
    rows = []
    for config, summary in aggregate(seeds).items():
        first = seeds[seeds["config"] == config].iloc[0]
        params = done.loc[done["run_id"].eq(first["run_id"]) | _parent(done).eq(first["run_id"])]
        base = {k: params.iloc[0][f"params.{k}"] for k in varied}
        for name in sorted(summary):
            cells = _cells(name, summary[name])
            rows.append(
                {**base, "metric": name, "text": cells[name], "n": summary[name].n}
                | {part: cells[f"{name}_{part}"] for part in PARTS}
            )
    return _sorted(pd.DataFrame(rows), varied)


PARTS = ("estimate", "estimator", "ci_low", "ci_high")


def _parent(runs: pd.DataFrame) -> pd.Series:
    return runs[PARENT_TAG] if PARENT_TAG in runs else pd.Series(None, index=runs.index)


def _cells(name: str, summary) -> dict:
    """``name``'s text and numbers for one row."""
    return {
        name: summary.text(DIGITS.get(name, 3)),
        f"{name}_estimate": summary.value,
        f"{name}_estimator": summary.estimator,
        f"{name}_ci_low": summary.ci_low if summary.ci_low is not None else np.nan,
        f"{name}_ci_high": summary.ci_high if summary.ci_high is not None else np.nan,
    }


def _sorted(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    columns = [c for c in columns if c in table]
    if columns:
        table = table.sort_values(columns, key=_ranks, kind="stable")
    return table.reset_index(drop=True)


def shown_columns(table: pd.DataFrame) -> pd.DataFrame:
    """A grouped table for people: the params, arm, ``n_seeds`` and the text columns only."""
    numbers = tuple(f"_{part}" for part in ("estimate", "estimator", "ci_low", "ci_high"))
    return table[[c for c in table.columns if not c.endswith(numbers)]]
