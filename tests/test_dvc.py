"""The DVC pipeline (``dvc.yaml``): it reruns exactly what changed, and reruns are identical.

Fast tests check the wiring: each stage imports exactly the code and reads exactly the params
``dvc.yaml`` declares, ``params.yaml`` is the composition of ``conf/``, equal results are equal
bytes, a saved model predicts as it did when trained, and the probe stages build the same
arms as ``python -m pipeline``. The slow tests run the real ``dvc repro`` and ``dvc exp run``
in a temporary git repository copy of the project, with tiny settings (3 epochs on digits),
recording into that copy's own MLflow store; its stages run forked from a process that has
imported the copy's code (``tests/prefork.py``). The fresh clone's run fresh interpreters.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import prefork
import pytest
import yaml
from helpers import ROOT, clean_env

from pipeline.arrays import load_arrays, save_arrays
from pipeline.models.weights import load_model, save_weights
from pipeline.settings import DataSettings, ModelSettings, SplitSettings, TrainSettings
from pipeline.stages.common import load_splits, save_splits, stage_params, write_json
from pipeline.study.run import Arm, fit_arm, load_data, summarize_data

PIPELINE = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = set(PIPELINE["stages"])
TRACKING = {"train", "evaluate", "memorize", "noise"}  # the stages that train or evaluate
DRAWING = {"figures"}  # the stages that draw: the only ones a figure's code reruns
# What splitting the data may depend on: the data layer, the leaves it stands on, the seeds.
DATA_LAYER = {
    "pipeline/__init__.py",
    "pipeline/arrays.py",
    "pipeline/constraints.py",
    "pipeline/errors.py",
    "pipeline/numerics.py",
    "pipeline/numpy_loops.py",
    "pipeline/options.py",
    "pipeline/stages/common.py",
    "pipeline/stages/prepare_stage.py",
    "pipeline/study/seeds.py",  # derive_seed: the split's own stream of the run's seed
}
# null: the stages must record the learning rate they use (0.1 for cross-entropy), not "None".
TINY = ["model.max_epochs=3", "probe.noise.n=100", "model.learning_rate=null"]
SPLIT = {"train": 0.7, "val": 0.15, "test": 0.15}


# ------------------------------------------------------------------ helpers
def stage_module(stage: str) -> str:
    """The module a stage runs: ``python -m MODULE``, its ``cmd`` in dvc.yaml."""
    command = PIPELINE["stages"][stage]["cmd"].split()
    assert command[:2] == ["python", "-m"], command
    return command[2]


def module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.exists():
            return candidate
    return None


def imported_code(module: str) -> set[str]:
    """Every pipeline module ``module`` can import, lazily or not (static, transitive)."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        # Importing pipeline.a.b runs pipeline/__init__.py and pipeline/a/__init__.py first.
        todo += [name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1)]
        path = module_file(name)
        if path is None or path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names if alias.name.startswith("pipeline")]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline"):
                todo += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    # A package's __init__.py that holds only its docstring cannot change a result.
    seen = {path for path in seen if not (path.name == "__init__.py" and _docstring_only(path))}
    return {path.relative_to(ROOT).as_posix() for path in seen}


