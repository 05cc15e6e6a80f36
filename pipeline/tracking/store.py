"""The MLflow edge: where runs are stored, what each run records, and how a run ends.

A run records the whole composed config as flattened params (dotted keys that match Hydra
override syntax, logged in batches), the resolved config as an artifact, tags (git commit, data
fingerprint, ...), per-epoch metrics with ``step=epoch`` and figures (drawn aside: ``painter``).
A run that raises is FAILED with the error on it; Ctrl-C or SIGTERM (``signals``) KILLED; what
was logged before is kept. Per-epoch metrics survive a server that goes away for a while.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from pipeline import numerics
from pipeline.runtime import faults, owner
from pipeline.tracking import outage

_PARAM_BATCH, _METRIC_BATCH = 100, 1000  # MLflow's most params / metrics per log_batch call
# The experiment's type for MLflow's UI: model training (ExperimentKind.CUSTOM_MODEL_DEVELOPMENT),
# not GenAI. The UI shows it, and chooses its view from it when its GenAI / Model-training
# switch is off; 3.17 has the switch on and takes the view from the link (tracking/ui.py).
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
# Every run's "System metrics" tab: CPU, memory, disk and network (psutil), as ``system/*``
# metrics, sampled by a daemon thread from start to end of run (it never holds the process up).
# Every second, not MLflow's 10: memlab's runs last seconds. MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING
# =false turns them off; MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL sets another interval.
SYSTEM_METRICS = os.environ.get("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true").lower() not in (
    "false",
    "0",
)
if not os.environ.get("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"):
    mlflow.set_system_metrics_sampling_interval(1)


def configure(tracking_uri: str | None, experiment_name: str) -> str:
    """Point MLflow at ``tracking_uri`` (None keeps MLflow's default) and choose the experiment.

    Returns the experiment id. MLflow's own INFO chatter (creating tables, creating the
    experiment) is silenced so that the screen shows only the run's summary or its error.
    A store that cannot be used (a server that does not answer or refuses the user; a SQLite
    file that is read-only, full or corrupt) raises ``TrackingError`` in seconds
    (``store_faults``). A new SQLite store is made by one process at a time: the tables, the
    experiment and its tag are made under a lock on the store's folder, so that a parallel
    sweep's jobs do not race in MLflow's table creation.
    """
    from mlflow.exceptions import MlflowException

    from pipeline.errors import TrackingError
    from pipeline.tracking import store_faults

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # MLflow logs every database error it raises at ERROR with its traceback (and each of its
    # retries at WARNING); the error itself is raised anyway and told in one line.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    # An http store prints "View run ... at: URL" lines at every run end; the summary says it.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    uri = mlflow.get_tracking_uri()
    _check_server(uri)
    outage.configure_http(uri)
    try:
        store_faults.precheck(uri)  # before MLflow retries a file it cannot open for 100 s
        with store_faults.initialising(uri):
            _sqlite_wal(uri)
            experiment = mlflow.set_experiment(experiment_name)
            experiment_id = experiment.experiment_id
            if experiment.tags.get(EXPERIMENT_KIND) != MODEL_TRAINING:  # see EXPERIMENT_KIND
                MlflowClient().set_experiment_tag(experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
    except TrackingError:
        raise
    except Exception as err:
        fault = store_faults.explain(err, uri)
        if fault is not None:
            raise fault from None
        if not isinstance(err, MlflowException):
            raise
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise TrackingError(
            f"MLflow cannot use the store {uri!r} (mlflow.tracking_uri or MLFLOW_TRACKING_URI): "
            f"{first}"
        ) from None
    return experiment_id


def _check_server(uri: str, timeout: float = 5.0) -> None:
    """Fail at once, in one line, when an http(s) tracking server does not answer.

    MLflow itself retries a dead server for minutes (backing off between attempts) before it
    gives up with a traceback; a mistyped host should cost seconds.
    """
    import socket
    from urllib.parse import urlsplit

    from pipeline.errors import TrackingError

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as err:
        raise TrackingError(
            f"cannot reach the MLflow tracking server at {uri} ({err.strerror or err}): start it "
            "(`mlflow server`) or fix mlflow.tracking_uri / MLFLOW_TRACKING_URI"
        ) from None


def _sqlite_wal(uri: str) -> None:
    """Put a SQLite store in write-ahead-log mode (a persistent property of the file).

    In SQLite's default mode a reader (``mlflow ui``, a report, a parallel sweep job) blocks
    writers, and a run can fail with "database is locked"; in WAL mode readers never block the
    one writer, and concurrent writers wait their turn.
    """
    import sqlite3

    if not uri.startswith("sqlite:///"):
        return
    path = uri.removeprefix("sqlite:///")
    if not path or path == ":memory:":
        return
    connection = sqlite3.connect(path, timeout=30)
    try:
        if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


@contextlib.contextmanager
def run(
    name: str | None = None,
    *,
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
    resume: str | None = None,
    figures_with: str | None = None,
) -> Iterator[str]:
    """Start a run (a child of ``parent_run_id`` if given), yield its id, and end it honestly.

    ``resume``: the id of an existing run to go on with (a job run again after it was stopped),
    instead of starting a new one; it is RUNNING again until it ends, and what it holds
    already is not written twice (:func:`adopt`).
    ``figures_with``: a run still open (a study's, for its arm) that waits for this run's
    figures (``painter``) when it ends; otherwise this run waits for them itself.
    FINISHED on success; FAILED with the error as the ``error`` tag when an exception escapes;
    KILLED on Ctrl-C or SIGTERM (once ``signals.install()`` ran). The exception is re-raised.
    Every run carries its owner (``pipeline.runtime.owner``): a run whose process was killed
    outright is marked KILLED by the next run that finds it (:func:`close_dead_runs`).
    """
    client = MlflowClient()
    if resume:
        active = mlflow.start_run(run_id=resume, nested=True, log_system_metrics=SYSTEM_METRICS)
        adopt(resume)
    else:
        active = mlflow.start_run(
            run_name=name,
            tags={**numerics.tags(), **owner.tags(), **(tags or {})},
            parent_run_id=parent_run_id,
            nested=True,
            log_system_metrics=SYSTEM_METRICS,
        )
    run_id = active.info.run_id
    faults.point("run-created")
    try:
        yield run_id
        if (painter := _painter()) and figures_with:
            painter.hand_over(run_id, figures_with)
        elif painter:
            painter.finish(run_id)  # its figures, drawn beside it: a FINISHED run has them all
    except KeyboardInterrupt as err:
        from pipeline.runtime.signals import Terminated

        if painter := _painter():
            painter.salvage(run_id)

        why = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted (Ctrl-C)"
        _end(client, run_id, "KILLED", why)
        raise
    except BaseException as err:
        if painter := _painter():
            painter.salvage(run_id)
        _end(client, run_id, "FAILED", f"{type(err).__name__}: {err}"[:5000])
        if outage.unreachable(err):  # MLflow's own retries gave up: one line, no traceback
            raise outage.lost(mlflow.get_tracking_uri(), err) from None
        raise
    else:
        faults.point("run-ending")
        mlflow.end_run(status="FINISHED")
        _adopted.pop(run_id, None)


def _painter():
    """``painter`` if this process has drawn with it, else None: no figures to wait for.

    Not imported here: a process that draws no figure (a DVC stage that trains) then loads no
    figure code, and its DVC stage does not depend on it; whoever paints imported it.
    """
    return sys.modules.get("pipeline.tracking.painter")


# Runs taken over from a stopped process (``run(resume=...)``): each metric's steps already
# stored, so that a resumed run writes what is missing and nothing twice.
_adopted: dict[str, dict[str, set[int]]] = {}


def adopt(run_id: str) -> None:
    """Go on recording ``run_id`` in this process: it becomes this process's, and from now on
    each metric step, param and model it holds already is skipped, not written again.

    Refused in one line while the process that owned the run still runs (two jobs in one
    folder).
    """
    from pipeline.errors import TrackingError

    client = MlflowClient()
    stored = client.get_run(run_id)
    if stored.info.status == "RUNNING" and owner.alive(stored.data.tags) and not _mine(stored):
        raise TrackingError(
            f"run {run_id} is still being recorded by process {stored.data.tags[owner.PID]} "
            f"on {stored.data.tags[owner.HOST]}: wait for it to end, or give this job another "
            "folder (hydra.run.dir=...)"
        )
    if "error" in stored.data.tags:  # it goes on: why it stopped no longer describes it
        client.delete_tag(run_id, "error")
    _adopted[run_id] = {
        key: {m.step for m in client.get_metric_history(run_id, key)} for key in stored.data.metrics
    }
    set_tags(run_id, owner.tags())


def _mine(stored) -> bool:
    return stored.data.tags.get(owner.PID) == str(os.getpid())


def adopted(run_id: str) -> bool:
    """Whether ``run_id`` was taken over from a stopped process (and may hold records)."""
    return run_id in _adopted


def find_run(run_dir: str) -> str | None:
    """The newest run recorded for the run folder ``run_dir`` (tag ``memlab.run_dir``)."""
    found = _search(f"tags.`{RUN_DIR}` = '{_quoted(run_dir)}'", 100)
    studies = [run for run in found if "arm" not in run.data.tags]  # an arm is never one
    return studies[0].info.run_id if studies else None


def find_child(parent_run_id: str, arm: str) -> str | None:
    """The newest child of ``parent_run_id`` that records ``arm`` (tag ``arm``)."""
    found = _search(
        f"tags.`mlflow.parentRunId` = '{parent_run_id}' and tags.arm = '{_quoted(arm)}'"
    )
    return found[0].info.run_id if found else None


def close_dead_runs() -> list[str]:
    """Mark KILLED every RUNNING run of this experiment whose owner process, on this host, is
    gone (killed outright: it could not end its run); their ids."""
    host = owner.tags()[owner.HOST]
    closed = []
    for stale in _search(
        f"attributes.status = 'RUNNING' and tags.`{owner.HOST}` = '{_quoted(host)}'", 1000
    ):
        if owner.alive(stale.data.tags) is False:
            run_id = stale.info.run_id
            pid = stale.data.tags.get(owner.PID)
            set_tags(run_id, {"error": f"its process ({pid} on {host}) ended without ending it"})
            MlflowClient().set_terminated(run_id, "KILLED")
            closed.append(run_id)
    return closed


RUN_DIR = "memlab.run_dir"  # the tag that names a run's output folder (where it checkpoints)


def _search(filter_string: str, max_results: int = 1) -> list:
    from mlflow.tracking.fluent import _get_experiment_id

    return MlflowClient().search_runs(
        [_get_experiment_id()],
        filter_string=filter_string,
        order_by=["attributes.start_time DESC"],
        max_results=max_results,
    )


def _quoted(text: str) -> str:
    """``text`` inside a single-quoted MLflow filter value."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _end(client: MlflowClient, run_id: str, status: str, error: str) -> None:
    """Record ``error`` on the run and end it with ``status``, even if the tag cannot be written.

    Called while an exception is on its way out: a store that cannot be written (a server that
    is gone) is given one quick try, and never replaces that exception with its own.
    """
    with outage.quick_http():
        with contextlib.suppress(Exception):
            client.set_tag(run_id, "error", error)
        try:
            mlflow.end_run(status=status)
            return
        except Exception:  # the store is gone: the run stays RUNNING there
            pass
    outage.fail_fast_from_now()


def log_params(run_id: str, params: Mapping[str, str]) -> None:
    """Log params in batches (never one call per value); those an adopted run holds, not.

    An adopted run made with other values is refused in one line: the job is not the one
    that was stopped.
    """
    held = MlflowClient().get_run(run_id).data.params if run_id in _adopted else {}
    other = [k for k, v in params.items() if k in held and held[k] != v[:6000]]
    if other:
        from pipeline.errors import TrackingError

        key = other[0]
        raise TrackingError(
            f"this job's folder belongs to run {run_id}, made with other settings ({key}="
            f"{held[key]}, not {params[key]}; {len(other)} differ): run it in another folder "
            "(hydra.run.dir=...)"
        )
    items = [Param(k, v[:6000]) for k, v in params.items() if k not in held]
    client = MlflowClient()
    for i in range(0, len(items), _PARAM_BATCH):
        client.log_batch(run_id, params=items[i : i + _PARAM_BATCH], synchronous=True)


def set_tags(run_id: str, tags: Mapping[str, str]) -> None:
    MlflowClient().log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_metrics(run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
    """Log finite metrics in one call; a NaN or inf is refused, never recorded as a result.

    A store that is away is waited for as in ``epoch_metrics`` (and the metrics saved locally
    if it does not come back).
    """
    items = _finite_metrics(metrics, step)
    outage.write_patiently(lambda: _write_metrics(run_id, items), run_id, items)


def _finite_metrics(metrics: Mapping[str, float], step: int) -> list[Metric]:
    import math

    bad = [k for k, v in metrics.items() if not math.isfinite(v)]
    if bad:
        raise ValueError(f"refusing to record non-finite metrics: {', '.join(bad)}")
    stamp = int(time.time() * 1000)
    return [Metric(k, float(v), stamp, step) for k, v in metrics.items()]


def _write_metrics(run_id: str, items: list[Metric]) -> None:
    """Write ``items``; in an adopted run, only the steps it does not hold yet."""
    stored = _adopted.get(run_id)
    if stored is not None:
        items = [m for m in items if m.step not in stored.setdefault(m.key, set())]
    client = MlflowClient()
    for i in range(0, len(items), _METRIC_BATCH):
        client.log_batch(run_id, metrics=items[i : i + _METRIC_BATCH])
        if stored is not None:
            for m in items[i : i + _METRIC_BATCH]:
                stored[m.key].add(m.step)


@contextlib.contextmanager
def epoch_metrics(run_id: str, every: float = 1.0) -> Iterator[Callable[[int, dict], None]]:
    """A per-epoch ``log(epoch, metrics)`` that writes at most every ``every`` seconds.

    One write to the store costs about 10 ms whatever it holds (SQLite, mostly SQLAlchemy),
    which is a tenth of a fast epoch; so epochs are collected and written together: the first
    at once, then whatever has come each time ``every`` seconds have passed, and the rest when
    the block ends, also when it ends with an error, so nothing measured is lost. Each value
    keeps its epoch (``step``) and the time it was measured. A NaN or inf is refused at once.

    A write that fails (a tracking server restarting, a network hiccup) keeps its epochs and is
    tried again later while training goes on; the block's end waits for the store. A store gone
    for longer than ``MEMLAB_TRACKING_PATIENCE`` seconds (default 120) fails the run with one
    line, and the unwritten epochs are saved as JSON lines in the run's output folder.
    """
    pending: list[Metric] = []
    last = -float("inf")
    retry = outage.Retry(run_id)

    def write() -> bool:
        """Try to write what is pending; True if the store took it (or nothing was pending)."""
        if pending and retry.attempt(lambda: _write_metrics(run_id, pending), pending):
            pending.clear()
        return not pending

    def log(epoch: int, metrics: dict) -> None:
        nonlocal last
        pending.extend(_finite_metrics(metrics, epoch))
        if time.monotonic() - last >= every:
            if write():
                faults.point("epochs-flushed")
            last = time.monotonic()

    try:
        yield log
    except BaseException as err:
        # Keep what was measured, but never let a failing write hide why the block ended
        # (a Ctrl-C must still end the run KILLED, a divergence still as its one-line message).
        if pending:
            try:
                with outage.quick_http():
                    _write_metrics(run_id, pending)
            except Exception as write_error:  # reported on the original error instead
                path = outage.spill(run_id, pending)
                err.add_note(
                    f"{len(pending)} buffered metrics were not written: {write_error}; "
                    f"they are saved in {path}"
                )
        raise
    else:
        while not write():  # Retry raises once the store has been away too long
            time.sleep(min(every, 1.0))
        faults.point("epochs-flushed")


def record_warnings(run_id: str, warnings: list[str]) -> None:
    """Tag the run with what looks wrong in it (``warnings``, joined by `` | ``), if anything."""
    if warnings:
        set_tags(run_id, {"warnings": " | ".join(warnings)})


def log_text(run_id: str, text: str, artifact_file: str) -> None:
    MlflowClient().log_text(run_id, text, artifact_file)


def log_dict(run_id: str, data: Mapping[str, Any], artifact_file: str) -> None:
    MlflowClient().log_dict(run_id, dict(data), artifact_file)


def tracking_uri() -> str:
    return mlflow.get_tracking_uri()


def log_figure(run_id: str, figure, artifact_file: str) -> None:
    """Save a matplotlib figure as a PNG artifact of ``run_id``."""
    MlflowClient().log_figure(run_id, figure, artifact_file)
