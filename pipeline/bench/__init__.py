"""The benchmark: ``python -m pipeline.bench`` (the peers, the whole run, the verdict on each target)."""
