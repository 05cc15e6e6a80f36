"""The stages of the DVC pipeline (``dvc.yaml``), one module each, run as ``python -m``.

``prepare`` (load + split) -> ``train`` -> ``evaluate``, and the two probes: ``memorize``
(shuffled labels against a true-label control) and ``noise`` (noise images shown the trained
model). Each module is pure functions over arrays plus a thin ``main()`` that reads the params
``dvc.yaml`` declares for it (``common``), writes its files (``files``, ``weights``) and
records itself in MLflow (``record``).

Everything a stage writes is a function of its inputs alone, byte for byte: no timings, run
ids or timestamps (those go to MLflow), so ``dvc repro -f`` rewrites identical files.
"""
