"""One run, start to finish: load -> split -> probe -> train epoch by epoch -> evaluate -> log.

The glue between the pure core and the tracking edge. A run with ``probe.control`` trains two
arms, the probe and an identical true-data control, as two child runs under one parent that
carries the comparison.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.data.datasets import Dataset, check_data, load_dataset
from pipeline.data.split import Splits, fingerprint, stratified_split
from pipeline.models import build_model
from pipeline.settings import RunSettings
from pipeline.study.diagnose import diagnose
from pipeline.study.evaluate import confusion_matrix, evaluate
from pipeline.study.probes import noise_count
from pipeline.study.seeds import derive_seed
from pipeline.study.train import train_epochs
from pipeline.tracking import store as tracking
from pipeline.tracking.datasets import log_split


@dataclass
class ArmData:
    """What one arm trains on: the (possibly randomized) splits and the labels it is given."""

    splits: Splits
    y_train: np.ndarray  # (n_train,) labels trained on
    corrupted: np.ndarray | None  # (n_train,) bool, None when labels are true


@dataclass
class RunSummary:
    """What the screen summary needs: the run ids and each arm's final metrics."""

    run_id: str
    tracking_uri: str
    arms: dict[str, dict[str, float]] = field(default_factory=dict)
    headline: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # "arm: what looks wrong"


def probe_is_active(probe: dict) -> bool:
    labels = probe.get("labels", {})
    return labels.get("fraction", 0) > 0 or probe.get("inputs", "none") != "none"


def prepare_arm(dataset: Dataset, splits: Splits, probe: dict, seed: int) -> ArmData:
    """Apply the configured label corruption and input randomization to the training split."""
    from pipeline.study.probes import corrupt_labels, randomize_inputs

    labels = probe.get("labels", {})
    fraction = float(labels.get("fraction", 0.0))
    corruption = corrupt_labels(
        splits.y_train,
        fraction,
        labels.get("mode", "shuffle"),
        n_classes=dataset.n_classes,
        seed=derive_seed(seed, "labels"),
    )
    X_train, (X_val, X_test) = randomize_inputs(
        probe.get("inputs", "none"),
        splits.X_train,
        (splits.X_val, splits.X_test),
        seed=derive_seed(seed, "inputs"),
    )
    randomized = Splits(X_train, splits.y_train, X_val, splits.y_val, X_test, splits.y_test)
    corrupted = corruption.corrupted if fraction > 0 else None
    return ArmData(randomized, corruption.labels, corrupted)


def noise_probe(model, arm: ArmData, noise: dict, seed: int) -> dict[str, float]:
    """Feed noise images to the trained model: what it "sees" and how sure it is."""
    from pipeline.study.probes import noise_count, noise_images, noise_metrics

    n = noise_count(noise)
    if n == 0:
        return {}
    proba_real = model.predict_proba(arm.splits.X_test)
    metrics: dict[str, float] = {}
    for kind in noise.get("kinds", ["uniform", "gaussian"]):
        X_noise = noise_images(
            kind, n, reference=arm.splits.X_train, seed=derive_seed(seed, f"noise-{kind}")
        )
        metrics.update(noise_metrics(kind, model.predict_proba(X_noise), proba_real))
    return metrics


