"""Reproducible numerics: which BLAS kernel, NumPy loops and BLAS threads every run uses.

NumPy's matrix products run in its wheel's OpenBLAS, whose bits depend on the kernel it picks
for the CPU (SkylakeX with AVX-512, Haswell with AVX2, Zen, ...: each sums in its own order)
and on the threads that split the work. Both are settings (the config group ``numerics``):
``reproducible`` (the default) pins the Haswell kernel, which every x86-64 CPU since 2013 runs,
one thread, and NumPy's own SIMD loops at AVX2 (``numpy_loops``), so that the same
configuration gives the same bits on any x86-64 machine, under any launcher, whatever
``OPENBLAS_NUM_THREADS`` says; ``native`` lets the machine choose all three, for speed, and its
runs say that their bits are machine-specific. How, since both are read once, as NumPy loads:

1. ``import pipeline`` calls :func:`prepare`, which sets ``OPENBLAS_CORETYPE`` and
   ``NPY_DISABLE_CPU_FEATURES`` before any submodule imports NumPy. Every entry point imports
   the package first. The kernel comes from the command line (``numerics=native``,
   ``numerics.blas_kernel=...``), else from the parent memlab process (``MEMLAB_BLAS_KERNEL``:
   joblib's workers and DVC's stages inherit the environment), else the default, Haswell.
2. At the start of a run :func:`apply` pins the thread count (threadpoolctl) and checks that
   the kernel and loops in use are the configured ones. A DVC stage whose params ask for
   another kernel restarts itself once with the right environment; anywhere else a mismatch
   is a one-line ``ConfigError`` that says what to do.
3. :func:`tags` describes the numerics in use for MLflow.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline import numpy_loops
from pipeline.errors import ConfigError

MODES = ("reproducible", "native")
DEFAULT_KERNEL = "Haswell"
NATIVE = "native"
KERNEL_ENV = "MEMLAB_BLAS_KERNEL"  # the kernel a memlab process chose, for its children
RESTART_ENV = "MEMLAB_NUMERICS_RESTARTED"
SHELL_ENV = "MEMLAB_SHELL_CORETYPE"  # OPENBLAS_CORETYPE as the shell had it: native's choice
CONF = Path(__file__).resolve().parents[1] / "conf" / "numerics"
X86_64 = ("x86_64", "amd64")


@dataclass(frozen=True)
class NumericsSettings:
    """The ``numerics`` config group, validated."""

    mode: str = "reproducible"  # reproducible | native: how the run is labelled
    blas_kernel: str = DEFAULT_KERNEL  # an OpenBLAS core type (x86-64), or native
    blas_threads: int | None = 1  # None: OpenBLAS's own choice (all cores, or the launcher's)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> NumericsSettings:
        d = dict(d or {})
        unknown = sorted(set(d) - {"mode", "blas_kernel", "blas_threads"})
        if unknown:
            raise ConfigError(
                f"numerics.{unknown[0]} is not a setting (mode, blas_kernel, blas_threads)"
            )
        s = cls(**d)
        if s.mode not in MODES:
            raise ConfigError(f"numerics.mode: {s.mode!r} is not one of {', '.join(MODES)}")
        if not isinstance(s.blas_kernel, str) or not s.blas_kernel:
            raise ConfigError(
                f"numerics.blas_kernel must be an OpenBLAS core type (e.g. Haswell) or native, "
                f"got {s.blas_kernel!r}"
            )
        threads = s.blas_threads
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise ConfigError(
                f"numerics.blas_threads must be a whole number >= 1 or null, got {threads!r}"
            )
        if s.mode == "reproducible" and (s.blas_kernel == NATIVE or threads is None):
            raise ConfigError(
                "numerics.mode=reproducible needs a named numerics.blas_kernel and a whole "
                "numerics.blas_threads; choose numerics=native to let the machine decide"
            )
        return s

    @property
    def reproducible(self) -> bool:
        return self.mode == "reproducible"


_applied: NumericsSettings | None = None


def is_x86_64() -> bool:
    return platform.machine().lower() in X86_64


# ------------------------------------------------------------------ before NumPy loads
def prepare(argv: list[str] | None = None) -> None:
    """Choose the kernel and loops NumPy loads, here and in children, if it is not loaded yet.

    Called by ``import pipeline``; once NumPy is loaded they are fixed (:func:`apply` checks).
    """
    if "numpy" in sys.modules or not is_x86_64():
        return
    argv = sys.orig_argv if argv is None else argv
    kernel = kernel_from_argv(argv) or os.environ.get(KERNEL_ENV) or DEFAULT_KERNEL
    choose_kernel(kernel, os.environ)


def choose_kernel(kernel: str, environ) -> None:
    """Make ``environ`` load OpenBLAS with ``kernel``, and NumPy's loops capped at AVX2 unless
    ``native``: the machine's own choice (or what the shell had set before memlab did)."""
    environ.setdefault(SHELL_ENV, environ.get("OPENBLAS_CORETYPE", ""))
    environ[KERNEL_ENV] = kernel
    numpy_loops.cap(environ, capped=kernel != NATIVE)
    if kernel != NATIVE:
        environ["OPENBLAS_CORETYPE"] = kernel
    elif environ[SHELL_ENV]:
        environ["OPENBLAS_CORETYPE"] = environ[SHELL_ENV]
    else:
        environ.pop("OPENBLAS_CORETYPE", None)


