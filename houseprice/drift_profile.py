"""Drift profiles: per feature, mergeable counts of a table's rows, the same at every chunking.

A run stores the profile of its training rows; the next run folds its new rows into a profile
the same way and compares the two (tasks/drift.py). Per feature:
- numeric: how many rows and missing values, and the present values' counts: exact
  `ValueCounts` up to medians.MAX_DISTINCT distinct values, past that the fixed-range
  `BucketCounts` (houseprice/medians.py). Either adds up identically however the rows were cut.
  Finished, they become CDF points: values x ascending and how many present values are ≤ x.
- categorical: how many rows and missing values, and each level's count (the model's levels,
  `category_strings`; missing is counted apart, as its own bin).

A stored profile keeps at most STORED_POINTS points and STORED_LEVELS levels per feature, so its
JSON stays small whatever the table's size. A feature with fewer distinct values keeps all of
them and its CDF is exact (`exact`); otherwise the points are the values at evenly spaced ranks,
each still an exact point of the CDF, and between two points the CDF is only known to rise.

Ground module: numpy and pandas only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from houseprice.medians import BUCKET_BITS, MAX_DISTINCT, BucketCounts, ValueCounts
from houseprice.preprocessing import category_strings

NUMERIC, CATEGORICAL = "numeric", "categorical"
# A stored numeric feature keeps this many CDF points: KS is then off by at most 1/1000, and
# quantile edges by at most a thousandth of the rows. 1,000 points are ~25 KB of JSON.
STORED_POINTS = 1_000
# Levels a stored categorical feature keeps, most frequent first; PSI needs the top bins - 1
# (at most 99), the rest are pooled as "other" anyway.
STORED_LEVELS = 1_000
# Distinct levels counted before a feature is given up as an identifier, not a category.
MAX_LEVELS = MAX_DISTINCT
FORMAT = 1  # of the stored JSON


def data_kind(values: pd.Series) -> str:
    """NUMERIC or CATEGORICAL, read off the dtype the way ingest types features."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    return NUMERIC if numeric else CATEGORICAL


@dataclass(frozen=True)
class ColumnCounts:
    """One feature's partial: its rows, missing values, and the present values' counts."""

    scored_as: str  # NUMERIC or CATEGORICAL: how the config lists it
    kind: str | None  # the data's kind; None while every value seen was missing
    rows: int
    missing: int
    numbers: ValueCounts | BucketCounts | None = None  # numeric data, or text scored as numbers
    levels: dict[str, int] | None = None  # text scored as levels
    problem: str | None = None  # why the feature cannot be scored; then no counts are kept

    def __add__(self, other: ColumnCounts) -> ColumnCounts:
        rows, missing = self.rows + other.rows, self.missing + other.missing
        first = self.problem or other.problem
        if first is None and None not in (self.kind, other.kind) and self.kind != other.kind:
            first = "could not be scored: numbers in some chunks, text in others"
        if first is not None:
            return ColumnCounts(
                self.scored_as, self.kind or other.kind, rows, missing, problem=first
            )
        return ColumnCounts(
            self.scored_as,
            self.kind or other.kind,
            rows,
            missing,
            _add(self.numbers, other.numbers),
            _add_levels(self.levels, other.levels),
        )._capped()

    def _capped(self) -> ColumnCounts:
        if self.levels is None or len(self.levels) <= MAX_LEVELS:
            return self
        why = f"could not be scored: more than {MAX_LEVELS:,} levels, an identifier"
        return ColumnCounts(self.scored_as, self.kind, self.rows, self.missing, problem=why)


def _add(first: Any, second: Any) -> Any:
    return second if first is None else first if second is None else first + second


def _add_levels(first: dict[str, int] | None, second: dict[str, int] | None) -> Any:
    if first is None or second is None:
        return second if first is None else first
    total = dict(first)
    for level, count in second.items():
        total[level] = total.get(level, 0) + count
    return total


def count_column(values: pd.Series, scored_as: str) -> ColumnCounts:
    """One chunk's partial for one feature; a value that cannot be read is the feature's problem."""
    missing = int(values.isna().sum())
    if missing == len(values):
        return ColumnCounts(scored_as, None, len(values), missing)
    kind = data_kind(values)
    present = values[values.notna()]
    try:
        if kind == NUMERIC or scored_as == NUMERIC:
            numbers = ValueCounts.of(present.astype("float64").to_numpy())
            return ColumnCounts(scored_as, kind, len(values), missing, numbers=numbers)
        counted = pd.Series(category_strings(present)).value_counts()
        levels = {str(level): int(count) for level, count in counted.items()}
        return ColumnCounts(scored_as, kind, len(values), missing, levels=levels)._capped()
    except (TypeError, ValueError) as error:
        why = f"could not be scored: {error}"
        return ColumnCounts(scored_as, kind, len(values), missing, problem=why)


