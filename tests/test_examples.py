"""Per-example learning dynamics: the scores on hand-made records, the recorder, its artifacts."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.settings import (
    DataSettings,
    LabelSettings,
    ModelSettings,
    NoiseSettings,
    ProbeSettings,
    SplitSettings,
    TrainSettings,
)
from pipeline.study import examples as ex
from pipeline.study.run import fit_arm, load_data, make_arms, measure_arm
from pipeline.study.train import train_epochs

# Five examples over T = 6 epochs (rows = epochs), each a case with a known answer.
T = 6
CASES = {  # name: (correct over epochs, label probability over epochs)
    "always_right": ([1, 1, 1, 1, 1, 1], [0.9, 0.9, 0.9, 0.9, 0.9, 0.9]),
    "never_learned": ([0, 0, 0, 0, 0, 0], [0.1, 0.1, 0.1, 0.1, 0.1, 0.1]),
    "learned_then_forgotten": ([0, 1, 1, 0, 0, 0], [0.2, 0.6, 0.6, 0.2, 0.2, 0.2]),
    "forgotten_twice_then_kept": ([1, 0, 1, 0, 1, 1], [0.6, 0.4, 0.6, 0.4, 0.6, 0.6]),
    "learned_late": ([0, 0, 0, 0, 1, 1], [0.0, 0.0, 0.0, 0.0, 0.6, 0.6]),
}
NAMES = list(CASES)


@pytest.fixture
def record() -> ex.ExampleRecord:
    correct = np.array([CASES[n][0] for n in NAMES], dtype=bool).T  # (T, n)
    proba = np.array([CASES[n][1] for n in NAMES], dtype=np.float32).T
    n = len(NAMES)
    label = np.array([0, 1, 2, 3, 4])
    true = np.array([0, 7, 2, 3, 9])  # never_learned and learned_late are mislabeled
    return ex.ExampleRecord(
        correct, proba, np.arange(n) * 10, label, true, label != true, inputs=np.zeros((n, 4))
    )


def by_name(values) -> dict:
    return dict(zip(NAMES, np.asarray(values).tolist(), strict=True))


def test_when_each_example_is_learned(record):
    assert by_name(ex.first_correct_epoch(record.correct)) == {
        "always_right": 1,
        "never_learned": T + 1,
        "learned_then_forgotten": 2,
        "forgotten_twice_then_kept": 1,
        "learned_late": 5,
    }
    assert by_name(ex.learned_epoch(record.correct)) == {
        "always_right": 1,
        "never_learned": T + 1,
        "learned_then_forgotten": T + 1,  # wrong at the end: not learned for good
        "forgotten_twice_then_kept": 5,
        "learned_late": 5,
    }


def test_forgetting_events_follow_toneva_et_al(record):
    assert by_name(ex.forgetting_events(record.correct)) == {
        "always_right": 0,
        "never_learned": T,  # never learned: one event per presentation
        "learned_then_forgotten": 1,
        "forgotten_twice_then_kept": 2,
        "learned_late": 0,
    }
    assert by_name(ex.never_learned(record.correct)) == {n: n == "never_learned" for n in NAMES}
    assert by_name(ex.unforgettable(record.correct)) == {
        "always_right": True,
        "never_learned": False,
        "learned_then_forgotten": False,
        "forgotten_twice_then_kept": False,
        "learned_late": True,
    }


def test_cartography(record):
    conf, var = ex.confidence(record.label_proba), ex.variability(record.label_proba)
    np.testing.assert_allclose(conf, [0.9, 0.1, 2.0 / 6, 3.2 / 6, 1.2 / 6], atol=1e-6)
    np.testing.assert_allclose(var[[0, 1]], 0.0, atol=1e-6)
    np.testing.assert_allclose(var[4], np.std([0, 0, 0, 0, 0.6, 0.6]), atol=1e-6)
    np.testing.assert_allclose(ex.correctness(record.correct), [1, 0, 2 / 6, 4 / 6, 2 / 6])


def test_summary_and_aurocs(record):
    got = ex.summary(record)
    assert got["examples_share_never_forgotten"] == pytest.approx(2 / 5)
    assert got["examples_share_never_learned"] == pytest.approx(1 / 5)
    # Over the four learned examples only: the never-learned one's placeholder T is left out.
    assert got["examples_mean_forgetting_events_learned"] == pytest.approx((0 + 1 + 2 + 0) / 4)
    assert "examples_mean_forgetting_events" not in got
    # The two mislabeled examples are the least confident and the latest learned.
    assert got["examples_auroc_corrupt_confidence"] == 1.0
    assert got["examples_auroc_corrupt_first_correct_epoch"] == 1.0
    assert set(k for k in got if "auroc" in k) == {
        f"examples_auroc_corrupt_{k}" for k in ex.SUSPICION
    }
    assert got["examples_scores_inverted"] == 0.0  # 2 against 3: nothing is sure to be inverted


def test_mean_forgetting_does_not_grow_with_the_epochs_a_never_learned_example_sat_through(record):
    # Ten more epochs, each example as it ended: nothing is learned or forgotten any more.
    longer = np.concatenate([record.correct, np.repeat(record.correct[-1:], 10, axis=0)])
    proba = np.concatenate([record.label_proba, np.repeat(record.label_proba[-1:], 10, axis=0)])
    again = ex.summary(ex.ExampleRecord(longer, proba, *list(record.arrays().values())[2:]))
    before = ex.summary(record)
    for name in ("mean_forgetting_events_learned", "share_never_learned"):
        assert again[f"examples_{name}"] == before[f"examples_{name}"]
    # Toneva's placeholder still ranks the never-learned example first, at T = 16 now.
    assert ex.forgetting_events(longer).max() == 16


def test_auroc_standard_error_matches_hanley_and_mcneil_by_hand():
    # A = 0.8, 10 and 10: Q1 = 0.8 / 1.2, Q2 = 1.28 / 1.8;
    # var = (0.16 + 9 (Q1 - 0.64) + 9 (Q2 - 0.64)) / 100 = (0.16 + 0.24 + 0.64) / 100.
    assert ex.auroc_se(0.8, 10, 10) == pytest.approx(np.sqrt(0.0104))
    assert ex.inverted(0.2, 10, 10) and not ex.inverted(0.4, 10, 10)
    assert not ex.inverted(0.5, 1000, 1000) and not ex.inverted(0.9, 10, 10)


def under_trained(n: int = 20) -> ex.ExampleRecord:
    """An under-trained run: mislabeled examples never move (variability 0), clean ones do."""
    correct = np.array([[0, 1, 1, 1]] * n + [[0, 0, 0, 0]] * n, dtype=bool).T  # (4, 2n)
    proba = np.array([[0.3, 0.9, 0.9, 0.9]] * n + [[0.1] * 4] * n, dtype=np.float32).T
    label = np.zeros(2 * n, dtype=np.int64)
    true = np.r_[np.zeros(n), np.ones(n)].astype(np.int64)  # the second half is mislabeled
    return ex.ExampleRecord(correct, proba, np.arange(2 * n), label, true, true == 1)


def arm_with(record: ex.ExampleRecord, name: str = "run"):
    """An ``ArmResult`` around ``record``: what the edges read, the rest plain placeholders."""
    from pipeline.study.results import ArmResult, Scores
    from pipeline.study.train import TrainResult

    epochs = record.correct.shape[0]
    training = TrainResult(history={"val_accuracy": [0.5] * epochs}, epochs=epochs)
    return ArmResult(
        name, None, training, Scores(1.0, 0.5), Scores(1.0, 0.5), np.zeros((2, 2)),
        np.zeros((5, 4)), examples=record,
    )  # fmt: skip


def test_a_score_that_separates_the_wrong_way_is_flagged_not_ranked_last():
    n = 20
    got = ex.summary(under_trained(n))
    assert got["examples_auroc_corrupt_variability"] == 0.0  # measured in its expected direction
    assert got["examples_auroc_corrupt_confidence"] == 1.0
    assert got["examples_scores_inverted"] == 1.0
    lines = ex.auroc_lines(got, n, n)
    assert len(lines) == len(ex.SUSPICION)
    assert lines[-1].startswith("variability: AUROC 0.000, INVERTED")
    assert not any("INVERTED" in line for line in lines[:-1])
    assert ex.inverted_scores(got, n, n) == ["variability"]


def _data():
    from pipeline.study.results import DataSummary

    return DataSummary("digits", "f", {"n_train": 40}, 10, (2, 2))


def test_the_run_summary_flags_an_inverted_score(store, record):
    from pipeline.__main__ import format_summary
    from pipeline.study.results import Comparison, StudyResult
    from pipeline.tracking import store as tracking

    with tracking.run("summary", tags={}) as run_id:  # the summary links to the run's page
        pass
    uri = tracking.tracking_uri()
    text = format_summary(run_id, StudyResult(_data(), {"run": arm_with(under_trained())}), uri)
    lines = text.splitlines()
    start = lines.index("which scores find the mislabeled examples, best first:")
    shown = lines[start + 1 : start + 1 + len(ex.SUSPICION)]
    assert all(line.startswith("  ") for line in shown)
    assert shown[-1].startswith("  variability: AUROC 0.000, INVERTED")
    assert not any("INVERTED" in line for line in shown[:-1])
    # With a control arm, each arm with wrong labels is named; clean labels print nothing.
    clean = ex.ExampleRecord(*list(record.arrays().values())[:3], record.label, record.label,
                             np.zeros(len(NAMES), bool))  # fmt: skip
    arms = {"probe": arm_with(record, "probe"), "control": arm_with(clean, "control")}
    both = StudyResult(_data(), arms, Comparison(arms["probe"], arms["control"]))
    text = format_summary(run_id, both, uri)
    assert "which scores find the mislabeled examples (probe), best first:" in text
    assert "(control)" not in text and "INVERTED" not in text


@pytest.mark.slow
def test_an_inverted_score_is_tagged_on_its_run(store, record):
    from pipeline.tracking import store as tracking
    from pipeline.tracking.example_record import record_examples

    tags = {}
    for name, found in (("inverted", under_trained()), ("fine", record)):
        with tracking.run(name, tags={}) as run_id:
            record_examples(run_id, arm_with(found), _data(), title=name)
        tags[name] = store.get_run(run_id).data.tags
    assert tags["inverted"]["memlab.inverted_scores"] == "variability"
    assert "memlab.inverted_scores" not in tags["fine"]  # AUROCs, none of them inverted


def test_auroc_is_the_mann_whitney_statistic_with_ties_as_halves():
    assert ex.auroc(np.array([1, 1, 0, 0], bool), np.array([3, 4, 1, 2])) == 1.0
    assert ex.auroc(np.array([1, 1, 0, 0], bool), np.array([1, 2, 3, 4])) == 0.0
    assert ex.auroc(np.array([1, 0], bool), np.array([5, 5])) == 0.5
    rng = np.random.default_rng(0)
    positive, score = rng.random(200) < 0.3, rng.normal(size=200).round(1)
    pairs = [(p > q) + 0.5 * (p == q) for p in score[positive] for q in score[~positive]]
    assert ex.auroc(positive, score) == pytest.approx(np.mean(pairs))
    assert np.isnan(ex.auroc(np.zeros(3, bool), np.arange(3)))


def test_gallery_picks(record):
    picks = {kind: [NAMES[i] for i in found] for kind, found in ex.gallery_picks(record).items()}
    assert picks == {
        "never_learned": ["never_learned"],
        "most_forgotten": ["forgotten_twice_then_kept", "learned_then_forgotten"],
        "learned_last": ["learned_late", "forgotten_twice_then_kept", "always_right"],
    }


def test_the_record_goes_through_plain_arrays(record, tmp_path):
    np.savez(tmp_path / "r.npz", **record.arrays())
    with np.load(tmp_path / "r.npz", allow_pickle=False) as loaded:
        back = ex.ExampleRecord.from_arrays(loaded)
    for name in ex.ARRAYS:
        np.testing.assert_array_equal(getattr(back, name), getattr(record, name))


# ------------------------------------------------------------------ the recorder
def small_model(name: str, batch_size: int, loss: str = "cross_entropy"):
    from pipeline.models import build_model

    params = dict(
        hidden_layer_sizes=(16,),
        activation="relu",
        loss=loss,
        learning_rate=0.2,
        momentum=0.5,
        weight_decay=0.0,
        batch_size=batch_size,
        max_epochs=5,
        dtype="float32",
    )
    return build_model(name, params, random_state=3)


@pytest.mark.parametrize(
    "name, loss",
    [("numpy_mlp", "cross_entropy"), ("numpy_mlp", "mse"), ("sklearn_mlp", "cross_entropy")],
)
def test_the_record_is_what_the_running_pass_saw(name, loss):
    """With one mini-batch per epoch the running pass is the model before the epoch's update:
    its predict_proba, taken then, must be the recorded probabilities and correctness."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    model = small_model(name, batch_size=40, loss=loss)
    model.partial_fit(X, y, classes=np.arange(3))  # the first epoch initialises the weights
    before = []
    for _ in range(4):
        before.append(model.predict_proba(X))
        model.partial_fit(X, y)
        proba = before[-1][np.arange(40), y]
        np.testing.assert_allclose(model.epoch_label_proba_, proba, rtol=2e-5, atol=1e-6)
        np.testing.assert_array_equal(model.epoch_correct_, before[-1].argmax(axis=1) == y)


