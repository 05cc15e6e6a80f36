"""NumPy's own SIMD loops: capped at AVX2 when the BLAS kernel is pinned, for the same bits.

When NumPy loads, it picks for each element-wise function (``exp``, ``log``, ``maximum``, ...)
the fastest loop the CPU has. Its AVX-512 loops of ``exp`` and ``log`` in float64 round
differently from its AVX2 ones (1 ulp on about 5% of values), so a float64 model trained on an
AVX-512 Xeon and on an AVX2 machine drifts apart after a few epochs. (In float32, the default
model dtype, the softmax's probabilities are rounded to float32, which hid it.) So a run that
pins its BLAS kernel (``numerics=reproducible``: Haswell, AVX2) also caps NumPy's loops at AVX2
(``X86_V3``), through ``NPY_DISABLE_CPU_FEATURES``, which NumPy reads once, when it loads:
:func:`cap` is called by ``numerics.choose_kernel`` beside ``OPENBLAS_CORETYPE``, and
:func:`check` tells ``numerics.apply`` whether the NumPy loaded obeyed.
``numerics=native`` keeps the machine's own loops (and whatever the shell disabled).
"""

from __future__ import annotations

from collections.abc import MutableMapping

from pipeline.errors import ConfigError

ENV = "NPY_DISABLE_CPU_FEATURES"
SHELL_ENV = "MEMLAB_SHELL_NPY_DISABLE"  # NPY_DISABLE_CPU_FEATURES as the shell had it
# NumPy's dispatch targets above AVX2: their names since NumPy 2.4, and before it.
ABOVE_AVX2 = ("X86_V4", "AVX512_ICL", "AVX512_SPR")
ABOVE_AVX2_BEFORE_2_4 = ("AVX512F", "AVX512CD", "AVX512_KNL", "AVX512_KNM", "AVX512_SKX",
                         "AVX512_CLX", "AVX512_CNL", "AVX512_ICL", "AVX512_SPR")  # fmt: skip


def _targets() -> tuple[str, ...]:
    """The names this NumPy gives its targets above AVX2 (read without importing NumPy)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = (int(part) for part in version("numpy").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return ABOVE_AVX2
    return ABOVE_AVX2 if (major, minor) >= (2, 4) else ABOVE_AVX2_BEFORE_2_4


def cap(environ: MutableMapping[str, str], capped: bool) -> None:
    """Make NumPy load without its loops above AVX2 (``capped``), or with the shell's choice."""
    shell = environ.setdefault(SHELL_ENV, environ.get(ENV, ""))
    names = shell.split()
    if capped:
        names += [name for name in _targets() if name not in names]
    if names:
        environ[ENV] = " ".join(names)
    else:
        environ.pop(ENV, None)


def above_avx2() -> list[str]:
    """The dispatch targets above AVX2 that the NumPy loaded in this process may use."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # what numpy.show_runtime reads; absent: nothing to say
        return []
    return [t for t in __cpu_dispatch__ if __cpu_features__.get(t) and t in _targets()]


def check(setting: str) -> None:
    """Raise ``ConfigError`` if NumPy loaded loops above AVX2, which ``setting`` rules out."""
    above = above_avx2()
    if above:
        raise ConfigError(
            f"{setting} needs NumPy's AVX2 loops, but NumPy was loaded with {' '.join(above)} "
            f"(set {ENV} before it loads): import pipeline before numpy"
        )


def in_use() -> str:
    """NumPy's loops, for the run's tags: capped at AVX2, or the targets above it in use."""
    above = above_avx2()
    return f"the machine's own (up to {above[-1]})" if above else "up to AVX2 (X86_V3)"
