"""Figures drawn beside the run, in worker processes: the same pictures, in the run when it ends."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.report import figures
from pipeline.runtime import figure_pool
from pipeline.tracking import painter
from pipeline.tracking import store as tracking

HISTORY = {"train_loss": [1.0, 0.5, 0.2], "train_accuracy": [0.3, 0.8, 1.0]}


def broken_builder():
    raise ValueError("this figure cannot be drawn")


def die_in_a_worker(history):
    """Kills the worker process that draws it (as running out of memory would)."""
    import multiprocessing
    import os

    if multiprocessing.parent_process() is not None:
        os._exit(1)
    return figures.learning_curves(history)


def two_figures(history):
    return {"a.png": figures.learning_curves(history), "b.png": figures.learning_curves({})}


def _pngs(client, run_id: str, folder: str | None = None) -> dict[str, bytes]:
    """The run's PNGs by path; their bytes only where there are few."""
    found = {}
    for item in client.list_artifacts(run_id, folder):
        if item.is_dir:
            found |= _pngs(client, run_id, item.path)
        elif item.path.endswith(".png"):
            found[item.path] = b""
    if folder is None and len(found) <= 2:
        for path in found:
            found[path] = Path(client.download_artifacts(run_id, path)).read_bytes()
    return found


@pytest.fixture(params=[pytest.param("workers", marks=pytest.mark.slow), "here"])
def mode(request, monkeypatch):
    """The worker processes, and drawing in the run's process (MEMLAB_FIGURE_WORKERS=0). The
    workers' cases are slow (a fork server and its imports each): the fast tests draw here."""
    figure_pool.close()
    monkeypatch.setenv("MEMLAB_FIGURE_WORKERS", "2" if request.param == "workers" else "0")
    yield request.param
    figure_pool.close()


def test_a_finished_run_holds_its_figures_the_same_bytes_as_drawn_here(store, mode, tmp_path):
    with tracking.run("r") as run_id:
        painter.paint(run_id, "curves.png", "figures.learning_curves", HISTORY, title="t")
        painter.paint(run_id, "deep/more.png", figures.learning_curves, HISTORY)
    assert (figure_pool._pool is not None) == (mode == "workers")
    logged = _pngs(store, run_id)
    here = figure_pool.draw(
        "curves.png", figures.learning_curves, (HISTORY,), {"title": "t"}, tmp_path
    )
    assert set(logged) == {"curves.png", "deep/more.png"}
    assert logged["curves.png"] == open(here["curves.png"], "rb").read()
    assert store.get_run(run_id).info.status == "FINISHED"


def test_a_builder_returning_figures_by_name_logs_them_in_its_folder(store, mode):
    with tracking.run("r") as run_id:
        painter.paint(run_id, "pictures", two_figures, HISTORY)
    assert set(_pngs(store, run_id)) == {"pictures/a.png", "pictures/b.png"}


def test_a_figure_that_fails_to_draw_fails_the_run_and_says_why(store, mode):
    with pytest.raises(ValueError, match="cannot be drawn"):
        with tracking.run("r") as run_id:
            painter.paint(run_id, "curves.png", figures.learning_curves, HISTORY)
            painter.paint(run_id, "broken.png", broken_builder)
    run = store.get_run(run_id)
    assert run.info.status == "FAILED"
    assert "cannot be drawn" in run.data.tags["error"]


def test_a_run_that_fails_keeps_the_figures_drawn_already(store, mode):
    with pytest.raises(RuntimeError):
        with tracking.run("r") as run_id:
            painter.paint(run_id, "curves.png", "figures.learning_curves", HISTORY)
            painter._pending[run_id][0][1].result()  # drawn
            raise RuntimeError("the run broke")
    assert run_id not in painter._pending
    assert store.get_run(run_id).info.status == "FAILED"
    assert set(_pngs(store, run_id)) == {"curves.png"}


def test_an_arms_figures_are_drawn_while_its_study_goes_on_and_in_it_when_the_study_ends(
    store, mode
):
    with tracking.run("study") as study:
        with tracking.run("arm", parent_run_id=study, figures_with=study) as arm:
            painter.paint(arm, "curves.png", "figures.learning_curves", HISTORY)
        assert store.get_run(arm).info.status == "FINISHED"  # the next arm can start
        assert arm not in painter._pending and len(painter._pending[study]) == 1
    assert set(_pngs(store, arm)) == {"curves.png"}
    assert not _pngs(store, study)


def test_a_study_that_fails_keeps_what_its_finished_arms_drew(store, mode):
    with pytest.raises(RuntimeError):
        with tracking.run("study") as study:
            with tracking.run("arm", parent_run_id=study, figures_with=study) as arm:
                painter.paint(arm, "curves.png", "figures.learning_curves", HISTORY)
            painter._pending[study][0][1].result()  # drawn
            raise RuntimeError("the second arm broke")
    assert set(_pngs(store, arm)) == {"curves.png"}
    assert store.get_run(study).info.status == "FAILED"