def kernel_from_argv(argv: list[str]) -> str | None:
    """The kernel that Hydra overrides on the command line ask for, if they name one.

    ``numerics=native`` reads ``conf/numerics/native.yaml``; ``numerics.blas_kernel=X`` wins.
    A sweep over several options (``numerics=native,reproducible``) names none.
    """
    kernel = None
    for arg in argv:
        key, _, value = arg.lstrip("+").partition("=")
        if key == "numerics" and value and "," not in value:
            option = CONF / f"{value}.yaml"
            if option.is_file():
                import yaml

                kernel = kernel or (yaml.safe_load(option.read_text()) or {}).get("blas_kernel")
        elif key == "numerics.blas_kernel" and value and "," not in value:
            return value
    return kernel


# ------------------------------------------------------------------ at the start of a run
def blas_info() -> dict[str, Any] | None:
    """threadpoolctl's record of NumPy's own BLAS (None if NumPy uses none it can see)."""
    import numpy as np
    from threadpoolctl import threadpool_info

    here = Path(np.__file__).resolve().parent.parent
    libs = [i for i in threadpool_info() if i["user_api"] == "blas"]
    own = [i for i in libs if Path(i["filepath"]).resolve().is_relative_to(here / "numpy.libs")]
    own = own or [i for i in libs if "numpy" in i["filepath"]]
    return (own or libs or [None])[0]


def apply(
    settings: NumericsSettings | Mapping[str, Any] | None,
    *,
    restart: bool = False,
    cores: int | None = None,
) -> list[str]:
    """Pin the BLAS threads of ``settings`` and check that its kernel is the one in use.

    ``restart``: when the kernel differs, start this same command again with the right
    environment (once; for processes that have done nothing yet, like a DVC stage). Otherwise
    a kernel that differs raises ``ConfigError``. ``cores``: this job's share of the machine
    (its cores over the jobs running at once); ``blas_threads: null`` (``numerics=native``)
    then runs that many threads, so parallel jobs do not fight over cores. Returns notes for
    the user (a run whose bits are machine-specific, or that x86-64 results are not
    comparable here).
    """
    global _applied
    s = settings if isinstance(settings, NumericsSettings) else NumericsSettings.from_dict(settings)
    if s.blas_threads is None and cores is not None:
        s = replace(s, blas_threads=max(1, cores))
    blas = blas_info()
    if blas is None or blas.get("internal_api") != "openblas":
        if s.reproducible:
            found = blas["internal_api"] if blas else "no BLAS threadpoolctl can see"
            raise ConfigError(
                f"numerics=reproducible needs the OpenBLAS of NumPy's wheels, this NumPy uses "
                f"{found}: install from requirements.lock (make install), or use numerics=native"
            )
    elif is_x86_64() and not _kernel_matches(s.blas_kernel, blas):
        if restart and not os.environ.get(RESTART_ENV) and _is_own_command():
            _restart(s.blas_kernel)
        raise ConfigError(
            f"numerics.blas_kernel={s.blas_kernel}, but NumPy's OpenBLAS was loaded with "
            f"{_loaded(blas)}: the kernel is chosen when NumPy loads, so pass numerics=... on the "
            "command line (not in a config file) and import pipeline before numpy"
        )
    if is_x86_64() and s.blas_kernel != NATIVE:
        numpy_loops.check(f"numerics.blas_kernel={s.blas_kernel}")
    if s.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(s.blas_threads, user_api="blas")
        blas = blas_info()
        if blas is not None and blas["num_threads"] != s.blas_threads:
            raise ConfigError(
                f"numerics.blas_threads={s.blas_threads}, but OpenBLAS runs "
                f"{blas['num_threads']} threads (it was built for fewer)"
            )
    _applied = s
    return notes(s)


