"""A typo on the command line gets one line naming the closest valid choice, and exit status 1.

Everything legitimate (flags, sweeps, launchers, ``+key``, ``~key``) still reaches Hydra.
"""

from __future__ import annotations

import pytest
from helpers import run_cli

from pipeline.overrides import check_overrides, closest, groups


def test_groups_are_the_folders_of_conf():
    found = groups()
    assert {"data", "model", "experiment"} <= set(found)
    assert "shuffled_labels" in found["experiment"]
    assert closest("shufled_labels", found["experiment"]) == "shuffled_labels"
    assert closest("qqqq", found["model"]) is None


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["+experiment=shufled_labels"], "+experiment=shuffled_labels"),
        (["model=numpy_mpl"], "model=numpy_mlp"),
        (["data=mnst"], "data=mnist"),
        (["model.learnin_rate=0.1"], "model.learning_rate"),
        (["model=sklearn_mlp", "model.learnin_rate=0.1"], "model.learning_rate"),
        (["sed=3"], "seed"),
        (["probe.labels.fractoin=0.5"], "probe.labels.fraction"),
        (["-m", "model=numpy_mlp,sklearn_mpl"], "model=sklearn_mlp"),
        (["-m", "+experiment=label_noise_sweep", "model.max_epoch=3"], "model.max_epochs"),
        (["experiment=shuffled_labels"], "+experiment=shuffled_labels"),
        (["data.dir=x"], "data=mnist"),
        (["+experiment=[shuffled_labels,noise_inptus]"], "+experiment=noise_inputs"),
        (["model.learnin_rate=0.1", "--cfg", "job"], "model.learning_rate"),
    ],
)
def test_a_typo_names_the_closest_choice(argv, suggestion):
    message = check_overrides(argv)
    assert message is not None and suggestion in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["--hydra-help"],
        ["+experiment=shuffled_labels", "model=sklearn_mlp"],
        ["-m", "+experiment=label_noise_sweep", "hydra/launcher=joblib"],
        ["-m", "probe.labels.fraction=0.0,0.5", "seed=range(0,2)"],
        ["model=glob(*)", "--multirun"],
        ["+experiment=[shuffled_labels,noise_inputs]"],
        ["+model.extra=1", "++model.other=2", "~probe.noise"],
        ["data=mnist", "data.dir=../shared/data/mnist", "data.parts=[test]"],
        ["model.hidden_layer_sizes=[64,32]", "hydra.run.dir=/tmp/x", "hydra.job.chdir=true"],
        ["mlflow.tracking_uri=sqlite:///x.db", "train.progress=false"],
        ["--config-name", "other", "anything=1"],
        ["model.learning_rate="],  # Hydra's own syntax: left to Hydra
    ],
)
def test_legitimate_command_lines_pass(argv):
    assert check_overrides(argv) is None


@pytest.mark.parametrize(
    ("args", "suggestion"),
    [
        (["+experiment=shufled_labels"], "shuffled_labels"),
        (["model=numpy_mpl"], "numpy_mlp"),
        (["model.learnin_rate=0.1"], "model.learning_rate"),
        (["-m", "+experiment=label_noise_sweep", "model.learnin_rate=0.1"], "model.learning_rate"),
    ],
)
def test_the_cli_says_it_in_one_line_and_exits_1(tmp_path, args, suggestion):
    done = run_cli(tmp_path, *args)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and suggestion in lines[0]
    assert not (tmp_path / "mlflow.db").exists()  # caught before anything was recorded


@pytest.mark.slow
def test_the_cli_still_reaches_hydra(workdir):
    assert "memlab" in run_cli(workdir, "--help").stdout
    job = run_cli(workdir, "+experiment=shuffled_labels", "+model.extra=1", "--cfg", "job")
    assert job.returncode == 0, job.stderr
    assert "extra: 1" in job.stdout
    launcher = run_cli(workdir, "hydra/launcher=joblib", "--cfg", "hydra")
    assert launcher.returncode == 0, launcher.stderr
    assert "JoblibLauncher" in launcher.stdout
