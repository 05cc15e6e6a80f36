"""DVC stage ``noise``: show the trained model pure noise. Which digit does it see, how surely?

``probe.noise.n`` images of each kind in ``probe.noise.kinds``, drawn as
``pipeline.study.run.noise_probe`` draws them (same seeds), so the numbers agree with
``python -m pipeline probe.noise.n=...``. Writes, per kind, the digit most often seen, the
mean confidence on noise and on real test digits, and how well confidence tells the two
apart (``repro/metrics/noise.json``); MLflow also gets the fraction of noise seen as each
digit.
"""

from __future__ import annotations

from typing import Any

from pipeline.data.split import Splits, fingerprint
from pipeline.stages.common import METRICS, MODEL, SPLITS, check_seed, run_stage, stage_params
from pipeline.stages.files import load_splits, write_json
from pipeline.stages.record import stage_run
from pipeline.stages.weights import load_model
from pipeline.study.probes import noise_count, noise_images, noise_metrics
from pipeline.study.seeds import derive_seed
from pipeline.tracking import store as tracking
from pipeline.tracking.datasets import log_split

STAGE = "noise"
# What DVC keeps per kind; the per-digit fractions (noise_<kind>_class_<k>) go to MLflow only.
SUMMARY = ("top_class", "mean_max_prob", "frac_max_prob_gt_0.9", "real_mean_max_prob", "auroc")


def probe_noise(model, splits: Splits, noise: dict[str, Any], seed: int) -> dict[str, float]:
    """``noise_metrics`` for each kind of noise, against the real test digits (flat keys)."""
    n = noise_count(noise)
    if n == 0:
        return {}
    proba_real = model.predict_proba(splits.X_test)  # (n_test, n_classes)
    metrics: dict[str, float] = {}
    for kind in noise["kinds"]:
        X_noise = noise_images(
            kind, n, reference=splits.X_train, seed=derive_seed(seed, f"noise-{kind}")
        )
        metrics.update(noise_metrics(kind, model.predict_proba(X_noise), proba_real))
    return metrics


def summarize(metrics: dict[str, float], kinds: list[str]) -> dict[str, dict[str, Any]]:
    """Per kind, the ``SUMMARY`` entries of ``probe_noise``'s metrics (none if n was 0)."""
    if not metrics:
        return {}
    out = {kind: {key: metrics[f"noise_{kind}_{key}"] for key in SUMMARY} for kind in kinds}
    for kind in kinds:
        out[kind]["top_class"] = int(out[kind]["top_class"])
    return out


def main() -> None:
    params = stage_params(STAGE)
    seed = check_seed(params["seed"])
    noise = params["probe"]["noise"]
    splits, _ = load_splits(SPLITS)
    name, model = load_model(MODEL)
    tags = {"model": name, "data_fingerprint": fingerprint(splits)}
    run_name = f"dvc-noise-{name}-seed{model.random_state}"
    with stage_run(STAGE, params, name=run_name, tags=tags) as run:
        log_split(
            run, "splits", str(SPLITS.resolve()), tags["data_fingerprint"], splits, splits.y_train
        )
        metrics = probe_noise(model, splits, noise, seed)
        tracking.log_metrics(run, metrics)
        write_json(METRICS / "noise.json", summarize(metrics, list(noise["kinds"])))


if __name__ == "__main__":
    run_stage(main)