def train_arm(
    settings: RunSettings,
    dataset: Dataset,
    arm: ArmData,
    run_id: str,
    progress_label: str,
) -> tuple[dict[str, float], list[str]]:
    """Train and evaluate one model on one arm, logging every epoch to ``run_id``.

    Returns the arm's final metrics and its warnings (``pipeline.study.diagnose``; also the run's
    ``warnings`` tag), empty when training learned something.
    """
    from tqdm.auto import tqdm

    model = build_model(settings.model.name, settings.model.params, random_state=settings.seed)
    max_epochs = int(settings.model.params.get("max_epochs", model.max_epochs))
    show = {"auto": None, True: False, False: True}[settings.train.progress]
    bar = tqdm(total=max_epochs, desc=progress_label, unit="epoch", disable=show, leave=False)

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        log_epoch(epoch, metrics)
        bar.update(1)
        bar.set_postfix(loss=f"{metrics['train_loss']:.4f}", acc=f"{metrics['train_accuracy']:.3f}")

    s = arm.splits
    with tracking.epoch_metrics(run_id) as log_epoch, contextlib.closing(bar):
        result = train_epochs(
            model,
            s.X_train,
            arm.y_train,
            s.X_val,
            s.y_val,
            classes=np.arange(dataset.n_classes),
            max_epochs=max_epochs,
            fit_threshold=settings.train.fit_threshold,
            stop_at_fit=settings.train.stop_at_fit,
            corrupted=arm.corrupted,
            on_epoch=on_epoch,
        )
    final_train = evaluate(model, s.X_train, arm.y_train)
    test = evaluate(model, s.X_test, s.y_test)
    metrics = {
        "final_train_loss": final_train["loss"],
        "final_train_accuracy": final_train["accuracy"],
        "final_val_accuracy": result.history["val_accuracy"][-1],
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "epochs": result.epochs,
        "fit_seconds": result.fit_seconds,
        "n_params": model.n_params,
    }
    if result.epochs_to_fit is not None:
        metrics["epochs_to_fit"] = result.epochs_to_fit
    metrics.update(noise_probe(model, arm, settings.probe.get("noise", {}), settings.seed))
    tracking.log_metrics(run_id, metrics, step=result.epochs)
    cm = confusion_matrix(s.y_test, model.predict(s.X_test), dataset.n_classes)
    tracking.log_dict(run_id, {"rows_true_cols_predicted": cm.tolist()}, "confusion_matrix.json")
    log_figures(run_id, model, dataset, result.history, cm, metrics, title=progress_label)
    from pipeline.tracking.models import log_model

    uri = log_model(model, input_example=s.X_test[:5], run_id=run_id)
    tracking.set_tags(run_id, {"model_uri": uri})
    warnings = diagnose(model, s.X_train, arm.y_train, final_train["accuracy"])
    tracking.record_warnings(run_id, warnings)
    return metrics, warnings


def log_figures(run_id, model, dataset: Dataset, history, cm, metrics, *, title: str) -> None:
    """Learning curves, confusion matrix, first-layer weights as images, noise histogram."""
    from pipeline.report import figures

    tracking.log_figure(
        run_id, figures.learning_curves(history, title=title), "learning_curves.png"
    )
    tracking.log_figure(
        run_id, figures.confusion_matrix_figure(cm, title="held-out test"), "confusion_matrix.png"
    )
    tiles = figures.weight_tiles(
        model.coefs_[0],
        dataset.image_shape,
        title="first hidden layer:\nwhat is each neuron looking for?",
    )
    tracking.log_figure(run_id, tiles, "first_layer_weights.png")
    kinds = sorted({k.split("_")[1] for k in metrics if k.startswith("noise_") and "_class_" in k})
    if kinds:
        fractions = {
            kind: [metrics[f"noise_{kind}_class_{c}"] for c in range(dataset.n_classes)]
            for kind in kinds
        }
        histogram = figures.class_histogram(fractions, title="what the network sees in noise")
        tracking.log_figure(run_id, histogram, "noise_classes.png")


# Overrides that say nothing about what was run, left out of run names.
_NAME_SKIP = (
    "+experiment=",
    "experiment=",
    "hydra",
    "mlflow.",
    "train.progress=",
    "seed=",
    "model=",
    "data.dir=",
    "data.download=",
    "data.mirrors=",
    "data.verify=",
    "data.timeout=",
)


def run_name(settings: RunSettings, experiment: str | None, overrides: list[str]) -> str:
    """``model-experiment-<varied values>-seedN``, e.g. ``numpy_mlp-shuffled_labels-seed0``."""
    parts = [settings.model.name]
    if experiment:
        parts.append(experiment)
    for override in overrides:
        if override.startswith(_NAME_SKIP):
            continue
        key, _, value = override.partition("=")
        short = {"probe.labels.fraction": "p", "model.hidden_layer_sizes": "hidden"}.get(key)
        parts.append(f"{short or key.rsplit('.', 1)[-1]}={value}")
    return "-".join([*parts, f"seed{settings.seed}"])


def probe_tag(probe: dict) -> str:
    """A short description of the probes a run applies, for filtering in the MLflow UI."""
    described = []
    labels = probe.get("labels", {})
    if labels.get("fraction", 0) > 0:
        described.append(f"labels:{labels.get('mode', 'shuffle')}:{labels['fraction']}")
    if probe.get("inputs", "none") != "none":
        described.append(f"inputs:{probe['inputs']}")
    if probe.get("noise", {}).get("n", 0) > 0:
        described.append("noise")
    return ",".join(described) or "none"


