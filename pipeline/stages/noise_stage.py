"""DVC stage ``noise``: show the trained model pure noise. Which digit does it see, how surely?

``probe.noise.n`` images of each kind in ``probe.noise.kinds``, drawn as ``python -m pipeline
probe.noise.n=...`` draws them (the study core's ``noise_probe``, same seeds). Writes, per
kind, the fraction of noise seen as each digit, the digit most often seen, the mean confidence
on noise and on real test digits, and how well confidence tells the two apart
(``repro/metrics/noise.json``); MLflow gets the same metrics.
"""

from __future__ import annotations

from pipeline.settings import NoiseSettings, seed_from_config, validate
from pipeline.stages import common, stage_run
from pipeline.study.run import noise_probe

STAGE = "noise"


def main() -> None:
    from pipeline.tracking import store

    params = common.stage_params(STAGE)
    seed = seed_from_config(params["seed"])
    validate(params["probe"], "probe.")
    noise = NoiseSettings(params["probe"]["noise"]["n"], tuple(params["probe"]["noise"]["kinds"]))
    with stage_run.model_stage(STAGE, params) as (run, model, splits, _):
        metrics = {}
        for result in noise_probe(model, splits, noise, seed):
            metrics.update(result.metrics())
        store.log_metrics(run, metrics)
        common.write_json(common.METRICS / "noise.json", metrics)


if __name__ == "__main__":
    common.run_stage(main)
