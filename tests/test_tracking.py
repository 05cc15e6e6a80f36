"""The MLflow edge, in a temporary real store: what a run records, and that nothing is lost."""

from __future__ import annotations

import math

import pytest
from mlflow.tracking import MlflowClient

from pipeline.tracking import store as tracking


def _steps(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_epoch_metrics_writes_the_first_epoch_at_once_and_the_rest_at_the_end(store):
    with tracking.run("r") as run_id:
        with tracking.epoch_metrics(run_id, every=3600) as log:
            log(1, {"loss": 1.0})
            assert _steps(store, run_id, "loss") == [(1, 1.0)]  # live in the UI from the start
            for epoch in range(2, 6):
                log(epoch, {"loss": 1.0 / epoch})
            assert _steps(store, run_id, "loss") == [(1, 1.0)]  # held: one write, not four
        assert _steps(store, run_id, "loss") == [(e, 1.0 / e) for e in range(1, 6)]


def test_epoch_metrics_writes_as_it_goes_when_every_is_zero(store):
    with tracking.run("r") as run_id:
        with tracking.epoch_metrics(run_id, every=0) as log:
            for epoch in range(1, 4):
                log(epoch, {"acc": epoch / 10})
                assert len(_steps(store, run_id, "acc")) == epoch


def test_what_was_measured_before_an_error_is_kept_and_the_run_failed(store):
    with pytest.raises(RuntimeError, match="boom"):
        with tracking.run("r") as run_id:
            with tracking.epoch_metrics(run_id, every=3600) as log:
                for epoch in range(1, 4):
                    log(epoch, {"loss": float(epoch)})
                raise RuntimeError("boom")
    assert _steps(store, run_id, "loss") == [(1, 1.0), (2, 2.0), (3, 3.0)]
    run = store.get_run(run_id)
    assert run.info.status == "FAILED" and "boom" in run.data.tags["error"]


def test_a_nan_is_refused_and_what_came_before_it_is_kept(store):
    with pytest.raises(ValueError, match="non-finite metrics: loss"):
        with tracking.run("r") as run_id:
            with tracking.epoch_metrics(run_id, every=3600) as log:
                log(1, {"loss": 0.5})
                log(2, {"loss": 0.25})
                log(3, {"loss": math.nan})
    assert _steps(store, run_id, "loss") == [(1, 0.5), (2, 0.25)]
    assert store.get_run(run_id).info.status == "FAILED"


def test_ctrl_c_keeps_every_epoch_and_ends_the_run_killed(store):
    with pytest.raises(KeyboardInterrupt):
        with tracking.run("r") as run_id:
            with tracking.epoch_metrics(run_id, every=3600) as log:
                for epoch in range(1, 4):
                    log(epoch, {"loss": float(epoch)})
                raise KeyboardInterrupt
    assert _steps(store, run_id, "loss") == [(1, 1.0), (2, 2.0), (3, 3.0)]
    assert store.get_run(run_id).info.status == "KILLED"


def test_a_failing_last_write_does_not_hide_why_the_block_ended(store, monkeypatch):
    def broken(run_id, items):
        raise RuntimeError("store unreachable")

    with pytest.raises(KeyboardInterrupt) as raised:
        with tracking.run("r") as run_id:
            with tracking.epoch_metrics(run_id, every=3600) as log:
                log(1, {"loss": 1.0})  # written at once
                log(2, {"loss": 2.0})  # held
                monkeypatch.setattr(tracking, "_write_metrics", broken)
                raise KeyboardInterrupt
    assert "1 buffered metrics were not written: store unreachable" in raised.value.__notes__[0]
    assert store.get_run(run_id).info.status == "KILLED"
    assert _steps(store, run_id, "loss") == [(1, 1.0)]


def test_held_epochs_are_written_once_every_seconds_have_passed(store, monkeypatch):
    import time

    now = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    written = []
    with tracking.run("r") as run_id:
        with tracking.epoch_metrics(run_id, every=1.0) as log:
            for epoch, t in enumerate([0.0, 0.5, 0.9, 1.2, 1.5], 1):
                now[0] = t
                log(epoch, {"loss": float(epoch)})
                written.append(len(_steps(store, run_id, "loss")))
    # the first at once; 2 and 3 held; at t=1.2 a second has passed: 2-4 written; 5 held
    assert written == [1, 1, 1, 4, 4]
    assert len(_steps(store, run_id, "loss")) == 5  # and written when the block ended
