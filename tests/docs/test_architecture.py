"""The import direction that docs/architecture.rst states, checked on every import of
``attrkit/`` (module level or inside a function):

    core  <-  engine  <-  methods  <-  validation, dataset, demo, viz  <-  cli

A layer imports from the layers to its left; within the fourth group ``viz`` imports no
other layer, ``validation`` draws with it (the evaluation figure), and the demo imports
``validation``'s compare and ``viz``'s figures. ``attrkit/__init__.py``
and ``__main__.py`` (the package root) may import every layer; the fourth group and the
CLI may import the root (the dataset runner records its ``__version__``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "attrkit"

ORDER = ("core", "engine", "methods")
FOURTH = ("validation", "dataset", "demo", "viz")
SIDEWAYS = {"demo": {"validation", "viz"}, "validation": {"viz"}}


def allowed(layer: str) -> set[str]:
    """The layers (and ``"attrkit"``, the root) that ``layer`` may import from."""
    if layer in ORDER:
        return set(ORDER[: ORDER.index(layer) + 1])
    if layer == "viz":
        return {"viz"}
    if layer in FOURTH:
        return {*ORDER, layer, "attrkit", *SIDEWAYS.get(layer, ())}
    assert layer == "cli", layer
    return {*ORDER, *FOURTH, "cli", "attrkit"}


def imported_layers(path: Path) -> set[tuple[str, int]]:
    """``(layer, line)`` of every attrkit import in ``path``: ``attrkit.core...`` gives
    ``"core"``, ``import attrkit`` gives ``"attrkit"``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: attrkit uses absolute imports"
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "attrkit":
                found.add((parts[1] if len(parts) > 1 else "attrkit", node.lineno))
    return found


MODULES = sorted(
    path
    for path in PACKAGE.rglob("*.py")
    if path.relative_to(PACKAGE).parts[0] not in {"__init__.py", "__main__.py"}
)


def test_every_layer_is_a_package_the_order_names():
    layers = {path.relative_to(PACKAGE).parts[0] for path in MODULES}
    assert layers == {*ORDER, *FOURTH, "cli"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_the_layers(path):
    layer = path.relative_to(PACKAGE).parts[0]
    wrong = sorted(
        f"line {line}: imports attrkit.{target}"
        if target != "attrkit"
        else f"line {line}: imports attrkit"
        for target, line in imported_layers(path)
        if target not in allowed(layer)
    )
    assert not wrong, f"{layer} may import only {sorted(allowed(layer))}: {wrong}"


def test_the_check_sees_an_upward_import(tmp_path):
    """The property, on a module written for the test: core importing the engine."""
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from attrkit.engine.rule import RULES\n    return RULES\n")
    assert imported_layers(module) == {("engine", 2)}
    assert "engine" not in allowed("core")
