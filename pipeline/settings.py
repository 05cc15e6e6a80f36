"""Typed, validated run settings made from the composed configuration (a plain dict).

The Hydra entry point turns its config into a dict and calls ``RunSettings.from_dict``; nothing
deeper in the code reads the configuration. Every invalid value is a one-line ``ConfigError``
that names the key and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ConfigError

MODELS = ("numpy_mlp", "sklearn_mlp")
PROGRESS = ("auto", True, False)
# Model keys that are estimator parameters (everything in conf/model/*.yaml but the name).
MODEL_PARAMS = (
    "hidden_layer_sizes",
    "activation",
    "loss",
    "learning_rate",
    "momentum",
    "weight_decay",
    "batch_size",
    "max_epochs",
    "dtype",
)


# model.learning_rate: null picks the step size that suits the cost: 3.0 is Nielsen's (and the
# videos') rate for sigmoid outputs with the quadratic cost, whose gradients are small; with
# softmax cross-entropy such a step kills a ReLU network at once, and 0.1 is a safe default.
DEFAULT_LEARNING_RATE = {"mse": 3.0, "cross_entropy": 0.1}


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ModelSettings:
    """Which model, and its estimator parameters (without the seed)."""

    name: str
    params: dict[str, Any]

    @classmethod
    def from_dict(cls, d: dict) -> ModelSettings:
        name = d.get("name")
        if name not in MODELS:
            raise ConfigError(f"model: {name!r} is not one of {', '.join(MODELS)}")
        unknown = sorted(set(d) - {"name", *MODEL_PARAMS})
        if unknown:
            raise ConfigError(
                f"model.{unknown[0]} is not a model setting ({', '.join(MODEL_PARAMS)})"
            )
        params = {k: d[k] for k in MODEL_PARAMS if k in d}
        if "hidden_layer_sizes" in params:
            sizes = params["hidden_layer_sizes"]
            if isinstance(sizes, int):
                sizes = [sizes]
            if not isinstance(sizes, list | tuple) or not all(
                isinstance(h, int) and not isinstance(h, bool) for h in sizes
            ):
                raise ConfigError(
                    f"model.hidden_layer_sizes must be a list of whole numbers, got {sizes!r}"
                )
            params["hidden_layer_sizes"] = tuple(sizes)
        if params.get("learning_rate") is None:
            params["learning_rate"] = DEFAULT_LEARNING_RATE.get(params.get("loss", "mse"), 0.1)
        for key in ("learning_rate", "momentum", "weight_decay"):
            if key in params:
                params[key] = _number(f"model.{key}", params[key])
        return cls(name, params)


@dataclass(frozen=True)
class TrainSettings:
    fit_threshold: float = 1.0
    stop_at_fit: bool = False
    progress: str | bool = "auto"

    @classmethod
    def from_dict(cls, d: dict) -> TrainSettings:
        threshold = _number("train.fit_threshold", d.get("fit_threshold", 1.0))
        if not 0 < threshold <= 1:
            raise ConfigError(f"train.fit_threshold must be in (0, 1], got {threshold}")
        progress = d.get("progress", "auto")
        if progress not in PROGRESS:
            raise ConfigError(f"train.progress: {progress!r} is not one of auto, true, false")
        return cls(threshold, bool(d.get("stop_at_fit", False)), progress)


@dataclass(frozen=True)
class TrackingSettings:
    tracking_uri: str | None = None
    experiment_name: str = "memlab"
    run_name: str | None = None


# Every setting outside model and data (which check their own), by section: a typo'd key
# added with + (``+train.stop_at_fitt=true``) is refused, not silently ignored.
SETTINGS = {
    "seed": None,
    "data": None,
    "model": None,
    "numerics": {"mode": None, "blas_kernel": None, "blas_threads": None},
    "split": {"train": None, "val": None, "test": None},
    "train": {"fit_threshold": None, "stop_at_fit": None, "progress": None},
    "mlflow": {"tracking_uri": None, "experiment_name": None, "run_name": None},
    "probe": {
        "labels": {"fraction": None, "mode": None},
        "inputs": None,
        "control": None,
        "noise": {"n": None, "kinds": None},
    },
}


def check_keys(cfg: dict, known: dict = SETTINGS, prefix: str = "") -> None:
    """Raise ``ConfigError`` for the first key of ``cfg`` that is not a setting."""
    for key, value in cfg.items():
        if key not in known:
            there = ", ".join(prefix + k for k in known)
            raise ConfigError(f"{prefix}{key} is not a setting (there are: {there})")
        if isinstance(known[key], dict) and isinstance(value, dict):
            check_keys(value, known[key], f"{prefix}{key}.")


@dataclass(frozen=True)
class RunSettings:
    """Everything one run needs, validated."""

    seed: int
    data: dict[str, Any]
    split: dict[str, float]
    model: ModelSettings
    train: TrainSettings
    mlflow: TrackingSettings
    probe: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, cfg: dict) -> RunSettings:
        from pipeline.data.split import check_fractions

        check_keys(cfg)
        seed = cfg.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed must be a whole number >= 0, got {seed!r}")
        split = {k: _number(f"split.{k}", cfg["split"][k]) for k in ("train", "val", "test")}
        check_fractions(**split)
        return cls(
            seed=seed,
            data=dict(cfg["data"]),
            split=split,
            model=ModelSettings.from_dict(cfg["model"]),
            train=TrainSettings.from_dict(cfg.get("train", {})),
            mlflow=TrackingSettings(**cfg.get("mlflow", {})),
            probe=dict(cfg.get("probe", {})),
        )
