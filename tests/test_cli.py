"""The real command line, end to end, into a temporary MLflow store (never a mock)."""

from __future__ import annotations

import json

import pytest
import yaml
from helpers import ROOT, clean_env, run_cli, runs_with_epochs, search, store_uri

# No per-example record (five of an arm's eight figures) unless a test asks for it.
FAST = ["model.max_epochs=3", "train.progress=false", "train.record_examples=false"]
SLOW = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    result = run_cli(workdir, *FAST, "seed=7")
    return workdir, result


def test_run_prints_a_summary_and_exits_zero(finished_run):
    workdir, result = finished_run
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout and "mlflow ui" in result.stdout


def test_run_is_recorded_completely(finished_run):
    import mlflow
    from mlflow.tracking import MlflowClient

    workdir, _ = finished_run
    runs = search(workdir)
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["status"] == "FINISHED"
    # train.workers=auto is what MEMLAB_TRAIN_WORKERS says (1, from helpers.clean_env), recorded
    assert run["params.train.workers"] == "1"
    # The whole composed config, as dotted keys that are valid Hydra overrides.
    assert run["params.model.learning_rate"] == "3.0"
    assert run["params.model.hidden_layer_sizes"] == "[16,16]"
    assert run["params.seed"] == "7" and run["params.data.name"] == "digits"
    assert run["tags.data_fingerprint"] and run["tags.model"] == "numpy_mlp"
    for metric in ("test_accuracy", "test_loss", "epochs", "fit_seconds", "n_params"):
        assert (
            f"metrics.{metric}" in runs.columns
            and run[f"metrics.{metric}"] == run[f"metrics.{metric}"]
        )
    assert run["metrics.epochs"] == 3
    assert run["metrics.n_params"] == 64 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10
    client = MlflowClient(store_uri(workdir))
    for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        history = client.get_metric_history(run["run_id"], name)
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == [1, 2, 3]
    config = mlflow.artifacts.load_text(f"runs:/{run['run_id']}/config.yaml")
    assert "hidden_layer_sizes" in config
    cm = json.loads(mlflow.artifacts.load_text(f"runs:/{run['run_id']}/confusion_matrix.json"))
    assert sum(map(sum, cm["rows_true_cols_predicted"])) == 270  # the test split


