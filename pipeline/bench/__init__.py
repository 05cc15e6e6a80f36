"""The benchmark, ``python -m pipeline.bench``: the peers, the whole run, a verdict per target."""
