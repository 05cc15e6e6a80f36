"""What every DVC stage shares: where its files live, the params it reads, its exit on error.

A stage reads only the params ``dvc.yaml`` lists for it, from ``params.yaml``, the single
composed configuration (``dvc exp run`` writes it from ``conf/`` with Hydra; ``dvc repro`` uses
it as it is). ``stage_params`` looks the list up in ``dvc.yaml`` itself, so the declaration
DVC tracks and what the code reads cannot drift apart. A problem the user can fix ends the
stage with one line on stderr and exit status 1 (``run_stage``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pipeline import numerics
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
    if "numerics" in params:  # pinned before the stage computes anything (may restart it)
        numerics.apply(params["numerics"], restart=True)
    return params


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a whole number >= 0, got {seed!r}")
    return seed


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
