"""The team tracking server (``make server``: PostgreSQL + ``mlflow server``, proxied artifacts)
used the way a lab uses it: sweeps from two launchers, artifacts and a model through the server,
basic auth, an S3 artifact store, and a server that goes away for a few seconds mid-run.

One server (and one PostgreSQL) is shared by the module; the auth + S3 variant starts its own.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest
from helpers import clean_env, run_module, start_cli
from servers import Proxy, need_postgres, s3_stand_in, server_folder, tracking_server

# No per-example record: these tests are about the server, and it is five of an arm's eight figures.
TINY = ["model.max_epochs=3", "model.hidden_layer_sizes=[16]", "train.progress=false",
        "train.record_examples=false"]  # fmt: skip


def cli(workdir: Path, *args: str, env: dict | None = None, timeout: float = 300):
    return run_module("pipeline", workdir, *args, env=env or clean_env("AWS_"), timeout=timeout)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> dict:
    need_postgres()
    with server_folder() as home, tracking_server(home) as url:
        yield {"url": url, "home": home}


@pytest.fixture(scope="module")
def sweeps(server, tmp_path_factory) -> dict:
    """A joblib sweep and a submitit_local sweep of two tiny jobs each, into the server."""
    parents = {}
    for launcher in ("joblib", "submitit_local"):
        workdir = tmp_path_factory.mktemp(launcher)
        done = cli(
            workdir,
            "-m",
            f"hydra/launcher={launcher}",
            *TINY,
            "seed=0,1",
            f"mlflow.tracking_uri={server['url']}",
            f"mlflow.experiment_name=server-{launcher}",
        )
        assert done.returncode == 0, done.stderr
        assert "View run" not in done.stdout
        parents[launcher] = (done, workdir)
    return parents


def runs(url: str, experiment: str):
    mlflow.set_tracking_uri(url)
    return mlflow.search_runs(experiment_names=[experiment], order_by=["start_time ASC"])


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_a_sweep_lands_on_the_server_as_parent_and_children(server, sweeps, launcher):
    done, _ = sweeps[launcher]
    found = runs(server["url"], f"server-{launcher}")
    parent = found[found["tags.memlab.sweep"] == "parent"]
    children = found[found["tags.mlflow.parentRunId"].notna()]
    assert len(parent) == 1 and len(children) == 2
    assert set(children["tags.mlflow.parentRunId"]) == {parent.run_id.iloc[0]}
    assert set(found.status) == {"FINISHED"}
    # each job's summary reaches the terminal, with the right hint for an http store
    assert done.stdout.count("look at it: open http://127.0.0.1:") == 2


@pytest.mark.slow
def test_artifacts_are_stored_through_the_server_and_a_model_reloads_from_a_client(server, sweeps):
    child = runs(server["url"], "server-joblib").query("`tags.mlflow.parentRunId`.notna()")
    run_id = child.run_id.iloc[0]
    assert child.artifact_uri.iloc[0].startswith("mlflow-artifacts:")
    stored = list((server["home"] / "artifacts").rglob("config.yaml"))
    assert any(run_id in str(path) for path in stored)
    # a client with only the URL (no database, no storage credentials) reloads the model
    model = mlflow.pyfunc.load_model(child["tags.model_uri"].iloc[0])
    from sklearn.datasets import load_digits

    x = load_digits().data[:5].astype(np.float32) / 16.0
    predicted = np.asarray(model.predict(x))
    assert predicted.shape == (5,) and set(predicted) <= set(range(10))


@pytest.mark.slow
def test_metrics_survive_a_server_that_goes_away_for_a_few_seconds(server, tmp_path):
    proxy = Proxy(server["url"])
    run = start_cli(
        tmp_path, "model.max_epochs=300", "train.progress=false",
        "train.record_examples=false",  # the epochs are looked at, not the examples
        f"mlflow.tracking_uri={proxy.url}", "mlflow.experiment_name=outage",
        env=clean_env("AWS_"),
    )  # fmt: skip
    client = mlflow.MlflowClient(server["url"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:  # wait for the first epochs
        experiment = client.get_experiment_by_name("outage")
        found = client.search_runs([experiment.experiment_id]) if experiment else []
        if found and client.get_metric_history(found[0].info.run_id, "train_loss"):
            break
        time.sleep(0.2)
    assert run.poll() is None, "the run ended before the outage: make it longer"
    proxy.down()
    time.sleep(5)
    proxy.up()
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    finished = client.get_run(found[0].info.run_id)
    assert finished.info.status == "FINISHED"
    epochs = int(finished.data.metrics["epochs"])
    for key in ("train_loss", "val_accuracy"):
        steps = sorted(m.step for m in client.get_metric_history(finished.info.run_id, key))
        assert steps == list(range(1, epochs + 1)), key


@pytest.mark.slow
def test_basic_auth_refuses_anonymous_and_accepts_a_created_user_with_s3_artifacts(tmp_path):
    need_postgres()
    pytest.importorskip("moto")
    with s3_stand_in("memlab-artifacts") as s3_env:
        server_env = clean_env("AWS_", **s3_env)
        args = ("--auth", "--artifacts", "s3://memlab-artifacts/mlflow")
        with server_folder() as folder, tracking_server(folder, *args, env=server_env) as url:
            search = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(search, timeout=10)
            assert refused.value.code == 401

            admin = ("admin", (folder / "admin-password").read_text().strip())
            user = {"username": "ada", "password": "ada-password-2026"}
            _post(url, "/api/2.0/mlflow/users/create", user, admin)
            env = clean_env(
                "AWS_",
                MLFLOW_TRACKING_USERNAME=user["username"],
                MLFLOW_TRACKING_PASSWORD=user["password"],
            )
            done = cli(tmp_path, *TINY, f"mlflow.tracking_uri={url}", env=env)
            assert done.returncode == 0, done.stderr

            import boto3

            s3 = boto3.client(
                "s3", endpoint_url=s3_env["MLFLOW_S3_ENDPOINT_URL"], region_name="us-east-1",
                aws_access_key_id="testing", aws_secret_access_key="testing",
            )  # fmt: skip
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket="memlab-artifacts")["Contents"]]
            assert any(key.endswith("config.yaml") for key in keys)


@pytest.mark.slow  # imports mlflow.server: 3 s
def test_the_auth_app_checks_a_password_once_a_minute_not_once_a_request(tmp_path, monkeypatch):
    """MLflow reads the auth config ``make server --auth`` writes with its credential cache on:
    without it each of a run's hundreds of requests checks the scrypt hash again (half of a
    tiny run's CPU on the server)."""
    import argparse

    from mlflow.server.auth.config import read_auth_config

    from pipeline.tracking.server import AUTH_CACHE_SECONDS, _mlflow_env

    args = argparse.Namespace(auth=True, admin="admin")
    env = _mlflow_env(args, tmp_path, db_port=5433, password="pw")
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", env["MLFLOW_AUTH_CONFIG_PATH"])
    config = read_auth_config()
    assert config.auth_cache_ttl_seconds == AUTH_CACHE_SECONDS > 0
    assert config.database_uri.endswith(":5433/mlflow_auth") and config.admin_username == "admin"