def execute(
    settings: RunSettings,
    config: dict[str, Any],
    *,
    experiment: str | None = None,
    overrides: list[str] | None = None,
    parent_run_id: str | None = None,
    extra_tags: dict[str, str] | None = None,
) -> RunSummary:
    """Run everything ``settings`` asks for and record it in MLflow.

    ``config`` is the whole composed configuration, logged as flattened params and as
    ``config.yaml``; ``overrides`` are the command-line overrides (recorded, and used in the run
    name); ``parent_run_id`` nests the run under a sweep's parent. Raises MemlabError
    subclasses for problems a person can fix.
    """
    overrides = list(overrides or [])
    # Every value is checked before the run exists: a bad one never leaves an empty FAILED run.
    build_model(settings.model.name, settings.model.params, random_state=settings.seed)
    check_data(settings.data)
    noise_count(settings.probe.get("noise", {}))
    tracking.configure(settings.mlflow.tracking_uri, settings.mlflow.experiment_name)
    name = settings.mlflow.run_name or run_name(settings, experiment, overrides)
    tags = {
        "model": settings.model.name,
        "experiment": experiment or "none",
        "probe": probe_tag(settings.probe),
        "overrides": " ".join(overrides) or "(none)",
        **tracking.git_tags(),
        **(extra_tags or {}),
    }
    params = tracking.flatten(config)
    control = bool(settings.probe.get("control")) and probe_is_active(settings.probe)

    with tracking.run(name, tags=tags, parent_run_id=parent_run_id) as run_id:
        tracking.log_params(run_id, params)
        tracking.log_text(run_id, _to_yaml(config), "config.yaml")
        dataset = load_dataset(settings.data["name"], **_data_options(settings.data))
        splits = stratified_split(
            dataset.X,
            dataset.y,
            **settings.split,
            seed=derive_seed(settings.seed, "split"),
            fixed_test=dataset.fixed_test,
        )
        fp = fingerprint(splits)
        tracking.set_tags(run_id, {"data_fingerprint": fp, "data": dataset.name})
        tracking.log_params(run_id, {f"n_{part}": str(n) for part, n in splits.sizes().items()})
        probe_arm = prepare_arm(dataset, splits, settings.probe, settings.seed)
        summary = RunSummary(run_id, tracking.tracking_uri())
        if not control:
            arm = probe_arm
            log_split(
                run_id, dataset.name, settings.data, fp, arm.splits, arm.y_train, settings.probe
            )
            summary.arms["run"], warnings = train_arm(settings, dataset, probe_arm, run_id, name)
            summary.warnings += warnings
            return summary
        true_arm = ArmData(splits, splits.y_train, None)
        log_split(run_id, dataset.name, settings.data, fp, splits, splits.y_train)  # the pool's
        for arm_name, arm in (("probe", probe_arm), ("control", true_arm)):
            child_tags = {**tags, "arm": arm_name, "data_fingerprint": fp, "data": dataset.name}
            with tracking.run(f"{name}-{arm_name}", tags=child_tags, parent_run_id=run_id) as child:
                tracking.log_params(child, params)
                probe = settings.probe if arm is probe_arm else {}
                log_split(child, dataset.name, settings.data, fp, arm.splits, arm.y_train, probe)
                summary.arms[arm_name], warnings = train_arm(
                    settings, dataset, arm, child, arm_name
                )
                summary.warnings += [f"{arm_name} arm: {w}" for w in warnings]
        summary.headline = headline(summary.arms)
        tracking.log_metrics(run_id, summary.headline)
        return summary


def headline(arms: dict[str, dict[str, float]]) -> dict[str, float]:
    """The comparison a parent run carries: both arms' accuracies and epochs to fit."""
    out: dict[str, float] = {}
    for arm, metrics in arms.items():
        for key in ("final_train_accuracy", "test_accuracy", "epochs_to_fit", "fit_seconds"):
            if key in metrics:
                out[f"{arm}_{key.removeprefix('final_')}"] = metrics[key]
    if "probe_epochs_to_fit" in out and "control_epochs_to_fit" in out:
        out["epochs_to_fit_ratio"] = out["probe_epochs_to_fit"] / out["control_epochs_to_fit"]
    return out


def _data_options(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "name"}


def _to_yaml(config: dict) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(config))
