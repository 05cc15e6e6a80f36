"""Typed, validated settings, made once from the composed configuration (a plain dict).

The Hydra entry point and the DVC stages turn their config into these dataclasses; nothing
deeper reads the configuration. ``CONSTRAINTS`` is the one table of what every key may be,
but for the model's hyper-parameters: those are the estimators' own table
(``MLPBase._parameter_constraints``, scikit-learn's vocabulary), checked through the chosen
estimator. Each value is checked once, when the settings are made, and an invalid one is a
one-line ``ConfigError`` naming the key: this is the edge where scikit-learn's
``InvalidParameterError`` for ``learning_rate`` becomes one about ``model.learning_rate``.
Defaults live in ``conf/``; a section here expects every key ``conf/`` gives it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from sklearn.utils._param_validation import InvalidParameterError

from pipeline.constraints import Choice, Flag, ListOf, Number, Optional, Text, check_all
from pipeline.data.datasets import DATASETS, check_data
from pipeline.errors import ConfigError
from pipeline.models import MODELS, model_classes
from pipeline.models.base import MLPBase
from pipeline.numerics import NumericsSettings
from pipeline.options import (
    FRACTION,
    INPUT_KINDS,
    LABEL_ISSUE_RANKINGS,
    LABEL_MODES,
    NOISE_KINDS,
    SPLIT_FRACTION,
)

CONSTRAINTS = {
    "seed": Number(low=0, integer=True),
    "data.name": Choice(DATASETS),
    "split.train": SPLIT_FRACTION,
    "split.val": SPLIT_FRACTION,
    "split.test": SPLIT_FRACTION,
    "split.seed": Optional(Number(low=0, integer=True)),  # null: the split follows ``seed``
    "model.name": Choice(MODELS),  # the other model.* keys: MODEL_KEYS
    "train.fit_threshold": Number(low=0, high=1, low_open=True),
    "train.stop_at_fit": Flag(),
    "train.progress": Choice(("auto", True, False)),
    "train.checkpoint_every": Number(low=0, integer=True),
    "train.record_examples": Flag(),
    "train.workers": Optional(Number(low=0, integer=True)),  # null (or auto): this job's cores
    "mlflow.tracking_uri": Text(optional=True),
    "mlflow.experiment_name": Text(),
    "mlflow.run_name": Text(optional=True),
    "probe.labels.fraction": FRACTION,
    "probe.labels.mode": Choice(LABEL_MODES),
    "probe.inputs": Choice(INPUT_KINDS),
    "probe.control": Flag(),
    "probe.noise.n": Number(low=0, integer=True),
    "probe.noise.kinds": ListOf(Choice(NOISE_KINDS)),
    "memorization.n_models": Number(low=2, integer=True),
    "memorization.subset": Number(low=0, high=1, low_open=True, high_open=True),
    "label_issues.folds": Number(low=2, integer=True),
    "label_issues.repeats": Number(low=1, integer=True),
    "label_issues.rank_by": Choice(LABEL_ISSUE_RANKINGS),
    "label_issues.top": Number(low=1, integer=True),
}
# The model's hyper-parameters (but the seed, which is ``seed``): checked by the estimator that
# model.name picks (``ModelSettings.from_config``). model.learning_rate may also be null.
MODEL_KEYS = tuple(f"model.{k}" for k in MLPBase._parameter_constraints if k != "random_state")
# model.learning_rate: null picks the step size that suits the cost: 3.0 is Nielsen's (and the
# videos') rate for sigmoid outputs with the quadratic cost, whose gradients are small; with
# softmax cross-entropy such a step kills a ReLU network at once, and 0.1 is a safe default.
DEFAULT_LEARNING_RATE = {"mse": 3.0, "cross_entropy": 0.1}


def _flat(section: dict, prefix: str) -> dict[str, Any]:
    """``{"labels": {"fraction": 0.2}}``, ``"probe."`` -> ``{"probe.labels.fraction": 0.2}``."""
    flat: dict[str, Any] = {}
    for key, value in section.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def validate(section: dict, prefix: str) -> None:
    """Check every key of one config section (``prefix`` names it, e.g. ``"model."``).

    A key that is not a setting (a typo added with ``+``) is refused, not silently ignored.
    The data section's keys depend on the dataset (``check_data``).
    """
    if prefix == "data.":
        check_data(section)
        section = {"name": section.get("name")}
    flat = _flat(section, prefix)
    for key in flat:
        if key not in CONSTRAINTS and key not in MODEL_KEYS:
            known = ", ".join(k for k in (*CONSTRAINTS, *MODEL_KEYS) if k.startswith(prefix))
            raise ConfigError(f"{key} is not a setting (there are: {known})")
    check_all(CONSTRAINTS, flat)  # the model's keys: ``check_model_parameters``


def check_model_parameters(name: str, params: dict[str, Any]) -> None:
    """Check each hyper-parameter with the estimator ``name`` (``model.name``) picks.

    The estimator's own table decides (``check_parameter``); its ``InvalidParameterError``,
    which names the parameter, becomes a ``ConfigError`` naming the config key.
    """
    estimator = model_classes()[name]
    for key, value in params.items():
        try:
            estimator.check_parameter(key, value)
        except InvalidParameterError as err:
            message = f"model.{key}: {value!r} is not allowed for model={name} ({err})"
            raise ConfigError(message) from None


def _checked(section: dict, prefix: str) -> dict:
    """``section`` after ``validate``: for sections whose keys are their fields, as they are."""
    validate(section, prefix)
    return section


@dataclass(frozen=True)
class ModelSettings:
    """Which model, and its hyper-parameters (``MLPBase``'s, without the seed)."""

    name: str
    hidden_layer_sizes: tuple[int, ...]
    activation: str
    loss: str
    learning_rate: float
    momentum: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    dtype: str

    @classmethod
    def from_config(cls, section: dict) -> ModelSettings:
        section = dict(section)
        if isinstance(section.get("hidden_layer_sizes"), int):
            section["hidden_layer_sizes"] = [section["hidden_layer_sizes"]]
        validate(section, "model.")
        if section.get("learning_rate") is None:
            section["learning_rate"] = DEFAULT_LEARNING_RATE.get(section.get("loss"), 0.1)
        # The model's own checks (MLPClassifier trains no "mse"), reported by config key.
        check_model_parameters(section["name"], {k: v for k, v in section.items() if k != "name"})
        section["hidden_layer_sizes"] = tuple(section["hidden_layer_sizes"])
        for key in ("learning_rate", "momentum", "weight_decay"):
            section[key] = float(section[key])
        return cls(**section)

    def params(self) -> dict[str, Any]:
        """The estimator's constructor parameters (all but ``name`` and the seed)."""
        return {k: v for k, v in asdict(self).items() if k != "name"}


@dataclass(frozen=True)
class DataSettings:
    """Which dataset, and its dataset-specific options (``conf/data/<name>.yaml``)."""

    name: str
    options: dict[str, Any]

    @classmethod
    def from_config(cls, section: dict) -> DataSettings:
        validate(section, "data.")
        return cls(section["name"], {k: v for k, v in section.items() if k != "name"})


@dataclass(frozen=True)
class SplitSettings:
    """Stratified fractions, and the seed of the split: None follows the run's ``seed``.

    A fixed ``seed`` holds the split while the run's seed varies everything else
    (initialisation, batch order, label corruption, noise).
    """

    train: float
    val: float
    test: float
    seed: int | None = None

    @classmethod
    def from_config(cls, section: dict) -> SplitSettings:
        validate(section, "split.")  # each part in (0, 1); together they must make the pool
        fractions = {k: float(section[k]) for k in ("train", "val", "test")}
        total = sum(fractions.values())
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(
                f"split.train + split.val + split.test must add up to 1, got {total:g}"
            )
        return cls(**fractions, seed=section.get("seed"))


@dataclass(frozen=True)
class TrainSettings:
    fit_threshold: float = 1.0
    stop_at_fit: bool = False
    progress: str | bool = "auto"  # DVC stages draw no progress bar and do not read it
    record_examples: bool = True  # keep each example's per-epoch correctness and probability
    checkpoint_every: int = 0  # epochs between checkpoints in the output folder (0: none)
    # Processes that train a study's independent models at once (0 or 1: one after another in
    # the run's process); None: the cores this job may use. The same bits either way.
    workers: int | None = None

    @classmethod
    def from_config(cls, section: dict) -> TrainSettings:
        section = dict(section)
        if section.get("workers") == "auto":
            section["workers"] = None
        return cls(**_checked(section, "train."))


@dataclass(frozen=True)
class LabelSettings:
    fraction: float
    mode: str


@dataclass(frozen=True)
class NoiseSettings:
    n: int
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class ProbeSettings:
    """Label corruption, input randomization, the control arm and the noise probe."""

    labels: LabelSettings
    inputs: str = "none"
    control: bool = False
    noise: NoiseSettings = NoiseSettings(0, ())

    @classmethod
    def from_config(cls, section: dict) -> ProbeSettings:
        validate(section, "probe.")
        labels = LabelSettings(float(section["labels"]["fraction"]), section["labels"]["mode"])
        noise = section.get("noise")
        probe = cls(
            labels,
            section["inputs"],
            noise=NoiseSettings(noise["n"], tuple(noise["kinds"]))
            if noise
            else NoiseSettings(0, ()),
        )
        # A control arm only when there is something to control for: true data against itself
        # would be the same model trained twice.
        return replace(probe, control=bool(section.get("control")) and probe.active)

    @property
    def active(self) -> bool:
        """Whether the training data is changed at all (labels or inputs)."""
        return self.labels.fraction > 0 or self.inputs != "none"

    def describe(self) -> str:
        """A short tag for the MLflow UI, e.g. ``labels:shuffle:0.4,noise``."""
        described = []
        if self.labels.fraction > 0:
            described.append(f"labels:{self.labels.mode}:{self.labels.fraction:g}")
        if self.inputs != "none":
            described.append(f"inputs:{self.inputs}")
        if self.noise.n > 0:
            described.append("noise")
        return ",".join(described) or "none"


@dataclass(frozen=True)
class TrackingSettings:
    tracking_uri: str | None = None
    experiment_name: str = "memlab"
    run_name: str | None = None

    from_config = classmethod(lambda cls, section: cls(**_checked(section, "mlflow.")))


@dataclass(frozen=True)
class MemorizationSettings:
    """``+experiment=memorization_scores``: how many models, each on what share of the pool."""

    n_models: int = 100
    subset: float = 0.7

    @classmethod
    def from_config(cls, section: dict) -> MemorizationSettings:
        validate(section, "memorization.")
        section = {**vars(cls()), **section}  # a key left out keeps its default
        return cls(int(section["n_models"]), float(section["subset"]))


@dataclass(frozen=True)
class LabelIssueSettings:
    """``+experiment=label_issues``: how the pool is cross-fitted, and which ranking is memlab's.

    ``folds``: models per cross-fit (each scores the fold it did not train on); ``repeats``:
    cross-fits averaged, each with its own folds and initialisations; ``rank_by``: the score
    that orders memlab's ranking (``pipeline.study.label_issues.SUSPICION``); ``top``: the
    length of the suspect list compared with cleanlab's and drawn as a gallery.
    """

    folds: int = 5
    repeats: int = 1
    rank_by: str = "aum"
    top: int = 100

    @classmethod
    def from_config(cls, section: dict) -> LabelIssueSettings:
        validate(section, "label_issues.")
        section = {**vars(cls()), **section}  # a key left out keeps its default
        return cls(
            int(section["folds"]), int(section["repeats"]), section["rank_by"], int(section["top"])
        )


def seed_from_config(seed: Any) -> int:
    validate({"seed": seed}, "")
    return seed


@dataclass(frozen=True)
class RunSettings:
    """Everything one run needs, validated."""

    seed: int
    data: DataSettings
    split: SplitSettings
    model: ModelSettings
    train: TrainSettings
    probe: ProbeSettings
    mlflow: TrackingSettings
    numerics: NumericsSettings = NumericsSettings()  # checked by pipeline.numerics itself
    memorization: MemorizationSettings | None = None  # only +experiment=memorization_scores
    label_issues: LabelIssueSettings | None = None  # only +experiment=label_issues

    def randomness(self) -> str:
        """Which random choices the run's ``seed`` varies (the ``randomness`` tag)."""
        varied = "init, batch order" + (", labels" if self.probe.labels.fraction > 0 else "")
        varied += ", inputs" if self.probe.inputs != "none" else ""
        varied += ", noise" if self.probe.noise.n > 0 else ""
        if self.split.seed is None:
            return f"split, {varied}"
        return f"{varied} (split fixed: split.seed={self.split.seed})"

    @classmethod
    def from_config(cls, cfg: dict) -> RunSettings:
        sections = {"seed", "data", "split", "model", "train", "probe", "mlflow", "numerics"}
        unknown = sorted(set(cfg) - sections - {"memorization", "label_issues"})
        if unknown:
            raise ConfigError(f"{unknown[0]} is not a setting")
        memorization = cfg.get("memorization")
        if cfg["train"].get("checkpoint_every") and cfg["model"]["name"] != "numpy_mlp":
            raise ConfigError("train.checkpoint_every: only model=numpy_mlp can (set it to 0)")
        return cls(
            seed=seed_from_config(cfg["seed"]),
            data=DataSettings.from_config(cfg["data"]),
            split=SplitSettings.from_config(cfg["split"]),
            model=ModelSettings.from_config(cfg["model"]),
            train=TrainSettings.from_config(cfg["train"]),
            probe=ProbeSettings.from_config(cfg["probe"]),
            mlflow=TrackingSettings.from_config(cfg["mlflow"]),
            numerics=NumericsSettings.from_dict(cfg.get("numerics")),
            memorization=MemorizationSettings.from_config(memorization) if memorization else None,
            label_issues=LabelIssueSettings.from_config(cfg["label_issues"])
            if cfg.get("label_issues")
            else None,
        )