def test_a_program_started_as_a_script_draws_in_its_own_process(tmp_path, monkeypatch):
    """A worker would run the script again (multiprocessing re-imports the main module)."""
    import subprocess
    import sys

    monkeypatch.delenv("MEMLAB_FIGURE_WORKERS", raising=False)
    script = tmp_path / "script.py"
    script.write_text("from pipeline.runtime import figure_pool\nprint(figure_pool.workers())\n")
    as_script = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    as_module = subprocess.run(
        [sys.executable, "-m", "script"], capture_output=True, text=True, cwd=tmp_path
    )
    assert as_script.stdout.strip() == "0", as_script.stderr
    assert int(as_module.stdout) >= 1, as_module.stderr


@pytest.mark.parametrize("workers", ["0", pytest.param("1", marks=pytest.mark.slow)])
def test_a_process_that_drew_figures_leaves_no_folder_behind(tmp_path, workers):
    """Drawn by a worker or by the process itself, a figure waits in a temporary folder until
    it is logged; the folder goes when the process ends."""
    import prefork
    from helpers import clean_env

    code = (
        "from pipeline.runtime import figure_pool\n"
        "job = ('c.png', 'figures.learning_curves', ({'train_loss': [1.0]},), {})\n"
        "print(figure_pool.result(figure_pool.submit(job), job))\n"
    )
    env = clean_env(figure_workers=workers, TMPDIR=str(tmp_path))
    done = prefork.run(["-c", code], tmp_path, env, clean_env(), timeout=120)
    assert done.returncode == 0 and "c.png" in done.stdout, done.stderr  # it drew
    assert list(tmp_path.glob("memlab-figures-*")) == []


@pytest.mark.slow
def test_a_run_whose_figures_are_named_never_loads_matplotlib(tmp_path):
    """Named builders are imported by the workers: the run's process is spared matplotlib."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pipeline.tracking import painter, store\n"
        f"store.configure('sqlite:///{tmp_path}/m.db', 'e')\n"
        "with store.run('r') as run_id:\n"
        "    painter.paint(run_id, 'c.png', 'figures.learning_curves', {'train_loss': [1.0]})\n"
        "print('matplotlib' in sys.modules)\n"
    )
    env = {**__import__("os").environ, "MEMLAB_FIGURE_WORKERS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.stdout.strip() == "False", proc.stderr


FIGURES = {
    "learning_curves.png",
    "confusion_matrix.png",
    "first_layer_weights.png",
    "examples/cartography.png",
    "examples/forgetting_events.png",
    "examples/gallery_never_learned.png",
    "examples/gallery_most_forgotten.png",
    "examples/gallery_learned_last.png",
}


@pytest.mark.slow
def test_every_run_of_a_sweep_and_of_its_arms_holds_every_figure(workdir):
    """Jobs leave their figures to the sweep, arms to their study: all there at the end."""
    from helpers import clean_env, run_module, search

    done = run_module(
        "pipeline",
        workdir,
        "-m",
        "+experiment=shuffled_labels",
        "seed=0,1",
        "model.max_epochs=2",
        "model.hidden_layer_sizes=[16]",
        env=clean_env(figure_workers=None),  # memlab's own figure workers
    )
    assert done.returncode == 0, done.stderr
    runs = search(workdir)
    client = MlflowClient()
    arms = runs[runs["tags.arm"].notna()]
    assert sorted(arms["tags.arm"]) == ["control", "control", "probe", "probe"]
    for run_id in arms["run_id"]:
        assert set(_pngs(client, run_id)) == FIGURES
    assert set(runs["status"]) == {"FINISHED"}


def test_a_bad_worker_count_is_a_one_line_error(monkeypatch):
    from pipeline.errors import ConfigError

    figure_pool.close()
    monkeypatch.setenv("MEMLAB_FIGURE_WORKERS", "two")
    with pytest.raises(ConfigError, match="MEMLAB_FIGURE_WORKERS must be a whole number"):
        figure_pool.start()
    assert not figure_pool._started


@pytest.mark.slow
def test_a_worker_that_dies_costs_no_figure(store, monkeypatch):
    figure_pool.close()
    monkeypatch.setenv("MEMLAB_FIGURE_WORKERS", "1")
    with tracking.run("r") as run_id:
        painter.paint(run_id, "dies.png", die_in_a_worker, HISTORY)
        painter.paint(run_id, "curves.png", "figures.learning_curves", HISTORY)
    assert set(_pngs(store, run_id)) == {"dies.png", "curves.png"}  # drawn again, here
    assert store.get_run(run_id).info.status == "FINISHED"
    assert figure_pool._pool is None  # the rest of the process draws its own
    figure_pool.close()
