"""The layers: imports point down, cli → flows → tasks → the ground (houseprice/), never up.

An import counts however it is written: an `import` statement, a module named in a string and
imported later (`import_module("houseprice.tasks.x")`, a registry's "module:function" spec), or
an entry point in pyproject.toml that a module of a lower layer loads by its group's name.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each layer, lowest first, and its folder; tasks, flows and cli install as houseprice.<layer>.
LAYERS = {"houseprice": "houseprice", "tasks": "tasks", "flows": "flows", "cli": "cli"}
ORDER = list(LAYERS)
# A string that is nothing but a module of this project, maybe with ":attribute": the form that
# import_module, "module:function" specs and entry points take.
MODULE_STRING = re.compile(r"houseprice(\.\w+)+(:\w+(\.\w+)*)?")


def _layer_of(module: str) -> str | None:
    """The layer a dotted module name belongs to, or None for a third-party module."""
    parts = module.split(":")[0].split(".")
    if parts[0] == "houseprice" and len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]  # houseprice.tasks, houseprice.flows, houseprice.cli
    return parts[0] if parts[0] in LAYERS else None


def _imported_modules(tree: ast.AST) -> list[str]:
    """Every module a file imports by statement, at any depth (lazy imports count too)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _string_constants(tree: ast.AST) -> set[str]:
    """Every string literal in a file (the parts of f-strings included)."""
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def _entry_points(root: Path) -> dict[str, list[str]]:
    """pyproject.toml's entry points: each group's name and the "module:object" of each entry."""
    project = tomllib.loads((root / "pyproject.toml").read_text()).get("project", {})
    groups = project.get("entry-points", {})
    return {group: list(entries.values()) for group, entries in groups.items()}


def referenced_modules(path: Path, root: Path = ROOT) -> list[str]:
    """The modules a file imports: by statement, by name in a string, or through the entry
    points of a group it names."""
    tree = ast.parse(path.read_text())
    strings = _string_constants(tree)
    named = [text for text in strings if MODULE_STRING.fullmatch(text)]
    loaded = [
        target
        for group, targets in _entry_points(root).items()
        if group in strings
        for target in targets
    ]
    return _imported_modules(tree) + named + loaded


def upward_references(layer: str, root: Path = ROOT) -> set[str]:
    """'file imports module' for each module of a layer above, however the file names it."""
    above = set(ORDER[ORDER.index(layer) + 1 :])
    return {
        f"{path.relative_to(root)} imports {module}"
        for path in sorted((root / LAYERS[layer]).rglob("*.py"))
        for module in referenced_modules(path, root)
        if _layer_of(module) in above
    }


@pytest.mark.parametrize("layer", ORDER)
def test_no_module_imports_from_a_layer_above_its_own(layer):
    wrong = upward_references(layer)
    assert not wrong, sorted(wrong)


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"pyproject.toml": "[project]\nname = 'x'\n", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_an_import_by_statement_is_an_import(tmp_path):
    root = _tree(tmp_path, {"houseprice/model.py": "def f():\n    import houseprice.tasks.x\n"})
    assert upward_references("houseprice", root) == {
        "houseprice/model.py imports houseprice.tasks.x"
    }


def test_a_module_named_in_a_string_is_an_import(tmp_path):
    code = (
        "import importlib\n"
        "ONE = importlib.import_module('houseprice.flows.retrain')\n"
        "SPEC = 'houseprice.tasks.train:train_model'\n"
        "DOC = 'houseprice.tasks is mentioned in prose, which imports nothing'\n"
        "LOW = 'houseprice.storage:write_atomic'\n"
    )
    root = _tree(tmp_path, {"houseprice/registry.py": code})
    assert upward_references("houseprice", root) == {
        "houseprice/registry.py imports houseprice.flows.retrain",
        "houseprice/registry.py imports houseprice.tasks.train:train_model",
    }


def test_an_entry_point_loaded_by_a_lower_layer_is_an_import(tmp_path):
    pyproject = (
        "[project]\nname = 'x'\n"
        "[project.entry-points.'houseprice.plugins']\n"
        "mine = 'houseprice.tasks.mine:plugin'\n"
    )
    loader = (
        "from importlib.metadata import entry_points\n"
        "PLUGINS = entry_points(group='houseprice.plugins')\n"
    )
    root = _tree(
        tmp_path,
        {"pyproject.toml": pyproject, "houseprice/plugins.py": loader, "tasks/other.py": ""},
    )
    assert upward_references("houseprice", root) == {
        "houseprice/plugins.py imports houseprice.tasks.mine:plugin"
    }
    assert upward_references("tasks", root) == set()


def test_every_layer_folder_exists():
    assert all((ROOT / folder / "__init__.py").is_file() for folder in LAYERS.values())
