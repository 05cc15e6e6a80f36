"""DVC stage ``train``: train the configured model on the training split, one epoch at a time.

The same model, seed, split and epoch loop as ``python -m pipeline`` (the study core's
``fit_arm`` and ``measure_arm``). Writes the model (``repro/model/``: weights as arrays,
hyper-parameters as JSON), the learning curves (``repro/plots/train.csv``, one row per epoch)
and where training ended (``repro/metrics/train.json``). MLflow gets the run as
``python -m pipeline`` records it, timings included, but for the figures (stage ``figures``).
"""

from __future__ import annotations

from pipeline.models.weights import save_weights
from pipeline.settings import ModelSettings, NoiseSettings, TrainSettings, seed_from_config
from pipeline.stages import common, stage_run
from pipeline.study.run import Arm, fit_arm, measure_arm

STAGE = "train"


def main() -> None:
    from pipeline.tracking import store
    from pipeline.tracking.arms import log_arm

    params = common.stage_params(STAGE)
    model = ModelSettings.from_config(params["model"])
    train = TrainSettings.from_config(params["train"])
    seed = seed_from_config(params["seed"])
    splits, data = common.load_splits(common.SPLITS)
    params["model"] = {**params["model"], **model.params()}  # MLflow records the values used
    tags = {"model": model.name, "data_fingerprint": data.fingerprint, "data": data.name}
    name = f"dvc-train-{model.name}-seed{seed}"
    arm = Arm("run", splits, splits.y_train, None)
    with stage_run.stage_run(STAGE, params, name=name, tags=tags) as run:
        stage_run.log_data(run, data, splits, splits.y_train)
        with store.epoch_metrics(run) as log_epoch:
            estimator, training = fit_arm(
                arm, model, train, seed, n_classes=data.n_classes, on_epoch=log_epoch
            )
        result = measure_arm(arm, estimator, training, NoiseSettings(0, ()), seed, data.n_classes)
        common.warn(result.warnings)
        log_arm(run, result)  # its figures: the stage figures draws them
        save_weights(estimator, common.MODEL)
        common.write_table(common.PLOTS / "train.csv", common.curves(training.history))
        common.write_json(common.METRICS / "train.json", result.training_metrics())


if __name__ == "__main__":
    common.run_stage(main)
