"""Ranking every example by how likely its label is wrong: the scores by hand, the cross-fit,
cleanlab on out-of-sample probabilities only, asymmetric noise, and what the run records."""

from __future__ import annotations

import csv
import io

import mlflow
import numpy as np
import pytest

from pipeline.data.datasets import load_dataset
from pipeline.errors import ConfigError
from pipeline.settings import (
    DataSettings,
    LabelIssueSettings,
    LabelSettings,
    ModelSettings,
    ProbeSettings,
    RunSettings,
    SplitSettings,
    TrackingSettings,
    TrainSettings,
)
from pipeline.study import label_issues as li
from pipeline.study.probes import ASYMMETRIC_FLIPS, corrupt_labels

TINY_MODEL = ModelSettings(
    "numpy_mlp", (32,), "relu", "cross_entropy", 0.05, 0.9, 0.0, 32, 6, "float32"
)


def test_scores_of_probabilities_by_hand():
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    labels = np.array([0, 1])
    np.testing.assert_allclose(li.self_confidence(proba, labels), [0.7, 0.3])
    # (p_y - max other + 1) / 2: (0.7 - 0.2 + 1) / 2 and (0.3 - 0.6 + 1) / 2
    np.testing.assert_allclose(li.normalized_margin(proba, labels), [0.75, 0.35])
    np.testing.assert_allclose(li.log_margin(proba, labels), [np.log(0.7 / 0.2), np.log(0.3 / 0.6)])


def test_aum_is_the_softmax_logit_margin_averaged_over_epochs_and_models():
    # Two epochs of logits for one example of label 0: margins 2 - 1 = 1 and 0 - 3 = -3.
    logits = np.array([[[2.0, 1.0, -1.0]], [[0.0, 3.0, 1.0]]])  # (T, n, c)
    proba = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    margins = np.stack([li.log_margin(p, np.array([0])) for p in proba])  # (T, n)
    np.testing.assert_allclose(margins[:, 0], [1.0, -3.0])
    np.testing.assert_allclose(li.aum(margins), [-1.0])

    # Example 0 trained on by two models (AUM -1 and 3): its AUM is their mean, 1; example 1
    # by one (AUM 2); example 2 by none: NaN.
    def record(rows, margin):
        t, m = margin.shape
        return li.FoldRecord(
            0,
            0,
            np.array(rows),
            np.ones((t, m), bool),
            np.full((t, m), 0.5, np.float32),
            margin,
            1.0,
            0.0,
        )

    records = [
        record([0, 1], np.array([[1.0, 2.0], [-3.0, 2.0]])),
        record([0], np.array([[3.0], [3.0]])),
    ]
    got = li.record_scores(records, 3)["aum"]
    np.testing.assert_allclose(got[:2], [1.0, 2.0])
    assert np.isnan(got[2])


def test_rankings_and_their_quality_by_hand():
    score = np.array([0.9, 0.1, 0.5, 0.2])  # low = suspect (self-confidence)
    wrong = np.array([False, True, False, True])
    order = li.ranking(score, -1)
    np.testing.assert_array_equal(order, [1, 3, 2, 0])
    q = li.quality(score, -1, wrong)
    assert q["precision_at_k"] == 1.0 and q["auroc"] == 1.0
    assert q["recall_at_1pct"] == 0.5  # the top 1 of 4 finds one of the two
    np.testing.assert_array_equal(li.rank_score(np.array([2, 0, 1])), [2.0, 1.0, 3.0])


def test_folds_are_stratified_and_seeded():
    y = np.repeat(np.arange(3), [10, 7, 5])
    a, b = li.stratified_folds(y, 3, seed=1), li.stratified_folds(y, 3, seed=1)
    np.testing.assert_array_equal(a, b)
    sizes = np.bincount(a)
    assert sizes.max() - sizes.min() <= 1
    for c in range(3):
        per_fold = np.bincount(a[y == c], minlength=3)
        assert per_fold.max() - per_fold.min() <= 1


def test_asymmetric_noise_flips_look_alike_digits_only():
    y = np.repeat(np.arange(10), 100)
    c = corrupt_labels(y, 0.2, "asymmetric", n_classes=10, seed=0)
    changed = c.labels != y
    np.testing.assert_array_equal(changed, c.corrupted)  # every chosen label is wrong
    assert changed.sum() == round(0.2 * 500)  # 20% of the 500 examples of the 5 source classes
    assert set(np.unique(y[changed])) <= set(ASYMMETRIC_FLIPS)
    for src, dst in zip(y[changed], c.labels[changed], strict=True):
        assert ASYMMETRIC_FLIPS[int(src)] == dst


def tiny_pool(n=300, fraction=0.15):
    digits = load_dataset("digits")
    X, y = digits.X[:n], digits.y[:n]
    noisy = corrupt_labels(y, fraction, "random", n_classes=10, seed=3)
    return X, y, noisy


