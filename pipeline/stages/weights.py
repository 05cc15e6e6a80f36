"""A trained model as files: its weights as plain arrays, its hyper-parameters as JSON.

``repro/model/weights.npz`` holds ``coef_<l>`` (fan_in, fan_out) and ``intercept_<l>``
(fan_out,) for each layer ``l``; ``hyperparameters.json`` the model's name (``numpy_mlp`` or
``sklearn_mlp``), its constructor parameters and its classes. Nothing is pickled, for either
model, so loading a model runs no code from the file; the reloaded model predicts exactly as
the trained one did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.models import build_model
from pipeline.stages.files import load_arrays, save_arrays

WEIGHTS_FILE = "weights.npz"
HYPERPARAMETERS_FILE = "hyperparameters.json"


def save_model(directory: Path, name: str, model) -> None:
    """Write a fitted ``numpy_mlp`` or ``sklearn_mlp`` (called ``name``) into ``directory``."""
    arrays = {f"coef_{i}": w for i, w in enumerate(model.coefs_)}
    arrays |= {f"intercept_{i}": b for i, b in enumerate(model.intercepts_)}
    save_arrays(directory / WEIGHTS_FILE, arrays)
    params = model.get_params()
    params["hidden_layer_sizes"] = [int(h) for h in params["hidden_layer_sizes"]]
    meta = {"model": name, "params": params, "classes": model.classes_.tolist()}
    (directory / HYPERPARAMETERS_FILE).write_text(json.dumps(meta, indent=2) + "\n")


def load_model(directory: Path) -> tuple[str, Any]:
    """``(name, model)`` as ``save_model`` wrote them: it predicts exactly as it did then."""
    meta = json.loads((directory / HYPERPARAMETERS_FILE).read_text())
    params = dict(meta["params"])
    model = build_model(meta["model"], params, random_state=params.pop("random_state"))
    weights = load_arrays(directory / WEIGHTS_FILE)
    n_layers = len(weights) // 2
    coefs = [weights[f"coef_{i}"] for i in range(n_layers)]
    intercepts = [weights[f"intercept_{i}"] for i in range(n_layers)]
    classes = np.asarray(meta["classes"])
    n_features = coefs[0].shape[0]
    # Each model sets up its fitted state (classes, layer bookkeeping) in ``_initialize``;
    # the saved weights then replace the freshly drawn ones.
    if meta["model"] == "numpy_mlp":
        model._initialize(n_features, classes)
        model.coefs_, model.intercepts_ = coefs, intercepts
    else:
        model._initialize(np.zeros((1, n_features), model.dtype), classes[:1], classes)
        model.estimator_.coefs_, model.estimator_.intercepts_ = coefs, intercepts
    return meta["model"], model