def _docstring_only(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return (
        len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    )


def compose(params_file: Path, project: Path, overrides: list[str]) -> None:
    """Write ``params_file`` as ``dvc exp run -S OVERRIDE ...`` composes it in ``project``."""
    from dvc.repo import Repo
    from dvc.utils.hydra import compose_and_dump

    hydra = Repo(str(project)).config["hydra"]
    assert hydra["enabled"], ".dvc/config: hydra.enabled must be true"
    config_dir = str(project / hydra.get("config_dir", "conf"))
    compose_and_dump(
        params_file, config_dir, None, hydra.get("config_name", "config"), "", overrides
    )


def digits_splits():
    return load_data(DataSettings("digits", {}), SplitSettings(**SPLIT), seed=0)


def trained(name: str, epochs: int = 2):
    dataset, splits = digits_splits()
    model = ModelSettings.from_config(
        {
            "name": name,
            "hidden_layer_sizes": [16],
            "activation": "relu",
            "loss": "cross_entropy",
            "learning_rate": 0.5,
            "momentum": 0.0,
            "weight_decay": 0.0,
            "batch_size": 32,
            "max_epochs": epochs,
            "dtype": "float32",
        }
    )
    arm = Arm("run", splits, splits.y_train, None)
    estimator, _ = fit_arm(arm, model, TrainSettings(), 0, n_classes=10)
    return dataset, splits, estimator


# ------------------------------------------------------------------ wiring (fast)
def test_each_stage_declares_exactly_the_code_it_imports():
    for stage, spec in PIPELINE["stages"].items():
        declared = {dep for dep in spec["deps"] if dep.startswith("pipeline/")}
        assert declared == imported_code(stage_module(stage)), stage


def test_the_lock_holds_the_code_as_committed():
    """dvc.lock's hash of every code dep is the file's: a stale lock fails here, in a second."""
    import hashlib

    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    stale = sorted(
        {
            dep["path"]
            for stage in lock["stages"].values()
            for dep in stage["deps"]
            if dep["path"].startswith("pipeline/")
            and hashlib.md5((ROOT / dep["path"]).read_bytes()).hexdigest() != dep["md5"]
        }
    )
    assert stale == [], f"dvc.lock is stale for {stale}: run dvc repro and commit dvc.lock"


def test_prepare_depends_on_the_data_layer_only():
    from pipeline.settings import CONSTRAINTS
    from pipeline.stages.prepare_stage import SEED

    deps = imported_code("pipeline.stages.prepare_stage")
    assert {dep for dep in deps if not dep.startswith("pipeline/data/")} <= DATA_LAYER
    assert SEED == CONSTRAINTS["seed"] == CONSTRAINTS["split.seed"].inner  # one constraint


def test_only_the_drawing_stages_depend_on_figure_code():
    for stage in STAGES:
        deps = imported_code(stage_module(stage))
        drawing = {d for d in deps if d.startswith("pipeline/report/") or d.endswith("/painter.py")}
        assert bool(drawing) == (stage in DRAWING), (stage, drawing)


@pytest.mark.slow
def test_each_stage_reads_exactly_the_params_dvc_tracks_for_it(monkeypatch):
    import dvc.api

    monkeypatch.chdir(ROOT)
    for stage in STAGES:
        assert stage_params(stage) == dvc.api.params_show(stages=stage), stage


def test_params_yaml_is_the_composition_of_conf(tmp_path):
    composed = tmp_path / "params.yaml"
    compose(composed, ROOT, [])
    if composed.read_bytes() == (ROOT / "params.yaml").read_bytes():
        return
    changed = subprocess.run(
        ["git", "diff", "--quiet", "HEAD", "--", "params.yaml"], cwd=ROOT, check=False
    )
    if changed.returncode == 1:
        pytest.skip("params.yaml has uncommitted changes (an experiment's params?)")
    pytest.fail("params.yaml is out of date with conf/: run `dvc exp run` and commit params.yaml")


def test_arrays_are_the_same_bytes_whenever_written(tmp_path, monkeypatch):
    arrays = {"X": np.arange(12, dtype=np.float32).reshape(3, 4), "y": np.arange(3)}
    save_arrays(tmp_path / "a.npz", arrays)
    monkeypatch.setattr(time, "time", lambda: 2e9)  # np.savez would stamp this into the zip
    save_arrays(tmp_path / "b.npz", arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = load_arrays(tmp_path / "a.npz")
    assert all(
        np.array_equal(loaded[k], v) and loaded[k].dtype == v.dtype for k, v in arrays.items()
    )


def test_metrics_are_rounded_in_order_and_never_nan(tmp_path):
    write_json(tmp_path / "m.json", {"b": 1 / 3, "a": 7, "none": None, "nested": {"x": 2e-9 / 3}})
    written = json.loads((tmp_path / "m.json").read_text())
    assert written == {"b": 0.333333, "a": 7, "none": None, "nested": {"x": 6.66667e-10}}
    assert list(written) == ["b", "a", "none", "nested"]  # the order given, not sorted
    with pytest.raises(ValueError, match="non-finite"):
        write_json(tmp_path / "nan.json", {"loss": float("nan")})


@pytest.mark.parametrize("name", ["numpy_mlp", "sklearn_mlp"])
def test_a_saved_model_predicts_exactly_as_trained(tmp_path, name):
    _, splits, model = trained(name)
    save_weights(model, tmp_path / "a")
    loaded = load_model(tmp_path / "a")
    assert type(loaded) is type(model)
    assert np.array_equal(loaded.predict_proba(splits.X_test), model.predict_proba(splits.X_test))
    save_weights(loaded, tmp_path / "b")
    for file in ("weights.npz", "hyperparameters.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_the_saved_split_says_what_the_data_is(tmp_path):
    dataset, splits = digits_splits()
    save_splits(tmp_path / "s.npz", splits, summarize_data(dataset, splits))
    loaded, data = load_splits(tmp_path / "s.npz")
    assert data == summarize_data(dataset, loaded)
    assert (data.name, data.image_shape, data.n_classes) == ("digits", (8, 8), 10)
    for a, b in zip(vars(loaded).values(), vars(splits).values(), strict=True):
        assert np.array_equal(a, b) and a.dtype == b.dtype


# ------------------------------------------------------------------ real DVC runs (slow)
# A project copy's stages (``python -m pipeline.stages...``) forked from a server that has
# imported the copy's code and the libraries, as the CLI's runs are (tests/prefork.py): each
# stage would spend three to four of its CPU-seconds importing them again.
FORKED: dict[Path, str] = {}  # project: the folder of its server's ``python``


def _env(repo: Path | None = None) -> dict[str, str]:
    env = clean_env("DVC_", pythonpath=None)  # PYTHONPATH as inherited: the copy runs its code
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `python`
    if repo in FORKED:
        env["PATH"] = f"{FORKED[repo]}{os.pathsep}{env['PATH']}"
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def run(repo: Path, *args: str) -> str:
    """Run a command in ``repo``; its output, or a test failure that shows it."""
    done = subprocess.run(
        args, cwd=repo, env=_env(repo), capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def dvc(repo: Path, *args: str) -> str:
    return run(repo, sys.executable, "-m", "dvc", *args)


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git repository copy of the project, after its first ``dvc repro`` (committed), with
    a prefork server for its stages while the module's tests run."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path_factory.mktemp("project")
    listed = run(ROOT, "git", "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file() and not name.startswith(("repro/", "dvc.lock", "params.yaml")):
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    run(repo, "git", "init", "-q")
    compose(repo / "params.yaml", repo, TINY)
    run(repo, "git", "config", "user.email", "test@memlab")
    run(repo, "git", "config", "user.name", "memlab test")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "project")
    server = prefork.Server(_env(repo), root=repo) if prefork.enabled() else None
    if server is not None:
        FORKED[repo] = server.python()
    try:
        first = dvc(repo, "repro")
        run(repo, "git", "add", "-A")
        run(repo, "git", "commit", "-qm", "results")
        yield repo, first
    finally:
        FORKED.pop(repo, None)
        if server is not None:
            server.stop()


@pytest.mark.slow
def test_repro_runs_every_stage_and_records_it_in_mlflow(project):
    from mlflow.tracking import MlflowClient

    repo, first = project
    assert ran(first) == STAGES
    fingerprint = json.loads((repo / "repro/metrics/prepare.json").read_text())["fingerprint"]
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")  # MLflow's default, in the project
    runs = client.search_runs([client.get_experiment_by_name("memlab").experiment_id])
    assert {r.data.tags.get("dvc_stage") for r in runs} == TRACKING | DRAWING
    drawn = [r for r in runs if r.data.tags["dvc_stage"] == "figures"]
    figures = {a.path for a in client.list_artifacts(drawn[0].info.run_id)}
    assert {"learning_curves.png", "confusion_matrix.png", "memorize"} <= figures
    assert all(r.info.status == "FINISHED" for r in runs)
    assert {r.data.tags["data_fingerprint"] for r in runs} == {fingerprint}
    trained = [r for r in runs if r.data.tags.get("dvc_stage") in ("train", "memorize")]
    assert trained and {r.data.params.get("model.learning_rate") for r in trained} == {"0.1"}


@pytest.mark.slow
def test_a_second_repro_runs_nothing(project):
    repo, _ = project
    output = dvc(repo, "repro")
    assert ran(output) == set() and "up to date" in output


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "rerun"),
    [
        (["train.progress=false"], set()),  # no stage reads it
        (["probe.noise.n=50"], {"noise"}),
        # Only reported, not trained on: the model is the same bytes, so nothing downstream.
        (["train.stop_at_fit=false", "train.fit_threshold=0.5"], {"train", "memorize"}),
        # A param that changes the model reruns everything downstream:
        # test_exp_run_with_another_model_... below shows it (each case here is a repro).
    ],
)
def test_a_changed_param_reruns_only_what_depends_on_it(project, override, rerun):
    repo, _ = project
    compose(repo / "params.yaml", repo, [*TINY, *override])
    assert ran(dvc(repo, "repro")) == rerun
    run(repo, "git", "checkout", "--", ".")  # params, dvc.lock, metrics and plots as committed
    dvc(repo, "checkout")  # and the cached outputs (split arrays, model) that go with them


@pytest.mark.slow
def test_a_changed_figure_reruns_only_the_stages_that_draw(project):
    repo, _ = project
    figures = repo / "pipeline" / "report" / "figures.py"
    figures.write_text(figures.read_text() + "# a new colour\n")
    try:
        changed = json.loads(dvc(repo, "status", "--json"))
        assert set(changed) == DRAWING, changed
    finally:
        run(repo, "git", "checkout", "--", "pipeline/report/figures.py")
    assert json.loads(dvc(repo, "status", "--json")) == {}


@pytest.mark.slow
def test_exp_run_with_another_model_shows_both_side_by_side(project):
    from mlflow.tracking import MlflowClient

    repo, _ = project
    overrides = [arg for o in ["model=sklearn_mlp", *TINY] for arg in ("-S", o)]
    assert ran(dvc(repo, "exp", "run", *overrides)) == TRACKING | DRAWING
    assert yaml.safe_load((repo / "params.yaml").read_text())["model"]["name"] == "sklearn_mlp"
    shown = json.loads(dvc(repo, "exp", "show", "--json"))
    baseline = shown[1]  # [workspace, HEAD]
    experiment = baseline["experiments"][0]["revs"][0]
    evaluation = "repro/metrics/evaluate.json"
    models, accuracies = [], []
    for rev in (baseline, experiment):
        models.append(rev["data"]["params"]["params.yaml"]["data"]["model"]["name"])
        accuracies.append(rev["data"]["metrics"][evaluation]["data"]["test_accuracy"])
    assert models == ["numpy_mlp", "sklearn_mlp"]
    # MLPClassifier, driven from the same start through the same batches, learns what NumpyMLP
    # learns (tests/test_sklearn_mlp.py): the same accuracy, from a run that really used it.
    assert accuracies[0] == pytest.approx(accuracies[1], abs=0.01)
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    runs = client.search_runs(
        [client.get_experiment_by_name("memlab").experiment_id],
        f"tags.dvc_exp = '{experiment['name']}' and tags.dvc_stage = 'train'",
    )
    assert [r.data.tags["model"] for r in runs] == ["sklearn_mlp"]


@pytest.mark.slow
def test_the_committed_results_come_out_of_a_fresh_clone_byte_for_byte(tmp_path):
    """``dvc repro -f`` on a fresh clone of the committed project (its own params, the
    flagship) runs every stage again and rewrites ``dvc.lock`` and ``repro/`` as committed, on
    whatever x86-64 CPU this is: the numerics are pinned (``pipeline.numerics``). (This is also
    the test that a forced repro rewrites the very same bytes.)"""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the project's git repository")
    repo = tmp_path / "clone"
    run(ROOT, "git", "clone", "-q", str(ROOT), str(repo))
    assert ran(dvc(repo, "repro", "-f")) == STAGES
    changed = run(repo, "git", "status", "--porcelain", "--untracked-files=no")
    assert changed == "", f"dvc repro -f changed committed files:\n{changed}"
