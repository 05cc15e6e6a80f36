"""How a study is recorded in MLflow: one run, or a parent with a child per arm.

``MlflowRecorder`` is the study core's MLflow observer (``pipeline.study.run.StudyObserver``):
it opens each arm's run, names the data the arm trained on (``datasets.log_split``), streams its
epochs (``store.epoch_metrics``), and when the arm is done records what it returned
(``record_arm``): the flat metrics, the confusion matrix, the figures, the per-example record
(``tracking.example_record``), the model and the warnings. ``execute`` is ``python -m pipeline``'s
whole run: the run with the params and the config, the study (the entry point adds its other
observers: the checkpoints, the progress bar), and the comparison on the parent. The DVC stages
record through the same ``arms.log_arm``, without the figures.

A job run again in the folder of one that was stopped, however it was stopped, finishes the
same record: with checkpoints, it takes over the run recorded for its folder (tag
``memlab.run_dir``) and each arm's run (tag ``arm``) instead of opening others, and every write
is skipped where the run holds it already (``store.adopt``): the epochs the checkpoint replays,
the final metrics, the params and the model. Figures and files are written again whole.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from pipeline.data.split import Splits
from pipeline.runtime import faults, workers
from pipeline.settings import RunSettings
from pipeline.study.results import ArmResult, DataSummary, StudyResult
from pipeline.study.run import Arm, EpochCallback, Observers, StudyObserver, run_study
from pipeline.tracking import painter, store
from pipeline.tracking.dataset_record import dataset_source, log_data_summary, log_split


def record_arm(run_id: str, arm: ArmResult, data: DataSummary, *, title: str) -> None:
    """Record a trained arm in ``run_id`` (the active MLflow run, for the model).

    The figures are drawn beside the rest (``painter``) and are in the run when it ends.
    """
    from pipeline.tracking.arms import log_arm
    from pipeline.tracking.example_record import paint_examples

    paint = functools.partial(painter.paint, run_id)
    curves = f"learning curves\n{title}"  # what it shows, then the run (wrapped: names are long)
    paint("learning_curves.png", "figures.learning_curves", arm.training.history, title=curves)
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
    paint_examples(run_id, arm, data, title=title)
    log_arm(run_id, arm)  # all the rest: metrics, confusion matrix, examples, model, warnings


def _without(tags: Mapping[str, str], key: str) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k != key}


class MlflowRecorder(StudyObserver):
    """Records a study in ``run_id``: each arm there, or, with several arms, in a child run.

    ``adopted``: ``run_id`` was taken over from a job that was stopped; its arms' runs are then
    looked for before any is opened.
    """

    def __init__(
        self,
        run_id: str,
        *,
        name: str,
        params: Mapping[str, str],
        tags: Mapping[str, str],
        source: str,
        probe: Mapping,
        adopted: bool = False,
    ):
        self.run_id, self.name, self.params, self.tags = run_id, name, params, dict(tags)
        self.source, self.probe, self.adopted = source, probe, adopted
        self.data: DataSummary | None = None
        self.splits: Splits | None = None
        self._arm_run: str | None = None

    def data_ready(self, data: DataSummary, splits: Splits) -> None:
        self.data, self.splits = data, splits
        self.tags |= {"data_fingerprint": data.fingerprint, "data": data.name}
        log_data_summary(self.run_id, data)

    @contextlib.contextmanager
    def arm(self, arm: Arm, max_epochs: int) -> Iterator[EpochCallback]:
        with contextlib.ExitStack() as stack:
            if arm.name == "run":
                self._arm_run = self.run_id
            else:
                if arm.name == "probe":  # the parent: the true data
                    self._log_datasets(self.run_id, self.splits, self.splits.y_train, {})
                # The arm's figures are drawn while the next arm trains; the study's run
                # waits for them before it ends.
                child = store.run(
                    f"{self.name}-{arm.name}",
                    tags={**_without(self.tags, store.RUN_DIR), "arm": arm.name},
                    parent_run_id=self.run_id,
                    resume=store.find_child(self.run_id, arm.name) if self.adopted else None,
                    figures_with=self.run_id,
                )
                self._arm_run = stack.enter_context(child)
                store.log_params(self._arm_run, self.params)
            probe = {} if arm.name == "control" else self.probe
            self._log_datasets(self._arm_run, arm.splits, arm.y_train, probe)
            log_epoch = stack.enter_context(store.epoch_metrics(self._arm_run))

            def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
                log_epoch(epoch, metrics)
                faults.point("epoch")

            yield on_epoch

    def _log_datasets(self, run_id: str, splits: Splits, y_train, probe: Mapping) -> None:
        log_split(
            run_id, self.data.name, self.source, self.data.fingerprint, splits, y_train, probe
        )

    def arm_finished(self, result: ArmResult) -> None:
        title = self.name if result.name == "run" else result.name
        record_arm(self._arm_run, result, self.data, title=title)


def execute(
    settings: RunSettings,
    params: Mapping[str, str],
    config_yaml: str,
    *,
    name: str,
    tags: Mapping[str, str],
    parent_run_id: str | None = None,
    run_dir: Path | None = None,
    figures_with: str | None = None,
    observers: Sequence[StudyObserver] = (),
) -> tuple[str, StudyResult]:
    """Run the study ``settings`` describe and record it; ``(run_id, result)``.

    ``params`` are the flattened config (logged as the run's params), ``config_yaml`` the
    resolved config (``config.yaml`` artifact); ``parent_run_id`` nests the run in a sweep.
    ``figures_with``: the sweep's parent, when it is closed in this process (the basic
    launcher), which then waits for this run's figures: they draw while the next job trains.
    ``run_dir``: the job's output folder, tagged on the run; with
    ``settings.train.checkpoint_every``, a run recorded for it already is taken over (the job
    goes on from its checkpoints, which one of ``observers`` loads). ``observers`` are told
    what the study does, in their order, each time before the MLflow record is written (so the
    checkpoint of a trained arm is saved before the arm is recorded).
    """
    store.configure(settings.mlflow.tracking_uri, settings.mlflow.experiment_name)
    store.close_dead_runs()  # runs whose process was killed outright: KILLED, not RUNNING
    tags = {**tags, "randomness": settings.randomness()}  # what the seed varies in this run
    if run_dir is not None:
        tags[store.RUN_DIR] = str(Path(run_dir).resolve())
    adopt = None
    if settings.train.checkpoint_every and run_dir is not None:
        adopt = store.find_run(tags[store.RUN_DIR])
    top = store.run(
        name, tags=tags, parent_run_id=parent_run_id, resume=adopt, figures_with=figures_with
    )
    with top as run_id:
        store.log_params(run_id, params)
        store.log_text(run_id, config_yaml, "config.yaml")
        if settings.memorization:  # many models, one run (+experiment=memorization_scores)
            from pipeline.tracking.memorization_record import run_and_record

            return run_id, run_and_record(run_id, settings)
        if settings.label_issues:  # cross-fitted models, one run (+experiment=label_issues)
            from pipeline.tracking.label_issue_record import run_and_record_label_issues

            return run_id, run_and_record_label_issues(run_id, settings)
        recorder = MlflowRecorder(
            run_id,
            name=name,
            params=params,
            tags=tags,
            source=dataset_source(settings.data.name, settings.data.options),
            probe=asdict(settings.probe),
            adopted=adopt is not None,
        )
        # train.workers >= 2: the control arm trains in a worker while the probe trains here.
        elsewhere = workers.elsewhere(settings.train.workers, settings.numerics)
        result = run_study(settings, Observers(*observers, recorder), elsewhere)
        if result.comparison is not None:
            comparison = result.comparison
            store.log_metrics(run_id, {**comparison.metrics(), **comparison.timings()})
            faults.point("comparison-logged")
        return run_id, result
