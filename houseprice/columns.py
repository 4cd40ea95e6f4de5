"""What a column is: numeric, categorical, left out (identifier, date, empty, ...) or refused.

The one place that decides, so training in every mode (all columns, named features, landing) and
scoring give a column the same answer. It needs pandas and numpy only: `predict` uses it without
Prefect. Which strings mean "missing" is decided here too (MISSING_VALUES).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from houseprice.errors import SourceError

# The cells read as missing, everywhere (CSV, Parquet text, frames given to predict). They are
# pandas' defaults, listed so that the rule is visible and fixed rather than a library's choice.
MISSING_VALUES = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)
_MISSING = frozenset(MISSING_VALUES)

# Numbers beyond this (a quadrillion dollars or square feet) are unit or parsing errors, and
# near 1e154 squaring them overflows the scaler and the cost (data.max_abs_value's default).
DEFAULT_MAX_ABS_VALUE = 1e15
# A text column whose values are numbers this often is a numeric column with a few bad cells.
MOSTLY_NUMERIC = 0.9
# With every column taken as a feature, a text column with more levels than this share of the
# rows (and more than the floor) is an identifier or free text, not a category worth a weight.
MAX_LEVEL_SHARE = 0.1
MIN_LEVELS_TO_SKIP = 50
# |Spearman| with the target above this: a function of the price (its log, price per square
# foot), which new listings don't have and which makes the fit a tautology.
LEAKAGE_SPEARMAN = 0.99
# Distinct names quoted in a message; the rest are counted.
NAMES_QUOTED = 5
CELLS_QUOTED = 5

NUMERIC, CATEGORICAL = "numeric", "categorical"
# Why a column is left out in all-columns mode: the rule's name, then what the log says of it.
TIME, DATES, EMPTY, LEAK, INDEX, IDENTIFIER = (
    "time",
    "dates",
    "empty",
    "leak",
    "index",
    "identifier",
)
RULE_TEXT = {
    TIME: "the time column",
    DATES: "dates (set data.time_column to window on one)",
    EMPTY: "mostly empty (above data.max_missing_fraction)",
    LEAK: "derived from the target (leakage)",
    INDEX: "row numbers (strictly monotone whole numbers)",
    IDENTIFIER: "identifiers or free text",
}


def is_number_column(values: pd.Series) -> bool:
    """Whether a column's dtype holds numbers (bool is not a number here)."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def column_kind(values: pd.Series) -> str:
    """NUMERIC for a number dtype, else CATEGORICAL (text, bool, mixed)."""
    return NUMERIC if is_number_column(values) else CATEGORICAL


def normalize_missing(frame: pd.DataFrame) -> pd.DataFrame:
    """frame with every MISSING_VALUES cell (spaces aside) as missing.

    An object column left holding only numbers becomes numeric; a text column stays text (a
    Parquet column of zip codes typed as text is the file's own choice).
    """
    changed = {}
    for name, values in frame.items():
        if is_number_column(values) or pd.api.types.is_datetime64_any_dtype(values):
            continue
        if pd.api.types.is_bool_dtype(values) or isinstance(values.dtype, pd.CategoricalDtype):
            continue
        if pd.api.types.infer_dtype(values, skipna=True) == "string":  # vectorized path
            missing = values.str.strip().isin(_MISSING) & values.notna()
        else:  # mixed objects: numbers and text together
            missing = values.map(lambda cell: isinstance(cell, str) and cell.strip() in _MISSING)
        if not missing.any():
            continue
        cleaned = values.mask(missing.astype(bool))
        present = cleaned.dropna()
        kinds = pd.api.types.infer_dtype(present, skipna=True)
        if len(present) and kinds in {"integer", "floating", "mixed-integer-float", "decimal"}:
            cleaned = pd.to_numeric(cleaned)  # numbers held as objects, the tokens gone
        changed[name] = cleaned
    return frame.assign(**changed) if changed else frame


def spoilt_cells(values: pd.Series) -> pd.Series:
    """The cells that keep a mostly-numeric column from being numbers ('1,200', 'abc'), else empty.

    Read as text, such a column would silently become a category with one level per number.
    """
    if is_number_column(values) or pd.api.types.is_bool_dtype(values):
        return values.iloc[:0]
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.iloc[:0]
    present = values.dropna()
    if not len(present) or not _starts_numeric(present):
        return values.iloc[:0]
    present = present[~present.map(lambda cell: isinstance(cell, str) and cell.strip() in _MISSING)]
    parsed = pd.to_numeric(present, errors="coerce")
    if len(present) and MOSTLY_NUMERIC <= parsed.notna().mean() < 1:
        return present[parsed.isna()]
    return values.iloc[:0]


