"""Logged models reload with ``mlflow.pyfunc`` and predict exactly what the trained model did."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from pipeline.models.numpy_mlp import NumpyMLP
from pipeline.models.sklearn_mlp import SklearnMLP
from pipeline.tracking.models import log_model

PICKLE_SUFFIXES = {".pkl", ".pickle", ".cloudpickle", ".joblib"}


@pytest.fixture(scope="module")
def models_experiment(tmp_path_factory) -> str:
    """The id of an experiment in one real SQLite store (creating its tables takes seconds),
    with artifacts beside the store."""
    root = tmp_path_factory.mktemp("store")
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    return mlflow.create_experiment("models", artifact_location=(root / "artifacts").as_uri())


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


def _log(experiment_id: str, model, X: np.ndarray) -> tuple[str, str]:
    """Log ``model`` inside a fresh run of ``experiment_id``; return (model uri, run id)."""
    with mlflow.start_run(experiment_id=experiment_id) as run:
        uri = log_model(model, input_example=X[:5], run_id=run.info.run_id)
    return uri, run.info.run_id


def _files(uri: str) -> dict[str, Path]:
    root = Path(mlflow.artifacts.download_artifacts(uri))
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "params",
    [
        dict(activation="sigmoid", loss="mse", dtype="float32"),
        dict(activation="relu", loss="cross_entropy", learning_rate=0.1, dtype="float64"),
    ],
    ids=["sigmoid-mse-float32", "relu-ce-float64"],
)
def test_numpy_mlp_reloads_from_plain_arrays_and_predicts_identically(
    models_experiment, digits, params
):
    X, y = digits
    model = NumpyMLP(hidden_layer_sizes=(16, 8), max_epochs=3, random_state=1, **params)
    model.fit(X[:400], y[:400])
    path_before = list(sys.path)
    uri, run_id = _log(models_experiment, model, X)
    assert sys.path == path_before  # logging leaves no trace of its temporary copy

    loaded = mlflow.pyfunc.load_model(uri)
    predicted = loaded.predict(X)
    assert predicted.dtype == np.int64
    np.testing.assert_array_equal(predicted, model.predict(X))
    np.testing.assert_array_equal(loaded.predict(pd.DataFrame(X)), model.predict(X))

    files = _files(uri)
    assert not [name for name in files if Path(name).suffix in PICKLE_SUFFIXES]
    # Nor under another name: a pickle (protocol >= 2) starts with byte 0x80.
    assert not [name for name, path in files.items() if path.read_bytes()[:1] == b"\x80"]
    assert "artifacts/weights.npz" in files and "artifacts/hyperparameters.json" in files
    with np.load(files["artifacts/weights.npz"], allow_pickle=False) as saved:
        assert sorted(saved.files) == ["coef_0", "coef_1", "coef_2"] + [
            "intercept_0",
            "intercept_1",
            "intercept_2",
        ]
        for i, W in enumerate(model.coefs_):
            np.testing.assert_array_equal(saved[f"coef_{i}"], W)
            assert saved[f"coef_{i}"].dtype == np.dtype(params["dtype"])
    meta = json.loads(files["artifacts/hyperparameters.json"].read_text())
    assert meta["params"]["activation"] == params["activation"]
    assert meta["classes"] == list(range(10)) and meta["n_features_in"] == 64

    info = mlflow.models.get_model_info(uri)
    assert info.run_id == run_id
    assert info.signature.inputs.to_dict()[0]["tensor-spec"] == {
        "dtype": "float32",
        "shape": (-1, 64),
    }
    assert info.signature.outputs.to_dict()[0]["tensor-spec"]["dtype"] == "int64"


def test_sklearn_mlp_reloads_with_skops_and_predicts_identically(models_experiment, digits):
    X, y = digits
    model = SklearnMLP(
        hidden_layer_sizes=(16,),
        loss="cross_entropy",
        learning_rate=0.5,
        momentum=0.5,
        max_epochs=3,
        random_state=2,
    )
    model.fit(X[:400], y[:400])
    uri, run_id = _log(models_experiment, model, X)

    predicted = mlflow.pyfunc.load_model(uri).predict(X)
    np.testing.assert_array_equal(predicted, model.predict(X))
    info = mlflow.models.get_model_info(uri)
    assert info.run_id == run_id
    assert info.flavors["sklearn"]["serialization_format"] == "skops"
    files = _files(uri)
    assert "model.skops" in files
    assert not [name for name in files if Path(name).suffix in PICKLE_SUFFIXES]


@pytest.mark.slow
def test_numpy_model_loads_in_a_fresh_process_from_its_own_code_copy(
    models_experiment, digits, tmp_path
):
    X, y = digits
    model = NumpyMLP(hidden_layer_sizes=(8,), max_epochs=2, random_state=3).fit(X[:200], y[:200])
    uri, _ = _log(models_experiment, model, X)
    np.save(tmp_path / "X.npy", X[:50], allow_pickle=False)
    script = (
        "import sys, mlflow, numpy as np\n"
        "mlflow.set_tracking_uri(sys.argv[1])\n"
        "model = mlflow.pyfunc.load_model(sys.argv[2])\n"
        "import pipeline\n"
        "print(pipeline.__file__)\n"
        "print(' '.join(map(str, model.predict(np.load('X.npy')))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, mlflow.get_tracking_uri(), uri],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    package_file, labels = out.stdout.strip().splitlines()[-2:]
    # The model directory carries the package it needs: the copy taken when it was logged.
    assert "/code/pipeline/__init__.py" in package_file
    assert [int(v) for v in labels.split()] == model.predict(X[:50]).tolist()


def test_log_model_refuses_without_an_active_run_or_an_unknown_model(models_experiment, digits):
    X, y = digits
    model = NumpyMLP(hidden_layer_sizes=(4,), max_epochs=1).fit(X[:50], y[:50])
    with pytest.raises(RuntimeError, match="active MLflow run"):
        log_model(model, input_example=X[:2])
    with (
        mlflow.start_run(experiment_id=models_experiment),
        pytest.raises(RuntimeError, match="abc"),
    ):
        log_model(model, input_example=X[:2], run_id="abc")  # another run than the active one
    with (
        mlflow.start_run(experiment_id=models_experiment),
        pytest.raises(TypeError, match="NumpyMLP"),
    ):
        log_model(object(), input_example=X[:2])


# The model file memlab wrote before the study core moved the loader to pipeline.tracking.
_MODEL_CODE_BEFORE = """import mlflow
from pipeline.model_logging import NumpyMLPModel
mlflow.models.set_model(NumpyMLPModel())
"""


def test_a_numpy_model_logged_before_the_study_core_still_loads(
    models_experiment, digits, tmp_path
):
    X, y = digits
    model = NumpyMLP(hidden_layer_sizes=(8,), max_epochs=2, random_state=3).fit(X[:200], y[:200])
    # The files of such a model: np.savez weights, and hyper-parameters without the model's name.
    weights = {f"coef_{i}": w for i, w in enumerate(model.coefs_)}
    weights |= {f"intercept_{i}": b for i, b in enumerate(model.intercepts_)}
    np.savez(tmp_path / "weights.npz", **weights)
    params = {**model.get_params(), "hidden_layer_sizes": [8]}
    meta = {"params": params, "classes": list(range(10)), "n_features_in": 64}
    (tmp_path / "hyperparameters.json").write_text(json.dumps(meta))
    (tmp_path / "numpy_mlp_model.py").write_text(_MODEL_CODE_BEFORE)
    artifacts = {
        "weights": str(tmp_path / "weights.npz"),
        "hyperparameters": str(tmp_path / "hyperparameters.json"),
    }
    with mlflow.start_run(experiment_id=models_experiment):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(tmp_path / "numpy_mlp_model.py"),
            artifacts=artifacts,
            pip_requirements=["numpy"],
        )
    loaded = mlflow.pyfunc.load_model(info.model_uri)  # in this process: today's package
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
