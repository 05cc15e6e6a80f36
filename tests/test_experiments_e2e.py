"""Experiments end to end through the real CLI, read back from a temporary MLflow store."""

from __future__ import annotations

import pytest
from helpers import run_cli, search, store_uri

# No per-example record (tests/test_examples.py and the crash tests keep it): five of an arm's
# eight figures.
SMALL = ["model.hidden_layer_sizes=[32]", "train.progress=false", "train.record_examples=false"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["numpy_mlp", "sklearn_mlp"])
def test_shuffled_labels_groups_probe_and_control(workdir, model):
    result = run_cli(
        workdir, "+experiment=shuffled_labels", f"model={model}", "model.max_epochs=4", *SMALL
    )
    assert result.returncode == 0, result.stderr
    assert "probe" in result.stdout and "control" in result.stdout  # the comparison table
    runs = search(workdir)
    assert len(runs) == 3 and set(runs["status"]) == {"FINISHED"}
    parent = runs[runs["tags.mlflow.parentRunId"].isna()].iloc[0]
    kids = runs[runs["tags.mlflow.parentRunId"] == parent["run_id"]]
    assert sorted(kids["tags.arm"]) == ["control", "probe"]
    probe = kids[kids["tags.arm"] == "probe"].iloc[0]
    control = kids[kids["tags.arm"] == "control"].iloc[0]
    # Identical settings and split; only the labels differ.
    assert probe["tags.data_fingerprint"] == control["tags.data_fingerprint"]
    assert probe["params.model.hidden_layer_sizes"] == control["params.model.hidden_layer_sizes"]
    assert parent["metrics.probe_test_accuracy"] == probe["metrics.test_accuracy"]
    assert parent["metrics.control_test_accuracy"] == control["metrics.test_accuracy"]
    assert parent["tags.model"] == model and parent["tags.experiment"] == "shuffled_labels"
    # Four epochs are enough for true labels to beat shuffled ones on held-out digits.
    assert control["metrics.test_accuracy"] > probe["metrics.test_accuracy"] + 0.3


@pytest.mark.slow
def test_noise_probe_records_what_the_network_sees(workdir):
    from mlflow.tracking import MlflowClient

    result = run_cli(
        workdir, "+experiment=noise_inputs", "model.max_epochs=3", "probe.noise.n=200", *SMALL
    )
    assert result.returncode == 0, result.stderr
    assert "noise: seen mostly as digit" in result.stdout
    run = search(workdir).iloc[0]
    for kind in ("uniform", "gaussian"):
        fractions = [run[f"metrics.noise_{kind}_class_{c}"] for c in range(10)]
        assert sum(fractions) == pytest.approx(1.0)
        assert 0.0 <= run[f"metrics.noise_{kind}_auroc"] <= 1.0
        assert 0.1 <= run[f"metrics.noise_{kind}_mean_max_prob"] <= 1.0
    assert run["tags.probe"] == "noise"
    client = MlflowClient(store_uri(workdir))
    sizes = {a.path: a.file_size for a in client.list_artifacts(run["run_id"])}
    for name in (
        "learning_curves.png",
        "confusion_matrix.png",
        "first_layer_weights.png",
        "noise_classes.png",
        "config.yaml",
    ):
        assert sizes.get(name, 0) > 0, name
    # The logged model reloads from the run's tag and reproduces its test accuracy exactly.
    import mlflow
    import numpy as np

    from pipeline.data.datasets import load_digits
    from pipeline.data.split import stratified_split
    from pipeline.study.seeds import derive_seed

    d = load_digits()
    s = stratified_split(d.X, d.y, train=0.7, val=0.15, test=0.15, seed=derive_seed(0, "split"))
    loaded = mlflow.pyfunc.load_model(run["tags.model_uri"])
    accuracy = float(np.mean(np.asarray(loaded.predict(s.X_test)).ravel() == s.y_test))
    assert accuracy == run["metrics.test_accuracy"]


@pytest.mark.slow
def test_parallel_joblib_sweep_is_one_parent_with_a_child_per_job(workdir):
    result = run_cli(
        workdir,
        "-m",
        "+experiment=label_noise_sweep",
        "probe.labels.fraction=0.0,1.0",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "model.max_epochs=2",
        *SMALL,
    )
    assert result.returncode == 0, result.stderr
    assert "database is locked" not in result.stderr
    runs = search(workdir)
    parents = runs[runs["tags.memlab.sweep"] == "parent"]
    assert len(parents) == 1 and parents.iloc[0]["status"] == "FINISHED"
    parent_id = parents.iloc[0]["run_id"]
    assert f"python -m pipeline.report --parent {parent_id}" in result.stdout
    kids = runs[runs["tags.mlflow.parentRunId"] == parent_id]
    assert len(kids) == 2 and set(kids["status"]) == {"FINISHED"}
    assert sorted(kids["params.probe.labels.fraction"]) == ["0.0", "1.0"]
    assert all("p=" in name for name in kids["tags.mlflow.runName"])
    # Each job wrote its own output directory.
    assert len({p.parent for p in (workdir / "multirun").rglob(".hydra")}) == 2


@pytest.mark.slow
def test_failed_sweep_job_fails_its_parent(workdir):
    result = run_cli(
        workdir, "-m", "model.learning_rate=1e6", "model.max_epochs=2", "train.progress=false"
    )
    assert result.returncode != 0
    runs = search(workdir)
    parent = runs[runs["tags.memlab.sweep"] == "parent"].iloc[0]
    assert parent["status"] == "FAILED"
    assert (runs[runs["tags.mlflow.parentRunId"] == parent["run_id"]]["status"] == "FAILED").all()