def _post(url: str, path: str, body: dict, auth: tuple[str, str]) -> None:
    import base64

    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def test_the_summary_hint_fits_the_store():
    from pipeline.tracking.server import ui_hint

    assert ui_hint("http://10.0.0.5:5000/").startswith("open http://10.0.0.5:5000 ")
    assert ui_hint("sqlite:///mlflow.db").startswith("mlflow ui  ")
    assert "--backend-store-uri sqlite:////tmp/x.db" in ui_hint("sqlite:////tmp/x.db")
    assert "--backend-store-uri file:///tmp/mlruns" in ui_hint("file:///tmp/mlruns")


def test_a_store_that_fails_for_a_while_loses_no_epoch(tmp_path, monkeypatch):
    from pipeline.tracking import store as tracking

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    tracking.configure(None, "outage")
    real, calls = tracking._write_metrics, []

    def flaky(run_id, items):  # the store is away for the 2nd and 3rd write
        calls.append(len(items))
        if len(calls) in (2, 3):
            raise ConnectionError("connection refused")
        real(run_id, items)

    monkeypatch.setattr(tracking, "_write_metrics", flaky)
    with tracking.run("r") as run_id:
        with tracking.epoch_metrics(run_id, every=0) as log:
            for epoch in range(1, 6):
                log(epoch, {"loss": float(epoch)})
    history = mlflow.MlflowClient().get_metric_history(run_id, "loss")
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5]
    assert calls == [1, 1, 2, 3, 1]  # the held epochs went with the next write


def test_a_store_that_stays_away_fails_the_run_in_one_line_and_keeps_the_epochs(
    tmp_path, monkeypatch
):
    from pipeline.errors import TrackingError
    from pipeline.tracking import store as tracking

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    tracking.configure(None, "gone")
    monkeypatch.setenv("MEMLAB_TRACKING_PATIENCE", "0")
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path))

    def gone(run_id, items):
        raise ConnectionError("connection refused")

    with pytest.raises(TrackingError, match="lost the MLflow tracking server") as raised:
        with tracking.run("r") as run_id:
            with tracking.epoch_metrics(run_id, every=0) as log:
                log(1, {"loss": 1.0})
                monkeypatch.setattr(tracking, "_write_metrics", gone)
                log(2, {"loss": 2.0})  # no patience: the run fails here
    assert "\n" not in str(raised.value)
    kept = (tmp_path / f"unrecorded_metrics_{run_id}.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in kept] == [2]
    assert mlflow.MlflowClient().get_run(run_id).info.status == "FAILED"
