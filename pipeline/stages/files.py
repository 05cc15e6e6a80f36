"""The files the DVC stages hand to each other, written so that equal results are equal bytes.

- arrays: ``.npz`` archives (read with ``np.load(path, allow_pickle=False)``) whose members
  carry a fixed timestamp, unlike ``np.savez``, which stamps the current time;
- metrics: JSON with a fixed key order and floats to ``SIGNIFICANT`` significant digits;
- plots: CSV tables, one row per epoch or per example, the same float format.

An unchanged result is then an unchanged file, so DVC sees no change downstream.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.split import Splits

# Enough digits to tell runs apart, few enough to read, and stable under last-bit noise.
SIGNIFICANT = 6
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip member can carry


def save_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz``, identical bytes for identical arrays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            with archive.open(member, "w", force_zip64=True) as stream:
                np.lib.format.write_array(stream, np.asanyarray(array), allow_pickle=False)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def save_splits(path: Path, splits: Splits, *, n_classes: int) -> None:
    """The six split arrays and the number of classes, in one archive."""
    arrays = {field.name: getattr(splits, field.name) for field in fields(Splits)}
    save_arrays(path, {**arrays, "n_classes": np.array(n_classes)})


def load_splits(path: Path) -> tuple[Splits, int]:
    """``(splits, n_classes)`` as ``save_splits`` wrote them."""
    arrays = load_arrays(path)
    n_classes = int(arrays.pop("n_classes"))
    return Splits(**arrays), n_classes


def _number(value: Any) -> Any:
    """Ints stay ints; floats are rounded to ``SIGNIFICANT`` digits; NaN and inf are refused."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"refusing to write a non-finite value ({value})")
    return float(f"{value:.{SIGNIFICANT}g}")


def _rounded(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {str(key): _rounded(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_rounded(value) for value in data]
    return _number(data)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Metrics or metadata as JSON: keys in the order given, floats rounded (``_number``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_rounded(data), indent=2) + "\n")


def write_table(path: Path, columns: Mapping[str, Sequence]) -> None:
    """A CSV of equally long ``columns`` (name -> values), in the order given."""
    lengths = {len(values) for values in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"columns of {path} differ in length: {sorted(lengths)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [",".join(columns)]
    for row in zip(*columns.values(), strict=True):
        rows.append(",".join(_cell(value) for value in row))
    path.write_text("\n".join(rows) + "\n")


def _cell(value: Any) -> str:
    value = _number(value)
    return f"{value:.{SIGNIFICANT}g}" if isinstance(value, float) else str(value)
