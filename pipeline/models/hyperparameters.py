"""The checks on a NumPy MLP's constructor parameters, each failing with one readable line.

``NumpyMLP`` runs them before it draws any weights, and ``SklearnMLP`` runs the same checks on
the parameters it shares, so a bad override fails the same way for either model and before
any data is loaded.
"""

from __future__ import annotations

import math

from pipeline.errors import ConfigError
from pipeline.models.layers import ACTIVATIONS, OUTPUTS

DTYPES = ("float32", "float64")


def _check_choice(key: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"model.{key}: {value!r} is not one of {', '.join(map(str, allowed))}")


def check_hyperparameters(model) -> None:
    """Raise a ``ConfigError`` naming the first of ``model``'s parameters that is invalid."""
    _check_choice("activation", model.activation, tuple(ACTIVATIONS))
    _check_choice("loss", model.loss, tuple(OUTPUTS))
    _check_choice("dtype", model.dtype, DTYPES)
    sizes = tuple(model.hidden_layer_sizes)
    if not sizes or any(int(h) != h or h < 1 for h in sizes):
        raise ConfigError(
            f"model.hidden_layer_sizes: every layer needs at least 1 unit, got {list(sizes)}"
        )
    if not (model.learning_rate > 0 and math.isfinite(model.learning_rate)):
        raise ConfigError(f"model.learning_rate must be > 0, got {model.learning_rate}")
    if not 0 <= model.momentum < 1:
        raise ConfigError(f"model.momentum must be in [0, 1), got {model.momentum}")
    if not model.weight_decay >= 0:
        raise ConfigError(f"model.weight_decay must be >= 0, got {model.weight_decay}")
    if int(model.batch_size) != model.batch_size or model.batch_size < 1:
        raise ConfigError(f"model.batch_size must be a whole number >= 1, got {model.batch_size}")
    if int(model.max_epochs) != model.max_epochs or model.max_epochs < 1:
        raise ConfigError(f"model.max_epochs must be a whole number >= 1, got {model.max_epochs}")
