"""The double-descent study: its configs compose into the promised setup, the figure marks the
threshold, and a three-width miniature runs end to end (CLI multirun, then the report)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli, run_module, store_uri
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from pipeline.data.idx import write_idx
from pipeline.data.split import stratified_split
from pipeline.report.sweep_figures import report_figures
from pipeline.settings import RunSettings

CONF = Path(__file__).resolve().parents[1] / "conf"


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def _widths(cfg) -> list[int]:
    text = cfg.hydra.sweeper.params["model.hidden_layer_sizes"]
    return [int(w) for w in text.removeprefix("choice([").removesuffix("])").split("],[")]


@pytest.mark.parametrize("name", ["double_descent", "double_descent_noisy"])
def test_configs_describe_the_study(name):
    cfg = _compose([f"+experiment={name}"])
    with open_dict(cfg):
        del cfg["hydra"]
    settings = RunSettings.from_config(OmegaConf.to_container(cfg, resolve=True))
    assert settings.data.name == "mnist" and settings.data.options["parts"] == ["test"]
    # n = 4,000 training images drawn from the 10,000-image pool, the rest held out.
    y = np.repeat(np.arange(10), 1000)
    s = settings.split
    splits = stratified_split(
        np.zeros((10000, 1)), y, train=s.train, val=s.val, test=s.test, seed=0
    )
    assert splits.sizes() == {"train": 4000, "val": 1000, "test": 5000}
    params = settings.model.params()
    assert params["activation"] == "relu" and settings.train.stop_at_fit is False
    widths = _widths(_compose([f"+experiment={name}"]))
    n_params = [795 * h + 10 for h in widths]
    assert widths == sorted(widths) and n_params[0] < 40_000 < n_params[-1]
    assert n_params[-1] >= 790_000  # as far as Belkin's Fig. 3 goes
    if name == "double_descent":
        assert params["loss"] == "squared" and settings.probe.labels.fraction == 0.0
        assert sum(40 <= h <= 60 for h in widths) >= 4  # dense at the threshold, H ~ 50
    else:
        assert params["loss"] == "cross_entropy"
        assert (settings.probe.labels.fraction, settings.probe.labels.mode) == (0.2, "random")
        assert sum(8 <= h <= 24 for h in widths) >= 4  # dense where noisy labels get fitted


def _fake_sweep(widths, n_train=100, n_classes=10, d=784):
    ids = [f"r{h}" for h in widths]
    test_error = [0.3, 0.5, 0.2]
    table = pd.DataFrame(
        {
            "run": ids,
            "model.hidden_layer_sizes": [f"[{h}]" for h in widths],
            "final_train_accuracy": [0.7, 1.0, 1.0],
            "test_accuracy": [1 - e for e in test_error],
            "epochs_to_fit": [np.nan, 40.0, 5.0],
            "epochs": 50.0,
            "fit_seconds": 1.0,
            "status": "FINISHED",
            "run_id": ids,
        }
    )
    runs = pd.DataFrame(
        {
            "run_id": ids,
            "metrics.n_params": [(d + 1 + n_classes) * h + n_classes for h in widths],
            "metrics.test_loss": [0.4, 0.6, 0.3],
            "metrics.final_train_loss": [0.3, 0.01, 0.001],
            "params.n_train": str(n_train),
        }
    )
    return table, runs


def test_figure_marks_the_interpolation_threshold():
    table, runs = _fake_sweep([2, 8, 64])
    figures = report_figures(table, runs)
    assert {"accuracy_vs_width.png", "double_descent.png"} <= set(figures)
    error_panel, loss_panel = figures["double_descent.png"].axes
    lines = {line.get_label(): line for line in error_panel.get_lines()}
    np.testing.assert_allclose(lines["test"].get_xdata(), [1600, 6370, 50890])
    np.testing.assert_allclose(lines["test"].get_ydata(), [0.3, 0.5, 0.2])
    # n * K = 100 * 10, K found from the parameter counts.
    for ax in (error_panel, loss_panel):
        marks = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert len(marks) == 1 and marks[0].get_xdata()[0] == 1000
    assert report_figures(table).keys() == report_figures(table, None).keys()
    assert "double_descent.png" not in report_figures(table)


def _tiny_mnist(directory: Path, n: int = 500) -> None:
    """The official test-file names holding 8x8 digits blown up to 28x28 (real signal, tiny)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images[:n], np.ones((3, 3)))  # (n, 24, 24), 0..16
    images = np.pad(images, ((0, 0), (2, 2), (2, 2))) * (255 / 16)
    directory.mkdir(parents=True)
    write_idx(directory / "t10k-images-idx3-ubyte.gz", images.round().astype(np.uint8))
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", digits.target[:n].astype(np.uint8))


@pytest.mark.slow
def test_three_width_miniature_runs_and_reports(workdir, name="double_descent"):
    _tiny_mnist(workdir / "mnist")
    result = run_cli(
        workdir, "-m", f"+experiment={name}", f"data.dir={workdir / 'mnist'}",
        "data.verify=false", "model.hidden_layer_sizes=choice([2],[8],[64])",
        "model.max_epochs=5", "train.progress=false", f"hydra.sweep.dir={workdir / 'multirun'}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = workdir / "report"
    report = _report(workdir, out)
    assert report.returncode == 0, report.stderr
    assert (out / "double_descent.png").stat().st_size > 0
    runs = pd.read_csv(out / "table_seeds.csv")  # one row per run (table.csv: per configuration)
    assert len(runs) == 3 and set(runs["status"]) == {"FINISHED"}
    assert len(pd.read_csv(out / "table.csv")) == 3  # three widths, three configurations


def _report(workdir: Path, out: Path):
    return run_module(
        "pipeline.report", workdir, "--latest-sweep",
        "--tracking-uri", store_uri(workdir), "--out", str(out), timeout=300,
    )  # fmt: skip


def test_seeds_give_the_test_curves_95_percent_error_bars():
    from matplotlib.collections import LineCollection

    from pipeline.report.sweep_figures import double_descent

    fig = double_descent(
        [1000, 5000], {"train": [0.3, 0.0], "test": [0.4, 0.3]},
        {"train": [1.0, 0.1], "test": [1.2, 2.5]}, threshold=None,
        half_widths={"test": [0.02, float("nan")], "test loss": [0.1, 0.4]},
    )  # fmt: skip
    for panel, top in zip(fig.axes, ([0.42, np.nan], [1.3, 2.9]), strict=True):
        (bars,) = [c for c in panel.collections if isinstance(c, LineCollection)]
        segments = [np.asarray(s).reshape(-1, 2) for s in bars.get_segments()]
        ends = [s[:, 1].max() if len(s) and np.isfinite(s).all() else np.nan for s in segments]
        np.testing.assert_allclose(ends, top)  # a point of one seed (NaN) has no bar
