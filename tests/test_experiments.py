"""Every experiment config composes, and every sweep value in it is a valid run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf, open_dict

from pipeline.errors import ConfigError
from pipeline.models import build_model
from pipeline.settings import RunSettings

CONF = Path(__file__).resolve().parents[1] / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def _sweep_overrides(cfg) -> list[list[str]]:
    """Every job of the experiment's sweep as a list of overrides ([[]] when it is no sweep)."""
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    parser = OverridesParser.create()
    jobs: list[list[str]] = [[]]
    for key, value in params.items():
        override = parser.parse_overrides([f"{key}={value}"])[0]
        values = list(override.sweep_string_iterator())
        jobs = [[*job, f"{key}={v}"] for job in jobs for v in values]
    return jobs


def test_the_expected_experiments_exist():
    assert set(EXPERIMENTS) >= {
        "shuffled_labels",
        "noise_inputs",
        "label_noise_sweep",
        "input_randomization",
        "width_sweep",
        "video_network",
    }


# The double-descent sweeps compose 15-16 jobs each (seconds): with the slow tests.
SWEEPS_OF_MANY = [
    pytest.param(name, marks=pytest.mark.slow) if name.startswith("double_descent") else name
    for name in EXPERIMENTS
]


@pytest.mark.parametrize("model", ["numpy_mlp", "sklearn_mlp"])
@pytest.mark.parametrize("name", SWEEPS_OF_MANY)
def test_experiment_composes_into_valid_settings(name, model):
    base = [f"+experiment={name}", f"model={model}"]
    jobs = _sweep_overrides(_compose(base))
    for job in jobs:
        cfg = _compose([*base, *job])
        with open_dict(cfg):
            del cfg["hydra"]
        container = OmegaConf.to_container(cfg, resolve=True)
        # MLPClassifier trains cross-entropy only: the quadratic costs are refused in one line.
        if model == "sklearn_mlp" and container["model"]["loss"] in ("mse", "squared"):
            with pytest.raises(ConfigError, match=r"model\.loss: '(mse|squared)'"):
                RunSettings.from_config(container)
        else:
            settings = RunSettings.from_config(container)
            estimator = build_model(model, settings.model.params(), random_state=settings.seed)
            estimator.set_params(max_epochs=1).fit(np.zeros((4, 64), np.float32), np.arange(4))


def test_sweeps_have_the_promised_values():
    noise = _sweep_overrides(_compose(["+experiment=label_noise_sweep"]))
    assert [j[0] for j in noise] == [
        f"probe.labels.fraction={p}" for p in ("0.0", "0.2", "0.4", "0.6", "0.8", "1.0")
    ]
    inputs = _sweep_overrides(_compose(["+experiment=input_randomization"]))
    assert len(inputs) == 4
    widths = _sweep_overrides(_compose(["+experiment=width_sweep"]))
    assert widths[0] == ["model.hidden_layer_sizes=[16]"] and len(widths) >= 5


def test_flagship_trains_a_control_arm():
    cfg = _compose(["+experiment=shuffled_labels"])
    assert cfg.probe.labels.fraction == 1.0 and cfg.probe.control is True
    assert cfg.model.hidden_layer_sizes == [512]
