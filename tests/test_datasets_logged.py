"""Every run names its data as MLflow dataset inputs, and the experiment opens on model training.

What ``mlflow ui`` shows in its Dataset column and dataset panel comes from these records.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run_cli, search, store_uri

from pipeline.tracking.dataset_record import describe_randomization, part_digest


def test_a_randomized_part_is_a_different_dataset():
    X = np.zeros((4, 3), np.float32)
    y = np.arange(4)
    assert part_digest("abc", X, y) == "abc"
    shuffled = part_digest("abc", X, y, "labels shuffle 100%")
    assert shuffled != "abc" and len(shuffled) == 16
    assert part_digest("abc", X, y[::-1].copy(), "labels shuffle 100%") != shuffled


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        ({}, {}),
        ({"labels": {"fraction": 0.0}, "inputs": "none"}, {}),
        ({"labels": {"fraction": 0.4, "mode": "random"}}, {"train": "labels random 40%"}),
        ({"labels": {"fraction": 0}, "inputs": "gaussian"}, {"train": "inputs gaussian"}),
        (
            {"labels": {"fraction": 0}, "inputs": "shuffled_pixels"},
            {
                "train": "inputs shuffled_pixels",
                "val": "inputs shuffled_pixels",
                "test": "inputs shuffled_pixels",
            },
        ),
    ],
)
def test_what_a_probe_randomizes(probe, expected):
    assert describe_randomization(probe) == expected


@pytest.mark.slow
def test_each_run_logs_its_training_validation_and_test_sets(workdir):
    from mlflow.tracking import MlflowClient

    done = run_cli(
        workdir,
        "+experiment=shuffled_labels",
        "model.max_epochs=2",
        "model.hidden_layer_sizes=[16]",
        "train.progress=false",
        "train.record_examples=false",  # the data sets are looked at, not the examples' figures
    )
    assert done.returncode == 0, done.stderr
    runs = search(workdir)
    client = MlflowClient(store_uri(workdir))
    experiment = client.get_experiment_by_name("memlab")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"

    by_arm = {
        row["tags.arm"] if isinstance(row["tags.arm"], str) else "parent": row
        for _, row in runs.iterrows()
    }
    assert set(by_arm) == {"parent", "probe", "control"}
    fingerprint = by_arm["control"]["tags.data_fingerprint"]
    seen = {}
    for arm, row in by_arm.items():
        inputs = client.get_run(row["run_id"]).inputs.dataset_inputs
        seen[arm] = {
            next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset
            for i in inputs
        }
        assert set(seen[arm]) == {"training", "validation", "test"}, arm
        for dataset in seen[arm].values():
            assert dataset.source_type == "code"
            assert "sklearn.datasets.load_digits" in dataset.source
            assert json.loads(dataset.profile)["features_shape"][1] == 64
    for arm in ("parent", "control"):
        assert seen[arm]["training"].name == "digits-train"
        assert seen[arm]["training"].digest == fingerprint
    probe_train = seen["probe"]["training"]
    assert probe_train.name == "digits-train (labels shuffle 100%)"
    assert probe_train.digest != fingerprint
    assert seen["probe"]["test"].digest == seen["control"]["test"].digest == fingerprint
    sizes = [json.loads(seen["control"][c].profile)["features_shape"][0] for c in seen["control"]]
    assert sum(sizes) == 1797


def test_a_dataset_another_job_logs_at_the_same_moment_is_linked_not_a_failure(store, monkeypatch):
    """Two jobs of a parallel sweep with one split (split.seed) log the same datasets at once:
    MLflow looks the datasets up, the other job inserts them, and this job's insert then fails
    on the store's unique constraint. Logging again links the stored datasets to the run."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from pipeline.tracking.dataset_record import log_datasets

    experiment = store.get_experiment_by_name("test").experiment_id
    other, mine = (store.create_run(experiment).info.run_id for _ in range(2))
    real, calls = MlflowClient.log_inputs, []

    def racing(self, run_id, datasets=None, models=None):
        calls.append(run_id)
        if len(calls) == 1:  # the other job got there between the lookup and the insert
            real(self, other, datasets=datasets)
            raise MlflowException(
                "(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, "
                "datasets.name, datasets.digest"
            )
        return real(self, run_id, datasets=datasets)

    X, y = np.zeros((4, 3), np.float32), np.arange(4)
    parts = {"train": (X, y), "test": (X + 1, y)}
    monkeypatch.setattr(MlflowClient, "log_inputs", racing)
    names = log_datasets(mine, name="toy", source="toy", fingerprint="f", parts=parts)
    monkeypatch.undo()
    assert calls == [mine, mine]
    linked = {d.dataset.name for d in store.get_run(mine).inputs.dataset_inputs}
    assert linked == set(names) == {"toy-train", "toy-test"}
    assert {d.dataset.name for d in store.get_run(other).inputs.dataset_inputs} == linked
