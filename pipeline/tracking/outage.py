"""A tracking server that goes away: how memlab's writes to it wait, give up, and say so.

A lab server restarts, a network blips, a cluster node loses its route for a while. Writes of
measured metrics then keep what they hold and try again later, without stopping training
(``Retry``, used by ``store.epoch_metrics``; ``write_patiently`` for one-off metrics). A server
away for longer than ``MEMLAB_TRACKING_PATIENCE`` seconds (default 120) fails the run with one
line, and the metrics it never received are saved as JSON lines in the run's output folder
(``spill``). Each attempt uses MLflow's http client without its own back-off (``quick_http``),
which would otherwise block training for minutes per write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

from mlflow.entities import Metric

from pipeline.errors import TrackingError

PATIENCE = 120.0  # seconds; MEMLAB_TRACKING_PATIENCE overrides
_QUICK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def patience() -> float:
    return float(os.environ.get("MEMLAB_TRACKING_PATIENCE", PATIENCE))


def configure_http(uri: str) -> None:
    """For an http(s) store: MLflow's own retries about as long as ``PATIENCE``, and quiet.

    MLflow retries a failed request 7 times, backing off up to 2 min each: over 4 min for
    every artifact a dead server refuses; 6 retries take about 2 min. urllib3 would print a
    line for every retry.
    """
    if uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "6")
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


@contextlib.contextmanager
def quick_http() -> Iterator[None]:
    """MLflow's http client without retries and with a short timeout, inside this block."""
    saved = {k: os.environ.get(k) for k in _QUICK_HTTP}
    os.environ.update(_QUICK_HTTP)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def fail_fast_from_now() -> None:
    """The server is gone: every later request of this process (MLflow ends an active run
    once more at exit) fails at once instead of retrying for minutes."""
    os.environ.update(_QUICK_HTTP)


def unreachable(err: BaseException) -> bool:
    """Whether ``err`` says that an http tracking server could not be reached."""
    import requests
    from mlflow.exceptions import MlflowException

    if isinstance(err, requests.exceptions.ConnectionError):
        return True
    text = str(err)
    return isinstance(err, MlflowException) and (
        "Max retries exceeded" in text or "Connection refused" in text
    )


def lost(uri: str, err: BaseException) -> TrackingError:
    """The one-line error for a server that stayed away through MLflow's retries."""
    why = "connection refused" if "refused" in str(err) else "no answer"
    return TrackingError(
        f"lost the MLflow tracking server at {uri} ({why}, also after retrying): the run "
        "could not be recorded completely; start the server again or fix the network, and rerun"
    )


class Retry:
    """Tries a write now and again later; gives up once the store has been away too long."""

    def __init__(self, run_id: str) -> None:
        self.run_id, self.patience, self.down_since = run_id, patience(), None

    def attempt(self, write: Callable[[], None], metrics: list[Metric]) -> bool:
        """``write()`` once; True if it went through. Raises ``TrackingError`` (with the
        ``metrics`` saved locally) once the store has failed for longer than the patience."""
        try:
            with quick_http():
                write()
        except Exception as err:
            from pipeline.tracking.store_faults import lasting

            fault = lasting(err)  # a full disk or a read-only store: waiting does not cure it
            if fault is not None:
                path = spill(self.run_id, metrics)
                raise TrackingError(f"{fault} ({len(metrics)} metrics saved in {path})") from None
            self.down_since = self.down_since or time.monotonic()
            if time.monotonic() - self.down_since > self.patience:
                give_up(self.run_id, metrics, self.patience, err)
            return False
        self.down_since = None
        return True


def write_patiently(write: Callable[[], None], run_id: str, metrics: list[Metric]) -> None:
    """``write()`` until it goes through, once a second, for at most the patience."""
    retry = Retry(run_id)
    while not retry.attempt(write, metrics):
        time.sleep(1.0)


# Where metrics that never reached the store are saved: the run's output folder, which the
# entry point names (``spill_into``); else the temporary directory (a notebook, a DVC stage).
_spill_folder: list[Path] = []


def spill_into(folder: str | Path) -> None:
    """Save unrecorded metrics into ``folder`` from now on (``python -m pipeline``'s output)."""
    _spill_folder[:] = [Path(folder)]


def spill(run_id: str, metrics: list[Metric]) -> Path:
    """Save metrics that never reached the store as JSON lines in the run's output folder."""
    import tempfile

    folder = _spill_folder[0] if _spill_folder else Path(tempfile.gettempdir())
    path = folder / f"unrecorded_metrics_{run_id}.jsonl"
    with path.open("a") as out:
        for m in metrics:
            row = {"key": m.key, "value": m.value, "step": m.step, "timestamp": m.timestamp}
            out.write(json.dumps(row) + "\n")
    return path


def give_up(run_id: str, metrics: list[Metric], waited: float, err: Exception) -> NoReturn:
    """Save ``metrics`` locally and fail the run in one line."""
    import mlflow

    path = spill(run_id, metrics)
    count = len(metrics)
    metrics.clear()
    first = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
    raise TrackingError(
        f"lost the MLflow tracking server at {mlflow.get_tracking_uri()} for over {waited:.0f} s "
        f"({first}); {count} measured metrics of run {run_id} are saved in {path}"
    )
