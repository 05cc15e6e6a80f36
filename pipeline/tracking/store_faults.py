"""Faults of the MLflow store, found early and told in one line.

A store that cannot be used should cost a person seconds and one sentence, not minutes of
MLflow's retries and a traceback from SQLAlchemy. Three pieces:

- ``precheck(uri)``: before MLflow opens a SQLite store, check what is cheap to check: its
  folder exists or can be made, is writable (not a read-only mount), has some room left, and
  the file itself can be read and written. MLflow retries a store it cannot open ten times,
  backing off for about 100 s in all, although a local file never comes back by waiting.
- ``initialising(uri)``: many processes opening a new SQLite store at once (a parallel sweep)
  race in MLflow's table creation (``table ... already exists``) and in creating the
  experiment; under this lock (``flock`` on the store's folder: no file is left behind) one
  process at a time creates what is missing, and the others find it made. A new store's
  tables are made in a file beside it that is renamed into place: a process killed meanwhile
  leaves no half-made store.
- ``explain(err)``: turns what a store raises (sqlite3 / SQLAlchemy errors, a 403 from a
  tracking server, ``OSError`` for a full disk or a read-only mount) into a ``TrackingError``
  that names the store or path and says what to do; None for anything else (a bug keeps its
  traceback).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import TrackingError
from pipeline.runtime import faults

# Less room than this in a SQLite store's folder cannot hold a run's params and first metrics;
# SQLite then fails with "disk I/O error" (its shared-memory file) or "database or disk is full".
MIN_FREE_BYTES = 64 * 1024

_WHERE = "mlflow.tracking_uri or MLFLOW_TRACKING_URI"


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` store, or None for any other store (or an in-memory one)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///")
    if not path or path == ":memory:" or path.startswith("file:") or "?" in path:
        return None
    return Path(os.path.abspath(path))


def precheck(uri: str) -> None:
    """Raise ``TrackingError`` at once if the SQLite store ``uri`` cannot be written.

    Does nothing for other stores. Makes the store's folder if it is missing (as MLflow would).
    Reads no more than the file system's metadata: a store that is corrupt inside is found when
    MLflow reads it, and ``explain`` words that.
    """
    path = sqlite_path(uri)
    if path is None:
        return
    folder = path.parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if existing.is_dir() and os.statvfs(existing).f_flag & os.ST_RDONLY:
        raise _read_only(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _os_fault(err, path) from None
    if not folder.is_dir():
        raise TrackingError(
            f"the MLflow store {path} cannot be made because {folder} is not a folder; point "
            f"{_WHERE} at a file in a folder"
        )
    stats = os.statvfs(folder)
    if not os.access(folder, os.W_OK | os.X_OK):  # SQLite writes its -wal and -shm files there
        raise TrackingError(
            f"cannot write in {folder}, the folder of the MLflow store {path} (permission "
            f"denied): SQLite keeps its journal beside the store; make the folder writable for "
            f"this user, or point {_WHERE} at a store in a folder you can write"
        )
    if path.exists():
        if not path.is_file():
            raise TrackingError(
                f"the MLflow store {path} is not a file; point {_WHERE} at an SQLite file "
                "(sqlite:////absolute/path/mlflow.db)"
            )
        if not os.access(path, os.R_OK | os.W_OK):
            raise TrackingError(
                f"cannot read and write the MLflow store {path} (permission denied): make it "
                f"writable for this user, or point {_WHERE} at a store you can write"
            )
    if stats.f_bavail * stats.f_frsize < MIN_FREE_BYTES:
        raise _full(path)


@contextlib.contextmanager
def initialising(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on a SQLite store's folder for the block (a no-op otherwise).

    The lock is ``flock`` on the folder itself, so no lock file is left behind, and it is let
    go when the process dies. Every process that opens the store through
    ``store.configure`` takes it while it makes the tables and the experiment; a process that
    finds them made holds it for a few milliseconds. File systems without ``flock`` (some
    network mounts) go on unlocked, as before.
    """
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    try:
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as err:
        raise _os_fault(err, path) from None
    try:
        with contextlib.suppress(OSError):  # ENOLCK and the like: no lock to be had here
            fcntl.flock(fd, fcntl.LOCK_EX)
        if not path.exists():
            _create_whole(path)
        yield
    finally:
        os.close(fd)  # also lets go of the lock


