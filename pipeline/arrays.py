"""Arrays as ``.npz`` files whose bytes depend on the arrays alone (no timestamps, no pickles).

``np.savez`` stamps each member with the current time, so an unchanged result would be a
changed file; here every member carries a fixed date. Read back with ``allow_pickle=False``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip member can carry


def save_arrays(path: Path, arrays: Mapping[str, np.ndarray], *, compressed: bool = False) -> None:
    """Write ``arrays`` as an ``.npz`` (deflated if ``compressed``), same arrays, same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    compression = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            with archive.open(member, "w", force_zip64=True) as stream:
                np.lib.format.write_array(stream, np.asanyarray(array), allow_pickle=False)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, by name; refuses pickled objects."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}
