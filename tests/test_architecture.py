"""The package's folders are its layers: a subpackage imports only from those below it, and no import cycle
joins two subpackages (``errors <- core <- io <- flow <- patterns <- apps``; ``book`` and ``testing`` beside
``apps``)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import spark_flows

PACKAGE = Path(spark_flows.__file__).parent
#: each layer with the layers it may import from (itself included)
LAYERS = {
    "errors": {"errors"},
    "core": {"errors", "core"},
    "io": {"errors", "core", "io"},
    "flow": {"errors", "core", "io", "flow"},
    "patterns": {"errors", "core", "io", "flow", "patterns"},
    "book": {"errors", "core", "io", "flow", "patterns", "book"},
    "testing": {"errors", "core", "io", "flow", "patterns", "testing"},
    "events": {"errors", "core", "io", "flow", "events"},
    "apps": {"errors", "core", "io", "flow", "patterns", "book", "events", "apps"},
}
#: the public faces at the top (``spark_flows``, ``spark_flows.streaming``) may import any layer
TOP = {"__init__", "streaming"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ``spark_flows`` module ``path`` imports, at module level or inside a function (lazily)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "spark_flows":
                found.update(f"spark_flows.{alias.name}" for alias in node.names)
            elif node.module.startswith("spark_flows."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("spark_flows."))
    return found


def _layer(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


MODULES = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_the_layers_are_the_folders_and_every_module_sits_in_one() -> None:
    layers = {_layer(m) for m in MODULES} - TOP - {"__init__"}
    assert layers == set(LAYERS), f"modules outside the known layers: {sorted(layers - set(LAYERS))}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) not in TOP))
def test_no_module_imports_upward(module: str) -> None:
    allowed = LAYERS[_layer(module)]
    upward = sorted(i for i in MODULES[module] if _layer(i) not in allowed)
    assert not upward, f"{module} (layer {_layer(module)}) imports from a layer above or beside it: {upward}"


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, imported in MODULES.items():
        for other in imported:
            # ``from spark_flows.x import name`` names a module or a name in it: keep the module
            target = other if other in MODULES else other.rpartition(".")[0]
            if target in MODULES and target != module and _layer(module) not in TOP:
                graph[module].add(target)
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
