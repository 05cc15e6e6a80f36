"""What a run says about itself besides its results: the config as params, the git commit.

Plain Python (no MLflow): ``flatten`` turns the composed config into the dotted params every
run logs, ``git_tags`` names the code a run came from.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"model": {"lr": 3}}`` -> ``{"model.lr": "3"}``; lists as ``[16,16]`` (override syntax)."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = json.dumps(list(value), separators=(",", ":"))
        elif value is None:
            flat[name] = "null"
        elif isinstance(value, bool):
            flat[name] = "true" if value else "false"
        else:
            flat[name] = str(value)
    return flat


def git_tags(directory: Path | str = ".") -> dict[str, str]:
    """The git commit (and whether the tree was dirty) of ``directory``, when it is a checkout."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=directory, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": "true" if dirty else "false"}
