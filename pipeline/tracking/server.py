"""``make server``: a team MLflow tracking server on PostgreSQL, in the foreground.

``python -m pipeline.tracking.server --dir DIR --port 5000 [--artifacts s3://...] [--auth]``
initialises a PostgreSQL cluster in ``DIR/postgres`` on first use (Debian's ``postgresql``; as
root the database runs as the ``postgres`` user), starts it on a free loopback port, then
``mlflow server`` on it with proxied artifacts (``DIR/artifacts``, or an S3 bucket), optionally
behind MLflow's basic-auth app. It prints the URL to give ``mlflow.tracking_uri`` and stops both
on Ctrl-C (or SIGTERM). The database password, the auth secret and the admin password are
generated once and kept in ``DIR`` (readable by its owner only). ``ui_hint`` says, for any
tracking URI, how to look at its runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

DB_USER = "memlab"
DB_NAME = "mlflow"
AUTH_CACHE_SECONDS = 60  # how long a worker trusts a checked password


def ui_hint(uri: str, page: str | None = None) -> str:
    """How to look at the runs in the tracking store ``uri`` (the summary's last line).

    ``page``: the link to open once the UI runs (a run's page), else the UI's front page.
    """
    if uri.startswith(("http://", "https://")):
        return f"open {page or uri.rstrip('/')} in a browser"
    if uri in ("sqlite:///mlflow.db", "sqlite:///./mlflow.db"):
        where = "mlflow ui"  # MLflow's default store in the directory the run started from
    else:
        where = f"mlflow ui --backend-store-uri {uri}"
    return f"{where}  (then open {page or 'http://127.0.0.1:5000'})"


def free_port() -> int:
    """A TCP port that is free on the loopback interface now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _secret(path: Path, size: int = 24) -> str:
    """The secret kept in ``path``, made on first use (mode 600)."""
    if not path.exists():
        path.write_text(secrets.token_urlsafe(size) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def _pg_bin() -> Path:
    """The folder of PostgreSQL's server programs (``initdb``, ``postgres``)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts)
    if versions:
        return versions[-1].parent
    sys.exit("error: PostgreSQL is not installed: apt-get install postgresql (or set PATH)")


def _as_db_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as ``postgres`` then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _init_db(pg_bin: Path, data: Path, password: str) -> None:
    """Initialise a PostgreSQL cluster in ``data`` whose superuser ``memlab`` has ``password``."""
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    pwfile = data.parent / "pwfile"  # initdb wants an empty folder
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    command = [str(pg_bin / "initdb"), "-D", str(data), "-U", DB_USER, f"--pwfile={pwfile}"]
    command += ["--auth=scram-sha-256", "-E", "UTF8", "--no-instructions"]
    done = subprocess.run(_as_db_user(command), capture_output=True, text=True)
    pwfile.unlink()
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        sys.exit(f"error: initdb in {data} failed: {last}")


def _wait(check, what: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
            raise SystemExit(f"error: {what} stopped at start: {(lines or ['?'])[-1]} ({log})")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.3)
    raise SystemExit(f"error: {what} did not start within {timeout:.0f} s (see {log})")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def serve(args: argparse.Namespace) -> None:
    """Start PostgreSQL and the MLflow server, print the URL, wait; stop both at the end."""
    from pipeline.runtime.signals import install

    home = Path(args.dir).resolve()
    home.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # the postgres user must reach DIR/postgres
        home.chmod(home.stat().st_mode | 0o011)
        if subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", home]).returncode:
            sys.exit(
                f"error: as root PostgreSQL runs as the postgres user, who cannot reach {home} "
                "(a parent folder is private): choose a SERVER_DIR under /srv, /var/lib or /tmp"
            )
    password = _secret(home / "db-password")
    data = home / "postgres"
    pg_bin = _pg_bin()
    _init_db(pg_bin, data, password)
    db_port = args.db_port or free_port()
    db_log = home / "postgres.log"
    started: list[subprocess.Popen] = []
    install()  # SIGTERM stops the server like Ctrl-C
    try:
        with db_log.open("ab") as out:
            command = [str(pg_bin / "postgres"), "-D", str(data), "-p", str(db_port)]
            command += ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data}"]
            started.append(
                subprocess.Popen(
                    _as_db_user(command), stdout=out, stderr=out, start_new_session=True
                )
            )
        _wait(lambda: _create_db(db_port, password), "PostgreSQL", started[0], db_log)
        url = f"http://{args.host}:{args.port}"
        mlflow_log = home / "mlflow.log"
        with mlflow_log.open("ab") as out:
            started.append(
                subprocess.Popen(
                    _mlflow_command(args, home),
                    env=_mlflow_env(args, home, db_port, password),
                    stdout=out,
                    stderr=out,
                    start_new_session=True,
                )
            )
        _wait(lambda: _http_ok(f"{url}/health"), "mlflow server", started[1], mlflow_log)
        artifacts = args.artifacts or home / "artifacts"
        print(f"MLflow server on PostgreSQL: {url}  (artifacts: {artifacts}; logs in {home})")
        if args.auth:
            print(f"basic auth: admin {args.admin}, password in {home / 'admin-password'}")
        print(f"use it with: python -m pipeline mlflow.tracking_uri={url}   (Ctrl-C stops it)")
        sys.stdout.flush()
        while started[1].poll() is None and started[0].poll() is None:
            time.sleep(0.5)
        raise SystemExit(f"error: the server stopped by itself (see {mlflow_log}, {db_log})")
    except KeyboardInterrupt:
        print("stopping the MLflow server and PostgreSQL", file=sys.stderr)
    finally:
        _stop(started)


def _create_db(db_port: int, password: str) -> bool:
    """Connect to the new cluster and create the ``mlflow`` database (True once it exists)."""
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=db_port, user=DB_USER, password=password, dbname="postgres",
        autocommit=True, connect_timeout=2,
    ) as conn:  # fmt: skip
        for name in (DB_NAME, f"{DB_NAME}_auth"):
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if not exists.fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
    return True


def _mlflow_command(args: argparse.Namespace, home: Path) -> list[str]:
    command = [sys.executable, "-m", "mlflow", "server", "--host", args.host]
    command += ["--port", str(args.port), "--workers", str(args.workers), "--serve-artifacts"]
    command += ["--artifacts-destination", str(args.artifacts or home / "artifacts")]
    if args.allowed_hosts:
        command += ["--allowed-hosts", args.allowed_hosts]
    if args.auth:
        command += ["--app-name", "basic-auth"]
    return command


def _mlflow_env(args: argparse.Namespace, home: Path, db_port: int, password: str) -> dict:
    db = f"postgresql+psycopg://{DB_USER}:{password}@127.0.0.1:{db_port}"
    env = dict(os.environ)
    env["MLFLOW_BACKEND_STORE_URI"] = f"{db}/{DB_NAME}"  # not on the command line (ps shows it)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no job workers: memory for runs
    if args.auth:
        ini = home / "basic_auth.ini"
        ini.write_text(
            "[mlflow]\ndefault_permission = READ\n"
            f"database_uri = {db}/{DB_NAME}_auth\nadmin_username = {args.admin}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # Without this every request checks the password hash anew (scrypt, tens of ms of
            # CPU by design), and a run makes hundreds of requests. A password changed through
            # one worker reaches the others within AUTH_CACHE_SECONDS.
            f"auth_cache_ttl_seconds = {AUTH_CACHE_SECONDS}\n"
        )
        ini.chmod(0o600)
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(ini)
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = _secret(home / "admin-password", 12)
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = _secret(home / "secret-key")
    return env


def _stop(started: list[subprocess.Popen]) -> None:
    """Stop each process group that ``serve`` started: the MLflow server and its workers, then
    PostgreSQL."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown
    # MLflow's server gets SIGTERM: its workers shut down as on Ctrl-C, without the traceback
    # SIGINT leaves in its log. PostgreSQL gets SIGINT, its fast shutdown.
    ways = [signal.SIGINT, signal.SIGTERM]  # in the order started
    for process, how in reversed(list(zip(started, ways, strict=False))):
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, how)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="make server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="mlserver", help="its database, artifacts and logs")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve a cluster")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--db-port", type=int, default=0, help="PostgreSQL's (0: a free one)")
    parser.add_argument("--artifacts", default=None, help="s3://bucket/prefix (default DIR)")
    parser.add_argument("--auth", action="store_true", help="MLflow's basic-auth app")
    parser.add_argument("--admin", default="admin", help="the auth app's admin user")
    parser.add_argument("--allowed-hosts", default=None, help="Host headers to accept")
    parser.add_argument("--workers", type=int, default=2)
    serve(parser.parse_args(argv))


if __name__ == "__main__":
    main()
