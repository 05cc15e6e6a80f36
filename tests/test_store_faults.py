"""Store faults end in one line, fast: a read-only, full or corrupt SQLite store, a refused user,
and many processes making a new store at once (``pipeline.tracking.store_faults``).

Root ignores file permissions, so read-only and full disks are real tmpfs mounts (skipped when
mounting is not allowed; CI runs as root).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import prefork
import pytest
from helpers import clean_env, run_cli

from pipeline.tracking import store_faults

# No per-example record: these tests are about the store, and it is five of an arm's eight figures.
TINY = ["model.max_epochs=2", "model.hidden_layer_sizes=[8]", "train.progress=false",
        "train.record_examples=false"]  # fmt: skip
# ``python -m pipeline`` with every ``time.sleep`` written down (seconds, calling file) in the
# file $MEMLAB_TEST_SLEEPS: a fault told at once is one no library waited and tried again over
# (MLflow's database layer sleeps 0.1, 0.3, 0.7, ... s, up to 100 s in all; its HTTP client
# backs off between attempts). Counted, not timed: a busy machine changes no count.
COUNTING_SLEEPS = """
import os, runpy, sys, time
sleep = time.sleep
def told(seconds):
    with open(os.environ["MEMLAB_TEST_SLEEPS"], "a") as out:
        out.write(f"{seconds} {sys._getframe(1).f_code.co_filename}\\n")
    sleep(seconds)
time.sleep = told
sys.argv = ["pipeline", *sys.argv[1:]]
runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
"""


@contextlib.contextmanager
def tmpfs(folder: Path, *options: str) -> Iterator[Path]:
    """A tmpfs mounted on ``folder`` for the block (skips the test if it cannot be mounted)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(options) or "defaults", "tmpfs", str(folder)],
        capture_output=True,
    )
    if os.geteuid() != 0 or mounted.returncode != 0:
        pytest.skip("needs root to mount a tmpfs (CI runs as root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


def _runs(db: Path) -> dict[str, str]:
    """run id -> status in the SQLite store ``db``, read without writing."""
    with contextlib.closing(
        sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    ) as connection:
        return dict(connection.execute("SELECT run_uuid, status FROM runs").fetchall())


def _one_line(done: subprocess.CompletedProcess, *words: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------ the classifier (fast)
def _wrapped(text: str) -> Exception:
    """A sqlite3 error as MLflow raises it: inside SQLAlchemy's, inside an MlflowException."""
    import sqlalchemy
    from mlflow.exceptions import MlflowException

    try:
        try:
            try:
                raise sqlite3.OperationalError(text)
            except sqlite3.Error as orig:
                raise sqlalchemy.exc.OperationalError("INSERT ...", {}, orig) from orig
        except sqlalchemy.exc.OperationalError as err:
            raise MlflowException(f"(sqlite3.OperationalError) {text}") from err
    except MlflowException as err:
        return err


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("database or disk is full", ["/s/mlflow.db", "is full", "free some space"]),
        ("attempt to write a readonly database", ["/s/mlflow.db", "read-only", "point"]),
        ("database disk image is malformed", ["/s/mlflow.db", "corrupt", ".recover"]),
        ("database is locked", ["/s/mlflow.db", "locked"]),
    ],
)
def test_database_errors_become_one_line_naming_the_store(text, words):
    fault = store_faults.explain(_wrapped(text), "sqlite:////s/mlflow.db")
    assert fault is not None and "\n" not in str(fault)
    for word in words:
        assert word in str(fault)


def test_a_locked_store_is_waited_for_but_a_full_one_is_not():
    assert store_faults.lasting(_wrapped("database is locked"), "sqlite:////s/x.db") is None
    assert store_faults.lasting(_wrapped("database or disk is full"), "sqlite:////s/x.db")


def test_epoch_writes_to_a_full_store_fail_at_once_and_keep_their_metrics(tmp_path, monkeypatch):
    """A full disk is no outage: the writer that waits out a server that went away must not
    wait its patience (120 s) for a disk to empty, but fail in one line, the metrics saved."""
    from mlflow.entities import Metric

    from pipeline.errors import TrackingError
    from pipeline.tracking import outage

    monkeypatch.setattr(outage, "_spill_folder", [tmp_path])  # as the entry point names it
    metrics = [Metric("train_loss", 0.5, 0, 1)]

    def full():
        raise _wrapped("database or disk is full")

    def no_waiting(seconds):
        raise AssertionError(f"waited {seconds} s for a full disk to empty")

    with monkeypatch.context() as patched, pytest.raises(TrackingError, match="is full") as raised:
        patched.setattr(outage.time, "sleep", no_waiting)
        outage.write_patiently(full, "run1", metrics)
    saved = tmp_path / "unrecorded_metrics_run1.jsonl"
    assert str(saved) in str(raised.value) and '"train_loss"' in saved.read_text()
    waited = []
    locked = iter([_wrapped("database is locked")])

    def locked_once():  # another writer holds the store a moment: worth a retry
        waited.append(1)
        error = next(locked, None)
        if error:
            raise error

    outage.write_patiently(locked_once, "run1", metrics)
    assert len(waited) == 2


