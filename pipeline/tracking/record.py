"""How a study is recorded in MLflow: one run, or a parent with a child per arm.

``StudyRecorder`` is the study core's observer (``pipeline.study.run.StudyObserver``): it opens
each arm's run, names the data the arm trained on (``datasets.log_split``), streams its epochs
(``store.epoch_metrics``), draws the progress bar, and when the arm is done records what it
returned (``record_arm``): the flat metrics, the confusion matrix, the figures, the per-example
record (``tracking.examples``), the model and the warnings. ``execute`` is
``python -m pipeline``'s whole run: the run with the params and the config, the study, and the
comparison on the parent. The DVC stages record through the same ``record_arm``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path

from pipeline.data.split import Splits
from pipeline.runtime import signals
from pipeline.runtime.checkpoints import Checkpoints
from pipeline.settings import RunSettings
from pipeline.study.results import ArmResult, DataSummary, StudyResult
from pipeline.study.run import Arm, EpochCallback, StudyObserver, run_study
from pipeline.tracking import painter, store
from pipeline.tracking.datasets import dataset_source, log_split


def record_arm(run_id: str, arm: ArmResult, data: DataSummary, *, title: str) -> None:
    """Record a trained arm in ``run_id`` (the active MLflow run, for the model).

    The figures are drawn beside the rest (``painter``) and are in the run when it ends.
    """
    from pipeline.tracking.examples import record_examples
    from pipeline.tracking.models import log_model

    paint = functools.partial(painter.paint, run_id)
    paint("learning_curves.png", "figures.learning_curves", arm.training.history, title=title)
    paint(
        "confusion_matrix.png",
        "figures.confusion_matrix_figure",
        arm.confusion,
        title="held-out test",
    )
    paint(
        "first_layer_weights.png",
        "figures.weight_tiles",
        arm.model.coefs_[0],
        data.image_shape,
        title="first hidden layer:\nwhat is each neuron looking for?",
    )
    if arm.noise:
        fractions = {result.kind: list(result.class_fractions) for result in arm.noise}
        paint(
            "noise_classes.png",
            "figures.class_histogram",
            fractions,
            title="what the network sees in noise",
        )
    record_examples(run_id, arm, data, title=title)
    store.log_metrics(run_id, {**arm.metrics(), **arm.timings()}, step=arm.training.epochs)
    store.log_dict(
        run_id, {"rows_true_cols_predicted": arm.confusion.tolist()}, "confusion_matrix.json"
    )
    uri = log_model(arm.model, input_example=arm.input_example, run_id=run_id)
    store.set_tags(run_id, {"model_uri": uri})
    store.record_warnings(run_id, arm.warnings)


class StudyRecorder(StudyObserver):
    """Records a study in ``run_id``: each arm there, or, with several arms, in a child run."""

    def __init__(
        self,
        run_id: str,
        *,
        name: str,
        params: Mapping[str, str],
        tags: Mapping[str, str],
        source: str,
        probe: Mapping,
        progress: str | bool = "auto",
        checkpoints: Checkpoints | None = None,
        resuming: bool = False,
    ):
        self.run_id, self.name, self.params, self.tags = run_id, name, params, dict(tags)
        self.source, self.probe, self.progress = source, probe, progress
        self.checkpoints = checkpoints or Checkpoints(Path("."), every=0)
        self.resuming = resuming  # a job going on from its checkpoints
        self.data: DataSummary | None = None
        self.splits: Splits | None = None
        self._arm_run: str | None = None

    def data_ready(self, data: DataSummary, splits: Splits) -> None:
        self.data, self.splits = data, splits
        self.tags |= {"data_fingerprint": data.fingerprint, "data": data.name}
        if not self.resuming:
            store.set_tags(self.run_id, {"data_fingerprint": data.fingerprint, "data": data.name})
            store.log_params(self.run_id, {k: str(n) for k, n in data.sizes.items()})

    @contextlib.contextmanager
    def arm(self, arm: Arm, max_epochs: int) -> Iterator[EpochCallback]:
        name = arm.name
        # This arm's run, when the stopped job had opened it.
        resumed = self.checkpoints.arm_run(name) if self.resuming else None
        with contextlib.ExitStack() as stack:
            if name == "run":
                self._arm_run, label = self.run_id, self.name
            else:
                if name == "probe" and not self.resuming:  # the parent: the true data
                    self._log_datasets(self.run_id, self.splits, self.splits.y_train, {})
                tags = {**self.tags, "arm": name}
                # The arm's figures are drawn while the next arm trains; the study's run
                # waits for them before it ends.
                child = store.run(
                    f"{self.name}-{name}",
                    tags=tags,
                    parent_run_id=self.run_id,
                    resume=resumed,
                    figures_with=self.run_id,
                )
                with signals.held():  # the arm's run is created and named, or neither
                    self._arm_run, label = stack.enter_context(child), name
                    if not resumed:
                        store.log_params(self._arm_run, self.params)
                        self.checkpoints.start_arm(name, self._arm_run)
            if not resumed:
                probe = {} if arm.name == "control" else self.probe
                self._log_datasets(self._arm_run, arm.splits, arm.y_train, probe)
            # Epochs measured before the job stopped are in the store already: not again.
            logged = store.last_step(self._arm_run, "train_loss") if resumed else 0
            log_epoch = stack.enter_context(store.epoch_metrics(self._arm_run))
            bar = stack.enter_context(_progress(self.progress, max_epochs, label))

            def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
                if epoch > logged:
                    log_epoch(epoch, metrics)
                bar.update(1)
                loss, accuracy = metrics["train_loss"], metrics["train_accuracy"]
                bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.3f}")

            yield on_epoch

    def _log_datasets(self, run_id: str, splits: Splits, y_train, probe: Mapping) -> None:
        log_split(
            run_id, self.data.name, self.source, self.data.fingerprint, splits, y_train, probe
        )

    def resume(self, arm: Arm):
        return self.checkpoints.load(arm.name) if self.resuming else None

    def checkpoint(self, arm: Arm, model, result) -> None:
        if self.checkpoints.due(result):
            self.checkpoints.save(arm.name, self._arm_run, model, result)

    def arm_finished(self, result: ArmResult) -> None:
        if self.resuming and self.checkpoints.recorded(result.name):
            return  # trained and recorded before the job stopped; measured again, the same
        title = self.name if result.name == "run" else result.name
        record_arm(self._arm_run, result, self.data, title=title)
        if self.checkpoints.every:  # a job resumed later skips this arm
            cp = self.checkpoints
            cp.save(result.name, self._arm_run, result.model, result.training, recorded=True)


@contextlib.contextmanager
def _progress(progress: str | bool, total: int, label: str):
    """A tqdm bar on stderr: ``auto`` shows it only on a terminal."""
    from tqdm.auto import tqdm

    disable = {"auto": None, True: False, False: True}[progress]
    with contextlib.closing(
        tqdm(total=total, desc=label, unit="epoch", disable=disable, leave=False)
    ) as bar:
        yield bar


def execute(
    settings: RunSettings,
    params: Mapping[str, str],
    config_yaml: str,
    *,
    name: str,
    tags: Mapping[str, str],
    parent_run_id: str | None = None,
    checkpoint_dir: Path | None = None,
    figures_with: str | None = None,
) -> tuple[str, StudyResult]:
    """Run the study ``settings`` describe and record it; ``(run_id, result)``.

    ``params`` are the flattened config (logged as the run's params), ``config_yaml`` the
    resolved config (``config.yaml`` artifact); ``parent_run_id`` nests the run in a sweep.
    ``figures_with``: the sweep's parent, when it is closed in this process (the basic
    launcher), which then waits for this run's figures: they draw while the next job trains.
    With ``settings.train.checkpoint_every``, checkpoints go into ``checkpoint_dir``; when it
    holds some already, the run they were made for goes on from them (``checkpoints``).
    """
    store.configure(settings.mlflow.tracking_uri, settings.mlflow.experiment_name)
    tags = {**tags, "randomness": settings.randomness()}  # what the seed varies in this run
    every = settings.train.checkpoint_every
    checkpoints = Checkpoints(checkpoint_dir or Path("checkpoint"), every)
    resume = checkpoints.run_id() if every else None
    top = store.run(
        name, tags=tags, parent_run_id=parent_run_id, resume=resume, figures_with=figures_with
    )
    with contextlib.ExitStack() as stack:
        with signals.held():  # the run is created and named in its checkpoint, or neither
            run_id = stack.enter_context(top)
            if not resume:
                store.log_params(run_id, params)
                store.log_text(run_id, config_yaml, "config.yaml")
                checkpoints.save_run(run_id)
        if settings.memorization:  # many models, one run (+experiment=memorization_scores)
            from pipeline.tracking.memorization import run_and_record

            return run_id, run_and_record(run_id, settings)
        recorder = StudyRecorder(
            run_id,
            name=name,
            params=params,
            tags=tags,
            source=dataset_source(settings.data.name, settings.data.options),
            probe=asdict(settings.probe),
            progress=settings.train.progress,
            checkpoints=checkpoints,
            resuming=bool(resume),
        )
        result = run_study(settings, recorder)
        if result.comparison is not None:
            comparison = result.comparison
            store.log_metrics(run_id, {**comparison.metrics(), **comparison.timings()})
        return run_id, result
