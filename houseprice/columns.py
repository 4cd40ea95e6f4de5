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


# ---------------------------------------------------------------------------------------------
# The column profile: a fold over chunks (profile_columns per chunk, combine_profiles, then
# finish_profile), so typing can see every row of a table too big to hold. Small data is one
# chunk. A partial holds counts, a few example cells and at most LEVEL_CAP distinct values.

# How numbers are written: (thousands separator or None, decimal mark). PLAIN is 1234.5.
PLAIN = (None, ".")
NOTATIONS = (PLAIN, (",", "."), (None, ","), (".", ","), (" ", "."), ("'", "."))
# A text column counts as numbers with exceptions (refused, naming them) when at least this
# share of its present cells are numbers in some notation: 20% '-' placeholders must not turn
# a price column into 1,500 categories, and a column of codes like '12A' is half numbers at most.
MOSTLY_NUMBERS = 0.5
# Distinct values counted exactly up to here; past it a column has 'more than LEVEL_CAP'.
# One-hot encoding that many levels is no longer a model of categories.
LEVEL_CAP = 10_000
# A named column typed as categorical by its data is refused when it has more levels than this
# share of the rows and more than MIN_LEVELS_TO_SKIP: one weight per (nearly every) row is an
# identifier or free text (declare it with --categorical to use it anyway).
MAX_NAMED_LEVEL_SHARE = 0.5
# Dates are recognised from up to this many text cells per chunk, of which this share parse.
DATE_SAMPLE = 200
DATE_SHARE = 0.9
# Judgments beyond NUMERIC and CATEGORICAL (DATES is the all-columns rule's name too).
SPOILT, DAMAGED = "spoilt", "damaged"


def notation_flags(notation: tuple[str | None, str]) -> str:
    """How to declare a notation on the command line: "--thousands ','" and/or "--decimal ','"."""
    thousands, decimal = notation
    flags = [f"--thousands {thousands!r}"] if thousands else []
    if decimal != "." or not flags:
        flags.append(f"--decimal {decimal!r}")
    return " ".join(flags)


def _number_pattern(notation: tuple[str | None, str]) -> str:
    thousands, decimal = notation
    whole = "[0-9]+"
    if thousands:
        whole = rf"[0-9]{{1,3}}(?:{re.escape(thousands)}[0-9]{{3}})+|[0-9]+"
    mark, exponent = re.escape(decimal), "(?:[eE][+-]?[0-9]+)?"
    special = "|[+-]?(?i:inf|infinity)" if notation == PLAIN else ""
    return rf"\s*(?:[+-]?(?:(?:{whole})(?:{mark}[0-9]*)?|{mark}[0-9]+){exponent}{special})\s*"


def parse_numbers(text: pd.Series, notation: tuple[str | None, str] = PLAIN) -> pd.Series:
    """Text cells as float64 read in a notation; NaN where a cell is not a number in it."""
    text = text.astype("str").where(text.notna(), "")
    ok = text.str.fullmatch(_number_pattern(notation))
    thousands, decimal = notation
    cleaned = text.where(ok, "").str.strip()
    if thousands:
        cleaned = cleaned.str.replace(thousands, "", regex=False)
    if decimal != ".":
        cleaned = cleaned.str.replace(decimal, ".", regex=False)
    return pd.to_numeric(cleaned.where(ok), errors="coerce").astype("float64")


def numbers_in_notation(
    frame: pd.DataFrame, notation: tuple[str | None, str] = PLAIN, plain_too: bool = True
) -> pd.DataFrame:
    """frame with each text column whose every present cell is a number in notation as numbers.

    plain_too=False leaves columns of plain numbers as text (a Parquet file's own choice).
    """
    changed = {}
    for column, values in frame.items():
        if is_number_column(values) or not pd.api.types.is_string_dtype(values):
            continue
        present = values.dropna()
        if not len(present) or parse_numbers(present.head(20), notation).isna().any():
            continue  # cheap look first: a wide file has thousands of text columns
        parsed = parse_numbers(values, notation)
        if parsed[values.notna()].isna().any():
            continue
        if plain_too or parse_numbers(present, PLAIN).isna().any():
            changed[column] = parsed
    return frame.assign(**changed) if changed else frame


