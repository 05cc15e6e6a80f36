"""memlab: how neural networks memorize and when they generalize.

The core (``data``, ``split``, ``probes``, ``models``, ``evaluate``) is plain NumPy over
``(n_samples, n_features)`` arrays; ``__main__`` (Hydra) and ``tracking`` (MLflow) are the edges.
"""

__version__ = "0.1.0"
