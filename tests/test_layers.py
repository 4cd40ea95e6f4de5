"""The layers: imports point down, cli → flows → tasks → the ground (houseprice/), never up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each layer, lowest first, and its folder; tasks, flows and cli install as houseprice.<layer>.
LAYERS = {"houseprice": "houseprice", "tasks": "tasks", "flows": "flows", "cli": "cli"}
ORDER = list(LAYERS)


def _layer_of(module: str) -> str | None:
    """The layer a dotted module name belongs to, or None for a third-party module."""
    parts = module.split(".")
    if parts[0] == "houseprice" and len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]  # houseprice.tasks, houseprice.flows, houseprice.cli
    return parts[0] if parts[0] in LAYERS else None


def _imported_modules(path: Path) -> list[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


@pytest.mark.parametrize("layer", ORDER)
def test_no_module_imports_from_a_layer_above_its_own(layer):
    above = set(ORDER[ORDER.index(layer) + 1 :])
    wrong = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / LAYERS[layer]).rglob("*.py"))
        for module in _imported_modules(path)
        if _layer_of(module) in above
    }
    assert not wrong, sorted(wrong)


def test_every_layer_folder_exists():
    assert all((ROOT / folder / "__init__.py").is_file() for folder in LAYERS.values())
