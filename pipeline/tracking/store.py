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
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from pipeline import numerics
from pipeline.tracking import outage, painter

_PARAM_BATCH, _METRIC_BATCH = 100, 1000  # MLflow's most params / metrics per log_batch call
# The experiment's type for MLflow's UI: model training (ExperimentKind.CUSTOM_MODEL_DEVELOPMENT),
# not GenAI. The UI shows it, and chooses its view from it when its GenAI / Model-training
# switch is off; 3.17 has the switch on and takes the view from the link (tracking/ui.py).
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"


def configure(tracking_uri: str | None, experiment_name: str) -> str:
    """Point MLflow at ``tracking_uri`` (None keeps MLflow's default) and choose the experiment.

    Returns the experiment id. MLflow's own INFO chatter (creating tables, creating the
    experiment) is silenced so that the screen shows only the run's summary or its error.
    """
    from mlflow.exceptions import MlflowException

    from pipeline.errors import TrackingError

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # An http store prints "View run ... at: URL" lines at every run end; the summary says it.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    uri = mlflow.get_tracking_uri()
    _check_server(uri)
    outage.configure_http(uri)
    try:
        experiment = mlflow.set_experiment(experiment_name)
        experiment_id = experiment.experiment_id
        if experiment.tags.get(EXPERIMENT_KIND) != MODEL_TRAINING:  # see EXPERIMENT_KIND
            MlflowClient().set_experiment_tag(experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
    except MlflowException as err:
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise TrackingError(
            f"MLflow cannot use the store {uri!r} (mlflow.tracking_uri or MLFLOW_TRACKING_URI): "
            f"{first}"
        ) from None
    _sqlite_wal(uri)
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

    ``resume``: the id of an existing run to go on with (a job resumed from its checkpoint),
    instead of starting a new one; it is RUNNING again until it ends.
    ``figures_with``: a run still open (a study's, for its arm) that waits for this run's
    figures (``painter``) when it ends; otherwise this run waits for them itself.
    FINISHED on success; FAILED with the error as the ``error`` tag when an exception escapes;
    KILLED on Ctrl-C or SIGTERM (once ``signals.install()`` ran). The exception is re-raised.
    """
    client = MlflowClient()
    if resume:
        active = mlflow.start_run(run_id=resume, nested=True)
    else:
        active = mlflow.start_run(
            run_name=name,
            tags={**numerics.tags(), **(tags or {})},
            parent_run_id=parent_run_id,
            nested=True,
        )
    run_id = active.info.run_id
    try:
        yield run_id
        if figures_with:
            painter.hand_over(run_id, figures_with)
        else:
            painter.finish(run_id)  # its figures, drawn beside it: a FINISHED run has them all
    except KeyboardInterrupt as err:
        from pipeline.runtime.signals import Terminated

        painter.salvage(run_id)

        why = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted (Ctrl-C)"
        _end(client, run_id, "KILLED", why)
        raise
    except BaseException as err:
        painter.salvage(run_id)
        _end(client, run_id, "FAILED", f"{type(err).__name__}: {err}"[:5000])
        if outage.unreachable(err):  # MLflow's own retries gave up: one line, no traceback
            raise outage.lost(mlflow.get_tracking_uri(), err) from None
        raise
    else:
        mlflow.end_run(status="FINISHED")


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
    """Log params in batches (never one call per value)."""
    items = [Param(k, v[:6000]) for k, v in params.items()]
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
    client = MlflowClient()
    for i in range(0, len(items), _METRIC_BATCH):
        client.log_batch(run_id, metrics=items[i : i + _METRIC_BATCH])


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
            write()
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


def last_step(run_id: str, metric: str) -> int:
    """The highest step of ``metric`` recorded in ``run_id`` (0 if none)."""
    return max((m.step for m in MlflowClient().get_metric_history(run_id, metric)), default=0)


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
