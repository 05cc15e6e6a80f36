"""The study layer: what a run computes (probes, epoch loop, evaluation), as typed results.

Pure NumPy and scikit-learn: no MLflow, no Hydra, no files, no prints.
"""
