"""What a run trained and was measured on, as MLflow dataset inputs.

MLflow's runs table has a Dataset column (and a dataset filter), and the run page a dataset
panel; both read a run's *dataset inputs*, not its tags. ``log_datasets`` records the three
parts of a split (training, validation, test) with MLflow's own dataset API
(``mlflow.data.from_numpy``, logged with ``MlflowClient.log_inputs`` and the
``mlflow.data.context`` tag), each with:

- a name: the dataset and the part, e.g. ``digits-train``; a randomized part says how,
  e.g. ``digits-train (labels shuffle 100%)``;
- a digest: the split's fingerprint (``pipeline.data.split.fingerprint``), so runs on the same
  split share their datasets; a randomized part is a different dataset, so its digest is the
  fingerprint hashed with the arrays actually used;
- a source: the scikit-learn loader for ``digits``, the folder of the MNIST files, or the file a
  DVC stage read the split from;
- a schema and a profile (the arrays' shapes), which MLflow derives from the arrays.

Only plain arrays and strings come in, so any edge (``python -m pipeline``, a DVC stage) can
call it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

from pipeline.tracking import store

# mlflow.data.context values, as the MLflow docs name a run's data.
CONTEXTS = {"train": "training", "val": "validation", "test": "test"}
# Where each dataset comes from, when it is not a folder or file of its own.
LOADERS = {"digits": "sklearn.datasets.load_digits"}


def describe_randomization(probe: Mapping) -> dict[str, str]:
    """Which parts a ``probe`` config randomizes, and how: ``{"train": "labels shuffle 100%"}``.

    ``probe.labels`` touches only the training labels; ``probe.inputs`` the training inputs,
    and for ``shuffled_pixels`` the held-out inputs too (one permutation for all, see
    ``pipeline.study.probes.randomize_inputs``).
    """
    labels = probe.get("labels", {}) or {}
    inputs = probe.get("inputs", "none") or "none"
    train = []
    fraction = float(labels.get("fraction", 0) or 0)
    if fraction > 0:
        train.append(f"labels {labels.get('mode', 'shuffle')} {fraction:.0%}")
    if inputs != "none":
        train.append(f"inputs {inputs}")
    out = {"train": ", ".join(train)} if train else {}
    if inputs == "shuffled_pixels":
        out |= {"val": "inputs shuffled_pixels", "test": "inputs shuffled_pixels"}
    return out


def part_digest(fingerprint: str, X: np.ndarray, y: np.ndarray, randomized: str = "") -> str:
    """The split ``fingerprint`` itself, or for a randomized part a hash of it and its arrays."""
    if not randomized:
        return fingerprint
    digest = hashlib.sha256(f"{fingerprint}:{randomized}:".encode())
    for array in (X, y):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def log_datasets(
    run_id: str,
    *,
    name: str,
    source: str,
    fingerprint: str,
    parts: Mapping[str, tuple[np.ndarray, np.ndarray]],
    randomized: Mapping[str, str] | None = None,
) -> list[str]:
    """Log each of ``parts`` as a dataset input of ``run_id``; returns the datasets' names.

    Parameters
    ----------
    run_id : the MLflow run
    name : the dataset's name (``digits``, ``mnist``)
    source : where it comes from: a folder or file path, or a loader's dotted name
    fingerprint : the split's fingerprint (``pipeline.data.split.fingerprint``)
    parts : ``{"train" | "val" | "test": (X, y)}``, X (n, n_features), y (n,), as trained on
        or measured on
    randomized : ``{part: how}`` for the parts that were randomized (``describe_randomization``)
    """
    import mlflow.data
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.tracking import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    randomized = dict(randomized or {})
    inputs, names = [], []
    for part, (X, y) in parts.items():
        how = randomized.get(part, "")
        label = f"{name}-{part}" + (f" ({how})" if how else "")
        dataset = mlflow.data.from_numpy(
            X,
            source=_source(source),
            targets=y,
            name=label,
            digest=part_digest(fingerprint, X, y, how),
        )
        tags = [InputTag(MLFLOW_DATASET_CONTEXT, CONTEXTS.get(part, part))]
        tags.append(InputTag("memlab.randomized", how or "none"))
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), tags))
        names.append(label)
    _log_inputs(MlflowClient(), run_id, inputs)
    return names


def _log_inputs(client, run_id: str, inputs: list, attempts: int = 3) -> None:
    """``client.log_inputs``, again when another job logged the same dataset at the same moment.

    MLflow looks up which of the datasets the store holds, then inserts the others: two jobs of
    a parallel sweep that log one dataset (a split held fixed with ``split.seed``) at once can
    both insert it, and the later insert fails on the store's unique constraint. The dataset
    is in the store by then, so logging again links it to the run.
    """
    from mlflow.exceptions import MlflowException

    for attempt in range(attempts):
        try:
            client.log_inputs(run_id, datasets=inputs)
            return
        except MlflowException as err:
            text = str(err).lower()
            raced = "unique constraint" in text and "datasets" in text
            if not raced or attempt == attempts - 1:
                raise


def log_split(
    run_id: str,
    name: str,
    data: Mapping | str,
    fingerprint: str,
    splits,
    y_train: np.ndarray,
    probe: Mapping | None = None,
) -> list[str]:
    """``log_datasets`` for a ``pipeline.data.split.Splits`` as one arm used it.

    ``name`` and ``data`` are the dataset's name and config (or directly its source, e.g. the
    file a DVC stage read the split from), ``splits`` the arrays
    as trained on and measured on, ``y_train`` (n_train,) the labels trained on, and ``probe``
    the probe config that randomized them (``{}`` or None for true data).
    """
    s = splits
    return log_datasets(
        run_id,
        name=name,
        source=data if isinstance(data, str) else dataset_source(name, data),
        fingerprint=fingerprint,
        parts={
            "train": (s.X_train, y_train),
            "val": (s.X_val, s.y_val),
            "test": (s.X_test, s.y_test),
        },
        randomized=describe_randomization(probe or {}),
    )


def dataset_source(name: str, data: Mapping) -> str:
    """Where the ``data`` config's dataset is read from: the MNIST folder, or the loader."""
    from pathlib import Path

    if "dir" in data:
        return str(Path(str(data["dir"])).expanduser().resolve())
    return LOADERS.get(name, name)


def _source(source: str):
    """A path becomes MLflow's local-file source; a loader's name a code source naming it."""
    import json

    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import get_dataset_source_from_json

    if "/" in source:  # named as MLflow names a local file (resolving the bare path would warn)
        return get_dataset_source_from_json(json.dumps({"uri": source}), source_type="local")
    return CodeDatasetSource(tags={"loader": source})


def log_data_summary(run_id: str, data) -> None:
    """Tag ``run_id`` with what its data is (``data``, its fingerprint) and log each part's
    size as a param (``data``: a ``DataSummary``)."""
    store.set_tags(run_id, {"data_fingerprint": data.fingerprint, "data": data.name})
    store.log_params(run_id, {k: str(n) for k, n in data.sizes.items()})
