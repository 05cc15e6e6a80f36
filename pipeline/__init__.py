"""memlab: how neural networks memorize and when they generalize.

The core (``data``, ``split``, ``probes``, ``models``, ``evaluate``) is plain NumPy over
``(n_samples, n_features)`` arrays; ``__main__`` (Hydra) and ``tracking`` (MLflow) are the edges.

Importing the package first chooses the BLAS kernel NumPy will load (``pipeline.numerics``):
this must happen before anything imports NumPy, so keep it the first statement here.
"""

from pipeline import numerics as _numerics

_numerics.prepare()

__version__ = "0.1.0"
