"""DVC stage ``memorize``: does the network fit labels it has no way to predict?

Zhang et al. 2017: train on corrupted labels (``probe.labels``; the DVC default shuffles every
training label) or randomized inputs (``probe.inputs``) and, as the control, the identical
model (same settings, seed and initialisation) on the true data: the study core's
``make_arms`` and ``run_arm``, as ``python -m pipeline probe.control=true ...`` runs them.

Writes both arms' final metrics and the epochs-to-fit ratio (``repro/metrics/memorize.json``)
and their per-epoch curves (``repro/plots/memorize/{probe,control}.csv``). MLflow gets a
parent run with one child per arm, recorded as ``python -m pipeline`` records them but for
the figures (stage ``figures``).
"""

from __future__ import annotations

from dataclasses import replace

from pipeline import settings as s
from pipeline.stages import common, stage_run
from pipeline.study.results import Comparison
from pipeline.study.run import make_arms, run_arm

STAGE = "memorize"


def main() -> None:
    from pipeline.tracking import store
    from pipeline.tracking.arms import log_arm

    params = common.stage_params(STAGE)
    # This stage always trains the control arm, and shows no noise.
    probe = replace(s.ProbeSettings.from_config(params["probe"]), control=True)
    settings = s.RunSettings(
        seed=s.seed_from_config(params["seed"]),
        data=None,  # the prepared split stands for data and split
        split=None,
        model=s.ModelSettings.from_config(params["model"]),
        train=s.TrainSettings.from_config(params["train"]),
        probe=probe,
        mlflow=s.TrackingSettings.from_config(params["mlflow"]),
    )
    splits, data = common.load_splits(common.SPLITS)
    params["model"] = {**params["model"], **settings.model.params()}  # the values used
    tags = {"model": settings.model.name, "data_fingerprint": data.fingerprint, "data": data.name}
    name = f"dvc-memorize-{settings.model.name}-seed{settings.seed}"
    results = {}
    with stage_run.stage_run(STAGE, params, name=name, tags=tags) as parent:
        stage_run.log_data(parent, data, splits, splits.y_train)
        for arm in make_arms(splits, probe, n_classes=data.n_classes, seed=settings.seed):
            arm_tags = {**tags, "arm": arm.name}
            child = stage_run.stage_run(
                STAGE, params, name=f"{name}-{arm.name}", tags=arm_tags, parent_run_id=parent
            )
            with child as run:
                probed = params["probe"] if arm.name == "probe" else None
                stage_run.log_data(run, data, arm.splits, arm.y_train, probed)
                with store.epoch_metrics(run) as log_epoch:
                    result = run_arm(arm, settings, n_classes=data.n_classes, on_epoch=log_epoch)
                common.warn(result.warnings, prefix=f"{arm.name} arm: ")
                log_arm(run, result)  # its figures: the stage figures draws them
            history = common.curves(result.training.history)
            common.write_table(common.PLOTS / "memorize" / f"{arm.name}.csv", history)
            results[arm.name] = result
        comparison = Comparison(results["probe"], results["control"])
        store.log_metrics(parent, {**comparison.metrics(), **comparison.timings()})
        summary = {arm: result.metrics() for arm, result in results.items()}
        common.write_json(common.METRICS / "memorize.json", {**summary, **comparison.metrics()})


if __name__ == "__main__":
    common.run_stage(main)