def _first(items: list, more, limit: int = CELLS_QUOTED) -> list:
    """items then more, without repeats, at most limit: the first cells seen, chunk order kept."""
    seen = list(dict.fromkeys([*items, *more]))
    return seen[:limit]


@dataclass
class ColumnProfile:
    """One column's counts over the rows seen so far: what typing decides from."""

    rows: int = 0
    missing: int = 0
    kind: str = "text"  # number, bool, datetime or text: the chunk's dtype
    numbers: int = 0  # present cells that are numbers in the declared notation
    notations: dict[str, int] = field(default_factory=dict)  # flags → cells only they read
    in_other_notation: int = 0  # present cells that some other notation reads
    foreign_digits: int = 0  # numbers in digits other than 0-9 ('١٢٣٤', '１２')
    unread: int = 0  # cells that are not numbers at all ('-', 'abc')
    bad_rows: list = field(default_factory=list)  # first rows whose cell is not a number
    bad_cells: list[str] = field(default_factory=list)  # first distinct such cells
    placeholders: list[str] = field(default_factory=list)  # first cells no notation reads
    examples: dict[str, str] = field(default_factory=dict)  # flags → a cell they read
    nul: int = 0  # cells holding a NUL byte (a damaged file)
    nul_rows: list = field(default_factory=list)
    date_tried: int = 0
    date_parsed: int = 0
    levels: frozenset[str] = frozenset()  # distinct present values, at most LEVEL_CAP + 1


