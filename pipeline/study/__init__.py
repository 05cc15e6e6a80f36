"""The study layer: what a run computes (probes, the epoch loop, evaluation), returned as typed results.

Pure NumPy and scikit-learn: no MLflow, no Hydra, no files, no prints.
"""
