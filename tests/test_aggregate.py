"""Seeds aggregated: intervals against hand-computed values and SciPy, and which runs group."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.report.aggregate import (
    GEOMETRIC_MEAN,
    KM_MEDIAN,
    MEAN,
    aggregate,
    band,
    configurations,
    kaplan_meier,
    km_median,
    seed_table,
    summarize,
    summarize_censored,
    summarize_ratio,
)


def test_summary_matches_hand_computed_values():
    # mean 2, sample std 1, sem 1/sqrt(3); t(0.975, df=2) = 4.302653 (tables).
    found = summarize([1.0, 2.0, 3.0])
    half = 4.302653 / math.sqrt(3)
    assert (found.n, found.value, found.std) == (3, 2.0, 1.0)
    assert found.ci_low == pytest.approx(2.0 - half, abs=1e-6)
    assert found.ci_high == pytest.approx(2.0 + half, abs=1e-6)
    assert found.text() == f"2.000 ± {half:.3f} (3)"
    assert found.metrics("test_accuracy") == {
        "test_accuracy_mean": 2.0,
        "test_accuracy_std": 1.0,
        "test_accuracy_ci_low": found.ci_low,
        "test_accuracy_ci_high": found.ci_high,
    }


def test_summary_agrees_with_scipy_on_random_draws():
    rng = np.random.default_rng(0)
    for n in (2, 5, 17):
        x = rng.normal(0.9, 0.05, size=n)
        found = summarize(x)
        low, high = stats.t.interval(0.95, n - 1, loc=x.mean(), scale=stats.sem(x))
        assert (found.ci_low, found.ci_high) == pytest.approx((low, high), rel=1e-12)
        assert found.std == pytest.approx(np.std(x, ddof=1))


def test_interval_contains_the_mean_and_narrows_as_seeds_are_added():
    rng = np.random.default_rng(1)
    draws = rng.normal(0.5, 0.1, size=40)
    widths = []
    for n in (3, 10, 40):
        found = summarize(draws[:n])
        assert found.ci_low < found.value < found.ci_high
        widths.append(found.half_width)
    assert widths[0] > widths[1] > widths[2]


def test_one_seed_has_no_interval_and_says_so():
    found = summarize([0.93])
    assert (found.n, found.value, found.std, found.ci_low, found.ci_high) == (
        1, 0.93, None, None, None,
    )  # fmt: skip
    assert found.metrics("test_accuracy") == {"test_accuracy_mean": 0.93}
    assert found.text() == "0.930 (1)"
    assert summarize([np.nan, 0.5]).n == 1  # a seed that did not measure it does not count


def test_kaplan_meier_median_of_a_censored_sample_by_hand():
    # Five seeds: fitted at 10, 30, 40; stopped unfitted at 20 and 50 (censored there).
    # At risk: 5 at 10, 3 at 30, 2 at 40. S = 4/5 = 0.8, then 0.8 * 2/3 = 0.533, then
    # 0.533 * 1/2 = 0.267: the median is 40 (S(30) is still above 1/2). The survivor-only
    # mean would say (10 + 30 + 40) / 3 = 26.7, and their median 30.
    times, fitted = [10, 20, 30, 40, 50], [True, False, True, True, False]
    t, survival, greenwood = kaplan_meier(times, fitted)
    assert t.tolist() == [10, 30, 40]
    assert survival == pytest.approx([0.8, 0.8 * 2 / 3, 0.8 * 2 / 3 / 2])
    # Greenwood: 1/(5*4), + 1/(3*2), + 1/(2*1).
    assert greenwood == pytest.approx(np.cumsum([1 / 20, 1 / 6, 1 / 2]))
    median, low, high = km_median(times, fitted)
    # Lower band S / exp(1.96 sqrt(g)): 0.8 / 1.549 = 0.516 at 10, 0.533 / 2.491 = 0.214 at
    # 30, so the interval starts at 30; the upper band never comes down to 1/2: not reached.
    assert (median, low, high) == (40.0, 30.0, None)


def test_epochs_to_fit_are_censored_not_dropped():
    fit, ran = [10, np.nan, 30, 40, np.nan], [10, 20, 30, 40, 50]
    found = summarize_censored(fit, ran)
    assert (found.estimator, found.value, found.n, found.of) == (KM_MEDIAN, 40.0, 3, 5)
    assert found.text(0) == "median 40 [30, not reached] (Kaplan-Meier; 3 of 5 fitted)"
    assert found.metrics("epochs_to_fit") == {
        "epochs_to_fit_km_median": 40.0,
        "epochs_to_fit_km_median_ci_low": 30.0,
        "epochs_to_fit_fitted": 3.0,
    }  # no mean of the survivors; a bound not reached is not logged
    # Half or more not fitted: no median at all, but the count is still a result.
    none = summarize_censored([np.nan, np.nan, 30], [50, 50, 30])
    assert np.isnan(none.value) and none.text(0).startswith("median not reached")
    assert none.metrics("f") == {"f_fitted": 1.0, "f_km_median_ci_low": 30.0}
    # Every seed fitted: the mean and its t interval, and still k of n.
    every = summarize_censored([10, 20, 30], [10, 20, 30])
    assert (every.estimator, every.value, every.of) == (MEAN, 20.0, 3)
    assert every.text(0).endswith("(3 of 3 fitted)")
    assert every.metrics("f")["f_fitted"] == 3.0 and every.metrics("f")["f_mean"] == 20.0
    # A seed that measured nothing at all (no time, no epochs) does not count.
    assert summarize_censored([10, np.nan], [10, np.nan]).of == 1


def test_ratio_is_a_geometric_mean_with_its_interval_on_the_log_scale():
    probe, control = [40.0, 90.0, 20.0], [20.0, 30.0, 20.0]  # ratios 2, 3, 1
    found = summarize_ratio(probe, control, [100, 100, 100])
    logs = np.log([2.0, 3.0, 1.0])
    low, high = stats.t.interval(0.95, 2, loc=logs.mean(), scale=stats.sem(logs))
    assert found.value == pytest.approx(6 ** (1 / 3))  # not the mean of ratios, 2
    assert (found.ci_low, found.ci_high) == pytest.approx((np.exp(low), np.exp(high)))
    assert found.estimator == GEOMETRIC_MEAN and (found.n, found.of) == (3, 3)
    # A probe that did not fit in 100 epochs: its ratio is at least 100 / 30, censored there.
    censored = summarize_ratio([40.0, np.nan, 20.0], control, [100, 100, 100])
    assert (censored.estimator, censored.n, censored.of) == (KM_MEDIAN, 2, 3)
    assert censored.value == 2.0  # ratios 2, >3.33, 1: S(1) = 2/3, S(2) = 1/3


def test_aggregate_censors_seeds_that_did_not_fit_at_their_epochs():
    seeds = pd.DataFrame({
        "config": 0, "seed": ["0", "1", "2"], "run_id": ["a", "b", "c"],
        "probe_epochs_to_fit": [np.nan, np.nan, np.nan], "probe_epochs": [50.0, 50.0, 50.0],
        "control_epochs_to_fit": [10.0, 12.0, 14.0], "control_epochs": [10.0, 12.0, 14.0],
        "epochs_to_fit_ratio": [np.nan, np.nan, np.nan],
    })  # fmt: skip
    summary = aggregate(seeds)[0]
    assert summary["probe_epochs_to_fit"].text(0) == (
        "median not reached [-, not reached] (Kaplan-Meier; 0 of 3 fitted)"
    )
    assert summary["control_epochs_to_fit"].value == 12.0
    assert summary["epochs_to_fit_ratio"].of == 3 and summary["epochs_to_fit_ratio"].n == 0


def test_equal_values_give_a_zero_width_interval_not_nan():
    found = summarize([1.0, 1.0, 1.0])
    assert (found.ci_low, found.ci_high, found.std) == (1.0, 1.0, 0.0)


def _runs(rows):
    base = {
        "status": "FINISHED",
        "params.model.name": "numpy_mlp",
        "params.split.seed": "null",
        "params.mlflow.tracking_uri": "sqlite:///a.db",
        "params.train.progress": "auto",
    }
    return pd.DataFrame([{**base, **row} for row in rows])


def test_grouping_puts_exactly_the_runs_that_differ_only_in_seed_together():
    runs = _runs([
        {"run_id": "a0", "params.seed": "0", "params.p": "0.2"},
        {"run_id": "a1", "params.seed": "1", "params.p": "0.2",
         "params.mlflow.tracking_uri": "sqlite:///b.db", "params.train.progress": "false"},
        {"run_id": "b0", "params.seed": "0", "params.p": "0.4"},
        {"run_id": "c0", "params.seed": "0", "params.p": "0.2", "params.split.seed": "0"},
        {"run_id": "c1", "params.seed": "1", "params.p": "0.2", "params.split.seed": "0"},
        {"run_id": "d0", "params.seed": "0", "params.p": "0.2", "params.model.name": "sklearn_mlp"},
    ])  # fmt: skip
    groups = runs.groupby(configurations(runs))["run_id"].apply(sorted).tolist()
    assert sorted(groups) == [["a0", "a1"], ["b0"], ["c0", "c1"], ["d0"]]
    # A param one run lacks separates it too (never group different configurations).
    lacking = _runs([{"run_id": "x", "params.seed": "0"}, {"run_id": "y", "params.seed": "1"}])
    lacking.loc[1, "params.extra"] = "1"
    assert configurations(lacking).nunique() == 2


def test_a_param_that_follows_the_seed_is_part_of_the_seed_not_of_the_configuration():
    # MNIST-1D's data.seed: ${seed}: five seeds of one configuration, each drawing its data.
    follows = _runs([{"run_id": f"s{i}", "params.seed": str(i), "params.data.seed": str(i)}
                     for i in range(5)])  # fmt: skip
    assert configurations(follows).nunique() == 1
    # Held at one value, or different from the seed in one run: part of the configuration.
    held = _runs([{"run_id": f"s{i}", "params.seed": str(i), "params.data.seed": "0"}
                  for i in range(3)])  # fmt: skip
    assert configurations(held).nunique() == 1
    apart = follows.copy()
    apart.loc[4, "params.data.seed"] = "7"
    assert configurations(apart).nunique() == 5  # each data seed a configuration of its own


def test_seed_table_pairs_probe_and_control_of_the_same_seed():
    rows = []
    draws = [(0.1, 0.9, 60, 20), (0.2, 0.95, 90, 30)]  # probe, control accuracy; epochs to fit
    for seed, (probe, control, fit_p, fit_c) in enumerate(draws):
        for arm, acc, fit in (("probe", probe, fit_p), ("control", control, fit_c)):
            rows.append({"run_id": f"{arm}{seed}", "params.seed": str(seed), "tags.arm": arm,
                         "tags.mlflow.parentRunId": f"job{seed}", "metrics.test_accuracy": acc,
                         "metrics.epochs_to_fit": fit, "metrics.train_accuracy": 1.0})  # fmt: skip
    table = seed_table(_runs(rows))
    assert table["run_id"].tolist() == ["job0", "job1"]
    assert "train_accuracy" not in table and "probe_train_accuracy" not in table  # curves
    assert table["probe_minus_control_test_accuracy"].tolist() == pytest.approx([-0.8, -0.75])
    assert table["epochs_to_fit_ratio"].tolist() == pytest.approx([3.0, 3.0])
    summary = aggregate(table)[0]
    assert summary["probe_minus_control_test_accuracy"].value == pytest.approx(-0.775)
    ratio = summary["epochs_to_fit_ratio"]
    assert (ratio.estimator, ratio.n, ratio.of) == (GEOMETRIC_MEAN, 2, 2)
    assert ratio.value == pytest.approx(3.0)
    assert "epochs_to_fit_ratio_geomean" in ratio.metrics("epochs_to_fit_ratio")
    diffs = [-0.8, -0.75]  # the paired t interval is the one-sample interval of the differences
    low, high = stats.t.interval(0.95, 1, loc=np.mean(diffs), scale=stats.sem(diffs))
    found = summary["probe_minus_control_test_accuracy"]
    assert (found.ci_low, found.ci_high) == pytest.approx((low, high))
    assert summary["control_test_accuracy"].n == 2


def test_band_averages_seeds_and_holds_early_stoppers_at_their_last_value():
    mean, low, high = band([[0.5, 1.0], [0.5, 0.8, 0.9]])
    assert mean.tolist() == pytest.approx([0.5, 0.9, 0.95])
    assert low[0] == high[0] == 0.5  # both seeds equal: no width
    assert low[1] < 0.9 < high[1]
    single = band([[0.1, 0.2]])
    assert single[1].tolist() == single[2].tolist() == [0.1, 0.2]


def _store_with_seeds(root, accuracies):
    """A sweep parent with one probe/control job per seed, logged straight with the client."""
    import mlflow
    from mlflow.entities import Metric, Param

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("memlab", artifact_location=(root / "artifacts").as_uri())
    sweep = client.create_run(exp, run_name="sweep", tags={"memlab.sweep": "parent"}).info.run_id
    for seed, (probe, control) in enumerate(accuracies):
        job = client.create_run(exp, tags={"mlflow.parentRunId": sweep}).info.run_id
        for arm, accuracy in (("probe", probe), ("control", control)):
            tags = {"mlflow.parentRunId": job, "arm": arm}
            run = client.create_run(exp, run_name=f"s{seed}-{arm}", tags=tags).info.run_id
            params = {"seed": str(seed), "probe.labels.fraction": "1.0", "model.name": "numpy_mlp"}
            client.log_batch(
                run,
                params=[Param(k, v) for k, v in params.items()],
                metrics=[Metric("test_accuracy", accuracy, 0, 0)],
            )
            client.set_terminated(run)
        client.set_terminated(job)
    client.set_terminated(sweep)
    return uri, sweep


@pytest.mark.slow
def test_report_table_shows_mean_and_interval_for_several_seeds(tmp_path, capsys):
    from pipeline.report.report_cli import main
    from pipeline.tracking import query

    draws = [(0.10, 0.95), (0.12, 0.96), (0.08, 0.97)]
    uri, sweep = _store_with_seeds(tmp_path, draws)
    out = tmp_path / "out"
    assert main(["--tracking-uri", uri, "--parent", sweep, "--out", str(out)], source=query) == 0
    printed = capsys.readouterr().out
    probe = summarize([p for p, _ in draws])
    difference = summarize([p - c for p, c in draws])
    assert probe.text() in printed and difference.text() in printed
    assert f"± {probe.half_width:.3f} (3)" in printed
    grouped = pd.read_csv(out / "table.csv")
    assert grouped.set_index("arm").loc["probe", "test_accuracy"] == probe.text()
    assert grouped.set_index("arm").loc["probe", "test_accuracy_ci_low"] == pytest.approx(
        probe.ci_low
    )
    paired = pd.read_csv(out / "paired.csv")
    assert paired["probe_minus_control_test_accuracy"].item() == difference.text()
    assert len(pd.read_csv(out / "table_seeds.csv")) == 6  # the raw runs, one per seed and arm
    assert (out / "curves.png").is_file()


@pytest.mark.slow
def test_aggregate_sweep_writes_the_interval_on_the_parent(tmp_path):
    import mlflow

    from pipeline.tracking.sweep_aggregate import aggregate_sweep

    draws = [(0.10, 0.95), (0.12, 0.96), (0.08, 0.97), (0.11, 0.90)]
    uri, sweep = _store_with_seeds(tmp_path, draws)
    mlflow.set_tracking_uri(uri)
    written = aggregate_sweep(sweep)
    assert list(written) == [sweep]
    parent = mlflow.MlflowClient().get_run(sweep).data
    control = summarize([c for _, c in draws])
    assert parent.metrics["n_seeds"] == 4
    assert parent.metrics["control_test_accuracy_mean"] == pytest.approx(control.value)
    assert parent.metrics["control_test_accuracy_ci_low"] == pytest.approx(control.ci_low)
    assert parent.metrics["control_test_accuracy_ci_high"] == pytest.approx(control.ci_high)
    assert parent.metrics["control_test_accuracy_std"] == pytest.approx(control.std)
    assert "probe_minus_control_test_accuracy_ci_low" in parent.metrics
    assert parent.tags["memlab.seeds"] == "0,1,2,3"
    assert parent.tags["memlab.interval"].startswith("95% Student t over 4 seeds")


@pytest.mark.slow
def test_one_seed_sweep_says_there_is_no_interval(tmp_path):
    import mlflow

    from pipeline.tracking.sweep_aggregate import aggregate_sweep

    uri, sweep = _store_with_seeds(tmp_path, [(0.1, 0.9)])
    mlflow.set_tracking_uri(uri)
    aggregate_sweep(sweep)
    parent = mlflow.MlflowClient().get_run(sweep).data
    assert parent.metrics["n_seeds"] == 1 and "probe_test_accuracy_mean" in parent.metrics
    assert not [m for m in parent.metrics if m.endswith(("_ci_low", "_ci_high", "_std"))]
    assert parent.tags["memlab.interval"].startswith("none: one seed")


def test_sweep_figure_draws_the_interval_over_seeds_as_error_bars():
    from pipeline.report.sweep_figures import report_figures

    accuracies = {"0.0": [0.95, 0.97, 0.96], "1.0": [0.10, 0.08, 0.13]}
    rows = [
        {"run": f"p{p}-s{s}", "probe.labels.fraction": p, "seed": str(s), "status": "FINISHED",
         "final_train_accuracy": 1.0, "test_accuracy": a, "epochs_to_fit": np.nan,
         "epochs": 10.0, "fit_seconds": 1.0, "run_id": f"{p}{s}"}
        for p, values in accuracies.items() for s, a in enumerate(values)
    ]  # fmt: skip
    ax = report_figures(pd.DataFrame(rows))["accuracy_vs_p.png"].axes[0]
    test = next(c for c in ax.containers if c.get_label() == "test")
    segments = test.lines[2][0].get_segments()  # one vertical bar per p: [(x, low), (x, high)]
    for (x, low), (_, high) in segments:
        found = summarize(accuracies["0.0" if x == 0.0 else "1.0"])
        assert (high - low) / 2 == pytest.approx(found.half_width)


def test_sweep_figure_censors_the_seeds_that_did_not_fit():
    """Epochs to fit against p: a seed that did not fit counts (censored at its epochs); the
    mean of the seeds that fitted would flatter the hard configuration."""
    from pipeline.report.aggregate import summarize_censored
    from pipeline.report.sweep_figures import report_figures

    fits = {"0.0": [5.0, 6.0, 7.0], "0.5": [10.0, 20.0, np.nan, 14.0, np.nan]}
    rows = [
        {"run": f"p{p}-s{s}", "probe.labels.fraction": p, "seed": str(s), "status": "FINISHED",
         "final_train_accuracy": 1.0, "test_accuracy": 0.5, "epochs_to_fit": fit,
         "epochs": 25.0 if np.isnan(fit) else fit, "fit_seconds": 1.0, "run_id": f"{p}{s}"}
        for p, values in fits.items() for s, fit in enumerate(values)
    ]  # fmt: skip
    ax = report_figures(pd.DataFrame(rows))["epochs_to_fit_vs_p.png"].axes[0]
    (line,) = [c for c in ax.containers if c.get_label().startswith("epochs to fit")]
    assert "Kaplan-Meier median" in ax.get_ylabel()  # the figure says what its points are
    at_0, at_half = line.lines[0].get_ydata()
    assert at_0 == pytest.approx(6.0)  # every seed fitted: the mean
    # 3 of 5 fitted (10, 14, 20; two censored at 25): S = 4/5, 3/5, 2/5, so the median is 20,
    # where the survivors' mean would say 14.7.
    censored = summarize_censored(fits["0.5"], [25.0] * 5)
    assert at_half == pytest.approx(censored.value) == pytest.approx(20.0)
    assert at_half != pytest.approx(np.nanmean(fits["0.5"]))
    assert [t.get_text() for t in ax.texts] == ["3/5"]