def test_default_store_is_sqlite_in_wal_mode(finished_run):
    """Readers (mlflow ui, reports, parallel jobs) must not make a run fail with a locked DB."""
    import sqlite3

    workdir, _ = finished_run
    mode = sqlite3.connect(workdir / "mlflow.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


@pytest.mark.slow
def test_same_seed_same_numbers_different_seed_different(finished_run, tmp_path):
    workdir, _ = finished_run
    again = run_cli(workdir, *FAST, "seed=7")
    other = run_cli(workdir, *FAST, "seed=8")
    assert again.returncode == 0 and other.returncode == 0
    runs = search(workdir)
    metrics = [
        c
        for c in runs.columns
        if c.startswith("metrics.") and c != "metrics.fit_seconds" and "system/" not in c
    ]
    first, second, third = (runs.iloc[i] for i in range(3))
    assert all(first[m] == second[m] for m in metrics)
    assert first["tags.data_fingerprint"] == second["tags.data_fingerprint"]
    assert first["metrics.test_loss"] != third["metrics.test_loss"]


# The command line's way with a bad value: one line, exit 1, no store made. Two settings
# errors and the stores it cannot use run the real command (a process start each: slow); what
# the settings edge says of each other bad value is checked in this process, below.
@pytest.mark.parametrize(
    "override, words",
    [
        pytest.param("model.learning_rate=-1", "model.learning_rate", marks=SLOW),
        pytest.param("+modle.foo=1", "modle is not a setting", marks=SLOW),
        pytest.param(
            "mlflow.tracking_uri=bogus://x", "MLflow cannot use the store 'bogus://x'", marks=SLOW
        ),
        pytest.param(
            "mlflow.tracking_uri=http://127.0.0.1:9",
            "cannot reach the MLflow tracking server",
            marks=SLOW,
        ),
    ],
)
def test_bad_input_is_one_line_and_nonzero(tmp_path, override, words):
    result = run_cli(tmp_path, override)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert not (tmp_path / "mlflow.db").exists()  # refused before any run was started


@pytest.mark.parametrize(
    "override, words",
    [
        ("model.activation=softsign", "model.activation"),
        ("model.hidden_layer_sizes=[16,0]", "model.hidden_layer_sizes"),
        ("split.train=0.9", "add up to 1"),
        ("data.name=mnist", "choose the dataset with data=mnist"),
        ("+data.dir=x", "data.dir is not a setting of data=digits"),
        ("probe.noise.n=-1", "probe.noise.n must be a whole number"),
        ("+train.stop_at_fitt=true", "train.stop_at_fitt is not a setting"),
    ],
)
def test_a_bad_setting_is_one_line_from_the_settings_edge(override, words):
    """The config as Hydra composes it for ``python -m pipeline OVERRIDE``, read by the settings
    edge as the command reads it: a ConfigError of one line naming the key."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from pipeline.errors import ConfigError
    from pipeline.overrides import check_overrides
    from pipeline.settings import RunSettings

    assert check_overrides([override]) is None  # not a typo Hydra would be spared
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        config = OmegaConf.to_container(compose("config", overrides=[override]), resolve=True)
    with pytest.raises(ConfigError) as raised:
        RunSettings.from_config(config)
    assert words in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.slow
def test_divergence_fails_the_run_and_exits_nonzero(workdir):
    result = run_cli(workdir, "model.learning_rate=1e6", "train.progress=false")
    assert result.returncode != 0
    assert "diverged" in result.stderr and "smaller model.learning_rate" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    runs = search(workdir)
    assert list(runs["status"]) == ["FAILED"]
    assert "diverged" in runs.iloc[0]["tags.error"]
    assert "metrics.test_accuracy" not in runs.columns or runs["metrics.test_accuracy"].isna().all()


@pytest.mark.slow
def test_ctrl_c_marks_the_run_killed_and_keeps_what_was_logged(workdir):
    import signal
    import subprocess
    import sys
    import time

    from mlflow.tracking import MlflowClient

    args = ["model.max_epochs=100000", "train.progress=false"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args],
        cwd=workdir,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: tests started in the background (`cmd &` in a script) hand their
        # children SIGINT ignored, and a Python started so never sees a Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not runs_with_epochs(workdir / "mlflow.db"):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    (run_id,) = runs_with_epochs(workdir / "mlflow.db")  # the run has logged an epoch
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "KILLED" in stderr
    client = MlflowClient(store_uri(workdir))  # the job is over: no one else opens the store
    run = client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert client.get_metric_history(run_id, "train_loss")  # nothing logged before is lost


def test_learning_rate_default_suits_the_cost():
    from pipeline.settings import ModelSettings

    conf = yaml.safe_load((ROOT / "conf" / "model" / "numpy_mlp.yaml").read_text())

    def model(**changed):
        return ModelSettings.from_config({**conf, **changed})

    video = model(loss="mse", learning_rate=None)
    relu = model(loss="cross_entropy", learning_rate=None)
    chosen = model(loss="mse", learning_rate=0.5)
    assert video.learning_rate == 3.0 and relu.learning_rate == 0.1
    assert chosen.learning_rate == 0.5


@pytest.mark.slow
def test_relu_cross_entropy_network_generalizes_with_default_learning_rate(workdir):
    args = ["model.hidden_layer_sizes=[64]", "model.activation=relu", "model.loss=cross_entropy"]
    result = run_cli(workdir, *args, "train.progress=false", "train.record_examples=false")
    assert result.returncode == 0, result.stderr
    run = search(workdir).iloc[0]
    assert run["params.model.learning_rate"] == "0.1"  # the value used, not "null"
    assert run["metrics.test_accuracy"] >= 0.95


@pytest.mark.slow
def test_a_network_that_learned_nothing_says_so(workdir):
    args = ["model.hidden_layer_sizes=[64]", "model.activation=relu", "model.loss=cross_entropy"]
    args += ["model.learning_rate=3.0", "model.max_epochs=3", "train.progress=false"]
    result = run_cli(workdir, *args, "train.record_examples=false")
    assert result.returncode == 0, result.stderr  # a real result, if a useless one
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2 and "learned nothing" in warnings[0] and "dead" in warnings[1]
    run = search(workdir).iloc[0]
    assert run["tags.warnings"] == " | ".join(w.removeprefix("warning: ") for w in warnings)
    assert run["metrics.final_train_accuracy"] < 0.15
