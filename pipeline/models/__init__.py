"""The two interchangeable models: ``numpy_mlp`` (from scratch) and ``sklearn_mlp``."""

from __future__ import annotations

from typing import Any


def build_model(name: str, params: dict[str, Any], *, random_state: int):
    """An unfitted estimator for ``model.name`` with the given parameters and seed.

    Both models take the same parameters, validated when training starts; ``check`` below
    validates them up front.
    """
    if name == "numpy_mlp":
        from pipeline.models.numpy_mlp import NumpyMLP

        model = NumpyMLP(**params, random_state=random_state)
    elif name == "sklearn_mlp":
        from pipeline.models.sklearn_mlp import SklearnMLP

        model = SklearnMLP(**params, random_state=random_state)
    else:
        from pipeline.errors import ConfigError

        raise ConfigError(f"model: {name!r} is not one of numpy_mlp, sklearn_mlp")
    model._validate_params()  # fail on a bad value before any data is loaded or run started
    return model
