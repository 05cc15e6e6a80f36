"""Same configuration, same bits: under any launcher, thread environment and entry point.

Real runs into temporary MLflow stores; the kernel and threads each run used are read back from
its ``numerics.*`` tags, which threadpoolctl filled in inside that very process.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, clean_env

from pipeline import numerics, numpy_loops
from pipeline.errors import ConfigError

X86_64 = platform.machine().lower() in numerics.X86_64
x86_64_only = pytest.mark.skipif(not X86_64, reason="the Haswell kernel exists only on x86-64")
# Matrices big enough for OpenBLAS to split a product between threads (digits: 64 pixels).
WIDE = [
    "model.hidden_layer_sizes=[512]",
    "model.activation=relu",
    "model.loss=cross_entropy",
    "model.batch_size=256",
    "model.max_epochs=3",
    "train.progress=false",
    "train.record_examples=false",  # metrics are compared; the record would add 5 figures an arm
]


def _env(**extra: str) -> dict[str, str]:
    """A fresh shell's environment: no MLflow, memlab or thread choices inherited.

    The machine's own OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) and NPY_DISABLE_CPU_FEATURES, if
    it sets any, are kept.
    """
    env = clean_env("MEMLAB_", "DVC_", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    for variable, shell in (("OPENBLAS_CORETYPE", "MEMLAB_SHELL_CORETYPE"),
                            (numpy_loops.ENV, numpy_loops.SHELL_ENV)):  # fmt: skip
        if shell in os.environ:  # this test process changed it: undo that
            env.pop(variable, None)
            if os.environ[shell]:
                env[variable] = os.environ[shell]
    return {**env, **extra}


def _run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


def _runs(store: Path):
    """Every finished leaf run in ``store`` (no sweep parents), by seed then start time."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{store}")
    runs = mlflow.search_runs(search_all_experiments=True, order_by=["start_time ASC"])
    runs = (
        runs[runs["tags.memlab.sweep"].fillna("") != "parent"]
        if "tags.memlab.sweep" in runs
        else runs
    )
    return runs


def _metrics(runs) -> list[dict[str, float]]:
    cols = sorted(
        c
        for c in runs.columns
        if c.startswith("metrics.") and "seconds" not in c and "system/" not in c
    )
    by_seed = runs.sort_values("params.seed")
    # A column only another run has (a sweep parent's aggregates) is NaN here: not a metric.
    return [{c: row[c] for c in cols if row[c] == row[c]} for _, row in by_seed.iterrows()]


def _native_kernel() -> str:
    """The kernel OpenBLAS picks on this machine when nobody forces one."""
    code = (
        "import numpy, threadpoolctl as t; "
        "print([i['architecture'] for i in t.threadpool_info() if i['user_api'] == 'blas'][0])"
    )
    env = {k: v for k, v in _env().items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


# ------------------------------------------------------------------ settings (fast)
@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"mode": "fast"}, "numerics.mode"),
        ({"blas_kernel": "native"}, "numerics=native"),
        ({"blas_threads": None}, "numerics=native"),
        ({"blas_threads": 0}, "numerics.blas_threads"),
        ({"threads": 2}, "numerics.threads is not a setting"),
    ],
)
def test_bad_numerics_are_one_line_config_errors(given, words):
    with pytest.raises(ConfigError, match=words) as err:
        numerics.NumericsSettings.from_dict(given)
    assert "\n" not in str(err.value)


def test_the_command_line_names_the_kernel_before_numpy_loads():
    assert numerics.kernel_from_argv(["python", "-m", "pipeline", "numerics=native"]) == "native"
    assert numerics.kernel_from_argv(["-m", "pipeline", "+numerics=reproducible"]) == "Haswell"
    assert numerics.kernel_from_argv(["-m", "pipeline", "numerics.blas_kernel=Zen"]) == "Zen"
    assert (
        numerics.kernel_from_argv(["-m", "pipeline", "-m", "numerics=native,reproducible"]) is None
    )
    assert numerics.kernel_from_argv(["-m", "pipeline", "seed=1"]) is None


@x86_64_only
def test_the_tests_themselves_run_the_pinned_kernel_and_threads():
    blas = numerics.blas_info()
    assert (blas["architecture"], blas["num_threads"]) == ("Haswell", 1)
    tags = numerics.tags()
    assert tags["numerics.reproducible"] == "true" and tags["numerics.blas_kernel"] == "Haswell"
    for key in ("numpy", "sklearn", "blas", "blas_version", "cpu", "python", "machine"):
        assert tags[f"numerics.{key}"] not in ("", "None", "?"), key
    assert numpy_loops.above_avx2() == []
    assert tags["numerics.numpy_loops"] == "up to AVX2 (X86_V3)"


# A float64 model a few epochs on the digits, its weights' digest: softmax's exp and log in
# float64 are where NumPy's AVX-512 loops round differently from its AVX2 ones.
FLOAT64_DIGEST = """
import hashlib, sys
import pipeline
from pipeline import numerics, numpy_loops
import numpy as np
from sklearn.datasets import load_digits
from pipeline.models.numpy_mlp import NumpyMLP

numerics.apply(None)
X, y = load_digits(return_X_y=True)
model = NumpyMLP(hidden_layer_sizes=(64,), activation="relu", loss="cross_entropy",
                 learning_rate=0.1, momentum=0.9, random_state=0, dtype="float64")
for _ in range(5):
    model.partial_fit(X / 16, y, classes=np.arange(10))
print(hashlib.sha1(b"".join(w.tobytes() for w in model.coefs_)).hexdigest())
print(" ".join(numpy_loops.above_avx2()) or "-")
"""


