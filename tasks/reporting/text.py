"""Display text for the report: numbers, statistics, any summary value, and tables of them.

Everything here returns plain text. Escaping is the template's job (HTML, autoescaped) or md()'s
(markdown), so no value is escaped twice or not at all.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# The usual significance stars of regression output.
SIGNIFICANCE = ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."))


def format_number(value: float | None) -> str:
    """Thousands separators for large values, 4 significant digits otherwise."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def format_value(value: Any) -> str:
    """Any summary value (from validation, promotion, drift) as display text."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool):
        return {None: "—", True: "yes", False: "no"}[value]
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str)
    return str(value)


def format_stat(value: float | None, digits: int = 4) -> str:
    """A statistic with `digits` significant digits, thousands separated when large."""
    if value is None or not math.isfinite(value):
        return "—"
    if abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return f"{value:,.{digits}g}"


def format_p_value(p: float | None) -> str:
    """A p-value as regression output prints it: '< 1e-16' at the floor of double precision."""
    if p is None or not math.isfinite(p):
        return "—"
    return "< 1e-16" if p < 1e-16 else (f"{p:.3g}" if p < 0.001 else f"{p:.4f}")


def significance(p: float | None) -> str:
    """The usual stars: *** p < 0.001, ** < 0.01, * < 0.05, . < 0.1."""
    if p is None or not math.isfinite(p):
        return ""
    return next((mark for limit, mark in SIGNIFICANCE if p < limit), "")


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested figures as 'outer.inner' keys, so every number gets a table row of its own."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def md(text: Any) -> str:
    """Keep a value (a feature name, say) from breaking out of its cell or injecting HTML."""
    one_line = " ".join(str(text).splitlines())  # a line break would end the table's row
    return html.escape(one_line, quote=False).replace("|", "\\|").replace("`", "'")


@dataclass(frozen=True)
class Table:
    """A table as display text; the HTML template escapes each cell, markdown() escapes for md."""

    headers: list[str]
    rows: list[list[str]]

    @classmethod
    def of(cls, headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> Table:
        """A table of any values, each shown as format_value shows it."""
        return cls(list(headers), [[format_value(value) for value in row] for row in rows])

    @classmethod
    def fields(cls, heading: str, values: Mapping[str, Any]) -> Table | None:
        """A two-column table of (flattened) named values; None when there are none."""
        flat = flatten(values)
        return cls.of([heading, "value"], flat.items()) if flat else None

    def markdown(self) -> list[str]:
        """The table as markdown lines."""
        lines = ["| " + " | ".join(self.headers) + " |", "|" + "---|" * len(self.headers)]
        return lines + ["| " + " | ".join(md(cell) for cell in row) + " |" for row in self.rows]