def _create_whole(path: Path) -> None:
    """Make a new SQLite store at ``path`` whole or not at all: MLflow's tables are made in a
    file beside it, which is then renamed into place.

    MLflow makes a store's tables in many steps (its schema, then dozens of migrations); a
    process killed among them would leave a store that no later run can open. Called under the
    folder's lock, so any such file left is a killed process's, and is removed.
    """
    from mlflow.tracking._tracking_service.utils import _get_sqlalchemy_store

    for stale in path.parent.glob(f".{path.name}.creating-*"):
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.creating-{os.getpid()}")
    try:
        made = _get_sqlalchemy_store(f"sqlite:///{tmp}", None)  # as MLflow would make it
        made.engine.dispose()
        faults.point("store-half-made")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def explain(err: BaseException, uri: str | None = None) -> TrackingError | None:
    """One line for a store fault in ``err`` (or in its causes); None if it is not one.

    ``uri``: the store (default: MLflow's tracking URI, if MLflow is loaded). When a run is
    still open (its end could not be written), the line says so: a later run marks it KILLED.
    """
    if isinstance(err, TrackingError):
        return None  # already one line
    uri = uri or _tracking_uri()
    fault = _classify(err, uri)
    if fault is None:
        return None
    stuck = _unended_run()
    if stuck:
        fault = TrackingError(
            f"{fault} The run {stuck} could not be marked FAILED because the store cannot be "
            "written; it stays RUNNING there until a later run marks it KILLED."
        )
    return fault


def _classify(err: BaseException, uri: str | None) -> TrackingError | None:
    path = sqlite_path(uri) if uri else None
    store = str(path) if path else (uri or "the MLflow store")
    for cause in _chain(err):
        if isinstance(cause, OSError) and cause.errno in _OS_FAULTS:
            return _os_fault(cause, Path(cause.filename) if cause.filename else None)
        denied = _denied(cause, store)
        if denied:
            return denied
        text = _database_error_text(cause)
        if text is None:
            continue
        if "disk is full" in text:
            return _full(store)
        if "readonly database" in text or "read-only" in text:
            return _read_only(store)
        if "malformed" in text or "not a database" in text:
            return TrackingError(
                f"the MLflow store {store} is corrupt ({text}), and was left as it is: "
                "restore it from a backup, or save what is readable with "
                f"`sqlite3 {store} .recover | sqlite3 recovered.db` and point {_WHERE} at the "
                "recovered store."
            )
        if "unable to open database file" in text:
            return TrackingError(
                f"SQLite cannot open the MLflow store {store} (unable to open database file): "
                "check that its folder exists and is writable and that the disk is mounted "
                f"read-write, or point {_WHERE} at another store."
            )
        if "disk I/O error" in text:
            return TrackingError(
                f"a disk I/O error stopped writing to the MLflow store {store}: the disk is "
                "most likely full (or failing); free some space (df -h) and run again."
            )
        if "database is locked" in text:
            return TrackingError(
                f"the MLflow store {store} stayed locked by another process for too long: "
                "wait for the program writing to it to finish, or stop it, and run again."
            )
    return None