def test_cleanlab_sees_out_of_sample_probabilities_only(monkeypatch):
    """Each example's probabilities come from the one model per cross-fit that did not train on
    it, and those (not any in-sample ones) are what cleanlab is given."""
    import cleanlab.filter

    seen = []
    real = cleanlab.filter.find_label_issues

    def spy(labels, pred_probs, **kwargs):
        seen.append(np.array(pred_probs))
        return real(labels, pred_probs, **kwargs)

    monkeypatch.setattr(cleanlab.filter, "find_label_issues", spy)
    X, y, noisy = tiny_pool()
    result = li.label_issue_study(
        X, noisy.labels, TINY_MODEL, TrainSettings(progress=False), folds=3, repeats=2, seed=0,
        n_classes=10, true_labels=y,
    )  # fmt: skip
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], result.proba)
    assert result.proba.shape == (len(y), 10) and np.isfinite(result.proba).all()
    np.testing.assert_allclose(result.proba.sum(axis=1), 1.0, rtol=1e-5)
    assert len(result.records) == 6 and result.folds.shape == (2, len(y))
    for r in result.records:  # model (repeat, k) trained on every fold but k, and only those
        held = np.flatnonzero(result.folds[r.repeat] == r.fold)
        np.testing.assert_array_equal(np.sort(np.r_[r.rows, held]), np.arange(len(y)))
        assert not np.isin(held, r.rows).any()
        assert r.margin.shape == r.correct.shape == r.label_proba.shape == (6, len(r.rows))
    for name in li.RANKINGS:
        assert np.isfinite(result.scores[name]).all(), name  # every example has every score
    # The models do find the injected errors: held-out self-confidence beats chance clearly.
    assert result.quality()["self_confidence"]["auroc"] > 0.8
    table = result.table()
    assert table["rank"][0] == 1 and sorted(table["cleanlab_rank"]) == list(range(1, len(y) + 1))


def test_cleanlab_ranking_puts_its_flags_first():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    proba = np.full((60, 3), 0.05)
    proba[np.arange(60), labels] = 0.9
    wrong = rng.choice(60, 6, replace=False)
    proba[wrong, labels[wrong]] = 0.05
    proba[wrong, (labels[wrong] + 1) % 3] = 0.9
    flagged, order = li.cleanlab_ranking(labels, proba)
    assert flagged.any() and set(np.flatnonzero(flagged)) <= set(wrong)
    assert set(order[: flagged.sum()]) == set(np.flatnonzero(flagged))
    assert set(order[: len(wrong)]) == set(wrong) and sorted(order) == list(range(60))


def test_a_bad_ranking_name_is_a_one_line_error():
    with pytest.raises(ConfigError, match="label_issues.rank_by"):
        LabelIssueSettings.from_config({"rank_by": "aumm"})
    assert LabelIssueSettings.from_config({"folds": 3}) == LabelIssueSettings(folds=3)


def settings(uri: str) -> RunSettings:
    return RunSettings(
        seed=0,
        data=DataSettings("digits", {}),
        split=SplitSettings(0.7, 0.15, 0.15),
        model=TINY_MODEL,
        train=TrainSettings(progress=False),
        probe=ProbeSettings(LabelSettings(0.1, "asymmetric")),
        mlflow=TrackingSettings(uri, "test"),
        label_issues=LabelIssueSettings(folds=2, top=20),
    )


@pytest.mark.slow
def test_folds_trained_in_worker_processes_give_the_very_same_bits():
    """train.workers=2: the same cross-fit models, trained two at a time in other processes,
    rank every example exactly as one after another here do (the table byte for byte)."""
    from dataclasses import replace
    from functools import partial

    from pipeline.runtime.workers import parallel_map
    from pipeline.tracking.memorization_record import table_csv

    s = settings("sqlite://")
    s = replace(s, label_issues=replace(s.label_issues, repeats=2))  # 4 models
    serial = li.run_label_issues(s)[1]
    parallel = li.run_label_issues(s, map=partial(parallel_map, workers=2))[1]
    assert np.array_equal(parallel.proba, serial.proba)
    for ours, theirs in zip(parallel.records, serial.records, strict=True):
        assert np.array_equal(ours.margin, theirs.margin) and ours.fold == theirs.fold
    assert table_csv(parallel.table()) == table_csv(serial.table())
    assert parallel.metrics() == serial.metrics()


def test_the_run_records_the_ranking_table_galleries_and_quality(store, tmp_path):
    from pipeline.tracking.record import execute

    run_id, result = execute(
        settings(mlflow.get_tracking_uri()), {"x": "1"}, "x: 1\n", name="li", tags={}
    )
    files = {a.path for a in store.list_artifacts(run_id, "label_issues")}
    assert files == {
        f"label_issues/{name}"
        for name in (
            "ranking.json",
            "ranking.csv",
            "top_suspects.csv",
            "gallery_memlab.png",
            "gallery_cleanlab.png",
            "agreement.png",
            "precision_recall.png",
        )
    }
    path = store.download_artifacts(run_id, "label_issues/ranking.csv", str(tmp_path))
    rows = list(csv.DictReader(io.StringIO(open(path).read())))
    assert len(rows) == 1797 and {"rank", "cleanlab_rank", "aum", "p_label"} <= set(rows[0])
    assert sorted(int(r["index"]) for r in rows) == list(range(1797))  # every pool image
    metrics = store.get_run(run_id).data.metrics
    for name in li.RANKINGS:
        assert 0 <= metrics[f"issues_{name}_auroc"] <= 1
    assert metrics["issues_mislabeled"] == result.mislabeled.sum() > 0
    assert "labels are wrong" in result.summary()


@pytest.mark.slow
def test_the_command_line_runs_the_study_as_one_run(workdir):
    """`python -m pipeline +experiment=label_issues`, small: digits, 2 folds, 2 epochs."""
    from helpers import run_cli, search

    result = run_cli(
        workdir,
        "+experiment=label_issues",
        "label_issues.folds=2",
        "model.max_epochs=2",
        "model.hidden_layer_sizes=[16]",
        "train.progress=false",
    )
    assert result.returncode == 0, result.stderr
    assert "every one of 1797 examples scored out of sample" in result.stdout
    runs = search(workdir)
    assert len(runs) == 1 and runs["metrics.issues_pool"].iloc[0] == 1797
    assert runs["params.label_issues.folds"].iloc[0] == "2"