def _dtype_kind(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if is_number_column(values):
        return "number"
    return "datetime" if pd.api.types.is_datetime64_any_dtype(values) else "text"


def profile_column(values: pd.Series, notation: tuple[str | None, str] = PLAIN) -> ColumnProfile:
    """One chunk of one column profiled (values already read with MISSING_VALUES as missing)."""
    kind = _dtype_kind(values)
    present = values.dropna()
    found = ColumnProfile(rows=len(values), missing=len(values) - len(present), kind=kind)
    if kind in {"number", "datetime"}:
        found.numbers = len(present) if kind == "number" else 0
        return found
    text = present.astype("str")
    # Each distinct value is looked at once, its cells counted: categories repeat a lot.
    counts = text.value_counts(sort=False)
    uniques = pd.Series(text.unique(), dtype="str")  # in order of first appearance
    found.levels = frozenset(uniques[: LEVEL_CAP + 1])

    def cells(values: pd.Series) -> int:
        return int(counts.reindex(values).sum())

    nul = uniques.str.contains("\x00", regex=False)
    if nul.any():
        rows = text.isin(set(uniques[nul]))
        found.nul, found.nul_rows = int(rows.sum()), list(text.index[rows][:CELLS_QUOTED])
    if kind == "bool":
        return found
    numbers = parse_numbers(uniques, notation).notna()
    found.numbers = cells(uniques[numbers])
    rest = uniques[~numbers & uniques.str.contains(r"\d")]  # a number has a digit
    unread = uniques[~numbers & ~uniques.isin(set(rest))]
    if found.numbers < len(text):
        bad = ~text.isin(set(uniques[numbers]))
        found.bad_rows = list(text.index[bad][:CELLS_QUOTED])
        found.bad_cells = uniques[~numbers][:CELLS_QUOTED].tolist()
    read = pd.Series(False, index=rest.index)
    for other in NOTATIONS:
        if other != notation and len(rest) and (hits := parse_numbers(rest, other).notna()).any():
            flags = notation_flags(other)
            found.notations[flags], found.examples[flags] = cells(rest[hits]), rest[hits].iloc[0]
            read |= hits
    foreign = rest.str.fullmatch(r"\s*[+-]?[\d.,' ]*\d[\d.,' ]*\s*") & ~read
    found.in_other_notation = cells(rest[read])
    found.foreign_digits = cells(rest[foreign])
    unread = pd.concat([unread, rest[~read & ~foreign]]).sort_index()
    found.unread = cells(unread)
    found.placeholders = unread[:CELLS_QUOTED].tolist()
    found.date_tried, found.date_parsed = _date_counts(
        text[text.isin(set(unread))].head(DATE_SAMPLE)
    )
    return found


def _date_counts(sample: pd.Series) -> tuple[int, int]:
    """(cells tried, cells that are dates) for a sample of text cells that are not numbers."""
    if not len(sample) or not _looks_like_dates(sample):
        return len(sample), 0
    parsed = pd.to_datetime(sample, errors="coerce", format="ISO8601").notna()
    if parsed.mean() < DATE_SHARE:
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed").notna()
    return len(sample), int(parsed.sum())


def combine_column(a: ColumnProfile, b: ColumnProfile) -> ColumnProfile:
    """Two profiles of one column (a's rows first) as one."""
    if a.rows == 0:
        return b
    notations = dict(a.notations)
    for flags, count in b.notations.items():
        notations[flags] = notations.get(flags, 0) + count
    levels = a.levels if len(a.levels) > LEVEL_CAP else a.levels | b.levels
    return ColumnProfile(
        rows=a.rows + b.rows,
        missing=a.missing + b.missing,
        kind=a.kind if a.kind == b.kind else "text",  # numbers beside text: text, judged below
        numbers=a.numbers + b.numbers,
        notations=notations,
        in_other_notation=a.in_other_notation + b.in_other_notation,
        foreign_digits=a.foreign_digits + b.foreign_digits,
        unread=a.unread + b.unread,
        bad_rows=_first(a.bad_rows, b.bad_rows),
        bad_cells=_first(a.bad_cells, b.bad_cells),
        placeholders=_first(a.placeholders, b.placeholders),
        examples={**b.examples, **a.examples},
        nul=a.nul + b.nul,
        nul_rows=_first(a.nul_rows, b.nul_rows),
        date_tried=a.date_tried + b.date_tried,
        date_parsed=a.date_parsed + b.date_parsed,
        levels=frozenset(sorted(levels)[: LEVEL_CAP + 1]) if len(levels) > LEVEL_CAP else levels,
    )


TableProfile = dict[str, ColumnProfile]


def profile_columns(
    chunk: pd.DataFrame,
    columns: list[str] | None = None,
    notation: tuple[str | None, str] = PLAIN,
) -> TableProfile:
    """profile(chunk) -> partial: each listed column (every column by default) of one chunk."""
    names = list(chunk.columns) if columns is None else [c for c in columns if c in chunk]
    return {str(name): profile_column(chunk[name], notation) for name in names}


def combine_profiles(a: TableProfile, b: TableProfile) -> TableProfile:
    """combine(a, b) -> partial: a's rows first."""
    return {name: combine_column(a.get(name, ColumnProfile()), b[name]) for name in b} | {
        name: found for name, found in a.items() if name not in b
    }


@dataclass(frozen=True)
class ColumnJudgment:
    """What a column is (NUMERIC, CATEGORICAL, DATES, SPOILT or DAMAGED) and why."""

    kind: str
    rows: int
    missing_share: float
    levels: int  # distinct present values (LEVEL_CAP + 1 means more than LEVEL_CAP)
    dated: bool = False  # a date dtype, not text that parses as dates
    problem: str = ""  # for SPOILT and DAMAGED: the cells, counted, with what would fix them

    @property
    def levels_text(self) -> str:
        """The level count as a person reads it: '1,502' or 'more than 10,000'."""
        return f"more than {LEVEL_CAP:,}" if self.levels > LEVEL_CAP else f"{self.levels:,}"


def finish_profile(total: TableProfile) -> dict[str, ColumnJudgment]:
    """finish(total) -> each column's judgment."""
    return {name: _judge(name, found) for name, found in total.items()}


def _judge(name: str, found: ColumnProfile) -> ColumnJudgment:
    present = found.rows - found.missing
    share = found.missing / found.rows if found.rows else 0.0
    base = {"rows": found.rows, "missing_share": share, "levels": len(found.levels)}
    if found.nul:
        rows = ", ".join(map(str, found.nul_rows)) + (", …" if found.nul > CELLS_QUOTED else "")
        problem = (
            f"column {name!r} holds a NUL byte (\\x00) in {found.nul:,} cells (rows {rows}): "
            "the file is damaged; remove those bytes"
        )
        return ColumnJudgment(DAMAGED, problem=problem, **base)
    if found.kind == "datetime":
        return ColumnJudgment(DATES, dated=True, **base)
    if found.kind in {"number", "bool"}:
        return ColumnJudgment(NUMERIC if found.kind == "number" else CATEGORICAL, **base)
    read = found.numbers + found.in_other_notation + found.foreign_digits
    if present and found.numbers < present and read >= MOSTLY_NUMBERS * present:
        return ColumnJudgment(SPOILT, problem=_spoilt_text(name, found, present), **base)
    if found.date_tried and found.date_parsed >= DATE_SHARE * found.date_tried:
        return ColumnJudgment(DATES, **base)
    return ColumnJudgment(CATEGORICAL, **base)


def _spoilt_text(name: str, found: ColumnProfile, present: int) -> str:
    """'column 'area' holds numbers except in 2 rows (rows 5, 17), e.g. [...]: why, counted.'"""
    bad = present - found.numbers
    rows = ", ".join(map(str, found.bad_rows)) + (", …" if bad > CELLS_QUOTED else "")
    reasons = [
        f"{count:,} are numbers written for {flags} (e.g. {found.examples[flags]!r}): pass "
        f"{flags} (data.thousands / data.decimal) to read them"
        for flags, count in sorted(found.notations.items(), key=lambda item: -item[1])
    ]
    if found.foreign_digits:
        reasons.append(f"{found.foreign_digits:,} use digits other than 0-9: write them with 0-9")
    if found.unread:
        reasons.append(
            f"{found.unread:,} are not numbers (e.g. {found.placeholders}): empty them or write a "
            "missing token such as NA"
        )
    return (
        f"column {name!r} holds numbers except in {bad:,} rows (rows {rows}), e.g. "
        f"{found.bad_cells}; of those, {'; '.join(reasons)}"
    )


def profile_judgments(
    frame: pd.DataFrame,
    columns: list[str] | None = None,
    notation: tuple[str | None, str] = PLAIN,
) -> dict[str, ColumnJudgment]:
    """Today's callers: the whole frame profiled as one chunk, then judged."""
    return finish_profile(profile_columns(frame, columns, notation))


def left_out_rule(
    values: pd.Series,
    target: pd.Series | None,
    target_name: str,
    time_column: str | None,
    max_missing_fraction: float,
    judgment: ColumnJudgment | None = None,
) -> tuple[str, str] | None:
    """(rule, detail) when all-columns mode should not use a column as a feature, else None.

    target is the target column when it holds numbers (for the leakage check), else None;
    judgment is the column's profile judgment (computed here from values when not given).
    """
    name = str(values.name)
    if judgment is None:
        judgment = finish_profile(profile_columns(values.to_frame(name)))[name]
    if name == time_column:
        return TIME, "it is data.time_column"
    if judgment.kind == DATES:
        return DATES, "it holds dates" if judgment.dated else "its values are dates"
    if judgment.missing_share > max_missing_fraction:
        return EMPTY, f"{judgment.missing_share:.0%} empty, more than data.max_missing_fraction"
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
    if judgment.levels > max(MIN_LEVELS_TO_SKIP, MAX_LEVEL_SHARE * judgment.rows):
        return (
            IDENTIFIER,
            f"{judgment.levels_text} distinct values look like identifiers or free text",
        )
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


def refuse_spoilt_columns(
    frame: pd.DataFrame,
    columns: list[str],
    hint: str = "",
    notation: tuple[str | None, str] = PLAIN,
    judgments: dict[str, ColumnJudgment] | None = None,
) -> None:
    """Raise ColumnError naming each column that is numbers with exceptions, or damaged."""
    if judgments is None:
        judgments = profile_judgments(frame, [c for c in columns if c in frame.columns], notation)
    problems = [
        found.problem
        for column in dict.fromkeys(columns)
        if (found := judgments.get(str(column))) is not None and found.kind in {SPOILT, DAMAGED}
    ]
    _refuse(problems, hint)


def _refuse(problems: list[str], hint: str = "") -> None:
    if problems:
        shown = "; ".join(problems[:NAMES_QUOTED])
        extra = len(problems) - NAMES_QUOTED
        more = f"; and {extra} more columns" if extra > 0 else ""
        raise ColumnError(f"{shown}{more}{hint}")


def dates_problem(name: str) -> str:
    """Why a date column named as a feature is refused, and what would use it."""
    return (
        f"column {name!r} holds dates, which would become one category per date: write it as "
        "a number in the file (the fractional year, e.g. 2008.5 for 1 July 2008), or set "
        "data.time_column to train on a recent window, or declare it with --categorical"
    )


def levels_problem(name: str, judgment: ColumnJudgment) -> str:
    """Why a named column typed categorical with about one level per row is refused."""
    return (
        f"column {name!r} has {judgment.levels_text} distinct values in {judgment.rows:,} rows: "
        "as a category that is nearly one weight per row (an identifier or free text); leave "
        "it out, or declare it with --categorical to use it anyway"
    )


def too_many_levels(judgment: ColumnJudgment) -> bool:
    """More levels than MAX_NAMED_LEVEL_SHARE of the rows and than MIN_LEVELS_TO_SKIP."""
    limit = max(MIN_LEVELS_TO_SKIP, MAX_NAMED_LEVEL_SHARE * judgment.rows)
    return judgment.levels > limit or judgment.levels > LEVEL_CAP


def decide_features(
    frame: pd.DataFrame,
    target: str,
    named: list[str] | None,
    categorical: list[str],
    time_column: str | None = None,
    max_missing_fraction: float = 1.0,
    notation: tuple[str | None, str] = PLAIN,
    judgments: dict[str, ColumnJudgment] | None = None,
) -> FeatureDecision:
    """Type the named feature columns (every usable column when named is None) by their data.

    A column the user put in `categorical` stays categorical. A named column is never left
    out: numbers with exceptions, dates and near-identifiers are refused, naming the cells.
    judgments, when given, are the columns' profile over every row of the data (folded over
    its chunks); frame is then a sample of its rows, read only by the leakage and row-number
    checks.
    """
    decision = FeatureDecision()
    wanted = list(frame.columns) if named is None else [*named, *categorical]
    if judgments is None:
        wanted = [c for c in dict.fromkeys(wanted) if c in frame]
        judgments = profile_judgments(frame, wanted, notation)
    declared = named is not None
    if named is None:
        numbers = frame[target] if target in frame and is_number_column(frame[target]) else None
        named = []
        for column in frame.columns:
            if column == target or column in categorical:
                continue
            found = judgments[str(column)]
            if found.kind in {SPOILT, DAMAGED}:
                named.append(column)  # refused below, never quietly left out
                continue
            rule = left_out_rule(
                frame[column], numbers, target, time_column, max_missing_fraction, found
            )
            if rule is None:
                named.append(column)
            else:
                decision.left_out[str(column)] = rule
    hint = " (or name the column with --categorical if it really is a category)"
    refuse_spoilt_columns(
        frame, [c for c in named if c not in categorical], hint, notation, judgments
    )
    # A declared category may hold text among numbers, but not NUL bytes (a damaged file).
    _refuse(
        [
            found.problem
            for c in categorical
            if (found := judgments.get(c)) and found.kind == DAMAGED
        ]
    )
    problems = []
    for column in named:
        found = judgments.get(str(column))
        if found is None or found.kind == NUMERIC:  # a missing column: validation names it
            decision.numeric.append(column)
            continue
        if found.kind == DATES:
            problems.append(dates_problem(column))
        elif declared and too_many_levels(found):
            problems.append(levels_problem(column, found))
        decision.categorical.append(column)
    _refuse(problems)
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