def _starts_numeric(present: pd.Series) -> bool:
    """A cheap first look (wide files have thousands of text columns): are most of the first
    values numbers? A column 90% numbers can't have fewer than half of 20 values numbers often.
    """
    head = present.head(20)
    return bool(pd.to_numeric(head, errors="coerce").notna().mean() >= 0.5)


def describe_spoilt(name: str, bad: pd.Series) -> str:
    """'column 'area' holds numbers except in 2 rows (rows 4, 9), e.g. ['1,200']'."""
    rows = ", ".join(str(row) for row in bad.index[:CELLS_QUOTED])
    more = ", …" if len(bad) > CELLS_QUOTED else ""
    return (
        f"column {name!r} holds numbers except in {len(bad)} rows (rows {rows}{more}), e.g. "
        f"{bad.unique()[:CELLS_QUOTED].tolist()}"
    )


def summarize_names(names: list[str], limit: int = NAMES_QUOTED) -> str:
    """'a, b, c', or past the limit a count and the first few: '2,000 (a, b, c, d, e, …)'."""
    shown = ", ".join(str(name) for name in names[:limit])
    return shown if len(names) <= limit else f"{len(names):,} ({shown}, …)"


def _name_tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return [token for token in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if token]


def named_after_target(column: str, target: str) -> bool:
    """Whether a column's name says it is made from the target: 'log_Sale_Price', 'lprice'."""
    tokens, wanted = _name_tokens(column), _name_tokens(target)
    if not wanted:
        return False
    joined = "".join(wanted)
    if any(token in {f"l{joined}", f"ln{joined}", f"log{joined}"} for token in tokens):
        return True
    return any(tokens[i : i + len(wanted)] == wanted for i in range(len(tokens)))


def is_row_index(values: pd.Series) -> bool:
    """Whole numbers, all distinct and strictly monotone: a row counter (1..n), not a feature."""
    if not is_number_column(values) or len(values) < 3 or values.isna().any():
        return False
    numbers = values.astype("float64")
    if not np.isfinite(numbers).all() or not (numbers == np.round(numbers)).all():
        return False
    steps = np.diff(numbers.to_numpy())
    return bool((steps > 0).all() or (steps < 0).all())


def _looks_like_dates(text: pd.Series) -> bool:
    sample = text.head(200)
    if not len(sample) or sample.str.fullmatch(r"[+-]?\d+(\.\d*)?").all():  # plain numbers
        return False
    if not sample.str.contains(r"\d").all():  # every date has a digit
        return False
    # and starts with a number and a separator, or a word ('2024-01-03', '1/3/24', 'Jan 3').
    if not sample.head(5).str.match(r"\s*(\d{1,4}[-/. ]|[A-Za-z]{3,9}[ ,.])").all():
        return False
    # Parsing goes value by value: give up early on a column whose first values aren't dates.
    if pd.to_datetime(sample.head(5), errors="coerce", format="mixed").notna().mean() < 0.6:
        return False
    if pd.to_datetime(sample, errors="coerce", format="ISO8601").notna().mean() >= 0.9:
        return True  # the common case, vectorized
    return bool(pd.to_datetime(sample, errors="coerce", format="mixed").notna().mean() >= 0.9)


def left_out_rule(
    values: pd.Series,
    target: pd.Series | None,
    target_name: str,
    time_column: str | None,
    max_missing_fraction: float,
) -> tuple[str, str] | None:
    """(rule, detail) when all-columns mode should not use a column as a feature, else None.

    target is the target column when it holds numbers (for the leakage check), else None.
    """
    name = str(values.name)
    if name == time_column:
        return TIME, "it is data.time_column"
    if pd.api.types.is_datetime64_any_dtype(values):
        return DATES, "it holds dates"
    empty = float(values.isna().mean()) if len(values) else 0.0
    if empty > max_missing_fraction:
        return EMPTY, f"{empty:.0%} empty, more than data.max_missing_fraction"
    if named_after_target(name, target_name):
        return LEAK, f"its name is made from the target {target_name!r}"
    if is_number_column(values):
        if target is not None:
            rho = _spearman(values, target)
            if rho is not None and abs(rho) > LEAKAGE_SPEARMAN:
                return LEAK, f"Spearman {rho:+.3f} with the target {target_name!r}"
        if is_row_index(values):
            return INDEX, "strictly monotone whole numbers (a row number)"
        return None
    if pd.api.types.is_bool_dtype(values):
        return None
    text = values.dropna().astype(str)
    if _looks_like_dates(text):
        return DATES, "its values are dates"
    levels = text.nunique()
    if levels > max(MIN_LEVELS_TO_SKIP, MAX_LEVEL_SHARE * len(values)):
        return IDENTIFIER, f"{levels} distinct values look like identifiers or free text"
    return None