@dataclass(frozen=True)
class ProfileCounts:
    """A profile's partial: the rows counted, the columns seen, and each feature's counts."""

    rows: int
    columns: tuple[str, ...]
    features: dict[str, ColumnCounts] = field(default_factory=dict)

    def __add__(self, other: ProfileCounts) -> ProfileCounts:
        features = dict(self.features)
        for name, counts in other.features.items():
            features[name] = features[name] + counts if name in features else counts
        columns = tuple(dict.fromkeys([*self.columns, *other.columns]))
        return ProfileCounts(self.rows + other.rows, columns, features)

    def profile(self) -> DriftProfile:
        """The finished profile, every point and level kept (see DriftProfile.stored)."""
        features = {name: _finish(counts) for name, counts in self.features.items()}
        return DriftProfile(self.rows, self.columns, features)


def count_profile(rows: pd.DataFrame, features: tuple[tuple[str, str], ...]) -> ProfileCounts:
    """One chunk's partial: each listed (feature, scored_as) the chunk has."""
    counted = {
        name: count_column(rows[name], scored_as)
        for name, scored_as in features
        if name in rows.columns
    }
    return ProfileCounts(len(rows), tuple(str(c) for c in rows.columns), counted)


@dataclass(frozen=True)
class NumericProfile:
    """A numeric feature's rows, missing values and CDF points (see the module's docstring)."""

    kind: str
    rows: int
    missing: int
    values: np.ndarray  # float64, ascending
    at_or_below: np.ndarray  # int64: present values ≤ each point; the last is every one
    exact: bool  # every distinct value is a point

    @property
    def present(self) -> int:
        return self.rows - self.missing

    def count_at_or_below(self, points: np.ndarray) -> np.ndarray:
        """Present values ≤ each point (exact at any point when exact, else at own points)."""
        found = np.searchsorted(self.values, points, side="right")
        return np.where(found > 0, self.at_or_below[np.maximum(found - 1, 0)], 0)

    def count_below(self, points: np.ndarray) -> np.ndarray:
        """Present values < each point."""
        found = np.searchsorted(self.values, points, side="left")
        return np.where(found > 0, self.at_or_below[np.maximum(found - 1, 0)], 0)

    def value_at_ranks(self, ranks: np.ndarray) -> np.ndarray:
        """The sorted present values at 0-based ranks (when not exact, the next point up)."""
        return self.values[np.searchsorted(self.at_or_below, ranks, side="right")]

    def thinned(self, points: int) -> NumericProfile:
        """At most points CDF points: the values at evenly spaced ranks, each exact."""
        if len(self.values) <= points:
            return self
        targets = np.ceil(np.arange(1, points + 1) * (self.present / points)).astype("int64")
        keep = np.unique(np.searchsorted(self.at_or_below, targets, side="left"))
        return NumericProfile(
            self.kind, self.rows, self.missing, self.values[keep], self.at_or_below[keep], False
        )


@dataclass(frozen=True)
class CategoricalProfile:
    """A categorical feature's rows, missing values and level counts, most frequent first."""

    kind: str
    rows: int
    missing: int
    levels: dict[str, int]  # by count descending, then level, so ties break the same way
    other: int = 0  # present values of levels not listed (a stored profile keeps the top ones)

    def thinned(self, count: int) -> CategoricalProfile:
        """Only the count most frequent levels; the rest counted as other."""
        if len(self.levels) <= count:
            return self
        kept = dict(list(self.levels.items())[:count])
        other = self.other + sum(self.levels.values()) - sum(kept.values())
        return CategoricalProfile(self.kind, self.rows, self.missing, kept, other)


@dataclass(frozen=True)
class Unscored:
    """A feature whose values could not be profiled as listed (text listed as numbers, ...)."""

    kind: str
    rows: int
    missing: int
    problem: str

    def thinned(self, _: int) -> Unscored:
        return self


FeatureProfile = NumericProfile | CategoricalProfile | Unscored


def _finish(counts: ColumnCounts) -> FeatureProfile:
    """A feature's profile from its counts."""
    kind = counts.kind or counts.scored_as  # every value missing: whatever it is listed as
    if counts.problem is not None:
        return Unscored(kind, counts.rows, counts.missing, counts.problem)
    if counts.scored_as == NUMERIC:
        return _numeric_profile(kind, counts)
    if counts.numbers is not None:  # numbers scored as levels: the levels the encoder sees
        if isinstance(counts.numbers, BucketCounts):
            why = f"could not be scored: more than {MAX_DISTINCT:,} distinct values as levels"
            return Unscored(kind, counts.rows, counts.missing, why)
        numbers = counts.numbers
        strings = category_strings(pd.Series(numbers.values, dtype="float64"))
        levels = pd.Series(numbers.counts, index=strings).groupby(level=0).sum()
    else:
        levels = pd.Series(counts.levels or {}, dtype="int64")
    return CategoricalProfile(kind, counts.rows, counts.missing, _ordered_levels(levels))


