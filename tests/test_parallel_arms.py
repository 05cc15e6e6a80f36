"""The flagship's two arms at once (``train.workers`` >= 2): the control trains in a worker
process while the probe trains in the run's, and everything the study tells, measures and
returns is what one arm after another gives, bit for bit."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pipeline.runtime import workers
from pipeline.settings import RunSettings
from pipeline.study.run import StudyObserver, run_study

CONF = Path(__file__).resolve().parents[1] / "conf"


def flagship(*overrides: str) -> RunSettings:
    """``+experiment=shuffled_labels``, small: 12 epochs of a 32-unit network on digits."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "config",
            ["+experiment=shuffled_labels", "model.hidden_layer_sizes=[32]",
             "model.max_epochs=12", "train.stop_at_fit=false", *overrides],
        )  # fmt: skip
    return RunSettings.from_config(OmegaConf.to_container(cfg, resolve=True))


class Told(StudyObserver):
    """Everything the study tells its observer, in order."""

    def __init__(self):
        self.events: list[tuple] = []

    @contextlib.contextmanager
    def arm(self, arm, max_epochs):
        self.events.append(("arm", arm.name))
        yield lambda epoch, metrics: self.events.append(("epoch", arm.name, epoch, metrics))

    def arm_finished(self, result):
        self.events.append(("finished", result.name, result.test.accuracy))


def same_arm(ours, theirs) -> None:
    assert ours.training.history == theirs.training.history
    assert (ours.training.epochs, ours.training.epochs_to_fit) == (
        theirs.training.epochs,
        theirs.training.epochs_to_fit,
    )
    weights = zip(ours.model.coefs_ + ours.model.intercepts_,
                  theirs.model.coefs_ + theirs.model.intercepts_, strict=True)  # fmt: skip
    for mine, other in weights:
        assert mine.dtype == other.dtype and np.array_equal(mine, other)
    assert (ours.final_train, ours.test) == (theirs.final_train, theirs.test)
    assert np.array_equal(ours.confusion, theirs.confusion)
    assert np.array_equal(ours.examples.correct, theirs.examples.correct)
    assert np.array_equal(ours.examples.label_proba, theirs.examples.label_proba)
    assert [n.__dict__ for n in ours.noise] == [n.__dict__ for n in theirs.noise]


def test_the_control_trained_in_a_worker_gives_the_very_same_study():
    settings = flagship()
    serial_told, parallel_told = Told(), Told()
    serial = run_study(settings, serial_told)
    parallel = run_study(settings, parallel_told, workers.elsewhere(2, settings.numerics))
    for name in ("probe", "control"):
        same_arm(parallel.arms[name], serial.arms[name])
    assert parallel.comparison.metrics() == serial.comparison.metrics()
    assert parallel_told.events == serial_told.events  # every epoch told, in the same order


def test_one_worker_trains_the_arms_one_after_another_here():
    assert workers.elsewhere(1) is None and workers.elsewhere(0) is None


def die(_) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_dead_worker_fails_in_one_line():
    with workers.Elsewhere(die, None) as started, pytest.raises(workers.WorkerDied) as died:
        started.result()
    assert "\n" not in str(died.value) and "SIGKILL" in str(died.value)


class Failing(StudyObserver):
    """The probe's training fails at its third epoch (as a Ctrl-C would stop it)."""

    @contextlib.contextmanager
    def arm(self, arm, max_epochs):
        def on_epoch(epoch, metrics):
            if epoch == 3:
                raise KeyboardInterrupt

        yield on_epoch


def test_a_study_stopped_while_the_control_trains_elsewhere_stops_its_worker():
    settings = flagship("model.max_epochs=400")  # the control would train for a while
    before = set(_grandchildren())  # the figure workers of earlier tests, say
    with pytest.raises(KeyboardInterrupt):
        run_study(settings, Failing(), workers.elsewhere(2, settings.numerics))
    assert set(_grandchildren()) - before == set()


def _grandchildren() -> list[int]:
    """Live processes started by this one's children: the workers its fork server forked."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] not in "ZX":  # not gone already
                    found.append((int(proc.name), int(fields[1])))
    children = {pid for pid, parent in found if parent == os.getpid()}
    return [pid for pid, parent in found if parent in children]


@pytest.mark.slow
def test_the_record_of_two_arms_at_once_is_that_of_one_after_another(tmp_path):
    """``python -m pipeline +experiment=shuffled_labels`` with ``train.workers=1`` and ``=2``:
    the same runs, params, epochs, metrics, models and figures, except the count itself."""
    from helpers import run_cli, store_uri
    from records import differences, snapshot

    job = ["+experiment=shuffled_labels", "model.hidden_layer_sizes=[16]", "model.max_epochs=6",
           "train.stop_at_fit=false", "train.progress=false"]  # fmt: skip
    records = {}
    for count in (1, 2):
        workdir = tmp_path / f"workers{count}"
        workdir.mkdir()
        done = run_cli(workdir, *job, f"train.workers={count}")
        assert done.returncode == 0, done.stderr
        records[count] = snapshot(store_uri(workdir))
    expected = {"params/train.workers: 2 != 1", "tags/overrides", "artifacts/config.yaml"}
    found = differences(records[2], records[1])
    assert found and all(any(e in d for e in expected) for d in found), found