@pytest.mark.parametrize("name", ["numpy_mlp", "sklearn_mlp"])
def test_train_epochs_keeps_every_epoch_and_changes_nothing(name):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 6)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    seen = {"correct": [], "proba": []}
    results = {}
    for record in (True, False):
        model = small_model(name, batch_size=8)

        def on_epoch(epoch, metrics, model=model):
            seen["correct"].append(model.epoch_correct_.copy())
            seen["proba"].append(model.epoch_label_proba_.copy())

        results[record] = (
            train_epochs(
                model,
                X,
                y,
                X[:10],
                y[:10],
                classes=np.arange(3),
                max_epochs=5,
                record_examples=record,
                on_epoch=on_epoch if record else None,
            ),
            model,
        )
    (on, model_on), (off, model_off) = results[True], results[False]
    np.testing.assert_array_equal(on.correct, np.array(seen["correct"]))
    np.testing.assert_array_equal(on.label_proba, np.array(seen["proba"]))
    assert on.correct.shape == on.label_proba.shape == (5, 50)
    np.testing.assert_array_equal(on.correct.mean(axis=1), on.history["train_accuracy"])
    assert off.correct is None and off.label_proba is None
    assert on.history == off.history  # the record changes no number
    for a, b in zip(model_on.coefs_, model_off.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_tiny_run_with_corrupted_labels_finds_them():
    """Digits, 30% of the labels shuffled: the scores tell the mislabeled examples apart."""
    dataset, splits = load_data(DataSettings("digits", {}), SplitSettings(0.7, 0.15, 0.15), 0)
    probe = ProbeSettings(LabelSettings(0.3, "shuffle"))
    (arm,) = make_arms(splits, probe, n_classes=10, seed=0)
    model = ModelSettings(
        "numpy_mlp", (64,), "relu", "cross_entropy", 0.05, 0.9, 0.0, 64, 30, "float32"
    )
    estimator, training = fit_arm(arm, model, TrainSettings(), 0, n_classes=10)
    result = measure_arm(arm, estimator, training, NoiseSettings(0, ()), 0, 10)
    record = result.examples
    assert record.correct.shape == (30, len(arm.y_train))
    np.testing.assert_array_equal(dataset.X[record.index], splits.X_train)  # found again
    np.testing.assert_array_equal(dataset.y[record.index], record.true_label)
    np.testing.assert_array_equal(record.label, arm.y_train)
    metrics = result.example_metrics()
    assert metrics["examples_auroc_corrupt_confidence"] > 0.85
    assert metrics["examples_auroc_corrupt_correctness"] > 0.85
    assert "examples_auroc_corrupt_confidence" not in result.metrics()  # DVC's files unchanged


def test_the_switch_turns_the_record_off():
    _, splits = load_data(DataSettings("digits", {}), SplitSettings(0.7, 0.15, 0.15), 0)
    (arm,) = make_arms(splits, ProbeSettings(LabelSettings(0.0, "shuffle")), n_classes=10, seed=0)
    model = ModelSettings(
        "numpy_mlp", (8,), "relu", "cross_entropy", 0.1, 0.0, 0.0, 64, 2, "float32"
    )
    _, training = fit_arm(arm, model, TrainSettings(record_examples=False), 0, n_classes=10)
    assert training.correct is None
    assert TrainSettings.from_config({"record_examples": False}).record_examples is False


def test_the_split_keeps_each_rows_pool_index():
    dataset, splits = load_data(DataSettings("digits", {}), SplitSettings(0.7, 0.15, 0.15), 0)
    for part in ("train", "val", "test"):
        index = getattr(splits, f"index_{part}")
        np.testing.assert_array_equal(dataset.X[index], getattr(splits, f"X_{part}"))
    everything = np.concatenate([splits.index_train, splits.index_val, splits.index_test])
    assert sorted(everything) == list(range(len(dataset.y)))
