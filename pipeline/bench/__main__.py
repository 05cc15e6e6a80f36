"""``python -m pipeline.bench``, on this machine's own BLAS kernel.

NumPy's kernel is chosen when it loads (``pipeline.numerics``), and memlab's default is the
reproducible Haswell one. Timing NumPy against PyTorch (MKL, AVX-512 where there is some) and
the floor is fair only on the kernel a user who wants speed gets, ``numerics=native``: so the
benchmark starts itself again that way, once. The ``python -m pipeline`` runs it times get
memlab's default back (``whole_run.child_env``).
"""

import os
import sys

from pipeline import numerics

if "--child" not in sys.argv and os.environ.get(numerics.KERNEL_ENV) != numerics.NATIVE:
    env = dict(os.environ)
    numerics.choose_kernel(numerics.NATIVE, env)
    os.execve(sys.executable, [sys.executable, "-m", "pipeline.bench", *sys.argv[1:]], env)

from pipeline.bench.bench_cli import main  # noqa: E402 - after the kernel is settled

main()