@x86_64_only
@pytest.mark.slow
def test_a_float64_model_has_the_same_bits_on_a_cpu_without_avx512(tmp_path):
    """An AVX2-only CPU, as NumPy sees it (its AVX-512 loops disabled by the shell), trains the
    same bits as this one. On a machine without AVX-512 both runs are AVX2 runs already."""
    here = _run(tmp_path, "-c", FLOAT64_DIGEST).stdout.split()
    avx2_only = _env(**{numpy_loops.ENV: " ".join(numpy_loops._targets())})
    there = _run(tmp_path, "-c", FLOAT64_DIGEST, env=avx2_only).stdout.split()
    assert here == there and here[1] == "-"


@x86_64_only
def test_numpy_loaded_before_pipeline_with_its_avx512_loops_is_a_clear_error(tmp_path):
    code = "import numpy; from pipeline import numpy_loops; print(numpy_loops.above_avx2())"
    env = _env(OPENBLAS_CORETYPE="Haswell")  # the kernel is right: only the loops are not
    if _run(tmp_path, "-c", code, env=env).stdout.strip() == "[]":
        pytest.skip("this CPU has no NumPy loops above AVX2: nothing to tell apart")
    code = "import numpy; from pipeline import numerics; numerics.apply(None)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode != 0 and "needs NumPy's AVX2 loops" in last


@x86_64_only
def test_numpy_loaded_before_pipeline_with_another_kernel_is_a_clear_error(tmp_path):
    native = _native_kernel()
    if native == "Haswell":
        pytest.skip("this machine's own kernel is Haswell: nothing to tell apart")
    code = "import numpy; from pipeline import numerics; numerics.apply(None)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "ConfigError" in last and f"loaded with {native}" in last


# ------------------------------------------------------------------ real runs (slow)
@pytest.mark.slow
@x86_64_only
def test_basic_and_joblib_launchers_and_the_shells_blas_threads_give_the_same_bits(tmp_path):
    """The basic launcher in a shell that asks OpenBLAS for two threads, and joblib's worker
    processes in one that asks nothing: one pinned thread each, the same bits."""
    sweep = ["-m", "seed=0,1", *WIDE]
    stores = {}
    for launcher in ("basic", "joblib"):
        store = tmp_path / f"{launcher}.db"
        extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
        args = [f"mlflow.tracking_uri=sqlite:///{store}", f"hydra.sweep.dir={tmp_path / launcher}"]
        shell = _env(OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2") if launcher == "basic" else None
        _run(tmp_path, "-m", "pipeline", *sweep, *extra, *args, env=shell)
        stores[launcher] = _runs(store)
    basic, joblib = stores["basic"], stores["joblib"]
    assert len(basic) == len(joblib) == 2
    assert _metrics(basic) == _metrics(joblib)  # exact float equality
    for runs in (basic, joblib):  # joblib's in worker processes: pinned there too
        assert set(runs["tags.numerics.blas_kernel"]) == {"Haswell"}
        assert set(runs["tags.numerics.blas_threads"]) == {"1"}


@pytest.mark.slow
def test_native_uses_the_machines_kernel_and_shares_the_cores_between_jobs_at_once(tmp_path):
    """numerics=native: the machine's own kernel, said on the terminal and in the run, and the
    thread count left to memlab: all cores for one job at a time, cores / n_jobs for each of
    joblib's parallel jobs (not each job all of them)."""
    import os

    cores = len(os.sched_getaffinity(0))
    threads = {}
    for launcher, seeds, extra in (
        ("basic", "seed=0", []),
        ("joblib", "seed=0,1", ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]),
    ):
        store = tmp_path / f"{launcher}.db"
        args = [f"mlflow.tracking_uri=sqlite:///{store}", f"hydra.sweep.dir={tmp_path / launcher}"]
        sweep = ["-m", seeds, "numerics=native", *WIDE, *extra, *args]
        done = _run(tmp_path, "-m", "pipeline", *sweep)
        runs = _runs(store)
        threads[launcher] = set(runs["tags.numerics.blas_threads"])
        if launcher == "basic":  # the job ran in this process: its terminal
            assert "numerics=native: these numbers are specific to this machine" in done.stderr
        assert set(runs["tags.numerics.mode"]) == {"native"}
        assert set(runs["tags.numerics.reproducible"]) == {"false"}
        assert all("machine-specific" in text for text in runs["tags.numerics.comparable"])
        if X86_64:
            assert set(runs["tags.numerics.blas_kernel"]) == {_native_kernel()}
    assert threads == {"basic": {str(cores)}, "joblib": {str(max(1, cores // 2))}}


@pytest.mark.slow
@x86_64_only
def test_a_dvc_stage_runs_the_kernel_its_params_name(tmp_path):
    """``python -m pipeline.stages.train_stage`` as DVC runs it; native params restart it
    natively."""
    shutil.copy2(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"]["max_epochs"] = 2
    params["mlflow"]["tracking_uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = _env(OPENBLAS_NUM_THREADS="2")
    _run(tmp_path, "-m", "pipeline.stages.prepare_stage", env=env)
    _run(tmp_path, "-m", "pipeline.stages.train_stage", env=env)
    params["numerics"] = {"mode": "native", "blas_kernel": "native", "blas_threads": None}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    _run(tmp_path, "-m", "pipeline.stages.train_stage", env=env)
    runs = _runs(tmp_path / "mlflow.db")
    pinned, native = runs.iloc[0], runs.iloc[1]
    assert (pinned["tags.dvc_stage"], native["tags.dvc_stage"]) == ("train", "train")
    assert pinned["tags.numerics.blas_kernel"] == "Haswell"
    assert pinned["tags.numerics.blas_threads"] == "1"
    assert pinned["tags.numerics.reproducible"] == "true"
    assert native["tags.numerics.blas_kernel"] == _native_kernel()
    assert native["tags.numerics.reproducible"] == "false"
