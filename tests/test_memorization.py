"""Held-out memorization scores, and what the per-example and memorization runs leave in MLflow."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import mlflow
import numpy as np
import pytest

from pipeline.settings import (
    DataSettings,
    LabelSettings,
    MemorizationSettings,
    ModelSettings,
    NoiseSettings,
    ProbeSettings,
    RunSettings,
    SplitSettings,
    TrackingSettings,
    TrainSettings,
)
from pipeline.study import memorization as mz
from pipeline.study.run import fit_arm, load_data, make_arms, measure_arm, summarize_data
from pipeline.tracking import store as tracking

TINY_MODEL = ModelSettings(
    "numpy_mlp", (32,), "relu", "cross_entropy", 0.05, 0.9, 0.0, 64, 15, "float32"
)


def test_the_estimator_on_a_setup_with_known_answers():
    t, n = 400, 4
    trained = mz.subsets(n, t, 0.7, seed=0)
    rng = np.random.default_rng(1)
    correct = np.stack(
        [
            trained[:, 0],  # right exactly when trained on: fully memorized
            np.ones(t, bool),  # everybody gets it right: not memorized
            np.zeros(t, bool),  # nobody does: not memorized either
            rng.random(t) < 0.6,  # a coin, whoever trained: 0 within its error
        ],
        axis=1,
    )
    got = mz.estimate(trained, correct)
    assert got["mem"][0] == 1.0 and got["se"][0] == 0.0
    assert got["mem"][1] == 0.0 and got["mem"][2] == 0.0
    assert abs(got["mem"][3]) < 3 * got["se"][3]
    assert 0.03 < got["se"][3] < 0.1
    np.testing.assert_array_equal(got["n_in"] + got["n_out"], t)
    np.testing.assert_array_equal(got["n_in"], trained.sum(axis=0))
    assert np.all(np.abs(got["n_in"] / t - 0.7) < 0.1)


def test_an_example_no_model_left_out_has_no_score():
    trained = np.array([[1, 1], [1, 0]], bool)
    got = mz.estimate(trained, trained)
    assert np.isnan(got["mem"][0]) and got["mem"][1] == 1.0


def test_subsets_are_seeded_and_of_the_asked_size():
    a, b = mz.subsets(100, 5, 0.7, seed=3), mz.subsets(100, 5, 0.7, seed=3)
    np.testing.assert_array_equal(a, b)
    assert (a.sum(axis=1) == 70).all() and not (a[0] == a[1]).all()


def settings(fraction: float, uri: str = "", n_models: int = 3) -> RunSettings:
    return RunSettings(
        seed=0,
        data=DataSettings("digits", {}),
        split=SplitSettings(0.7, 0.15, 0.15),
        model=TINY_MODEL,
        train=TrainSettings(progress=False, record_examples=False),
        probe=ProbeSettings(LabelSettings(fraction, "shuffle")),
        mlflow=TrackingSettings(uri or None, "test"),
        memorization=MemorizationSettings(n_models=n_models),
    )


def test_with_corrupted_labels_the_corrupted_examples_are_the_memorized_ones():
    """Models that fit their subsets (about 120 epochs each, ~5 s in all) memorize exactly the
    shuffled labels: only the models trained on such an example give it its label."""
    fitting = replace(
        settings(0.3, n_models=6),
        model=replace(TINY_MODEL, hidden_layer_sizes=(256,), max_epochs=150),
        train=TrainSettings(stop_at_fit=True, progress=False, record_examples=False),
    )
    data, result = mz.run_memorization(fitting)
    assert result.trained.shape == result.correct.shape == (6, data.sizes["n_train"])
    metrics = result.metrics()
    assert metrics["mem_auroc_corrupt"] > 0.85
    assert metrics["mem_mean_corrupt"] > 0.9 > 0.3 > metrics["mem_mean_clean"]


def test_the_study_is_seeded():
    first = mz.run_memorization(settings(0.0))[1]
    again = mz.run_memorization(settings(0.0))[1]
    np.testing.assert_array_equal(again.correct, first.correct)
    np.testing.assert_array_equal(again.trained, first.trained)


def test_a_run_leaves_its_record_and_pictures(store, tmp_path):
    from pipeline.tracking.examples import record_examples

    dataset, splits = load_data(DataSettings("digits", {}), SplitSettings(0.7, 0.15, 0.15), 0)
    (arm,) = make_arms(splits, ProbeSettings(LabelSettings(0.4, "shuffle")), n_classes=10, seed=0)
    estimator, training = fit_arm(arm, TINY_MODEL, TrainSettings(), 0, n_classes=10)
    result = measure_arm(arm, estimator, training, NoiseSettings(0, ()), 0, 10)
    with tracking.run("examples", tags={}) as run_id:
        record_examples(run_id, result, summarize_data(dataset, splits), title="test")
    files = {a.path for a in store.list_artifacts(run_id, "examples")}
    assert files == {
        f"examples/{name}"
        for name in (
            "examples.npz",
            "cartography.png",
            "forgetting_events.png",
            "gallery_never_learned.png",
            "gallery_most_forgotten.png",
            "gallery_learned_last.png",
        )
    }
    path = store.download_artifacts(run_id, "examples/examples.npz", str(tmp_path))
    with np.load(path, allow_pickle=False) as saved:
        np.testing.assert_array_equal(saved["correct"], training.correct)
        np.testing.assert_array_equal(saved["label_proba"], training.label_proba)
        np.testing.assert_array_equal(saved["index"], splits.index_train)
        np.testing.assert_array_equal(saved["true_label"], splits.y_train)
        np.testing.assert_array_equal(saved["corrupted"], arm.corrupted)
    metrics = store.get_run(run_id).data.metrics
    aurocs = {k for k in metrics if "auroc" in k and "corrupt" in k}
    assert len(aurocs) == 6 and metrics["examples_auroc_corrupt_confidence"] > 0.8


def test_the_memorization_run_leaves_its_table_histogram_and_gallery(store, tmp_path):
    from pipeline.tracking.record import execute

    uri = mlflow.get_tracking_uri()
    run_id, result = execute(
        settings(0.2, uri, n_models=4),
        {"x": "1"},
        "x: 1\n",
        name="m",
        tags={},
    )
    files = {a.path for a in store.list_artifacts(run_id, "memorization")}
    assert files == {
        "memorization/scores.csv",
        "memorization/histogram.png",
        "memorization/gallery_most_memorized.png",
    }
    text = store.download_artifacts(run_id, "memorization/scores.csv", str(tmp_path))
    rows = list(csv.DictReader(io.StringIO(open(text).read())))
    assert len(rows) == result.trained.shape[1]
    assert set(rows[0]) == {
        "index",
        "label",
        "true_label",
        "corrupted",
        "mem",
        "se",
        "p_in",
        "p_out",
        "n_in",
        "n_out",
    }
    metrics = store.get_run(run_id).data.metrics
    assert "mem_auroc_corrupt" in metrics and metrics["mem_models"] == 4
    assert not store.search_runs(
        [store.get_run(run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'"
    )  # no per-model runs


@pytest.mark.slow
def test_the_command_line_runs_the_study_as_one_run(workdir):
    """`python -m pipeline +experiment=memorization_scores`: one run, no model per run."""
    from conftest import run_cli, search

    result = run_cli(
        workdir,
        "+experiment=memorization_scores",
        "memorization.n_models=3",
        "model.max_epochs=3",
        "train.progress=false",
    )
    assert result.returncode == 0, result.stderr
    assert "3 models on 880 of 1257 examples each" in result.stdout
    runs = search(workdir)
    assert len(runs) == 1 and runs["metrics.mem_models"].iloc[0] == 3
    assert runs["params.memorization.n_models"].iloc[0] == "3"
