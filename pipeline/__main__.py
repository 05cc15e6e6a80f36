"""``python -m pipeline``: the Hydra command line.

Composes ``conf/`` (groups ``data`` and ``model``, experiments added with ``+experiment=NAME``),
turns the result into typed settings (``pipeline.settings``), runs and records it
(``pipeline.tracking.record.execute``, around the study core ``pipeline.study.run``) and
prints a short summary. A problem the user can fix ends with one line on stderr and exit
status 1. Heavy libraries (scikit-learn, MLflow) are imported only once a run starts, so
``--help`` answers at once.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf


def _experiment_name() -> str | None:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.choices.get("experiment")


def _overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task)


def format_summary(run_id: str, result, tracking_uri: str) -> str:
    """The end-of-run text: run id, accuracies, with wrong labels each per-example score's
    AUROC (an inverted one flagged), and where to look."""
    lines = [f"run {run_id}"]
    if result.comparison is not None:
        lines.append(f"{'arm':<10}{'train acc':>10}{'test acc':>10}{'epochs to fit':>15}")
        for name, arm in result.arms.items():
            fit = arm.training.epochs_to_fit
            fit_text = f"{fit}" if fit is not None else f"> {arm.training.epochs}"
            lines.append(
                f"{name:<10}{arm.final_train.accuracy:>10.3f}{arm.test.accuracy:>10.3f}"
                f"{fit_text:>15}"
            )
        ratio = result.comparison.epochs_to_fit_ratio
        if ratio is not None:
            lines.append(f"epochs to fit, probe / control: {ratio:.2f}")
    else:
        arm = result.arms["run"]
        lines.append(
            f"train accuracy {arm.final_train.accuracy:.3f} | "
            f"validation accuracy {arm.training.history['val_accuracy'][-1]:.3f} | "
            f"test accuracy {arm.test.accuracy:.3f} | {arm.training.epochs} epochs"
        )
        for noise in arm.noise:
            lines.append(
                f"{noise.kind} noise: seen mostly as digit {noise.top_class}, "
                f"mean confidence {noise.mean_max_prob:.2f}, "
                f"real-vs-noise AUROC {noise.auroc:.3f}"
            )
    for name, arm in result.arms.items():  # an inverted score reads as "worst" unless flagged
        aurocs = arm.example_auroc_lines()
        if aurocs:
            which = "" if len(result.arms) == 1 else f" ({name})"
            lines.append(f"which scores find the mislabeled examples{which}, best first:")
            lines += [f"  {line}" for line in aurocs]
    from pipeline.tracking.server import ui_hint
    from pipeline.tracking.ui import DEFAULT_UI, run_link  # the model-training view

    base = tracking_uri if tracking_uri.startswith(("http://", "https://")) else DEFAULT_UI
    lines.append(f"look at it: {ui_hint(tracking_uri, run_link(run_id, base))}")
    return "\n".join(lines)


# Overrides that say nothing about what was run, left out of run names.
_NAME_SKIP = (
    "+experiment=",
    "experiment=",
    "hydra",
    "mlflow.",
    "train.progress=",
    "train.workers=",
    "train.record_examples=",
    "seed=",
    "model=",
    "data.dir=",
    "data.download=",
    "data.mirrors=",
    "data.verify=",
    "data.timeout=",
)


def run_name(model: str, seed: int, experiment: str | None, overrides: list[str]) -> str:
    """``model-experiment-<varied values>-seedN``, e.g. ``numpy_mlp-shuffled_labels-seed0``."""
    parts = [model]
    if experiment:
        parts.append(experiment)
    for override in overrides:
        if override.startswith(_NAME_SKIP):
            continue
        key, _, value = override.partition("=")
        short = {"probe.labels.fraction": "p", "model.hidden_layer_sizes": "hidden"}.get(key)
        parts.append(f"{short or key.rsplit('.', 1)[-1]}={value}")
    return "-".join([*parts, f"seed{seed}"])


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    """Run one job of the composed configuration."""
    from pipeline.errors import MemlabError
    from pipeline.runtime import signals
    from pipeline.sweep import launched_here, sweep_parent_id

    signals.install()  # SIGTERM (SLURM, kill, timeout) ends the run KILLED, like Ctrl-C
    _spill_into_output_folder()
    parent = sweep_parent_id()
    try:
        from pipeline import numerics
        from pipeline.runtime import figure_pool, workers
        from pipeline.settings import RunSettings

        config = OmegaConf.to_container(cfg, resolve=True)
        settings = RunSettings.from_config(config)
        cores = _cores_per_job()
        if settings.train.workers is None:  # auto: MEMLAB_TRAIN_WORKERS, else the job's cores
            used = workers.count(None, cores)
            settings = replace(settings, train=replace(settings.train, workers=used))
            config["train"]["workers"] = used  # the param records the count used
        from pipeline.runtime.checkpoints import Checkpointer, Checkpoints
        from pipeline.runtime.progress import ProgressBar
        from pipeline.tracking import metadata, store
        from pipeline.tracking.record import execute

        # A store that cannot be used ends the job here, in one line, before any worker starts.
        store.configure(settings.mlflow.tracking_uri, settings.mlflow.experiment_name)
        # The figures' workers get ready while the run trains; a job with one core to itself
        # draws them there.
        figure_pool.start(min(cores, figure_pool.MAX_WORKERS) if cores > 1 else 0)
        for note in numerics.apply(settings.numerics, cores=cores):  # before any computing
            print(f"note: {note}", file=sys.stderr)
        config["model"].update(settings.model.params())  # record the values actually used
        experiment, overrides = _experiment_name(), _overrides()
        name = settings.mlflow.run_name or run_name(
            settings.model.name, settings.seed, experiment, overrides
        )
        tags = {
            "model": settings.model.name,
            "experiment": experiment or "none",
            "probe": settings.probe.describe(),
            "overrides": " ".join(overrides) or "(none)",
            **metadata.git_tags(),
        }
        yaml = OmegaConf.to_yaml(OmegaConf.create(config))
        folder = _output_folder()
        checkpoints = Checkpoints(folder / "checkpoint", settings.train.checkpoint_every)
        run_id, result = execute(
            settings,
            metadata.flatten(config),
            yaml,
            name=name,
            tags=tags,
            parent_run_id=parent,
            figures_with=parent if launched_here(parent) else None,
            run_dir=folder,
            observers=[Checkpointer(checkpoints), ProgressBar(settings.train.progress, name)],
        )
        if settings.memorization or settings.label_issues:  # many models, one run
            print(f"run {run_id}\n{result.summary()}")
            return
    except MemlabError as err:
        _close_parent(parent, "FAILED")
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except Exception as err:  # a store or disk that failed (read-only, full, corrupt, refused)
        import contextlib

        from pipeline.tracking.store_faults import explain

        fault = explain(err)
        if fault is None:
            raise  # a bug: it keeps its traceback
        with contextlib.suppress(Exception):  # the broken store may not take the sweep's end
            _close_parent(parent, "FAILED")
        print(f"error: {fault}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as err:
        _close_parent(parent, "KILLED")
        print(f"{err or 'interrupted'}: the run is marked KILLED in MLflow", file=sys.stderr)
        sys.exit(signals.EXIT_STATUS if isinstance(err, signals.Terminated) else 130)
    print(format_summary(run_id, result, store.tracking_uri()))
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _cores_per_job() -> int:
    """This job's share of the cores it may use: all of them, or, under the joblib launcher,
    their ``1 / n_jobs`` (joblib's ``n_jobs=-1`` is one job per core)."""
    import os

    from hydra.core.hydra_config import HydraConfig

    cores = len(os.sched_getaffinity(0))
    launcher = HydraConfig.get().launcher
    if "joblib" not in str(launcher.get("_target_", "")).lower():
        return cores
    n_jobs = launcher.get("n_jobs") or 1
    parallel = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)  # joblib's negative counts
    return max(1, cores // min(parallel, cores))


def _output_folder() -> Path:
    """This job's output folder (Hydra's ``hydra.run.dir``, or its folder in a sweep)."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def _spill_into_output_folder() -> None:
    """Metrics a vanished tracking server never got are saved in this job's output folder."""
    from pipeline.tracking import outage

    outage.spill_into(_output_folder())


def _close_parent(parent: str | None, status: str) -> None:
    """A failed or interrupted job ends its sweep's parent run, where that ends the sweep."""
    from pipeline.sweep import end_sweep_early

    end_sweep_early(parent, status)


def _one_line_when_the_folder_cannot_be_written() -> None:
    """Hydra saves the composed config into the job's output folder before ``main`` runs; a
    full or read-only disk there would end in Hydra's traceback. Say it in one line."""
    import hydra.core.utils

    save = hydra.core.utils._save_config

    def save_or_say(cfg, filename: str, output_dir: Path) -> None:
        try:
            save(cfg, filename, output_dir)
        except OSError as err:
            (Path(output_dir) / filename).unlink(missing_ok=True)  # nothing half-written
            print(
                f"error: cannot write {Path(output_dir) / filename} ({err.strerror}): the job's "
                "output folder needs room and write access; free space there or choose another "
                "(hydra.run.dir=...)",
                file=sys.stderr,
            )
            sys.exit(1)

    hydra.core.utils._save_config = save_or_say


if __name__ == "__main__":
    from pipeline.overrides import exit_on_typo
    from pipeline.runtime.quick_exit import leave

    exit_on_typo(sys.argv[1:])  # one line for a typo, before Hydra's own many
    _one_line_when_the_folder_cannot_be_written()
    try:
        main()
    except SystemExit as stop:
        leave(stop.code)
    leave(0)
