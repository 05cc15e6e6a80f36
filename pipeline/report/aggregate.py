"""Seeds aggregated: which runs form one configuration, and each number's mean and 95% interval.

Pure functions of the DataFrame ``mlflow.search_runs`` returns for leaf runs (one row per run
that trained a model; ``params.*``, ``metrics.*``, ``tags.*``). A *configuration* is every
param except the seed and what cannot change a number (``mlflow.*``, ``train.progress``, where
the data files are); runs that differ only in ``seed`` are its draws. :func:`seed_table` lays
them out one row per configuration and seed, arms side by side (``probe_test_accuracy``) with
the paired probe-control comparisons of the same seed; :func:`summarize` is the interval: the
mean and SciPy's Student-t interval over seeds (``scipy.stats.t.interval``, the paired t
interval when the values are per-seed differences). One seed has no interval.

Epochs to fit are different: a seed that did not fit within its epochs is not missing, it is
*censored* (it would have fitted later, if ever). Averaging the seeds that fitted is a
survivor-only mean that flatters a hard configuration, so (:func:`summarize_censored`) the mean
and its t interval are used only when every seed fitted; otherwise the Kaplan-Meier median, each
unfitted seed censored at the epochs it ran, with the 95% interval of R's ``survfit`` (Greenwood's
variance on the log scale; Brookmeyer & Crowley 1982), and "not reached" when half the seeds or
more did not fit. Either way ``k of n fitted`` goes with it. The probe/control ratio of epochs
to fit is the paired log-ratio (:func:`summarize_ratio`): the mean of the per-seed log ratios
and its t interval, exponentiated, i.e. the geometric mean of the per-seed ratios with its
interval (``epochs_to_fit_ratio_geomean``); with a pair censored, the Kaplan-Meier median of the
ratios instead.
:mod:`pipeline.tracking.sweep_aggregate` writes the results to MLflow; the report prints them.
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
# number (where the store is, the progress bar, how many processes train, where the data files
# are and how to fetch them).
NOT_CONFIG = ("seed",)
NOT_CONFIG_PREFIXES = (
    "mlflow.",
    "train.progress",
    "train.workers",  # the same bits with any number of workers
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
# Probe against control, seed by seed: name -> (arm metric, how the pair combines). The ratio
# is summarized as a geometric mean (``summarize_ratio``), not as a mean of ratios.
PAIRED = {
    "probe_minus_control_test_accuracy": ("test_accuracy", "difference"),
    "epochs_to_fit_ratio": ("epochs_to_fit", "ratio"),
}
CONFIG, SEED = "config", "seed"


MEAN, GEOMETRIC_MEAN, KM_MEDIAN = "mean", "geometric mean", "Kaplan-Meier median"
# Each estimator's metric suffix: ``<name>_mean``, ``<name>_geomean``, ``<name>_km_median``.
SUFFIX = {MEAN: "mean", GEOMETRIC_MEAN: "geomean", KM_MEDIAN: "km_median"}
FIT = "epochs_to_fit"  # the censored metric: not fitting within the run's epochs is not absence
RATIO = "epochs_to_fit_ratio"


@dataclass(frozen=True)
class Summary:
    """One number across seeds: its estimate, spread and 95% interval (None: one seed).

    ``estimator`` says what ``value`` is: the mean (Student t interval), the geometric mean
    (a t interval on the logs, exponentiated) or the Kaplan-Meier median (NaN when not
    reached; an interval bound is None when it is not reached either). For a fitting
    statistic ``of`` is the number of seeds (or pairs) in all and ``n`` those that fitted.
    """

    n: int
    value: float
    std: float | None  # sample standard deviation (ddof=1); of the logs for a geometric mean
    ci_low: float | None
    ci_high: float | None
    estimator: str = MEAN
    of: int | None = None

    @property
    def half_width(self) -> float | None:
        """Half the interval of a mean (symmetric); None for an asymmetric or missing one."""
        if self.estimator != MEAN or self.ci_high is None or self.ci_low is None:
            return None
        return (self.ci_high - self.ci_low) / 2

    def metrics(self, name: str) -> dict[str, float]:
        """``{name_mean, name_std, name_ci_low, name_ci_high}`` for a mean (only the mean for
        one seed); ``name_geomean`` or ``name_km_median`` with ``_ci_low`` and ``_ci_high``
        for the others; ``name_fitted`` (how many of the seeds fitted) for a fitting
        statistic. Nothing that is not a finite number (a median not reached)."""
        key = f"{name}_{SUFFIX[self.estimator]}"
        out = {key: self.value}
        if self.estimator == MEAN:
            if self.ci_low is not None:
                out |= {f"{name}_std": self.std, f"{name}_ci_low": self.ci_low}
                out[f"{name}_ci_high"] = self.ci_high
        else:
            out |= {f"{key}_ci_low": self.ci_low, f"{key}_ci_high": self.ci_high}
        if self.of is not None:
            out[f"{name}_fitted"] = self.n
        return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(v)}

    def text(self, digits: int = 3) -> str:
        """``0.957 ± 0.012 (5)``, or ``0.957 (1)`` with one seed, ``-`` with none; a fitting
        statistic ``45 ± 6 (5 of 5 fitted)``, ``median 52 [40, >60] (Kaplan-Meier; 3 of 5
        fitted)``, ``geometric mean 2.95 [2.10, 4.14] (5 of 5 fitted)``."""
        count = f"{self.n}" if self.of is None else f"{self.n} of {self.of} fitted"
        if self.n == 0 and self.of is None:
            return "-"
        if self.estimator == KM_MEDIAN:
            low = "-" if self.ci_low is None else f"{self.ci_low:.{digits}f}"
            high = "not reached" if self.ci_high is None else f"{self.ci_high:.{digits}f}"
            median = "not reached" if math.isnan(self.value) else f"{self.value:.{digits}f}"
            return f"median {median} [{low}, {high}] (Kaplan-Meier; {count})"
        if self.n == 0:
            return f"- ({count})"
        if self.estimator == GEOMETRIC_MEAN:
            if self.ci_low is None:
                return f"geometric mean {self.value:.{digits}f} ({count})"
            interval = f"[{self.ci_low:.{digits}f}, {self.ci_high:.{digits}f}]"
            return f"geometric mean {self.value:.{digits}f} {interval} ({count})"
        if self.half_width is None:
            return f"{self.value:.{digits}f} ({count})"
        return f"{self.value:.{digits}f} ± {self.half_width:.{digits}f} ({count})"

    def describe(self) -> str:
        """What the estimate and interval are, in words (for the run's ``memlab.interval``)."""
        if self.estimator == KM_MEDIAN:
            return (
                f"Kaplan-Meier median over {self.of}, {self.of - self.n} censored at the epochs "
                "they ran; 95% interval from Greenwood's variance on the log scale (as R's "
                "survfit)"
            )
        if self.estimator == GEOMETRIC_MEAN:
            return f"geometric mean of {self.n} per-seed ratios; Student t on their logs"
        fitted = "" if self.of is None else f", all {self.n} fitted"
        return f"mean over {self.n}{fitted}; Student t"


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


def kaplan_meier(
    times: Sequence[float], observed: Sequence[bool]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Kaplan-Meier survival curve of right-censored ``times``.

    ``observed[i]`` is False where ``times[i]`` is a censoring time (the seed stopped there
    without fitting). Returns ``(t, S, greenwood)``, each (m,) over the distinct event times:
    S(t) = prod over event times u <= t of (1 - d_u / r_u) (d events at u, r at risk: time >=
    u; a seed censored at u counts as at risk at u), and Greenwood's sum of d_u / (r_u (r_u -
    d_u)), the variance of log S(t) (inf once S reaches 0).
    """
    times = np.asarray(times, dtype=float)
    observed = np.asarray(observed, dtype=bool)
    events = np.unique(times[observed])
    at_risk = np.array([(times >= u).sum() for u in events], dtype=float)
    died = np.array([(times[observed] == u).sum() for u in events], dtype=float)
    survival = np.cumprod(1 - died / at_risk)
    with np.errstate(divide="ignore"):
        greenwood = np.cumsum(died / (at_risk * (at_risk - died)))
    return events, survival, greenwood


def km_median(
    times: Sequence[float], observed: Sequence[bool], confidence: float = CONFIDENCE
) -> tuple[float, float | None, float | None]:
    """Kaplan-Meier median of right-censored ``times`` and its interval: ``(median, low, high)``.

    The median is the first event time at which S(t) <= 1/2 (NaN if S never gets there: half
    or more are censored). The interval is that of R's ``survfit`` (``conf.type="log"``): the
    first times at which the lower and the upper band of S, S(t) exp(-+ z sqrt(greenwood)),
    reach 1/2 (Brookmeyer & Crowley 1982); a bound not reached is None.
    """
    t, survival, greenwood = kaplan_meier(times, observed)
    z = stats.norm.ppf(0.5 + confidence / 2)
    with np.errstate(invalid="ignore", over="ignore"):
        spread = np.exp(z * np.sqrt(greenwood))
    infinite = np.isinf(spread)  # S reached 0: its bounds are [0, 1], no information
    upper = np.where(infinite, 1.0, np.minimum(survival * np.where(infinite, 1, spread), 1.0))
    lower = np.where(infinite, 0.0, survival / np.where(infinite, 1, spread))

    def first(curve: np.ndarray) -> float | None:
        below = np.flatnonzero(curve <= 0.5 + 1e-12)
        return float(t[below[0]]) if len(below) else None

    median = first(survival)
    return (math.nan if median is None else median), first(lower), first(upper)


def summarize_censored(
    times: Sequence[float], censored_at: Sequence[float] | None = None
) -> Summary:
    """Epochs to fit over seeds, each seed that did not fit (NaN) censored at ``censored_at``.

    All fitted: the mean and its t interval (:func:`summarize`). Otherwise the Kaplan-Meier
    median and its interval (:func:`km_median`). ``censored_at`` is each seed's epochs run
    (its last epoch; inf where unknown: censored after every fit); a seed with neither a time
    nor a censoring time did not measure it and is left out. ``of`` is how many seeds count.
    """
    x = np.asarray(times, dtype=float)
    c = np.full(len(x), np.inf) if censored_at is None else np.asarray(censored_at, dtype=float)
    fitted = ~np.isnan(x)
    counted = fitted | ~np.isnan(c)
    k, total = int(fitted.sum()), int(counted.sum())
    if k == total:
        found = summarize(x[fitted])
        return Summary(k, found.value, found.std, found.ci_low, found.ci_high, MEAN, total)
    at = np.where(fitted, x, c)[counted]
    median, low, high = km_median(at, fitted[counted])
    return Summary(k, median, None, low, high, KM_MEDIAN, total)


def summarize_ratio(
    probe: Sequence[float], control: Sequence[float], probe_censored_at: Sequence[float] | None
) -> Summary:
    """The probe/control ratio of epochs to fit over seed pairs: the paired log-ratio.

    Every pair fitted: the geometric mean of the per-seed ratios, exp(mean of log ratios),
    with the Student t interval of the mean log ratio exponentiated (a ratio's natural
    scale: 2x and 0.5x are equally far from 1). A pair whose probe did not fit has a ratio of
    at least ``probe_censored_at / control``: right-censored, and the Kaplan-Meier median of
    the ratios is given instead. Pairs whose control did not fit are left out of ``of``.
    """
    p, c = np.asarray(probe, dtype=float), np.asarray(control, dtype=float)
    at = (
        np.full(len(p), np.inf)
        if probe_censored_at is None
        else np.asarray(probe_censored_at, dtype=float)
    )
    pairs = ~np.isnan(c) & (~np.isnan(p) | ~np.isnan(at))
    fitted = pairs & ~np.isnan(p)
    k, total = int(fitted.sum()), int(pairs.sum())
    if k == total:
        logs = summarize(np.log(p[fitted] / c[fitted]))
        if logs.n == 0:
            return Summary(0, math.nan, None, None, None, GEOMETRIC_MEAN, 0)
        low = None if logs.ci_low is None else math.exp(logs.ci_low)
        high = None if logs.ci_high is None else math.exp(logs.ci_high)
        return Summary(k, math.exp(logs.value), logs.std, low, high, GEOMETRIC_MEAN, total)
    ratios = np.where(fitted, p, at)[pairs] / c[pairs]
    median, low, high = km_median(ratios, fitted[pairs])
    return Summary(k, median, None, low, high, KM_MEDIAN, total)


def config_params(runs: pd.DataFrame) -> list[str]:
    """The ``params.*`` columns that define a configuration: all but the seed, the params that
    follow it and bookkeeping.

    A param follows the seed when it varies between the runs and equals each run's seed, as
    MNIST-1D's ``data.seed: ${seed}`` does: the seed draws the data too, so the runs are seeds
    of one configuration. A ``data.seed`` held at one value is part of the configuration.
    """
    keys = [c.removeprefix("params.") for c in runs.columns if c.startswith("params.")]
    return [
        f"params.{k}"
        for k in keys
        if k not in NOT_CONFIG
        and not k.startswith(NOT_CONFIG_PREFIXES)
        and not _follows_the_seed(runs, f"params.{k}")
    ]


def _follows_the_seed(runs: pd.DataFrame, column: str) -> bool:
    if "params.seed" not in runs or runs[column].nunique(dropna=False) < 2:
        return False
    return bool((runs[column].astype(str) == runs["params.seed"].astype(str)).all())


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
    """The final metrics of ``runs`` (without ``metrics.``): everything but per-epoch curves
    and the machine's load while a run ran (MLflow's ``system/*``: not a result)."""
    names = [c.removeprefix("metrics.") for c in runs.columns if c.startswith("metrics.")]
    return [
        m
        for m in names
        if m not in CURVES and not m.startswith("system/") and runs[f"metrics.{m}"].notna().any()
    ]


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
    """``{config: {metric: Summary}}`` over the seeds of each configuration in ``seeds``.

    Epochs to fit (``epochs_to_fit``, ``probe_epochs_to_fit``, ...) are censored at the
    seed's ``epochs`` (:func:`summarize_censored`), and kept when no seed fitted (``0 of n
    fitted`` is a result); the ratio is the paired log-ratio (:func:`summarize_ratio`); every
    other metric is a mean over the seeds that measured it (:func:`summarize`).
    """
    metrics = [c for c in seeds.columns if c not in (CONFIG, SEED, "run_id")]
    out: dict[int, dict[str, Summary]] = {}
    for config, rows in seeds.groupby(CONFIG, sort=True):
        found = {}
        for m in metrics:
            censor = m.removesuffix(FIT) + "epochs" if m.endswith(FIT) else None
            if m == RATIO and f"probe_{FIT}" in rows and f"control_{FIT}" in rows:
                found[m] = summarize_ratio(
                    rows[f"probe_{FIT}"], rows[f"control_{FIT}"], _column(rows, "probe_epochs")
                )
                if found[m].of == 0:
                    del found[m]
            elif censor is not None and (rows[m].notna().any() or _has(rows, censor)):
                found[m] = summarize_censored(rows[m], _column(rows, censor))
            elif rows[m].notna().any():
                found[m] = summarize(rows[m])
        out[int(config)] = found
    return out


def _column(rows: pd.DataFrame, name: str) -> pd.Series | None:
    return rows[name] if name in rows else None


def _has(rows: pd.DataFrame, name: str) -> bool:
    return name in rows and bool(rows[name].notna().any())


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
