"""A fitted model as two files: its weights as plain arrays, its hyper-parameters as JSON.

``weights.npz`` holds ``coef_<l>`` (fan_in, fan_out) and ``intercept_<l>`` (fan_out,) for each
layer ``l``; ``hyperparameters.json`` the model's name (``numpy_mlp`` or ``sklearn_mlp``), its
constructor parameters, its classes and its input width. Nothing is pickled, for either model,
so loading runs no code from the files, and equal weights are equal bytes. The DVC pipeline
keeps its model this way (``repro/model/``), and so does the MLflow model of a NumpyMLP. The
reloaded model predicts exactly as the saved one did.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.arrays import load_arrays, save_arrays
from pipeline.models import model_classes, model_name

WEIGHTS_FILE = "weights.npz"
HYPERPARAMETERS_FILE = "hyperparameters.json"


def save_weights(model, directory: Path) -> tuple[Path, Path]:
    """Write a fitted ``NumpyMLP`` or ``SklearnMLP`` into ``directory``; both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {f"coef_{i}": w for i, w in enumerate(model.coefs_)}
    arrays |= {f"intercept_{i}": b for i, b in enumerate(model.intercepts_)}
    weights = directory / WEIGHTS_FILE
    save_arrays(weights, arrays)
    params = model.get_params()
    params["hidden_layer_sizes"] = [int(h) for h in params["hidden_layer_sizes"]]
    meta = {
        "model": model_name(model),
        "params": params,
        "classes": model.classes_.tolist(),
        "n_features_in": int(model.n_features_in_),
    }
    hyperparameters = directory / HYPERPARAMETERS_FILE
    hyperparameters.write_text(json.dumps(meta, indent=2) + "\n")
    return weights, hyperparameters


def load_weights(weights: Path, hyperparameters: Path):
    """The model :func:`save_weights` wrote, ready to predict."""
    meta = json.loads(Path(hyperparameters).read_text())
    arrays = load_arrays(Path(weights))
    n_layers = len(arrays) // 2
    coefs = [arrays[f"coef_{i}"] for i in range(n_layers)]
    intercepts = [arrays[f"intercept_{i}"] for i in range(n_layers)]
    cls = model_classes()[meta.get("model", "numpy_mlp")]
    return cls.from_weights(meta["params"], coefs, intercepts, np.asarray(meta["classes"]))


def load_model(directory: Path):
    """The model saved in ``directory`` by :func:`save_weights`."""
    return load_weights(directory / WEIGHTS_FILE, directory / HYPERPARAMETERS_FILE)
