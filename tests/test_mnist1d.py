"""MNIST-1D from the mnist1d package's generator: shapes, determinism, the global generators
left alone, options honoured, the package's own split, and its 1-D figures."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.data.datasets import DATASET_OPTIONS, check_data, load_dataset
from pipeline.data.mnist1d import GENERATOR_OPTIONS, make_mnist1d
from pipeline.data.split import stratified_split
from pipeline.errors import ConfigError
from pipeline.report import canvas, figures

SMALL = {"num_samples": 200}  # 20 per class: the generator's loop is Python, keep it short


def _options(**overrides):
    """A full data=mnist1d config, as conf/data/mnist1d.yaml gives it (seed resolved)."""
    return {"seed": 0, "keep_official_split": False, **GENERATOR_OPTIONS, **SMALL, **overrides}


def test_shapes_classes_and_the_package_split():
    data = load_dataset("mnist1d", **_options())
    assert data.X.shape == (200, 40) and data.X.dtype == np.float32
    assert data.y.dtype == np.int64 and np.bincount(data.y).tolist() == [20] * 10
    assert data.image_shape == (40,) and data.n_classes == 10
    assert data.fixed_test is None
    # The package standardises the whole set: mean 0, standard deviation 1.
    assert abs(float(data.X.mean())) < 1e-5 and float(data.X.std()) == pytest.approx(1, abs=1e-5)


def test_same_seed_same_data_other_seed_other_data():
    a, b = make_mnist1d(3, **SMALL), make_mnist1d(3, **SMALL)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    c = make_mnist1d(4, **SMALL)
    assert not np.array_equal(a.X, c.X)


def test_global_generators_are_left_as_they_were():
    np.random.seed(123)  # noqa: NPY002 (the caller's global state, which must survive)
    random.seed(123)
    expected_numpy, expected_python = np.random.random(3), [random.random() for _ in range(3)]  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    random.seed(123)
    make_mnist1d(7, **SMALL)
    np.testing.assert_array_equal(np.random.random(3), expected_numpy)  # noqa: NPY002
    assert [random.random() for _ in range(3)] == expected_python


def test_global_generators_are_restored_when_the_generator_fails(monkeypatch):
    import mnist1d.data

    def boom(args):
        np.random.seed(args.seed)  # noqa: NPY002 (what the package does first)
        raise RuntimeError("generator failed")

    monkeypatch.setattr(mnist1d.data, "make_dataset", boom)
    state = np.random.get_state()  # noqa: NPY002
    with pytest.raises(RuntimeError):
        make_mnist1d(1, **SMALL)
    after = np.random.get_state()  # noqa: NPY002
    np.testing.assert_array_equal(after[1], state[1])
    assert after[2] == state[2]


def test_options_are_honoured():
    base = make_mnist1d(0, **SMALL)
    assert make_mnist1d(0, num_samples=100).X.shape == (100, 40)
    assert make_mnist1d(0, **SMALL, final_seq_length=30).X.shape == (200, 30)
    assert not np.array_equal(make_mnist1d(0, **SMALL, iid_noise_scale=0.5).X, base.X)
    assert not np.array_equal(make_mnist1d(0, **SMALL, corr_noise_scale=0.0).X, base.X)
    shuffled = make_mnist1d(0, **SMALL, shuffle_seq=True)
    np.testing.assert_array_equal(shuffled.y, base.y)  # same examples ...
    assert not np.array_equal(shuffled.X, base.X)  # ... positions permuted
    np.testing.assert_allclose(np.sort(shuffled.X, axis=1), np.sort(base.X, axis=1), atol=1e-6)
    assert make_mnist1d(0, **SMALL, train_split=0.5).is_test.sum() == 100


def test_keep_official_split_holds_out_the_package_test_rows():
    data = load_dataset("mnist1d", **_options(keep_official_split=True))
    assert data.fixed_test.sum() == 40 and data.fixed_test[-40:].all()  # the last 20%
    splits = stratified_split(
        data.X, data.y, train=0.8, val=0.1, test=0.1, seed=0, fixed_test=data.fixed_test
    )
    np.testing.assert_array_equal(splits.X_test, data.X[data.fixed_test])


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ({"num_samples": 5}, "data.num_samples"),
        ({"train_split": 1.0}, "data.train_split"),
        ({"padding": [60, 36]}, "data.padding"),
        ({"iid_noise_scale": -1}, "data.iid_noise_scale"),
        ({"shuffle_seq": "yes"}, "data.shuffle_seq"),
        ({"seed": 2**32}, "data.seed"),
    ],
)
def test_bad_values_are_one_line_config_errors(override, words):
    with pytest.raises(ConfigError, match=words):
        load_dataset("mnist1d", **_options(**override))


def test_config_checks_name_the_settings():
    assert DATASET_OPTIONS["mnist1d"][0] == "seed"
    with pytest.raises(ConfigError, match="not a setting of data=mnist1d"):
        check_data({"name": "mnist1d", **_options(), "dir": "x"})
    with pytest.raises(ConfigError, match="choose the dataset with data=mnist1d"):
        check_data({"name": "mnist1d"})


def test_first_layer_weights_of_signals_are_curves(tmp_path):
    weights = np.random.default_rng(0).normal(size=(40, 12))
    fig = figures.weight_tiles(weights, (40,), title="1-D")
    ax = fig.axes[0]
    assert not ax.images  # curves, not broken images
    curves = [line for line in ax.get_lines() if len(line.get_xdata()) == 40]
    assert len(curves) == 12
    w = weights[:, 0]  # drawn scaled to its own max|w|, half a tile (12) high
    np.testing.assert_allclose(np.ptp(curves[0].get_ydata()), np.ptp(w) / np.abs(w).max() * 12)
    assert canvas.save_figure(fig, tmp_path / "w.png").stat().st_size > 0
    with pytest.raises(ValueError, match="do not match"):
        figures.weight_tiles(weights, (39,))


def test_galleries_of_signals_are_curves():
    from pipeline.report.example_figures import image_gallery

    signals = np.random.default_rng(1).normal(size=(3, 40))
    fig = image_gallery(signals, (40,), ["a", "b", "c"], title="1-D")
    drawn = [ax for ax in fig.axes if ax.get_lines()]
    assert len(drawn) == 3 and not any(ax.images for ax in fig.axes)
    np.testing.assert_array_equal(drawn[1].get_lines()[0].get_ydata(), signals[1])


@pytest.mark.slow
def test_cli_runs_offline_and_logs_curves(workdir):
    from helpers import run_cli, search

    result = run_cli(
        workdir, "data=mnist1d", "data.num_samples=300", "model.max_epochs=2",
        "train.progress=false", "train.record_examples=false", "seed=5",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = search(workdir).iloc[0]
    assert run["params.data.seed"] == "5"  # ${seed}, resolved
    assert run["tags.data"] == "mnist1d" and 0 <= run["metrics.test_accuracy"] <= 1
    from helpers import store_uri
    from mlflow.tracking import MlflowClient

    artifacts = {a.path for a in MlflowClient(store_uri(workdir)).list_artifacts(run["run_id"])}
    assert "first_layer_weights.png" in artifacts