# Rows the leakage check ranks: past this many, an evenly spaced subset. Ranking is the costly
# part (seconds per column at a million rows), and on 100,000 rows the estimate's standard
# error is below 0.003, far inside the gap between a real feature and a |rho| above the limit.
SPEARMAN_ROWS = 100_000


def _spearman(values: pd.Series, target: pd.Series) -> float | None:
    step = max(1, -(-len(values) // SPEARMAN_ROWS))
    both = pd.DataFrame({"x": values.astype("float64"), "y": target}).iloc[::step].dropna()
    if len(both) < 3 or both["x"].nunique() < 2 or both["y"].nunique() < 2:
        return None
    ranks = both.rank()
    rho = np.corrcoef(ranks["x"], ranks["y"])[0, 1]
    return float(rho) if np.isfinite(rho) else None


@dataclass
class FeatureDecision:
    """The feature columns by kind, and the columns left out with their rule and reason."""

    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    left_out: dict[str, tuple[str, str]] = field(default_factory=dict)  # column → (rule, why)

    def left_out_summary(self) -> list[str]:
        """One line per rule: how many columns it left out, and the first few names."""
        lines = []
        for rule, text in RULE_TEXT.items():
            names = [column for column, (found, _) in self.left_out.items() if found == rule]
            if names:
                lines.append(f"{text}: {summarize_names(names)}")
        return lines


class ColumnError(SourceError):
    """Columns that cannot be used as they are (text in numbers, bad headers), named."""


def refuse_spoilt_columns(frame: pd.DataFrame, columns: list[str], hint: str = "") -> None:
    """Raise ColumnError naming each column (and its cells) that is numbers with a few texts."""
    problems = [
        describe_spoilt(column, bad)
        for column in columns
        if column in frame.columns and len(bad := spoilt_cells(frame[column]))
    ]
    if problems:
        shown = "; ".join(problems[:NAMES_QUOTED])
        extra = len(problems) - NAMES_QUOTED
        more = f"; and {extra} more columns" if extra > 0 else ""
        raise ColumnError(f"{shown}{more}: fix those cells{hint}")


def decide_features(
    frame: pd.DataFrame,
    target: str,
    named: list[str] | None,
    categorical: list[str],
    time_column: str | None = None,
    max_missing_fraction: float = 1.0,
) -> FeatureDecision:
    """Type the named feature columns (every usable column when named is None) by their data.

    A column the user put in `categorical` stays categorical, and a named column is never left
    out. A mostly-numeric column with a few text cells is refused, naming the cells, either way.
    """
    decision = FeatureDecision()
    if named is None:
        numbers = frame[target] if target in frame and is_number_column(frame[target]) else None
        named = []
        for column in frame.columns:
            if column == target or column in categorical:
                continue
            if len(spoilt_cells(frame[column])):
                named.append(column)  # refused below, never quietly left out
                continue
            rule = left_out_rule(frame[column], numbers, target, time_column, max_missing_fraction)
            if rule is None:
                named.append(column)
            else:
                decision.left_out[str(column)] = rule
    hint = " (or name the column with --categorical if it really is a category)"
    refuse_spoilt_columns(frame, [c for c in named if c not in categorical], hint)
    for column in named:
        kind = column_kind(frame[column]) if column in frame.columns else NUMERIC
        (decision.numeric if kind == NUMERIC else decision.categorical).append(column)
    return decision


def header_problems(names: list[object]) -> str | None:
    """Why a header cannot be used (duplicate or empty names), or None when it can."""
    texts = ["" if name is None else str(name).strip() for name in names]
    empty = [str(i + 1) for i, text in enumerate(texts) if not text]
    duplicated = sorted({text for text in texts if text and texts.count(text) > 1})
    problems = []
    if duplicated:
        problems.append(f"duplicate column names {duplicated}")
    if empty:
        problems.append(f"empty column names at positions {', '.join(empty)}")
    return "; ".join(problems) or None
