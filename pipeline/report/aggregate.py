"""Seeds aggregated: which runs form one configuration, and each number's mean and 95% interval.

Pure functions of the DataFrame ``mlflow.search_runs`` returns for leaf runs (one row per run
that trained a model; ``params.*``, ``metrics.*``, ``tags.*``). A *configuration* is every
param except the seed and what cannot change a number (``mlflow.*``, ``train.progress``, where
the data files are); runs that differ only in ``seed`` are its draws. :func:`seed_table` lays
them out one row per configuration and seed, arms side by side (``probe_test_accuracy``) with
the paired probe-control comparisons of the same seed; :func:`summarize` is the interval: the
mean and SciPy's Student-t interval over seeds (``scipy.stats.t.interval``, the paired t
interval when the values are per-seed differences or ratios). One seed has no interval.
:mod:`pipeline.tracking.aggregate` writes the results to MLflow; the report prints them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
# Params that are not part of a configuration: the seed varies within one; the rest change no
# number (where the store is, the progress bar, where the data files are and how to fetch them).
NOT_CONFIG = ("seed",)
NOT_CONFIG_PREFIXES = (
    "mlflow.",
    "train.progress",
    "data.dir",
    "data.download",
    "data.mirrors",
    "data.verify",
    "data.timeout",
)
# Per-epoch curves (their last value shows up among a run's metrics): drawn as bands across
# seeds (:func:`band`), not aggregated as final numbers.
CURVES = (
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "train_accuracy_clean",
    "train_accuracy_corrupted",
)
# Probe against control, seed by seed: name -> (arm metric, how the pair combines).
PAIRED = {
    "probe_minus_control_test_accuracy": ("test_accuracy", "difference"),
    "epochs_to_fit_ratio": ("epochs_to_fit", "ratio"),
}
CONFIG, SEED = "config", "seed"


@dataclass(frozen=True)
class Summary:
    """One number across seeds: its mean, standard deviation and 95% interval (None: one seed)."""

    n: int
    mean: float
    std: float | None  # sample standard deviation (ddof=1)
    ci_low: float | None
    ci_high: float | None

    @property
    def half_width(self) -> float | None:
        return None if self.ci_high is None else (self.ci_high - self.ci_low) / 2

    def metrics(self, name: str) -> dict[str, float]:
        """``{name_mean, name_std, name_ci_low, name_ci_high}``; only the mean for one seed."""
        out = {f"{name}_mean": self.mean}
        if self.ci_low is not None:
            out |= {f"{name}_std": self.std, f"{name}_ci_low": self.ci_low}
            out[f"{name}_ci_high"] = self.ci_high
        return out

    def text(self, digits: int = 3) -> str:
        """``0.957 ± 0.012 (5)``, or ``0.957 (1)`` with one seed, ``-`` with none."""
        if self.n == 0:
            return "-"
        if self.half_width is None:
            return f"{self.mean:.{digits}f} ({self.n})"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f} ({self.n})"


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """Mean and Student-t interval of ``values`` (one per seed; NaN = not measured, left out).

    With one value there is no spread to estimate: ``std`` and the interval are None. When
    every value is the same (every seed fitted 100%), the interval is that value.
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return Summary(0, math.nan, None, None, None)
    mean = float(np.mean(x))
    if n == 1:
        return Summary(1, mean, None, None, None)
    std, sem = float(np.std(x, ddof=1)), float(stats.sem(x))
    if sem == 0.0:
        return Summary(n, mean, std, mean, mean)
    low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=sem)
    return Summary(n, mean, std, float(low), float(high))


def config_params(runs: pd.DataFrame) -> list[str]:
    """The ``params.*`` columns that define a configuration (all but seed and bookkeeping)."""
    keys = [c.removeprefix("params.") for c in runs.columns if c.startswith("params.")]
    return [
        f"params.{k}" for k in keys if k not in NOT_CONFIG and not k.startswith(NOT_CONFIG_PREFIXES)
    ]


def configurations(runs: pd.DataFrame) -> pd.Series:
    """Each run's configuration as a number, 0, 1, ... (in the sorted order of the params, so
    the same runs are numbered alike whatever their order).

    Two runs share one exactly when every configuration param is equal (a param one run has
    and the other lacks counts as different); the seed alone never separates them.
    """
    columns = config_params(runs)
    if not columns or runs.empty:
        return pd.Series(0, index=runs.index, name=CONFIG)
    keys = runs[columns].astype(object).where(runs[columns].notna(), "<absent>")
    return pd.Series(
        pd.factorize(pd.Series(list(map(tuple, keys.astype(str).to_numpy()))), sort=True)[0],
        index=runs.index,
        name=CONFIG,
    )


def final_metrics(runs: pd.DataFrame) -> list[str]:
    """The final metrics of ``runs`` (without ``metrics.``): everything but per-epoch curves."""
    names = [c.removeprefix("metrics.") for c in runs.columns if c.startswith("metrics.")]
    return [m for m in names if m not in CURVES and runs[f"metrics.{m}"].notna().any()]


