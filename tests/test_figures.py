"""Tests for the figure builders: right artists, right data, clean saving, no pyplot state."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from matplotlib.figure import Figure

from pipeline.report import canvas, figures, sweep_figures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

FULL_HISTORY = {
    "train_loss": [2.0, 1.0, 0.5],
    "val_loss": [2.1, 1.5, 1.4],
    "train_accuracy": [0.2, 0.6, 0.9],
    "val_accuracy": [0.2, 0.4, 0.45],
    "train_accuracy_clean": [0.3, 0.8, 0.95],
    "train_accuracy_corrupted": [None, 0.1, 0.7],
}


def _lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_learning_curves_clean_run_has_two_lines_per_panel():
    history = {k: v for k, v in FULL_HISTORY.items() if "clean" not in k and "corr" not in k}
    fig = figures.learning_curves(history, title="run")
    assert isinstance(fig, Figure)
    ax_loss, ax_acc = fig.axes
    assert len(ax_loss.get_lines()) == 2
    assert len(ax_acc.get_lines()) == 2
    assert ax_acc.get_ylim() == (0.0, 1.0)
    assert fig.get_suptitle() == "run"


def test_learning_curves_adds_dashed_clean_and_corrupted_accuracy():
    fig = figures.learning_curves(FULL_HISTORY)
    ax_loss, ax_acc = fig.axes
    assert len(ax_loss.get_lines()) == 2
    lines = _lines_by_label(ax_acc)
    assert len(lines) == 4
    clean, corrupted = lines["train, clean labels"], lines["train, corrupted labels"]
    assert clean.get_linestyle() == corrupted.get_linestyle() == "--"
    assert lines["train"].get_linestyle() == "-"
    # Epochs are 1-based and None becomes a NaN gap.
    np.testing.assert_array_equal(corrupted.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(corrupted.get_ydata(), [np.nan, 0.1, 0.7])
    np.testing.assert_array_equal(
        _lines_by_label(ax_loss)["validation"].get_ydata(), [2.1, 1.5, 1.4]
    )


def test_learning_curves_skips_missing_keys_and_ignores_unknown_ones():
    fig = figures.learning_curves(
        {"train_loss": [1.0, 0.5], "train_accuracy": [0.5, 0.7], "learning_rate": [0.1, 0.1]}
    )
    ax_loss, ax_acc = fig.axes
    assert [line.get_label() for line in ax_loss.get_lines()] == ["train"]
    assert [line.get_label() for line in ax_acc.get_lines()] == ["train"]


def test_learning_curves_calls_do_not_share_state():
    first = figures.learning_curves(FULL_HISTORY)
    second = figures.learning_curves(FULL_HISTORY)
    assert first is not second
    assert [len(ax.get_lines()) for ax in first.axes] == [2, 4]


def test_confusion_matrix_shows_counts_and_row_fractions():
    cm = np.array([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
    fig = figures.confusion_matrix_figure(cm, labels=["a", "b", "c"], title="val")
    ax = fig.axes[0]
    (image,) = ax.get_images()
    expected = np.array([[0.75, 0.25, 0.0], [0.0, 0.0, 0.0], [0.25, 0.25, 0.5]])
    np.testing.assert_allclose(image.get_array(), expected)
    texts = [t.get_text() for t in ax.texts]
    assert texts == [str(v) for v in cm.ravel()]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"


@pytest.mark.parametrize("cm", [np.zeros((2, 3)), np.zeros(4)])
def test_confusion_matrix_rejects_non_square(cm):
    with pytest.raises(ValueError, match="square"):
        figures.confusion_matrix_figure(cm)


def test_confusion_matrix_rejects_wrong_number_of_labels():
    with pytest.raises(ValueError, match="2 labels"):
        figures.confusion_matrix_figure(np.eye(3), labels=["a", "b"])


def _tiles(fig, n_hidden: int, image_shape) -> list[np.ndarray]:
    """The tiles of a ``weight_tiles`` figure, read back out of its one image."""
    (image,) = [image for ax in fig.axes for image in ax.get_images()]
    mosaic = np.ma.filled(image.get_array(), np.nan)
    n_cols = int(np.ceil(np.sqrt(n_hidden)))
    gap = max(1, round(0.15 * max(image_shape)))
    height, width = image_shape
    corners = [canvas.tile_corner(k, n_cols, image_shape, (gap, gap)) for k in range(n_hidden)]
    return [mosaic[top : top + height, left : left + width] for top, left in corners]


@pytest.mark.parametrize("n_hidden", [3, 16, 30])
def test_weight_tiles_draws_one_tile_per_neuron_equal_to_its_column(n_hidden):
    rng = np.random.default_rng(n_hidden)
    image_shape = (4, 5)
    weights = rng.normal(size=(20, n_hidden))
    fig = figures.weight_tiles(weights, image_shape)
    (image,) = [image for ax in fig.axes for image in ax.get_images()]  # one image for all
    assert image.get_clim() == (-1.0, 1.0)
    for k, tile in enumerate(_tiles(fig, n_hidden, image_shape)):
        column = weights[:, k].reshape(image_shape)
        # symmetric around 0, scaled per tile: the tile's largest |w| is +-1
        np.testing.assert_allclose(tile, column / np.max(np.abs(column)))


def test_weight_tiles_grid_is_near_square_and_tiles_do_not_overlap():
    fig = figures.weight_tiles(np.ones((64, 30)), (8, 8))
    mosaic = np.ma.filled(fig.axes[0].get_images()[0].get_array(), np.nan)
    gap = 1  # round(0.15 * 8)
    # 30 tiles in ceil(sqrt(30)) = 6 columns and 5 rows, each 8x8, gap pixels apart
    assert mosaic.shape == (5 * (8 + gap), 6 * (8 + gap) - gap)
    assert np.count_nonzero(mosaic == 1.0) == 30 * 64  # every tile whole, none overlapping
    assert np.isnan(mosaic).sum() == mosaic.size - 30 * 64  # the rest is blank


def test_weight_tiles_handles_an_all_zero_neuron():
    fig = figures.weight_tiles(np.zeros((4, 2)), (2, 2))
    for tile in _tiles(fig, 2, (2, 2)):
        np.testing.assert_array_equal(tile, 0.0)  # white, not NaN from 0 / 0


@pytest.mark.parametrize("image_shape", [(8, 8), (4, 4), (5, 5)])
def test_weight_tiles_rejects_wrong_image_shape(image_shape):
    with pytest.raises(ValueError, match="image_shape"):
        figures.weight_tiles(np.zeros((20, 3)), image_shape)


def test_weight_tiles_rejects_one_dimensional_weights():
    with pytest.raises(ValueError, match="image_shape"):
        figures.weight_tiles(np.zeros(20), (4, 5))


def test_class_histogram_bar_heights_equal_fractions():
    fractions = {
        "uniform": [0.0, 0.5, 0.1, 0.4],
        "gaussian": [0.25, 0.25, 0.25, 0.25],
    }
    fig = figures.class_histogram(fractions)
    ax = fig.axes[0]
    assert len(ax.containers) == 2
    for container, (kind, values) in zip(ax.containers, fractions.items(), strict=True):
        assert container.get_label() == kind
        np.testing.assert_allclose([bar.get_height() for bar in container], values)
        np.testing.assert_allclose(
            [bar.get_x() + bar.get_width() / 2 for bar in container],
            np.arange(4) + (-0.2 if kind == "uniform" else 0.2),
        )
    assert ax.get_ylabel() == "fraction of noise images"


def test_class_histogram_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="one fraction per class"):
        figures.class_histogram({"uniform": [0.5, 0.5], "gaussian": [1.0, 0.0, 0.0]})


def test_metric_vs_plots_each_series_with_gaps_and_log_axis():
    x = [16, 64, 256]
    series = {"train": [0.5, 0.9, 1.0], "test": [0.4, float("nan"), 0.8]}
    fig = sweep_figures.metric_vs(x, series, xlabel="hidden width", ylabel="accuracy", logx=True)
    ax = fig.axes[0]
    lines = _lines_by_label(ax)
    assert set(lines) == {"train", "test"}
    assert all(line.get_marker() == "o" for line in lines.values())
    np.testing.assert_array_equal(lines["test"].get_ydata(), [0.4, np.nan, 0.8])
    assert ax.get_xscale() == "log"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("hidden width", "accuracy")
    linear = sweep_figures.metric_vs(x, series, xlabel="p", ylabel="acc")
    assert linear.axes[0].get_xscale() == "linear"


def test_metric_vs_rejects_length_mismatch():
    with pytest.raises(ValueError, match="'test'"):
        sweep_figures.metric_vs([0.0, 0.5], {"test": [1.0]}, xlabel="p", ylabel="acc")


def test_save_figure_writes_png_atomically(tmp_path):
    fig = sweep_figures.metric_vs([0, 1], {"a": [0, 1]}, xlabel="x", ylabel="y")
    target = tmp_path / "nested" / "dir" / "plot.png"
    written = canvas.save_figure(fig, target)
    assert written == target
    data = target.read_bytes()
    assert len(data) > len(PNG_SIGNATURE)
    assert data[:8] == PNG_SIGNATURE
    assert [p.name for p in target.parent.iterdir()] == ["plot.png"]  # no temp file left
    canvas.save_figure(fig, target)  # overwriting is fine
    assert [p.name for p in target.parent.iterdir()] == ["plot.png"]


def test_a_figure_is_drawn_once_into_the_bytes_savefig_would_write(tmp_path, monkeypatch):
    """``savefig`` draws a laid-out figure twice (once only to lay it out); the canvas once."""
    import io

    def build() -> Figure:
        cm = np.arange(16).reshape(4, 4)
        return figures.confusion_matrix_figure(cm, title="a long title\nand its run")

    reference = io.BytesIO()
    build().savefig(reference, format="png", dpi=canvas.DPI, pil_kwargs={"compress_level": 1})
    draws = []
    original = Figure.draw
    monkeypatch.setattr(
        Figure, "draw", lambda fig, renderer: draws.append(1) or original(fig, renderer)
    )
    canvas.save_figure(build(), tmp_path / "cm.png")
    assert len(draws) == 1
    assert (tmp_path / "cm.png").read_bytes() == reference.getvalue()


def test_save_figure_rejects_non_png_path(tmp_path):
    fig = sweep_figures.metric_vs([0, 1], {"a": [0, 1]}, xlabel="x", ylabel="y")
    with pytest.raises(ValueError, match=r"\.png"):
        canvas.save_figure(fig, tmp_path / "plot.pdf")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_building_and_saving_figures_never_touches_pyplot(tmp_path):
    # A fresh interpreter: other tests in this session may import pyplot themselves.
    script = textwrap.dedent(
        f"""
        import sys
        import matplotlib
        import numpy as np
        from pipeline.report import canvas, figures, sweep_figures

        figs = [
            figures.learning_curves({{"train_loss": [1.0, 0.5], "val_accuracy": [0.1, 0.2]}}),
            figures.confusion_matrix_figure(np.eye(3)),
            figures.weight_tiles(np.ones((4, 5)), (2, 2)),
            figures.class_histogram({{"uniform": [0.5, 0.5]}}),
            sweep_figures.metric_vs([1, 2], {{"a": [1, 2]}}, xlabel="x", ylabel="y", logx=True),
        ]
        for i, fig in enumerate(figs):
            canvas.save_figure(fig, {str(tmp_path)!r} + f"/fig{{i}}.png")
        assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
        assert not matplotlib.is_interactive()
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.glob("fig*.png"))) == 5


