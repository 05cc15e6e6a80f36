"""Reports and figures: ``python -m pipeline.report`` over MLflow runs, and the figures every run logs."""