def _ordered_levels(levels: pd.Series) -> dict[str, int]:
    """Level → count, most frequent first, ties by level: the same for any chunking."""
    pairs = sorted(((str(level), int(count)) for level, count in levels.items()),
                   key=lambda pair: (-pair[1], pair[0]))  # fmt: skip
    return dict(pairs)


def _numeric_profile(kind: str, counts: ColumnCounts) -> NumericProfile:
    numbers = counts.numbers
    if numbers is None:
        values, cumulative, exact = np.empty(0), np.empty(0, "int64"), True
    elif isinstance(numbers, ValueCounts):
        values, cumulative, exact = numbers.values, np.cumsum(numbers.counts), True
    else:  # the largest float of each non-empty range: the CDF is exact there
        filled = np.flatnonzero(numbers.counts)
        values = _bucket_tops(filled)
        cumulative, exact = np.cumsum(numbers.counts)[filled], False
    return NumericProfile(kind, counts.rows, counts.missing, values, cumulative, exact)


def _bucket_tops(buckets: np.ndarray) -> np.ndarray:
    """The largest float64 in each of medians' buckets (the inverse of its order key)."""
    keys = ((buckets.astype("uint64") + np.uint64(1)) << np.uint64(64 - BUCKET_BITS)) - np.uint64(1)
    positive = (keys >> np.uint64(63)).astype(bool)
    bits = np.where(positive, keys ^ np.uint64(1 << 63), ~keys)
    tops = bits.view("float64")
    return np.where(np.isnan(tops), np.inf, tops)  # +inf's range tops out in NaN patterns


@dataclass(frozen=True)
class DriftProfile:
    """Every profiled feature of a table's rows."""

    rows: int
    columns: tuple[str, ...]  # every column the rows had
    features: dict[str, FeatureProfile]

    def stored(self) -> DriftProfile:
        """This profile as a run keeps it: at most STORED_POINTS points, STORED_LEVELS levels."""
        features = {
            name: feature.thinned(
                STORED_POINTS if isinstance(feature, NumericProfile) else STORED_LEVELS
            )
            for name, feature in self.features.items()
        }
        return DriftProfile(self.rows, self.columns, features)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON; infinite values written as text so a strict parser reads them."""
        return {
            "format": FORMAT,
            "rows": self.rows,
            "columns": list(self.columns),
            "features": {name: _feature_dict(f) for name, f in self.features.items()},
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> DriftProfile:
        """A stored profile; ValueError when it is not one this version reads."""
        if payload.get("format") != FORMAT:
            raise ValueError(f"drift profile format {payload.get('format')!r}, not {FORMAT}")
        features = {name: _feature_from(item) for name, item in payload["features"].items()}
        return cls(int(payload["rows"]), tuple(payload["columns"]), features)


def _feature_dict(feature: FeatureProfile) -> dict[str, Any]:
    common = {"kind": feature.kind, "rows": feature.rows, "missing": feature.missing}
    if isinstance(feature, Unscored):
        return {**common, "scored_as": None, "problem": feature.problem}
    if isinstance(feature, CategoricalProfile):
        return {
            **common,
            "scored_as": CATEGORICAL,
            "levels": feature.levels,
            "other": feature.other,
        }
    values = [float(v) if np.isfinite(v) else str(float(v)) for v in feature.values]
    return {
        **common,
        "scored_as": NUMERIC,
        "values": values,
        "at_or_below": feature.at_or_below.tolist(),
        "exact": feature.exact,
    }


def _feature_from(item: dict[str, Any]) -> FeatureProfile:
    kind, rows, missing = str(item["kind"]), int(item["rows"]), int(item["missing"])
    if item["scored_as"] is None:
        return Unscored(kind, rows, missing, str(item["problem"]))
    if item["scored_as"] == CATEGORICAL:
        levels = {str(level): int(count) for level, count in item["levels"].items()}
        return CategoricalProfile(kind, rows, missing, levels, int(item["other"]))
    values = np.array([float(v) for v in item["values"]], dtype="float64")
    at_or_below = np.array(item["at_or_below"], dtype="int64")
    if len(values) != len(at_or_below) or np.any(np.diff(values) <= 0):
        raise ValueError("a numeric feature's points are not ascending pairs")
    return NumericProfile(kind, rows, missing, values, at_or_below, bool(item["exact"]))