def _kernel_matches(wanted: str, blas: dict[str, Any]) -> bool:
    if wanted == NATIVE:  # loaded with the shell's own OPENBLAS_CORETYPE, or none
        shell = os.environ.get(SHELL_ENV, os.environ.get("OPENBLAS_CORETYPE", ""))
        chosen = os.environ.get(KERNEL_ENV, NATIVE)
        return chosen == NATIVE and os.environ.get("OPENBLAS_CORETYPE", "") == shell
    return str(blas.get("architecture", "")).lower() == wanted.lower()


def _loaded(blas: dict[str, Any]) -> str:
    forced = os.environ.get("OPENBLAS_CORETYPE")
    how = f"OPENBLAS_CORETYPE={forced}" if forced else "the machine's own choice"
    return f"{blas.get('architecture')} ({how})"


def _is_own_command() -> bool:
    """Whether this process is ``python -m pipeline...`` (never restart a test runner)."""
    argv = sys.orig_argv
    i = argv.index("-m") if "-m" in argv else -1
    return 0 <= i < len(argv) - 1 and argv[i + 1].startswith("pipeline")


def _restart(kernel: str) -> None:
    """Run this same command again in a fresh interpreter that loads OpenBLAS with ``kernel``."""
    env = dict(os.environ)
    choose_kernel(kernel, env)
    env[RESTART_ENV] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def notes(s: NumericsSettings) -> list[str]:
    """What a user should know about the comparability of this run's numbers."""
    out = []
    if not s.reproducible:
        out.append(
            "numerics=native: these numbers are specific to this machine's BLAS kernel and "
            "thread count (the default numerics=reproducible gives the same bits on any x86-64)"
        )
    if not is_x86_64():
        out.append(
            f"on {platform.machine()} OpenBLAS runs its own kernels: these numbers are "
            "comparable with runs on the same kind of CPU, not with x86-64 results"
        )
    return out


# ------------------------------------------------------------------ what a run records
def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def tags() -> dict[str, str]:
    """MLflow tags describing the numerics in use (``numerics.*``)."""
    from importlib.metadata import PackageNotFoundError, version

    import numpy as np

    blas = blas_info() or {}
    try:
        sklearn = version("scikit-learn")
    except PackageNotFoundError:
        sklearn = "not installed"
    s = _applied
    reproducible = s is not None and s.reproducible
    if not is_x86_64():
        comparable = f"only with {platform.machine()} runs of the same kernel, not with x86-64"
    elif reproducible:
        comparable = "with any x86-64 run of the same configuration and requirements.lock"
    else:
        comparable = "only with runs on this kind of machine (machine-specific bits)"
    return {
        "numerics.mode": s.mode if s else "not pinned",
        "numerics.reproducible": "true" if reproducible else "false",
        "numerics.comparable": comparable,
        "numerics.numpy": np.__version__,
        "numerics.sklearn": sklearn,
        "numerics.blas": f"{blas.get('internal_api', '?')} ({blas.get('prefix', '?')})",
        "numerics.blas_version": str(blas.get("version")),
        "numerics.blas_kernel": str(blas.get("architecture")),
        "numerics.blas_threads": str(blas.get("num_threads")),
        "numerics.numpy_loops": numpy_loops.in_use(),
        "numerics.cpu": cpu_model(),
        "numerics.python": platform.python_version(),
        "numerics.machine": platform.machine(),
    }
