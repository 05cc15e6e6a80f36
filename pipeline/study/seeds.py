"""One config seed, many independent streams: each random choice gets its own derived seed."""

from __future__ import annotations

import zlib

import numpy as np


def derive_seed(seed: int, purpose: str) -> int:
    """A seed for ``purpose`` (e.g. "split", "labels") that depends only on ``seed`` and the name.

    Different purposes get statistically independent streams, so adding a probe never changes
    the split or the initialisation of an otherwise identical run.
    """
    sequence = np.random.SeedSequence([seed, zlib.crc32(purpose.encode())])
    return int(sequence.generate_state(1, dtype=np.uint32)[0])
