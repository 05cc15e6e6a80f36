"""``python -m pipeline``: the Hydra command line.

Composes ``conf/`` (groups ``data`` and ``model``, experiments added with ``+experiment=NAME``),
turns the result into typed settings, runs it (``pipeline.study.run``) and prints a short summary.
A problem the user can fix ends with one line on stderr and exit status 1. Heavy libraries
(scikit-learn, MLflow) are imported only once a run starts, so ``--help`` answers at once.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf


def _experiment_name() -> str | None:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.choices.get("experiment")


def _overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task)


def format_summary(summary) -> str:
    """The end-of-run text: run id, accuracies, and where to look."""
    lines = [f"run {summary.run_id}"]
    if summary.headline:
        lines.append(f"{'arm':<10}{'train acc':>10}{'test acc':>10}{'epochs to fit':>15}")
        for arm, m in summary.arms.items():
            fit = m.get("epochs_to_fit")
            fit_text = f"{fit:.0f}" if fit is not None else f"> {m['epochs']:.0f}"
            lines.append(
                f"{arm:<10}{m['final_train_accuracy']:>10.3f}{m['test_accuracy']:>10.3f}"
                f"{fit_text:>15}"
            )
        if "epochs_to_fit_ratio" in summary.headline:
            lines.append(
                f"epochs to fit, probe / control: {summary.headline['epochs_to_fit_ratio']:.2f}"
            )
    else:
        m = summary.arms["run"]
        lines.append(
            f"train accuracy {m['final_train_accuracy']:.3f} | "
            f"validation accuracy {m['final_val_accuracy']:.3f} | "
            f"test accuracy {m['test_accuracy']:.3f} | {m['epochs']:.0f} epochs"
        )
        noise = {k: v for k, v in m.items() if k.startswith("noise_") and k.endswith("_auroc")}
        for key, value in noise.items():
            kind = key.removeprefix("noise_").removesuffix("_auroc")
            top = m.get(f"noise_{kind}_top_class")
            lines.append(
                f"{kind} noise: seen mostly as digit {top:.0f}, "
                f"mean confidence {m[f'noise_{kind}_mean_max_prob']:.2f}, "
                f"real-vs-noise AUROC {value:.3f}"
            )
    from pipeline.tracking.server import ui_hint

    lines.append(f"look at it: {ui_hint(summary.tracking_uri)}")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    """Run one job of the composed configuration."""
    from pipeline.errors import MemlabError
    from pipeline.sweep import sweep_parent_id
    from pipeline.tracking import signals

    signals.install()  # SIGTERM (SLURM, kill, timeout) ends the run KILLED, like Ctrl-C
    parent = sweep_parent_id()
    try:
        from pipeline.settings import RunSettings
        from pipeline.study.run import execute

        config = OmegaConf.to_container(cfg, resolve=True)
        settings = RunSettings.from_dict(config)
        config["model"].update(settings.model.params)  # record the values actually used
        summary = execute(
            settings,
            config,
            experiment=_experiment_name(),
            overrides=_overrides(),
            parent_run_id=parent,
        )
    except MemlabError as err:
        _close_parent(parent, "FAILED")
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as err:
        _close_parent(parent, "KILLED")
        print(f"{err or 'interrupted'}: the run is marked KILLED in MLflow", file=sys.stderr)
        sys.exit(signals.EXIT_STATUS if isinstance(err, signals.Terminated) else 130)
    print(format_summary(summary))
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _close_parent(parent: str | None, status: str) -> None:
    """A failed or interrupted job ends its sweep's parent run, where that ends the sweep."""
    from pipeline.sweep import end_sweep_early

    end_sweep_early(parent, status)


if __name__ == "__main__":
    main()
