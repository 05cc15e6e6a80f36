"""The layers stay layers: the study core computes, the edges record, imports go one way.

Read from the source (every import, lazy ones included), so a stray ``import mlflow`` inside
a function is caught as surely as one at the top.
"""

from __future__ import annotations

import ast
import functools
import re
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


# --- every package pair: which way an import may go -----------------------------------------
# Each module of ``pipeline`` is in one layer: a path ending in "/" is a folder, the longest
# prefix wins (``report/__main__.py`` is an entry point: ``python -m pipeline.report`` hands the
# report the MLflow queries, so the report package itself never imports tracking).
LAYERS = {
    "base": ("errors.py", "arrays.py"),
    "numerics": ("__init__.py", "numerics.py", "numpy_loops.py"),
    "options": ("options.py", "constraints.py"),
    "data": ("data/",),
    "models": ("models/",),
    "settings": ("settings.py",),
    "study": ("study/",),
    "runtime": ("runtime/",),
    "report": ("report/",),
    "tracking": ("tracking/", "model_logging.py"),
    "stages": ("stages/",),
    "entry": ("__main__.py", "overrides.py", "sweep.py", "launcher.py", "report/__main__.py"),
    "bench": ("bench/",),
}
# What each layer may import (besides itself); any pair not listed is forbidden. The table in
# docs/layout.md says the same (``test_the_layout_doc_draws_the_layers_the_test_checks``).
BELOW_THE_CORE = {"base", "numerics", "options", "data", "models"}
KNOWS = {
    "base": set(),
    "numerics": {"base"},
    "options": {"base"},  # the leaf every layer reads: imports only the constraint vocabulary
    "data": {"base"},
    "models": {"base"},
    "settings": BELOW_THE_CORE,
    "study": BELOW_THE_CORE | {"settings"},
    "runtime": BELOW_THE_CORE | {"settings", "study", "report"},  # the figure workers draw
    "report": BELOW_THE_CORE | {"study"},
    "tracking": BELOW_THE_CORE | {"settings", "study", "runtime", "report"},
    "stages": BELOW_THE_CORE | {"settings", "study", "runtime", "report", "tracking"},
    "entry": BELOW_THE_CORE | {"settings", "study", "runtime", "report", "tracking"},
    "bench": BELOW_THE_CORE | {"settings", "study", "runtime", "report", "tracking", "entry"},
}
LAYOUT_DOC = PACKAGE.parent / "docs" / "layout.md"


def layer_of(relative: str) -> str:
    """The layer of a module, given its path under ``pipeline/`` (``"study/run.py"``)."""
    found = [
        (len(prefix), layer)
        for layer, prefixes in LAYERS.items()
        for prefix in prefixes
        if relative == prefix or (prefix.endswith("/") and relative.startswith(prefix))
    ]
    assert found, f"pipeline/{relative} is in no layer: add it to LAYERS (and docs/layout.md)"
    return max(found)[1]


def _module_path(dotted: str) -> str | None:
    """``pipeline.study.run`` -> ``"study/run.py"``; None for what is not a pipeline module."""
    parts = dotted.split(".")
    if parts[0] != "pipeline":
        return None
    base = PACKAGE.joinpath(*parts[1:])
    if base.with_suffix(".py").is_file() and len(parts) > 1:
        return base.with_suffix(".py").relative_to(PACKAGE).as_posix()
    if (base / "__init__.py").is_file():
        return (base / "__init__.py").relative_to(PACKAGE).as_posix()
    return None


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module path under ``pipeline/``) for every pipeline module ``path`` imports,
    lazy imports inside functions included; ``from pipeline.x import y`` counts ``x.y`` when
    ``y`` is a module."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: from the importing module's package up
                module = ".".join([*package[: len(package) - node.level + 1], module]).strip(".")
            names = [f"{module}.{alias.name}" for alias in node.names]
            submodules = [name for name in names if _module_path(name)]
            names = submodules if len(submodules) == len(names) else [module, *submodules]
        else:
            continue
        found += [(node.lineno, target) for n in names if (target := _module_path(n))]
    return found


@functools.cache
def _layer_edges() -> dict[tuple[str, str], list[str]]:
    """(importing layer, imported layer) -> the imports that make that edge, as file:line."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in _files():
        source = path.relative_to(PACKAGE).as_posix()
        for line, target in _imports(path):
            pair = (layer_of(source), layer_of(target))
            if pair[0] != pair[1]:
                edges.setdefault(pair, []).append(f"pipeline/{source}:{line} imports {target}")
    return edges


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (its nodes in order, the first repeated last), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_every_module_is_in_a_layer():
    for path in _files():
        layer_of(path.relative_to(PACKAGE).as_posix())


def test_the_allowed_directions_are_one_way():
    assert set(KNOWS) == set(LAYERS)
    assert _cycle(KNOWS) is None, _cycle(KNOWS)


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_imports_only_the_layers_it_knows(layer):
    wrong = {
        target: where
        for (source, target), where in _layer_edges().items()
        if source == layer and target not in KNOWS[layer]
    }
    assert not wrong, f"{layer} may import only {sorted(KNOWS[layer])}, but: {wrong}"


def test_no_two_packages_import_each_other():
    edges = _layer_edges()
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
    cycle = _cycle(graph) or []
    made_by = {pair: edges[pair] for pair in zip(cycle, cycle[1:], strict=False)}
    assert not cycle, f"a cycle between layers: {' -> '.join(cycle)}, made by {made_by}"


def test_the_options_are_a_leaf():
    # settings, the core and the docs read the option tables; they read nothing of memlab's
    imported = {target for _, target in _imports(PACKAGE / "options.py")}
    assert imported <= {"constraints.py"}, imported


def _documented_layout() -> dict[str, set[str]]:
    """docs/layout.md's table: each row's layer -> the layers it says the row knows of."""
    text = LAYOUT_DOC.read_text()
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| `")]
    table: dict[str, set[str]] = {}
    for cells in rows:
        members = {layer_of(name) for name in re.findall(r"`([^`]+)`", cells[0])}
        assert len(members) == 1, f"one layer a row, got {members} in {cells[0]}"
        knows = {layer_of(name) for name in re.findall(r"`([^`]+)`", cells[-1])}
        table[members.pop()] = knows
    return table


def test_the_layout_doc_draws_the_layers_the_test_checks():
    assert _documented_layout() == KNOWS