def test_os_errors_name_the_file_and_the_fix():
    full = OSError(errno.ENOSPC, "No space left on device", "/out/checkpoint.npz")
    assert "cannot write /out/checkpoint.npz (no space left" in str(store_faults.explain(full))
    read_only = OSError(errno.EROFS, "Read-only file system", "/out/x")
    assert "read-only file system" in str(store_faults.explain(read_only))
    assert store_faults.explain(FileNotFoundError(errno.ENOENT, "gone", "/x")) is None


def test_a_refused_user_gets_one_line_and_a_bug_keeps_its_traceback(monkeypatch):
    from mlflow.exceptions import RestException

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ada")
    refused = RestException({"error_code": "PERMISSION_DENIED", "message": "Permission denied"})
    fault = str(store_faults.explain(refused, "http://team:5000"))
    assert "http://team:5000" in fault and "'ada'" in fault and "EDIT permission" in fault
    assert store_faults.explain(ValueError("a bug"), "sqlite:////s/x.db") is None


def test_the_refused_request_and_the_credentials_choose_the_advice(monkeypatch):
    """Basic auth answers in plain text; MLflow's message names the endpoint refused."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import PERMISSION_DENIED, UNAUTHENTICATED

    def refused(endpoint: str, code: int) -> str:
        text = f"API request to endpoint {endpoint} failed with error code {code} != 200"
        name = PERMISSION_DENIED if code == 403 else UNAUTHENTICATED
        return str(store_faults.explain(MlflowException(text, error_code=name), "http://t:5000"))

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ada")
    assert "'ada' create an experiment" in refused("/api/2.0/mlflow/experiments/create", 403)
    assert "'ada' read this experiment" in refused("/api/2.0/mlflow/experiments/get-by-name", 403)
    assert "write to this experiment" in refused("/api/2.0/mlflow/runs/create", 403)
    assert "password of the user 'ada' (401)" in refused("/api/2.0/mlflow/runs/create", 401)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    assert "set MLFLOW_TRACKING_USERNAME" in refused("/api/2.0/mlflow/runs/create", 401)


def test_a_run_left_open_is_named_as_not_marked_failed(monkeypatch):
    monkeypatch.setattr(store_faults, "_unended_run", lambda: "abc123")
    fault = str(store_faults.explain(_wrapped("database or disk is full"), "sqlite:////s/x.db"))
    assert "The run abc123 could not be marked FAILED" in fault and "KILLED" in fault


# ------------------------------------------------------------------ precheck on real mounts
def test_precheck_refuses_a_read_only_mount_and_a_full_disk_at_once(tmp_path):
    with tmpfs(tmp_path / "ro", "ro") as folder:
        with pytest.raises(store_faults.TrackingError, match="read-only mount"):
            store_faults.precheck(f"sqlite:///{folder}/new/mlflow.db")
        assert not (folder / "new").exists()
    with tmpfs(tmp_path / "full", "size=16k") as folder:
        (folder / "filler").write_bytes(b"\0" * (16 * 1024 - 4096))
        with pytest.raises(store_faults.TrackingError, match="is full"):
            store_faults.precheck(f"sqlite:///{folder}/mlflow.db")


# ------------------------------------------------------------------ end to end (slow)
@pytest.fixture(scope="module")
def good_store(tmp_path_factory) -> Path:
    """A store holding one finished run (its artifacts beside it, outside any small mount)."""
    folder = tmp_path_factory.mktemp("good")
    done = run_cli(folder, *TINY, f"mlflow.tracking_uri=sqlite:///{folder / 'mlflow.db'}")
    assert done.returncode == 0, done.stderr
    with contextlib.closing(sqlite3.connect(folder / "mlflow.db")) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in mlflow.db
    return folder / "mlflow.db"


def _told(
    workdir: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, list[str]]:
    """``python -m pipeline ARGS``, and the sleeps a library took in it ("seconds file" each;
    none: the fault was told without waiting to try again)."""
    sleeps = workdir / "sleeps.txt"
    sleeps.unlink(missing_ok=True)
    env = {**(clean_env() if env is None else env), "MEMLAB_TEST_SLEEPS": str(sleeps)}
    done = prefork.run(["-c", COUNTING_SLEEPS, *args], workdir, env, clean_env(), timeout=300)
    told = sleeps.read_text().splitlines() if sleeps.exists() else []
    return done, [line for line in told if "site-packages" in line]


def _store_told(workdir: Path, uri: str, *extra: str):
    return _told(workdir, *TINY, f"mlflow.tracking_uri={uri}", *extra)


@pytest.mark.slow
def test_a_new_store_on_a_read_only_mount_is_one_line_without_retries(tmp_path):
    with tmpfs(tmp_path / "ro", "ro") as folder:
        done, retries = _store_told(tmp_path, f"sqlite:///{folder}/store/mlflow.db")
    _one_line(done, f"{folder}/store/mlflow.db", "read-only")
    assert retries == []


@pytest.mark.slow
def test_an_existing_store_made_read_only_is_one_line_and_kept(tmp_path, good_store):
    with tmpfs(tmp_path / "ro") as folder:
        shutil.copy(good_store, folder / "mlflow.db")
        _remount_read_only(folder)
        done, retries = _store_told(tmp_path, f"sqlite:///{folder}/mlflow.db")
        _one_line(done, f"{folder}/mlflow.db", "read-only")
        assert retries == []
        assert list(_runs(folder / "mlflow.db").values()) == ["FINISHED"]
        assert sorted(p.name for p in folder.iterdir()) == ["mlflow.db"]  # nothing left behind


@pytest.mark.slow
def test_a_truncated_store_is_one_line_and_left_as_it_is(tmp_path, good_store):
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    data = good_store.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    done, retries = _store_told(tmp_path, f"sqlite:///{db}")
    _one_line(done, str(db), "corrupt", ".recover")
    assert retries == []
    assert db.read_bytes() == data[: len(data) // 2]


@pytest.mark.slow
def test_a_store_whose_disk_fills_during_the_run_is_one_line_and_keeps_what_it_had(
    tmp_path, good_store
):
    size = good_store.stat().st_size
    room = 4096 * ((size + 4095) // 4096) + 96 * 1024  # the store fits, the run's params do not
    with tmpfs(tmp_path / "full", f"size={room}") as folder:
        shutil.copy(good_store, folder / "mlflow.db")
        done, retries = _store_told(tmp_path, f"sqlite:///{folder}/mlflow.db")
        _one_line(done, f"{folder}/mlflow.db", "is full")
        assert retries == []
        statuses = _runs(folder / "mlflow.db")
        assert "FINISHED" in statuses.values()  # what was recorded before is kept
        assert "RUNNING" not in statuses.values() or "could not be marked FAILED" in done.stderr


@pytest.mark.slow
def test_many_processes_make_a_new_store_at_once(tmp_path, jobs=8):
    """Eight processes (four per core here) open one store that does not exist yet."""
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    code = f"from pipeline.tracking import store; print(store.configure({uri!r}, 'memlab'))"
    env = clean_env()
    started = [prefork.start(["-c", code], tmp_path, env, env) for _ in range(jobs)]
    answers = [p.communicate(timeout=300) for p in started]
    failed = [err for p, (_, err) in zip(started, answers, strict=True) if p.returncode]
    assert not failed, failed[0][-2000:]
    assert len({out.strip() for out, _ in answers}) == 1  # one experiment, the same for all
    assert sorted(p.name for p in (tmp_path / "new").iterdir() if "lock" in p.name) == []


@pytest.mark.slow
def test_an_output_folder_on_a_full_disk_is_one_line_with_nothing_half_written(tmp_path):
    """Full before Hydra saves the config, or full when the first checkpoint is written."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with tmpfs(tmp_path / "out", "size=64k") as folder:
        filler = folder / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as out:
            while True:  # until the disk is full
                out.write(b"\0" * 4096)
                out.flush()
        done, retries = _store_told(tmp_path, uri, f"hydra.run.dir={folder}/none")
        _one_line(done, f"{folder}/none/.hydra/config.yaml", "No space left")
        assert retries == [] and not (folder / "none" / ".hydra" / "config.yaml").exists()
        filler.unlink()
        wide = ["model.hidden_layer_sizes=[256]", "train.checkpoint_every=1"]
        done, retries = _store_told(tmp_path, uri, f"hydra.run.dir={folder}/ckpt", *wide)
        _one_line(done, "cannot write the checkpoint", f"{folder}/ckpt/checkpoint")
        assert retries == []
        assert [p.name for p in folder.rglob("*.tmp")] == []
    with contextlib.closing(
        sqlite3.connect(f"file:{tmp_path / 'mlflow.db'}?mode=ro", uri=True)
    ) as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("FAILED",)]


