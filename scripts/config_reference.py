"""Write docs/configuration.md from the pydantic schema: `python -m scripts.config_reference`.

The page is generated, never edited by hand, so it cannot drift from houseprice/config.py: each
field's name, type, limits, default and description come from the model, and the comments above
a field (its reason) from the source. `--check` exits 1 when the committed page is stale;
tests/test_config_reference.py does the same comparison.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import sys
import textwrap
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from houseprice.config import PipelineConfig
from houseprice.training_config import TrainerConfig, TrainingConfig

PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

_HEADER = """\
<!-- Generated from houseprice/config.py by `make docs` (python -m scripts.config_reference).
     Do not edit: change the field's description or its comment, then run `make docs`. -->
# Configuration reference

Every setting of `houseprice.config.PipelineConfig`, the retrain flow's one parameter. A YAML
file (`--config my.yaml`) can hold any part of it, CLI flags override the file, and the Prefect
UI renders the same schema as a form. Unknown keys and bad values are refused before anything
runs, naming the field (`training.torch.learning_rate: Input should be greater than 0`). An
example file, and the defaults that depend on the source, are in
[Usage: Configuration](usage.md#configuration).

Each table gives the key, its type and limits, its default, and what it means; *Why* is the
reason written beside the field in the code. An empty default (`null`) means the setting is off
or derived, as its description says.
"""

# Pydantic's constraint objects (annotated_types) by the attribute each carries → how it reads.
_LIMITS = {
    "ge": "≥",
    "gt": ">",
    "le": "≤",
    "lt": "<",
    "min_length": "length ≥",
    "max_length": "length ≤",
}


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """The comment lines directly above each field of model's class body, joined into one line."""
    lines, _ = inspect.getsourcelines(model)
    source = textwrap.dedent("".join(lines))
    body = source.splitlines()
    comments = {}
    for node in ast.parse(source).body[0].body:  # type: ignore[attr-defined]
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above = []
        row = node.lineno - 2  # the line above the field, 0-based
        while row >= 0 and body[row].strip().startswith("#"):
            above.insert(0, body[row].strip().lstrip("#").strip())
            row -= 1
        if above:
            comments[node.target.id] = " ".join(above)
    return comments


def type_name(annotation: Any) -> str:
    """A type as a YAML writer reads it: `float or null`, `list of str`, `one of cg, adam`."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(f"`{json.dumps(value)}`" for value in args)
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(arg) for arg in args)
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"mapping of {type_name(args[0])} to {type_name(args[1])}"
    if origin is tuple:
        return "[" + ", ".join(type_name(arg) for arg in args) + "]"
    if annotation is Path:
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def _limits(field: FieldInfo) -> str:
    """The field's numeric and length limits, e.g. `≥ 0, < 0.5`."""
    found = []
    for constraint in field.metadata:
        for attribute, symbol in _LIMITS.items():
            if getattr(constraint, attribute, None) is not None:
                found.append(f"{symbol} {_value(getattr(constraint, attribute))}")
    return ", ".join(found)


def _value(value: Any) -> str:
    """A default as YAML or JSON would write it."""
    if isinstance(value, float):
        return format(value, "g")
    return json.dumps(value, ensure_ascii=False)


def _default(field: FieldInfo) -> str:
    default = field.get_default(call_default_factory=True)
    dumped = TypeAdapter(field.annotation).dump_python(default, mode="json")
    return f"`{_value(dumped)}`"


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _table(prefix: str, model: type[BaseModel], skip: set[str] = frozenset()) -> list[str]:
    """One row per field of model, keys written under prefix (`split.seed`)."""
    comments = field_comments(model)
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        kind = type_name(field.annotation)
        limits = _limits(field)
        meaning = field.description or ""
        # A comment that only repeats the description adds nothing to the page.
        if name in comments and _cell(comments[name]) not in _cell(meaning):
            meaning += f" *Why:* {comments[name]}"
        rows.append(
            f"| `{prefix}{name}` | {_cell(kind)}{_cell(', ' + limits) if limits else ''} "
            f"| {_cell(_default(field))} | {_cell(meaning)} |"
        )
    return rows


def _docstring(model: type[BaseModel]) -> str:
    return inspect.cleandoc(model.__doc__ or "")


def _is_section(field: FieldInfo) -> bool:
    return isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)


def _training_section() -> list[str]:
    """The training section: its shared fields, then the settings every trainer has."""
    trainers = ", ".join(f"`{name}`" for name in TrainingConfig().trainers)
    return [
        _docstring(TrainingConfig),
        "",
        *_table("training.", TrainingConfig),
        "",
        "### `training.<trainer>`",
        "",
        f"{_docstring(TrainerConfig)} Trained by default: {trainers}; another registered "
        "trainer trains when listed (`training: {mine: {}}`).",
        "",
        *_table("training.<trainer>.", TrainerConfig),
    ]


def render() -> str:
    """The whole reference page, from PipelineConfig as it is now."""
    fields = PipelineConfig.model_fields
    top_level = {name for name, field in fields.items() if not _is_section(field)}
    parts = [_HEADER]
    for name, field in fields.items():
        if name in top_level:
            continue
        section = field.annotation
        parts += [f"## `{name}`", ""]
        if section is TrainingConfig:
            parts += _training_section()
        else:
            parts += [_docstring(section), "", *_table(f"{name}.", section)]
        parts.append("")
    parts += ["## Top level", "", *_table("", PipelineConfig, skip=set(fields) - top_level), ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Write the page, or with --check say whether the committed one is current."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    parser.add_argument("--page", type=Path, default=PAGE, help=f"default: {PAGE}")
    args = parser.parse_args(argv)
    page = render()
    if args.check:
        current = args.page.read_text() if args.page.exists() else ""
        if current != page:
            print(f"{args.page} is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    args.page.write_text(page)
    print(f"wrote {args.page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