def test_image_gallery_shows_each_image_on_its_own_grey_scale_with_its_caption():
    from pipeline.report.example_figures import MISLABELED, image_gallery

    images = np.random.default_rng(3).normal(size=(11, 20)) * np.arange(1, 12)[:, None]
    images[4] = 7.0  # a blank picture stays blank, not NaN from 0 / 0
    highlight = [i % 3 == 0 for i in range(11)]
    fig = image_gallery(images, (4, 5), [f"#{i}" for i in range(11)], highlight=highlight)
    (ax,) = fig.axes
    (image,) = ax.get_images()
    mosaic = np.ma.filled(image.get_array(), np.nan)
    gap = (max(2, round(0.6 * 4)), max(1, round(0.3 * 5)))
    for i, picture in enumerate(images):
        top, left = canvas.tile_corner(i, 8, (4, 5), gap)
        tile = mosaic[top : top + 4, left : left + 5]
        span = np.ptp(picture)
        expected = (picture - picture.min()) / span if span else np.zeros(20)
        np.testing.assert_allclose(tile, expected.reshape(4, 5))
    colours = {text.get_text(): text.get_color() for text in ax.texts}
    assert [colours[f"#{i}"] == MISLABELED for i in range(11)] == highlight


@pytest.mark.parametrize("where", ["figure", "axes"])
def test_a_long_run_name_wraps_under_what_the_figure_shows_and_stays_in_the_frame(where):
    from pipeline.report.canvas import axes_title, new_figure, suptitle

    name = "numpy_mlp-label_noise_sweep-p=0.2-data=mnist-data.dir=../shared/data/mnist"
    name += "-parts=[test]-seed0"
    fig = new_figure((6.0, 4.0))
    ax = fig.add_subplot()
    ax.plot([0, 1])
    if where == "figure":
        suptitle(fig, f"dataset cartography\n{name}")
        title = fig._suptitle
    else:
        axes_title(ax, f"dataset cartography\n{name}")
        title = ax.title
    text = title.get_text()
    assert text.startswith("dataset cartography\n")
    assert text.replace("\n", "") == f"dataset cartography{name}"  # wrapped, nothing cut
    fig.canvas.draw()
    box = title.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width  # inside the frame
