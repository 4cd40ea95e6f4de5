"""Profiles: what a learned suite reads of a frame's columns, combinable over the frame's chunks.

`build_learned_suite` (tasks/suites.py) learns ranges, levels and null rates from trusted data. A
profile holds exactly what it reads of each column (kind, rows, nulls, smallest and largest value,
the distinct levels while there are few), so the profiles of a frame's chunks add up to the
profile of the whole frame, and a suite is learned from data streamed in chunks without ever
holding it. `profile_frame` is top-level and its result small: map it over chunks, then
`combine_profiles`.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

# More distinct values than this is an identifier or free text, not a category worth listing.
LEARNED_MAX_LEVELS = 100
NUMERIC_KINDS = ("integer", "float")


@dataclass(frozen=True)
class ColumnProfile:
    """One column: its kind, rows, nulls, numeric range and (while few) its distinct levels."""

    kind: str  # "integer", "float", "datetime" or "other" (text, booleans, mixed objects)
    rows: int
    nulls: int
    low: float | None = None  # smallest and largest value of a numeric column; None if none seen
    high: float | None = None
    # Distinct non-null values, in the order first seen, of an "other" column; None when it has
    # more than LEARNED_MAX_LEVELS (or its chunks were of different kinds): no level check.
    levels: tuple[Any, ...] | None = None

    def __add__(self, other: ColumnProfile) -> ColumnProfile:
        kinds = {self.kind, other.kind}
        # As pandas concatenates: int and float chunks make a float column, other mixes objects.
        kind = self.kind if len(kinds) == 1 else "float" if kinds == {*NUMERIC_KINDS} else "other"
        levels = None
        if kind == "other" and self.levels is not None and other.levels is not None:
            levels = _capped(tuple(dict.fromkeys([*self.levels, *other.levels])))
        numeric = kind in NUMERIC_KINDS
        return ColumnProfile(
            kind=kind,
            rows=self.rows + other.rows,
            nulls=self.nulls + other.nulls,
            low=_extreme(min, self.low, other.low) if numeric else None,
            high=_extreme(max, self.high, other.high) if numeric else None,
            levels=levels,
        )


@dataclass(frozen=True)
class TableProfile:
    """A frame's rows and each column's profile, in the frame's column order."""

    rows: int
    columns: dict[str, ColumnProfile]

    def __add__(self, other: TableProfile) -> TableProfile:
        if list(self.columns) != list(other.columns):
            raise ValueError(
                f"chunks have different columns: {list(self.columns)} and {list(other.columns)}"
            )
        added = {name: self.columns[name] + other.columns[name] for name in self.columns}
        return TableProfile(self.rows + other.rows, added)


def profile_frame(frame: pd.DataFrame) -> TableProfile:
    """The profile of one frame (or one chunk of it)."""
    columns = {str(name): _profile_column(frame[name]) for name in frame.columns}
    return TableProfile(len(frame), columns)


def combine_profiles(profiles: Iterable[TableProfile]) -> TableProfile:
    """The profile of the frame whose chunks, in order, have these profiles."""
    return functools.reduce(operator.add, profiles)


def _profile_column(values: pd.Series) -> ColumnProfile:
    nulls = int(values.isna().sum())
    kind = _kind(values)
    if kind in NUMERIC_KINDS:
        seen = nulls < len(values)
        low, high = (float(values.min()), float(values.max())) if seen else (None, None)
        return ColumnProfile(kind, len(values), nulls, low, high)
    levels = _capped(tuple(values.dropna().unique().tolist())) if kind == "other" else None
    return ColumnProfile(kind, len(values), nulls, levels=levels)


def _kind(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values):
        return "other"  # booleans are levels, not numbers
    if pd.api.types.is_integer_dtype(values):
        return "integer"
    if pd.api.types.is_numeric_dtype(values):
        return "float"
    return "datetime" if pd.api.types.is_datetime64_any_dtype(values) else "other"


def _capped(levels: tuple[Any, ...]) -> tuple[Any, ...] | None:
    return levels if len(levels) <= LEARNED_MAX_LEVELS else None


def _extreme(pick: Any, a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else pick(a, b)
