"""The two interchangeable models: ``numpy_mlp`` (from scratch) and ``sklearn_mlp``.

Both are ``pipeline.models.base.MLPBase`` estimators with the same hyper-parameters.
"""

from __future__ import annotations

MODELS = ("numpy_mlp", "sklearn_mlp")


def model_classes() -> dict:
    """``model.name`` -> estimator class (imported on demand: scikit-learn is slow)."""
    from pipeline.models.numpy_mlp import NumpyMLP
    from pipeline.models.sklearn_mlp import SklearnMLP

    return {"numpy_mlp": NumpyMLP, "sklearn_mlp": SklearnMLP}


def model_name(model) -> str:
    """The ``model.name`` of an estimator."""
    return {cls: name for name, cls in model_classes().items()}[type(model)]


def build_model(name: str, params: dict, *, random_state: int):
    """An unfitted estimator for ``model.name`` with the given parameters and seed."""
    return model_classes()[name](**params, random_state=random_state)
