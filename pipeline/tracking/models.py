"""The trained model as an MLflow model: ``mlflow.pyfunc.load_model(uri).predict(X)`` gives
exactly the labels the in-process model predicted.

Two flavours, one entry point, :func:`log_model`:

- ``SklearnMLP``: its fitted ``MLPClassifier`` (``estimator_``) with MLflow's scikit-learn
  flavour, serialized with **skops**. skops rebuilds only types on an allow-list, so loading
  runs no arbitrary code (cloudpickle could, and MLflow warns about it on every log); the one
  type the list must name is scikit-learn's own SGD optimizer (``SKOPS_TRUSTED_TYPES``). The
  price: importing skops, once per process, takes a second or more (it walks all of
  scikit-learn, which imports torch when that is installed).
- ``NumpyMLP``: a pyfunc model whose weights are **plain arrays**. The model directory holds
  ``artifacts/weights.npz`` (``coef_0``, ``intercept_0``, ... written and read with
  ``allow_pickle=False``), ``artifacts/hyperparameters.json`` (the constructor parameters, the
  classes and the input width), a four-line "model from code" file that names
  :class:`NumpyMLPModel`, and a copy of the ``pipeline`` package under ``code/`` so the model
  loads without memlab installed. No object of ours is pickled.

Both models get a signature inferred from the input example and its predictions (a float
tensor of shape (-1, n_features) in, int64 labels out), so inputs must have the example's
dtype (float32 pixels, as ``pipeline.data.datasets`` gives). Requirements are given explicitly,
pinned to the running versions: MLflow's requirement inference would load the model in a
subprocess and cost seconds.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import mlflow
import numpy as np
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel
from mlflow.tracking import MlflowClient
from sklearn.neural_network import MLPClassifier

from pipeline.models.numpy_mlp import NumpyMLP
from pipeline.models.weights import load_weights, save_weights
from pipeline.runtime import faults

# skops refuses to load any type it does not know to be safe. A fitted MLPClassifier holds
# exactly one such type: its optimizer (arrays and floats; kept so training could resume).
SKOPS_TRUSTED_TYPES = ["sklearn.neural_network._stochastic_optimizers.SGDOptimizer"]
# The file MLflow runs on loading a NumPy model ("models from code"): it only names the class.
_MODEL_CODE = '''"""Loads a memlab NumpyMLP logged as plain arrays (pipeline.tracking.models)."""
import mlflow
from pipeline.tracking.models import NumpyMLPModel
mlflow.models.set_model(NumpyMLPModel())
'''
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the whole pipeline package


def log_model(
    model, *, name: str = "model", input_example: np.ndarray, run_id: str | None = None
) -> str:
    """Log a fitted ``NumpyMLP`` or ``SklearnMLP`` to the active MLflow run.

    Parameters
    ----------
    model : NumpyMLP or SklearnMLP
        The fitted model (for scikit-learn, anything whose ``estimator_`` is a fitted
        ``MLPClassifier``).
    name : str
        Name of the logged model (MLflow 3 ``name=``; shown on the run's "Logged models").
    input_example : ndarray of shape (n_examples, n_features)
        A few input rows, e.g. ``X_test[:5]``; stored with the model and used, with the
        model's predictions on it, to infer the signature. Its dtype becomes the signature's.
    run_id : str, optional
        The run the model belongs to, checked against the active run (MLflow's
        ``log_model`` can only log to the active run).

    Returns
    -------
    str
        The model URI (``models:/<model_id>``) for ``mlflow.pyfunc.load_model``.

    Raises
    ------
    RuntimeError
        If no MLflow run is active, or it is not ``run_id``.
    TypeError
        If ``model`` is neither kind.
    """
    active = mlflow.active_run()
    if active is None or run_id not in (None, active.info.run_id):
        raise RuntimeError(f"log_model needs run {run_id or ''} to be the active MLflow run")
    example = np.asarray(input_example)
    if example.ndim != 2:
        raise ValueError(f"input_example must be 2-D (n_examples, n_features), got {example.shape}")
    estimator = getattr(model, "estimator_", None)
    if not isinstance(model, NumpyMLP) and not isinstance(estimator, MLPClassifier):
        raise TypeError(f"cannot log a {type(model).__name__}: expected NumpyMLP or SklearnMLP")
    from pipeline.tracking import store

    if store.adopted(active.info.run_id):  # a job run again: its model may be logged already
        logged = _logged_already(active.info.run_id, name)
        if logged is not None:
            return logged
    signature = infer_signature(example, np.asarray(model.predict(example), dtype=np.int64))
    # The crash test's point inside MLflow's logging: files uploaded, model not yet READY.
    with faults.after_call(MlflowClient, "log_model_artifacts", "model-files-logged"):
        if isinstance(model, NumpyMLP):
            uri = _log_numpy_mlp(model, name, example, signature)
        else:
            uri = _log_sklearn(estimator, name, example, signature)
    faults.point("model-logged")
    return uri


def _logged_already(run_id: str, name: str) -> str | None:
    """The URI of the model ``name`` that ``run_id`` logged whole (READY), if any; models it
    left half-logged (a process killed meanwhile) are deleted, so a run holds one model."""
    client = MlflowClient()
    experiment_id = client.get_run(run_id).info.experiment_id
    found = client.search_logged_models(
        [experiment_id], filter_string=f"source_run_id = '{run_id}' AND name = '{name}'"
    )
    ready = None
    for logged in found:
        if ready is None and str(logged.status) == "READY":
            ready = logged.model_uri
        else:
            client.delete_logged_model(logged.model_id)
    return ready


def _requirements(*packages: str) -> list[str]:
    """``package==installed version`` for each distribution name."""
    from importlib.metadata import version

    return [f"{package}=={version(package)}" for package in packages]


def _log_sklearn(estimator, name: str, example: np.ndarray, signature) -> str:
    info = mlflow.sklearn.log_model(
        estimator,
        name=name,
        serialization_format="skops",
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
        signature=signature,
        input_example=example,
        pip_requirements=_requirements("mlflow", "numpy", "scikit-learn", "skops"),
    )
    return info.model_uri


def _log_numpy_mlp(model: NumpyMLP, name: str, example: np.ndarray, signature) -> str:
    if not hasattr(model, "coefs_"):
        raise ValueError("the NumpyMLP is not fitted: train it before logging it")
    with tempfile.TemporaryDirectory() as tmp:
        weights, hyperparameters = save_weights(model, Path(tmp))
        code = Path(tmp, "numpy_mlp_model.py")
        code.write_text(_MODEL_CODE)
        with _no_progress_bars(), _sys_path_kept():
            info = mlflow.pyfunc.log_model(
                name=name,
                python_model=str(code),
                artifacts={"weights": str(weights), "hyperparameters": str(hyperparameters)},
                code_paths=[str(_PACKAGE_DIR)],
                signature=signature,
                input_example=example,
                pip_requirements=_requirements("mlflow", "numpy", "scikit-learn"),
            )
    return info.model_uri


@contextlib.contextmanager
def _sys_path_kept():
    """Undo MLflow's ``sys.path`` change: checking the input example, it loads the model from
    a temporary copy and puts that copy's ``code/`` (deleted right after) in front of the path.
    """
    saved = list(sys.path)
    try:
        yield
    finally:
        sys.path[:] = saved


@contextlib.contextmanager
def _no_progress_bars():
    """Keep MLflow from drawing a progress bar per file it copies into the model directory.

    Two small local files need none, and the bars would clutter the run's screen summary.
    A value the user set for the variable is respected.
    """
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    if key in os.environ:
        yield
        return
    os.environ[key] = "false"
    try:
        yield
    finally:
        os.environ.pop(key, None)


class NumpyMLPModel(PythonModel):
    """pyfunc face of a NumpyMLP stored as arrays: ``predict`` gives int64 labels (n_samples,)."""

    def load_context(self, context) -> None:
        self.model_ = load_weights(
            context.artifacts["weights"], context.artifacts["hyperparameters"]
        )

    # The ndarray hint tells MLflow to validate inputs against the signature, not the hint.
    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        """Labels for ``model_input`` (n_samples, n_features), int64 of shape (n_samples,).

        The signature's tensor schema makes MLflow hand over a 2-D array even when a
        DataFrame was given to ``predict``.
        """
        return np.asarray(self.model_.predict(np.asarray(model_input)), dtype=np.int64)
