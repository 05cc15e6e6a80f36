"""``python -m pipeline.bench``."""

from pipeline.bench.peers import main

main()
