"""What every DVC stage shares: its params, its files, its exit on error.

- **Params.** A stage reads only the params ``dvc.yaml`` lists for it, from ``params.yaml``,
  the single composed configuration (``dvc exp run`` writes it from ``conf/`` with Hydra;
  ``dvc repro`` uses it as it is). ``stage_params`` looks the list up in ``dvc.yaml`` itself,
  so the declaration DVC tracks and what the code reads cannot drift apart.
- **Files**, written so that equal results are equal bytes: the split as an ``.npz`` with
  fixed timestamps (``pipeline.arrays``); metrics as JSON with a fixed key order and floats
  to ``SIGNIFICANT`` digits; plots as CSV tables. No timings, run ids or timestamps (those go
  to MLflow), so ``dvc repro -f`` rewrites identical files.
- **MLflow** is not here (``pipeline.stages.stage_run``): ``prepare`` records nothing, and
  what a stage imports is what ``dvc.yaml`` makes it depend on.
- A problem the user can fix ends the stage with one line on stderr and exit 1 (``run_stage``).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import numerics
from pipeline.arrays import load_arrays, save_arrays
from pipeline.data.prepared import DataSummary
from pipeline.data.split import Splits, fingerprint
from pipeline.errors import ConfigError, MemlabError

DVC_FILE = Path("dvc.yaml")
PARAMS_FILE = Path("params.yaml")
# Everything the pipeline writes lives under OUT (paths relative to the project root, where
# DVC runs every stage). Metrics and plots are small and kept in git; the rest in DVC's cache.
OUT = Path("repro")
SPLITS = OUT / "splits.npz"
MODEL = OUT / "model"
METRICS = OUT / "metrics"
PLOTS = OUT / "plots"
# Enough digits to tell runs apart, few enough to read, and stable under last-bit noise.
SIGNIFICANT = 6


# ------------------------------------------------------------------ params
def stage_params(
    stage: str, *, dvc_file: Path = DVC_FILE, params_file: Path = PARAMS_FILE
) -> dict[str, Any]:
    """The params ``dvc.yaml`` lists for ``stage``, read from ``params.yaml``, nested as there.

    ``[seed, train.stop_at_fit]`` gives ``{"seed": 0, "train": {"stop_at_fit": False}}``;
    nothing else in ``params.yaml`` reaches the stage. The result equals
    ``dvc.api.params_show(stages=stage)``, without the second it takes to import DVC.
    """
    import yaml

    declared = yaml.safe_load(dvc_file.read_text())["stages"][stage].get("params", [])
    composed = yaml.safe_load(params_file.read_text()) or {}
    params: dict[str, Any] = {}
    for key in declared:
        if not isinstance(key, str):
            raise ValueError(f"dvc.yaml: stage {stage} may only read keys of {params_file}")
        value: Any = composed
        for part in key.split("."):
            if not isinstance(value, Mapping) or part not in value:
                raise ConfigError(
                    f"{params_file} has no {key}, which stage {stage} reads: "
                    "compose it again from conf/ with `dvc exp run`"
                )
            value = value[part]
        *parents, last = key.split(".")
        target = params
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    if "numerics" in params:  # the kernel and threads the stage's results depend on
        numerics.apply(params["numerics"], restart=True)
    return params


def run_stage(main: Callable[[], None]) -> None:
    """Call a stage's ``main``; a ``MemlabError`` becomes one line on stderr and exit 1."""
    try:
        main()
    except MemlabError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: the run is marked KILLED in MLflow", file=sys.stderr)
        sys.exit(130)


# ------------------------------------------------------------------ files
def save_splits(path: Path, splits: Splits, data: DataSummary) -> None:
    """The six split arrays, their pool indices, and what the data is, in one archive."""
    arrays = {
        f.name: getattr(splits, f.name)
        for f in fields(Splits)
        if getattr(splits, f.name) is not None
    }
    about = {
        "data_name": np.array(data.name),
        "image_shape": np.array(data.image_shape),
        "n_classes": np.array(data.n_classes),
    }
    save_arrays(path, {**arrays, **about})


def load_splits(path: Path) -> tuple[Splits, DataSummary]:
    """``(splits, data)`` as ``save_splits`` wrote them."""
    arrays = load_arrays(path)
    name = str(arrays.pop("data_name"))
    shape = tuple(int(n) for n in arrays.pop("image_shape"))
    n_classes = int(arrays.pop("n_classes"))
    splits = Splits(**arrays)
    sizes = {f"n_{part}": n for part, n in splits.sizes().items()}
    summary = DataSummary(name, fingerprint(splits), sizes, n_classes, shape)
    return splits, summary


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


def read_table(path: Path) -> dict[str, list]:
    """The columns ``write_table`` wrote: numbers as ``float``, empty values (None) as None."""
    header, *rows = path.read_text().splitlines()
    columns: dict[str, list] = {name: [] for name in header.split(",")}
    for row in rows:
        for values, cell in zip(columns.values(), row.split(","), strict=True):
            values.append(None if cell == "None" else float(cell))
    return columns


def _cell(value: Any) -> str:
    value = _number(value)
    return f"{value:.{SIGNIFICANT}g}" if isinstance(value, float) else str(value)


def curves(history: Mapping[str, list]) -> dict[str, list]:
    """Per-epoch history as plot columns, ``epoch`` first."""
    epochs = len(next(iter(history.values())))
    return {"epoch": list(range(1, epochs + 1)), **history}


def warn(warnings: list[str], prefix: str = "") -> None:
    """Say on stderr what looks wrong in a run (``pipeline.study.diagnose``)."""
    for warning in warnings:
        print(f"warning: {prefix}{warning}", file=sys.stderr)