def _chain(err: BaseException) -> Iterator[BaseException]:
    """``err``, then what caused it (``raise ... from``, or raised while handling), once each."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _database_error_text(err: BaseException) -> str | None:
    """The message of a sqlite3 or SQLAlchemy database error (MLflow wraps them), else None."""
    import sqlite3

    if isinstance(err, sqlite3.Error):
        return str(err)
    sqlalchemy = sys.modules.get("sqlalchemy")
    if sqlalchemy is not None and isinstance(err, sqlalchemy.exc.DBAPIError):
        return str(err.orig)
    return None


def _denied(err: BaseException, store: str) -> TrackingError | None:
    """A tracking server's 403 (permission denied) or 401 (no or wrong credentials).

    MLflow's basic-auth app answers a refusal with a plain-text body, which MLflow's client
    wraps as "API request to endpoint /api/2.0/mlflow/... failed with error code 403"; the
    endpoint tells a refused experiment creation from a refused write or read.
    """
    exceptions = sys.modules.get("mlflow.exceptions")
    if exceptions is None or not isinstance(err, exceptions.MlflowException):
        return None
    status = err.get_http_status_code()
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    server = f"the MLflow tracking server at {store}"
    if err.error_code == "PERMISSION_DENIED" or status == 403:
        who = f"the user {user!r}" if user else "this user"
        endpoint = _endpoint(str(err))
        if endpoint.endswith("/experiments/create"):
            return TrackingError(
                f"{server} does not let {who} create an experiment (403): ask its admin to "
                "create the experiment (mlflow.experiment_name) and give you EDIT permission on "
                "it, or choose one you can write to with mlflow.experiment_name."
            )
        if endpoint.rsplit("/", 1)[-1] in _READS:
            return TrackingError(
                f"{server} does not let {who} read this experiment (403): ask its admin for "
                "EDIT permission on the experiment, or choose another one with "
                "mlflow.experiment_name."
            )
        return TrackingError(
            f"{server} refused to record the run: {who} has no permission to write to this "
            "experiment (403); ask its admin for EDIT permission on the experiment, or choose "
            "another one with mlflow.experiment_name."
        )
    if err.error_code == "UNAUTHENTICATED" or status == 401:
        if not user:
            return TrackingError(
                f"{server} asks for a user name and password (401): set "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to your account on it."
            )
        return TrackingError(
            f"{server} did not accept the password of the user {user!r} (401): check "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or ask its admin for an "
            "account."
        )
    return None


# The last part of the REST endpoints that only read: refused there, the user cannot even read.
_READS = {"get", "get-by-name", "search", "get-history", "list"}


def _endpoint(message: str) -> str:
    """The REST endpoint named in MLflow's "API request to endpoint ... failed" message."""
    import re

    found = re.search(r"endpoint (/\S+)", message)
    return found.group(1) if found else ""


_OS_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def _os_fault(err: OSError, path: Path | str | None) -> TrackingError:
    where = str(path) if path else "a file of the run"
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        why = "disk quota exceeded" if err.errno == errno.EDQUOT else "no space left on device"
        return TrackingError(
            f"cannot write {where} ({why}): free some space there (df -h) or write elsewhere "
            f"(hydra.run.dir for the run's output folder, {_WHERE} for the store), and run "
            "again."
        )
    if err.errno == errno.EROFS:
        return TrackingError(
            f"cannot write {where}: it is on a read-only file system; write elsewhere "
            f"(hydra.run.dir for the run's output folder, {_WHERE} for the store), or mount it "
            "read-write, and run again."
        )
    if err.errno == errno.EIO:
        return TrackingError(
            f"a disk I/O error stopped writing {where}: check the disk (dmesg, df -h) and run "
            "again."
        )
    if err.errno not in (errno.EACCES, errno.EPERM):
        return TrackingError(
            f"cannot use {where} ({err.strerror or err}): point {_WHERE} at a store you can "
            "write, and run again."
        )
    return TrackingError(
        f"cannot use {where} (permission denied): make it readable and writable for this "
        f"user, or write elsewhere (hydra.run.dir for the run's output folder, {_WHERE} for "
        "the store)."
    )


def _read_only(store: Path | str) -> TrackingError:
    return TrackingError(
        f"the MLflow store {store} is on a read-only mount (or is a read-only file), so no run "
        f"can be recorded in it: point {_WHERE} at a writable place (copy the store there "
        "first, if it has runs), or mount it read-write."
    )


def _full(store: Path | str) -> TrackingError:
    return TrackingError(
        f"the disk holding the MLflow store {store} is full (database or disk is full): free "
        f"some space there (df -h), or point {_WHERE} at a store on a disk with room, and run "
        "again; what the store holds already is kept."
    )


def _tracking_uri() -> str | None:
    mlflow = sys.modules.get("mlflow")
    return mlflow.get_tracking_uri() if mlflow is not None else None


def _unended_run() -> str | None:
    """The id of MLflow's active run, if one is left open (its end could not be written)."""
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return None
    with contextlib.suppress(Exception):
        active = mlflow.active_run()
        return active.info.run_id if active else None
    return None


def lasting(err: BaseException, uri: str | None = None) -> TrackingError | None:
    """``explain(err)`` for a fault that waiting does not cure; None for anything else.

    A store locked by another writer for a while is worth waiting for; a full disk, a read-only
    mount, a corrupt file or a 403 is not (for a writer that retries, as ``outage`` does).
    """
    if any("database is locked" in (_database_error_text(c) or "") for c in _chain(err)):
        return None
    return explain(err, uri)
