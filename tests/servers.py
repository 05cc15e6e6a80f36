"""Real servers for tests: ``make server`` (PostgreSQL + mlflow server), an S3 stand-in, and a
TCP proxy that can take a server away for a while. Each listens on a free loopback port."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ROOT, clean_env, processes_marked

from pipeline.tracking.server import free_port


def need_postgres() -> None:
    """Skip (naming the fix) on a machine without PostgreSQL; .ci/run installs it."""
    if not (shutil.which("initdb") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))):
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)")


@contextlib.contextmanager
def server_folder() -> Iterator[Path]:
    """A folder for ``make server`` that PostgreSQL's own user can reach when tests run as root
    (pytest's temporary folders are private to their owner)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="memlab-server-"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def tracking_server(folder: Path, *args: str, env: dict | None = None) -> Iterator[str]:
    """``python -m pipeline.tracking.server`` as ``make server`` runs it, but from a background
    (SIGINT ignored); on leaving, stopped with SIGTERM and checked to leave nothing running."""
    port = free_port()
    log = folder / "server.out"
    marker = uuid.uuid4().hex  # in the environment of the server and of all it starts
    # Started as from a script's background (`make server &`): SIGINT ignored, inherited.
    command = [
        "sh",
        "-c",
        'trap "" INT; exec "$0" "$@"',
        sys.executable,
        "-m",
        "pipeline.tracking.server",
        "--dir",
        str(folder),
        "--workers=1",
    ]
    with log.open("w") as out:
        server = subprocess.Popen(
            [*command, "--port", str(port), *args],
            cwd=ROOT,
            env={**(env or clean_env("AWS_")), "MEMLAB_TEST_MARKER": marker},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "use it with" not in log.read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"make server did not start: {log.read_text()}")
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        # SIGTERM stops it as Ctrl-C does (the same handler), and unlike SIGINT it is not
        # ignored when pytest itself was started in the background.
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            pytest.fail("make server did not stop within 60 s of SIGTERM")
        deadline = time.monotonic() + 10
        while (left := processes_marked(marker)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, f"make server left processes running: {left}"
        # uvicorn's last words when SIGTERM stops it; a worker killed outright says nothing
        log = (folder / "mlflow.log").read_text()
        assert "Finished server process" in log, f"MLflow's server was not shut down: {log[-500:]}"


@contextlib.contextmanager
def s3_stand_in(bucket: str) -> Iterator[dict[str, str]]:
    """moto's S3 server with ``bucket``; yields the environment a server needs to use it."""
    import boto3

    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=env["MLFLOW_S3_ENDPOINT_URL"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                s3.create_bucket(Bucket=bucket)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield env
    finally:
        moto.terminate()
        moto.wait()


class Proxy:
    """A TCP proxy to ``target`` on a free port; ``down()`` makes it refuse and cut every
    connection (a server that went away), ``up()`` brings it back on the same port."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with contextlib.suppress(OSError):  # wakes the accept() blocked in _accept: close alone
            self.listener.shutdown(socket.SHUT_RDWR)  # would leave it listening
        self.listener.close()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self.connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.connections += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
