"""The layers stay layers: the study core computes, the edges record, imports go one way.

Read from the source (every import, lazy ones included), so a stray ``import mlflow`` inside
a function is caught as surely as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"


def _modules(path: Path) -> set[str]:
    """Every module ``path`` imports (top-level names and dotted ones)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def _calls(path: Path) -> set[str]:
    return {
        node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute)
    }


def _files(under: str = "") -> list[Path]:
    return sorted((PACKAGE / under).rglob("*.py"))


def _importing(prefix: str) -> set[str]:
    return {
        path.relative_to(PACKAGE).as_posix()
        for path in _files()
        if any(m == prefix or m.startswith(prefix + ".") for m in _modules(path))
    }


@pytest.mark.parametrize("path", _files("study"), ids=lambda p: p.name)
def test_the_study_core_records_nothing(path):
    imported = _modules(path)
    edges = ("mlflow", "hydra", "omegaconf", "tqdm", "pipeline.tracking", "pipeline.stages")
    assert not [m for m in imported if m.startswith(edges)], imported
    io = {"print", "open", "write_text", "write_bytes", "savez", "save", "savefig", "mkdir"}
    assert not _calls(path) & io


def test_mlflow_is_imported_only_by_the_tracking_layer():
    assert _importing("mlflow") <= {f.relative_to(PACKAGE).as_posix() for f in _files("tracking")}


def test_hydra_is_imported_only_by_the_entry_point_and_the_sweep_callback():
    # overrides.py is the entry point's own check of its command line, before Hydra's
    entry = {"__main__.py", "overrides.py", "sweep.py", "launcher.py"}
    assert _importing("hydra") | _importing("omegaconf") <= entry
