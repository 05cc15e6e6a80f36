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
    width = got["ci_high"] - got["ci_low"]
    assert got["mem"][0] == 1.0 and got["ci_high"][0] == 1.0 and 0 < width[0] < 0.05
    assert got["mem"][1] == 0.0 and got["mem"][2] == 0.0
    assert got["ci_low"][3] < 0 < got["ci_high"][3]  # a coin: 0 is inside its interval
    assert 0.1 < width[3] < 0.4  # about 2 * 1.96 * sqrt(2 * 0.24 / 200) = 0.27
    assert (width > 0).all()
    np.testing.assert_array_equal(got["n_in"] + got["n_out"], t)
    np.testing.assert_array_equal(got["n_in"], trained.sum(axis=0))
    assert np.all(np.abs(got["n_in"] / t - 0.7) < 0.1)


def test_wilson_interval_matches_its_closed_form_at_the_edges():
    # All of n right: [n / (n + z^2), 1]; none right: [0, z^2 / (n + z^2)].
    z2 = mz.Z95**2
    low, high = mz.wilson(np.array([7, 0, 81]), np.array([7, 3, 263]))
    assert low[:2] == pytest.approx([7 / (7 + z2), 0.0]) and high[:2] == pytest.approx(
        [1, z2 / (3 + z2)]
    )
    # 81 of 263: the worked example of Newcombe 1998, "Two-sided confidence intervals for the
    # single proportion" (Statistics in Medicine 17): 0.2553 to 0.3662.
    assert (low[2], high[2]) == pytest.approx((0.2553, 0.3662), abs=1e-4)


def test_newcombe_interval_is_never_zero_width_where_wald_is():
    # 7 of 7 models that trained on it right, 0 of 3 that did not: Wald's error is 0.
    # By hand: low = 1 - sqrt((1 - 7 / (7 + z^2))^2 + (z^2 / (3 + z^2))^2), high = 1.
    z2 = mz.Z95**2
    low, high = mz.newcombe(np.array([7]), np.array([7]), np.array([0]), np.array([3]))
    expected = 1 - np.sqrt((1 - 7 / (7 + z2)) ** 2 + (z2 / (3 + z2)) ** 2)
    assert low[0] == pytest.approx(expected) and high[0] == 1.0
    assert low[0] == pytest.approx(0.3361, abs=1e-4)


@pytest.mark.parametrize(
    ("counts", "interval"),
    [  # Newcombe 1998, Table II, method 10 (hybrid score, no continuity correction)
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((6, 7, 2, 7), (0.0582, 0.8062)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
        ((0, 10, 0, 20), (-0.1611, 0.2775)),
        ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ],
)
def test_newcombe_interval_matches_the_published_table(counts, interval):
    low, high = mz.newcombe(*(np.array([c]) for c in counts))
    assert (low[0], high[0]) == pytest.approx(interval, abs=1e-4)


def test_split_half_reliability_is_high_for_a_stable_score_and_near_0_for_noise():
    t, n = 40, 300
    trained = mz.subsets(n, t, 0.7, seed=0)
    rng = np.random.default_rng(2)
    # Each example is right out of training with its own fixed probability: a real score.
    p_out = rng.random(n)
    stable = trained | (rng.random((t, n)) < p_out)
    noise = rng.random((t, n)) < 0.5  # right at random whoever trained: nothing to find
    r_stable, scored = mz.split_half(trained, stable)
    r_noise, _ = mz.split_half(trained, noise)
    assert r_stable > 0.6 and abs(r_noise) < 0.2 and scored == n
    assert mz.spearman_brown(r_stable) == pytest.approx(2 * r_stable / (1 + r_stable))
    curve = mz.reliability_curve(trained, stable)
    assert curve["models_per_half"].tolist() == list(range(2, 21))
    assert curve["split_half"][-1] == pytest.approx(r_stable)
    assert curve["split_half"][-1] > curve["split_half"][2]  # more models, more reliable
    many = mz.reliability_curve(mz.subsets(n, 200, 0.7, 0), noise.repeat(5, axis=0), points=5)
    assert len(many["models_per_half"]) == 5 and many["models_per_half"][-1] == 100


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


@pytest.mark.slow
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
    # Models that fit: most examples have p_in = 1, p_out = 0 or 1 (Wald's error 0), but no
    # interval has zero width, and the two halves of 3 models agree on the ranking.
    assert metrics["mem_min_ci_width"] > 0.1
    assert metrics["mem_split_half_reliability"] > 0.5
    assert "split-half reliability" in result.summary()


def test_the_study_is_seeded():
    first = mz.run_memorization(settings(0.0))[1]
    again = mz.run_memorization(settings(0.0))[1]
    np.testing.assert_array_equal(again.correct, first.correct)
    np.testing.assert_array_equal(again.trained, first.trained)


def test_models_trained_in_worker_processes_give_the_very_same_bits():
    """train.workers=2: the same models, trained two at a time in other processes, score
    every example exactly as one after another here do (the table byte for byte)."""
    from functools import partial

    from pipeline.runtime.workers import parallel_map
    from pipeline.tracking.memorization_record import table_csv

    s = settings(0.2, n_models=4)
    serial = mz.run_memorization(s)[1]
    parallel = mz.run_memorization(s, map=partial(parallel_map, workers=2))[1]
    for name in ("trained", "correct", "test_accuracy", "epochs"):
        assert np.array_equal(getattr(parallel, name), getattr(serial, name)), name
    assert table_csv(parallel.table()) == table_csv(serial.table())
    assert parallel.metrics() == serial.metrics()


@pytest.mark.slow
def test_a_run_leaves_its_record_and_pictures(store, tmp_path):
    from pipeline.tracking.example_record import record_examples

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
        "memorization/reliability.png",
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
        "ci_low",
        "ci_high",
        "p_in",
        "p_out",
        "n_in",
        "n_out",
    }
    metrics = store.get_run(run_id).data.metrics
    assert "mem_auroc_corrupt" in metrics and metrics["mem_models"] == 4
    assert metrics["mem_min_ci_width"] > 0 and "mem_median_se" not in metrics
    curve = store.get_metric_history(run_id, "mem_split_half_reliability_curve")
    assert [m.step for m in curve] == [2]  # 4 models: halves of 2
    assert not store.search_runs(
        [store.get_run(run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'"
    )  # no per-model runs


@pytest.mark.slow
def test_the_command_line_runs_the_study_as_one_run(workdir):
    """`python -m pipeline +experiment=memorization_scores`: one run, no model per run."""
    from helpers import run_cli, search

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
