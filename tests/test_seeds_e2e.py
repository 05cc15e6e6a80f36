"""Seeds as a sweep, end to end: real tiny runs, a real store, the aggregate read back."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_cli, run_module, search, store_uri

# No per-example record: seeds aggregate metrics, and it is five of an arm's eight figures.
TINY = ["model.max_epochs=3", "model.hidden_layer_sizes=[8]", "train.progress=false",
        "train.record_examples=false"]  # fmt: skip


def test_default_split_seed_changes_no_number_and_a_fixed_one_holds_the_split():
    from pipeline.data.datasets import load_digits
    from pipeline.data.split import fingerprint, stratified_split
    from pipeline.settings import DataSettings, SplitSettings
    from pipeline.study.run import load_data
    from pipeline.study.seeds import derive_seed

    fractions = {"train": 0.7, "val": 0.15, "test": 0.15}
    digits = load_digits()
    before = stratified_split(digits.X, digits.y, **fractions, seed=derive_seed(3, "split"))
    data = DataSettings("digits", {})
    _, follows = load_data(data, SplitSettings(**fractions), seed=3)  # split.seed: null
    assert fingerprint(follows) == fingerprint(before)
    held = [load_data(data, SplitSettings(**fractions, seed=0), seed=s)[1] for s in (1, 2)]
    assert fingerprint(held[0]) == fingerprint(held[1]) != fingerprint(follows)


@pytest.mark.slow
def test_three_seed_sweep_leaves_its_interval_on_the_parent_and_in_the_report(workdir):
    import mlflow

    result = run_cli(
        workdir,
        "-m",
        "+experiment=shuffled_labels",
        "seed=range(3)",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *TINY,
    )
    assert result.returncode == 0, result.stderr
    assert "seeds aggregated" in result.stdout
    runs = search(workdir)
    parent = runs[runs["tags.memlab.sweep"] == "parent"].iloc[0]
    assert parent["status"] == "FINISHED" and parent["metrics.n_seeds"] == 3
    for name in ("probe_test_accuracy", "control_test_accuracy"):
        low, mean, high = (
            parent[f"metrics.{name}_{part}"] for part in ("ci_low", "mean", "ci_high")
        )
        assert low < mean < high
    jobs = runs[runs["tags.mlflow.parentRunId"] == parent["run_id"]]
    assert sorted(jobs["params.seed"]) == ["0", "1", "2"]
    differences = jobs["metrics.probe_test_accuracy"] - jobs["metrics.control_test_accuracy"]
    mean_difference = parent["metrics.probe_minus_control_test_accuracy_mean"]
    assert mean_difference == pytest.approx(differences.mean())
    assert parent["tags.memlab.randomness"] == "split, init, batch order, labels"
    artifacts = mlflow.MlflowClient(store_uri(workdir)).list_artifacts(parent["run_id"])
    assert {"curves_across_seeds.png", "seeds.json"} <= {a.path for a in artifacts}

    report = run_report(workdir, "--latest-sweep")
    assert report.returncode == 0, report.stderr
    probe = f"{parent['metrics.probe_test_accuracy_mean']:.3f} ± "
    assert probe in report.stdout and f"{mean_difference:.3f} ± " in report.stdout
    assert "(3)" in report.stdout


@pytest.mark.slow
def test_several_configurations_get_one_aggregate_run_each(workdir):
    """Jobs grouped by configuration as the store has them. The basic launcher runs them here,
    one after another in the sweep's process (the three-seed sweep above runs in joblib's
    worker processes): the grouping reads the store, whichever launcher ran the jobs."""
    result = run_cli(
        workdir,
        "-m",
        "+experiment=label_noise_sweep",
        "probe.labels.fraction=0.0,1.0",
        "seed=0,1",
        "split.seed=0",
        *TINY,
    )
    assert result.returncode == 0, result.stderr
    runs = search(workdir)
    parent = runs[runs["tags.memlab.sweep"] == "parent"].iloc[0]
    kids = runs[runs["tags.mlflow.parentRunId"] == parent["run_id"]]
    aggregates = kids[kids["tags.memlab.sweep"] == "aggregate"]
    jobs = kids[kids["tags.memlab.sweep"] != "aggregate"]
    assert len(jobs) == 4 and len(aggregates) == 2
    assert sorted(aggregates["params.probe.labels.fraction"]) == ["0.0", "1.0"]
    assert (aggregates["metrics.n_seeds"] == 2).all()
    for _, aggregate in aggregates.iterrows():  # each holds exactly its own two seeds
        p = aggregate["params.probe.labels.fraction"]
        own = jobs[jobs["params.probe.labels.fraction"] == p]["metrics.test_accuracy"]
        assert aggregate["metrics.test_accuracy_mean"] == pytest.approx(own.mean())
        assert aggregate["tags.memlab.seeds"] == "0,1"
        assert "split fixed" in aggregate["tags.memlab.randomness"]
    # The split was held: every job saw the same data.
    assert jobs["tags.data_fingerprint"].nunique() == 1
    assert np.isfinite(aggregates["metrics.test_accuracy_ci_low"]).all()


def run_report(workdir, *args):
    return run_module("pipeline.report", workdir, *args, timeout=300)