def _study_run(runs: pd.DataFrame) -> pd.Series:
    """The run a leaf belongs to: its parent for an arm (probe and control share it), else
    itself."""
    arm = runs["tags.arm"] if "tags.arm" in runs else pd.Series(None, index=runs.index)
    parent = runs.get("tags.mlflow.parentRunId", pd.Series(None, index=runs.index))
    return parent.where(arm.notna(), runs["run_id"])


def seed_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration and seed: the final metrics, arms side by side, and pairs.

    Parameters
    ----------
    runs : DataFrame, one row per finished leaf run
        ``run_id``, ``params.seed``, ``params.*``, ``metrics.*``, and for arm runs ``tags.arm``
        and ``tags.mlflow.parentRunId`` (the probe and control of one seed share their parent).

    Returns
    -------
    DataFrame
        Columns ``config`` (see :func:`configurations`), ``seed``, ``run_id`` (the study run),
        then each final metric, prefixed with its arm for arm runs (``probe_test_accuracy``,
        ``control_epochs_to_fit``), then the paired comparisons of :data:`PAIRED` where a
        probe and a control of the same seed both have the metric. If a configuration ran one
        seed twice, the later run is kept (the draws must be independent).
    """
    if runs.empty:
        return pd.DataFrame(columns=[CONFIG, SEED, "run_id"])
    if "start_time" in runs:
        runs = runs.sort_values("start_time", kind="stable")
    config, study = configurations(runs), _study_run(runs)
    seeds = runs["params.seed"] if "params.seed" in runs else pd.Series("0", index=runs.index)
    arms = runs["tags.arm"] if "tags.arm" in runs else pd.Series(None, index=runs.index)
    metrics = final_metrics(runs)
    rows: dict[tuple, dict] = {}
    for index, run in runs.iterrows():
        key = (int(config[index]), str(seeds[index]))
        row = rows.setdefault(key, {CONFIG: key[0], SEED: key[1]})
        if row.get("run_id") != study[index]:  # a rerun of the same seed replaces the earlier
            rows[key] = row = {CONFIG: key[0], SEED: key[1], "run_id": study[index]}
        prefix = f"{arms[index]}_" if pd.notna(arms[index]) else ""
        for metric in metrics:
            value = run[f"metrics.{metric}"]
            if pd.notna(value):
                row[f"{prefix}{metric}"] = float(value)
    table = pd.DataFrame(list(rows.values()))
    for name, (metric, how) in PAIRED.items():
        probe, control = f"probe_{metric}", f"control_{metric}"
        if probe in table and control in table:
            combine = np.subtract if how == "difference" else np.divide
            table[name] = combine(table[probe], table[control])
    table = table.sort_values([CONFIG, SEED], key=_as_numbers, kind="stable")
    return table.reset_index(drop=True)


def _as_numbers(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column, errors="coerce") if column.name == SEED else column


def aggregate(seeds: pd.DataFrame) -> dict[int, dict[str, Summary]]:
    """``{config: {metric: Summary}}`` over the seeds of each configuration in ``seeds``."""
    metrics = [c for c in seeds.columns if c not in (CONFIG, SEED, "run_id")]
    return {
        int(config): {m: summarize(rows[m]) for m in metrics if rows[m].notna().any()}
        for config, rows in seeds.groupby(CONFIG, sort=True)
    }


def band(curves: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95% interval per epoch across seeds: ``(mean, low, high)``, each (n_epochs,).

    A run that stopped early (``train.stop_at_fit``) keeps its last value for the epochs it
    did not run (it stays fitted), so every epoch averages the same seeds. With one curve the
    band is the curve itself.
    """
    longest = max((len(c) for c in curves), default=0)
    padded = np.array(
        [list(c) + [c[-1]] * (longest - len(c)) for c in curves if len(c)], dtype=float
    )  # (n_seeds, n_epochs)
    if padded.size == 0:
        empty = np.array([])
        return empty, empty, empty
    mean = padded.mean(axis=0)
    if len(padded) < 2:
        return mean, mean.copy(), mean.copy()
    sem = stats.sem(padded, axis=0)
    flat = sem == 0  # every seed at the same value: no width (SciPy gives NaN for scale 0)
    scale = np.where(flat, 1.0, sem)
    low, high = stats.t.interval(CONFIDENCE, df=len(padded) - 1, loc=mean, scale=scale)
    return mean, np.where(flat, mean, low), np.where(flat, mean, high)


def describe(params: Mapping[str, str], varied: Sequence[str]) -> str:
    """A configuration's short name from the params that vary across a sweep: ``p=0.4``."""
    short = {"probe.labels.fraction": "p", "model.hidden_layer_sizes": "hidden"}
    parts = [f"{short.get(k) or k.rsplit('.', 1)[-1]}={params[k]}" for k in varied if k in params]
    return ",".join(parts)
