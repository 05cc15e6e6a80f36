"""Reports and figures: ``python -m pipeline.report`` over MLflow runs; every run's figures."""
