"""``python -m pipeline.bench``."""

from pipeline.bench.cli import main

main()