# ------------------------------------------------------------------ a team server refuses (slow)
# What issue 22 asks of a refused user: the line within 10 s once Python has loaded the libraries
# (Hydra composing the config, the figure workers starting, two or three requests to the server).
@pytest.fixture(scope="module")
def auth_server(tmp_path_factory) -> Iterator[dict]:
    """A real ``mlflow server --app-name basic-auth`` on a free 127.0.0.1 port (SQLite for runs
    and users: lighter than ``make server``'s PostgreSQL, the same auth app), set up by its admin:
    the experiment ``memlab``; "ada" with READ permission on it only (basic_auth.ini's
    default_permission is READ too); "carol", denied every experiment (so she cannot create one
    either: basic auth lets any user create experiments unless denied)."""
    import secrets
    import signal

    from pipeline.tracking.server import free_port

    folder = tmp_path_factory.mktemp("auth-server")
    (folder / "basic_auth.ini").write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{folder / 'basic_auth.db'}\nadmin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    admin = ("admin", secrets.token_urlsafe(16))
    env = clean_env(
        "AWS_",
        MLFLOW_AUTH_CONFIG_PATH=str(folder / "basic_auth.ini"),
        MLFLOW_AUTH_ADMIN_PASSWORD=admin[1],
        MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16),
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    command += ["--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"]
    command += ["--artifacts-destination", str(folder / "artifacts")]
    log = folder / "server.out"
    with log.open("w") as out:
        server = subprocess.Popen(
            command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its uvicorn worker is stopped with it
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _answers(f"{url}/health"):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {log.read_text()[-3000:]}")
            time.sleep(0.5)
        experiment = _api(url, "2.0/mlflow/experiments/create", {"name": "memlab"}, admin)
        users = {"ada": "ada-password-2026", "carol": "carol-password-2026"}
        for user, password in users.items():
            _api(url, "2.0/mlflow/users/create", {"username": user, "password": password}, admin)
        grants = [("ada", experiment["experiment_id"], "READ"), ("carol", "*", "DENY")]
        for user, experiment_id, permission in grants:
            grant = {"username": user, "resource_type": "experiment"}
            grant |= {"resource_id": experiment_id, "permission": permission}
            _api(url, "3.0/mlflow/users/permissions/grant", grant, admin)
        query = "username=ada&resource_type=experiment&resource_id=" + experiment["experiment_id"]
        granted = _api(url, f"3.0/mlflow/users/permissions/get?{query}", None, admin)
        assert granted["permission"] == "READ", granted
        yield {"url": url, "admin": admin, "users": users}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _answers(url: str) -> bool:
    import urllib.request

    with contextlib.suppress(OSError):
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    return False


def _api(url: str, path: str, body: dict | None, auth: tuple[str, str]) -> dict:
    """POST ``body`` (GET when None) to ``url/api/PATH`` as ``auth``; the answer's JSON."""
    import base64
    import json
    import urllib.request

    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request = urllib.request.Request(
        f"{url}/api/{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("user", "password", "extra", "words"),
    [
        ("ada", None, [], ["'ada'", "(403)", "write to this experiment", "EDIT permission"]),
        ("carol", None, ["mlflow.experiment_name=carols"], ["'carol'", "create an experiment"]),
        ("ada", "not-her-password", [], ["'ada'", "(401)", "MLFLOW_TRACKING_PASSWORD"]),
    ],
    ids=["read-only", "cannot-create", "wrong-password"],
)
def test_a_team_server_that_refuses_the_user_is_one_line_and_records_nothing(
    auth_server, tmp_path, user, password, extra, words
):
    """Issue 22: a 403 (a read-only user; one who may not create the experiment) or a 401 (a
    wrong password) from a real basic-auth server ends in one line naming the server and what to
    do, exit 1, at once (it was a 42-line traceback); the server holds no run of it."""
    url, admin = auth_server["url"], auth_server["admin"]
    secret = password or auth_server["users"][user]
    env = clean_env("AWS_", MLFLOW_TRACKING_USERNAME=user, MLFLOW_TRACKING_PASSWORD=secret)
    done, waited = _told(tmp_path, *TINY, f"mlflow.tracking_uri={url}", *extra, env=env)
    line = _one_line(done, f"the MLflow tracking server at {url} ", *words)
    assert "Traceback" not in done.stdout, line
    assert waited == [], f"the client waited to try again: {waited}"  # told at once
    found = _api(url, "2.0/mlflow/experiments/search", {"max_results": 100}, admin)
    assert sorted(e["name"] for e in found["experiments"]) == ["Default", "memlab"]
    ids = [e["experiment_id"] for e in found["experiments"]]
    assert _api(url, "2.0/mlflow/runs/search", {"experiment_ids": ids}, admin).get("runs") is None
