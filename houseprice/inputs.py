"""Checks on rows to be scored and on the prices made from them: no price from absurd inputs.

Every scoring path (the Python API, `houseprice predict`, the batch-predict flow, the promotion
gate's champion score) goes through HousePriceModel.predict, which calls these. Column kinds are
read by houseprice/columns.py, as in training. Needs pandas and numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from houseprice.columns import (
    CELLS_QUOTED,
    DEFAULT_MAX_ABS_VALUE,
    describe_spoilt,
    spoilt_cells,
)
from houseprice.errors import InputSchemaError
from houseprice.preprocessing import Preprocessor

# A value this many training standard deviations from the training mean is far outside what the
# model saw: its price is an extrapolation, so such rows are counted and reported.
FAR_OUTSIDE_Z = 10.0
# A value beyond a numeric feature's training [min, max] by more than this share of the range's
# width is out of range: a line fitted on 600-3,000 sq ft says little at 5,000 and nothing at
# 1e12. Half the width leaves room for the next houses to be a little bigger or newer than any
# before them; below zero is out of range for a feature never negative in training (an area).
RANGE_MARGIN = 0.5


@dataclass(frozen=True)
class InputLimits:
    """What scoring accepts; the defaults match training's."""

    # Inputs and prices beyond this are unit or parsing errors (data.max_abs_value's default).
    max_abs_value: float = DEFAULT_MAX_ABS_VALUE
    # A column missing in more than this share of the rows would be scored mostly on the
    # training median: refused rather than priced quietly (1.0 allows any share).
    max_imputed_fraction: float = 0.5
    # Refuse rows outside the training range (OutOfRangeError) instead of flagging them.
    strict: bool = False


@dataclass
class InputReport:
    """What scoring had to do to the rows: gaps filled, values far outside training."""

    rows: int
    imputed: dict[str, int] = field(default_factory=dict)  # column → cells given the median
    far_outside: dict[str, int] = field(default_factory=dict)  # column → rows beyond FAR_Z
    # Per row, the columns outside the training range (', '-joined, '' when none); None for a
    # model saved before training ranges were (nothing to check against).
    out_of_range: pd.Series | None = None


class OutOfRangeError(InputSchemaError):
    """Rows outside the training range, refused because the caller asked for strict scoring."""


def allowed_range(low: float, high: float) -> tuple[float, float]:
    """The values accepted for a feature seen in [low, high] in training (RANGE_MARGIN)."""
    margin = RANGE_MARGIN * (high - low)
    floor = low - margin
    return (max(floor, 0.0) if low >= 0 else floor), high + margin


def out_of_range_rows(prep: Preprocessor, frame: pd.DataFrame) -> pd.Series | None:
    """Per row, the design's numeric columns whose value is outside allowed_range ('' if none).

    Missing cells are not flagged (they are scored on the training median, and counted as
    such); None when the model has no training ranges (saved before they were kept).
    """
    if prep.training_ranges is None:
        return None
    flags = pd.Series("", index=frame.index, dtype=object)
    used = set(prep.feature_names)
    for column in prep.numeric_features:
        if column not in used or column not in prep.training_ranges:
            continue
        low, high = allowed_range(*prep.training_ranges[column])
        numbers = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        outside = ((numbers < low) | (numbers > high)).to_numpy()
        flags[outside] = flags[outside].map(
            lambda listed, c=column: f"{listed}, {c}" if listed else c
        )
    return flags


def describe_out_of_range(prep: Preprocessor, flags: pd.Series) -> str:
    """'rows 1 (area), 3 (area, year) are outside the training range (area: 0 to 4,200; ...)'."""
    flagged = flags[flags != ""]
    rows = ", ".join(f"{row} ({columns})" for row, columns in flagged.head(CELLS_QUOTED).items())
    more = f" and {len(flagged) - CELLS_QUOTED} more" if len(flagged) > CELLS_QUOTED else ""
    columns = dict.fromkeys(c for listed in flagged for c in listed.split(", "))
    bounds = "; ".join(
        f"{c}: {low:.6g} to {high:.6g}"
        for c in columns
        for low, high in [allowed_range(*prep.training_ranges[c])]
    )
    return f"rows {rows}{more} are outside the training range (accepted {bounds})"


def _rows(index: pd.Index) -> str:
    shown = ", ".join(str(row) for row in index[:CELLS_QUOTED])
    return shown + (", …" if len(index) > CELLS_QUOTED else "")


def _numeric_problem(column: str, values: pd.Series, limit: float) -> str | None:
    """Why a model's numeric column cannot be scored, or None."""
    if pd.api.types.is_bool_dtype(values):
        return f"{column!r} must be numeric, found e.g. {values.head(3).tolist()}"
    if len(bad := spoilt_cells(values)):
        return describe_spoilt(column, bad)
    numbers = pd.to_numeric(values, errors="coerce")
    text = values[numbers.isna() & values.notna()]
    if len(text):
        return f"{column!r} must be numeric, found e.g. {text.unique()[:3].tolist()}"
    numbers = numbers.astype("float64")
    infinite = numbers[np.isinf(numbers)]
    if len(infinite):
        return f"{column!r} is infinite in rows {_rows(infinite.index)}"
    huge = numbers[numbers.abs() > limit]
    if len(huge):
        return (
            f"{column!r} exceeds ±{limit:g} in rows {_rows(huge.index)}, e.g. "
            f"{huge.head(3).tolist()}"
        )
    return None


def check_scoring_input(
    prep: Preprocessor, frame: pd.DataFrame, limits: InputLimits | None = None
) -> InputReport:
    """Raise InputSchemaError naming each unusable column; report gaps and far-out values."""
    limits = limits or InputLimits()
    missing = [c for c in prep.numeric_features + prep.categorical_features if c not in frame]
    if missing:
        raise InputSchemaError(f"input lacks the model's columns: {missing}")
    problems = [
        problem
        for column in prep.numeric_features
        if (problem := _numeric_problem(column, frame[column], limits.max_abs_value))
    ]
    if problems:
        raise InputSchemaError("input cannot be scored: " + "; ".join(problems))
    report = InputReport(rows=len(frame), out_of_range=out_of_range_rows(prep, frame))
    flags = report.out_of_range
    if limits.strict and flags is not None and (flags != "").any():
        raise OutOfRangeError(
            f"{describe_out_of_range(prep, flags)}; strict scoring (--strict) refuses them; "
            "without it they are priced and flagged in the out_of_range column"
        )
    # Scaling statistics by design column name: a column dropped as aliased has none.
    scaling = dict(zip(prep.feature_names, zip(prep.means, prep.scales, strict=True), strict=True))
    for column in prep.numeric_features:
        numbers = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        if gaps := int(numbers.isna().sum()):
            report.imputed[column] = gaps
        if column not in scaling:
            continue
        mean, scale = scaling[column]
        if far := int(((numbers - mean) / scale).abs().gt(FAR_OUTSIDE_Z).sum()):
            report.far_outside[column] = far
    refuse_too_many_imputed(report.imputed, len(frame), limits)
    return report


def refuse_too_many_imputed(imputed: dict[str, int], rows: int, limits: InputLimits) -> None:
    """Refuse columns missing in more than limits.max_imputed_fraction of rows (imputed: gaps)."""
    too_many = {
        column: count
        for column, count in imputed.items()
        if rows and count / rows > limits.max_imputed_fraction
    }
    if too_many:
        shares = ", ".join(f"{c!r} {n} of {rows}" for c, n in too_many.items())
        raise InputSchemaError(
            f"too many missing values to score ({shares} rows empty, more than "
            f"{limits.max_imputed_fraction:.0%}); they would be priced on the training median. "
            "Fill them, or raise the limit (--max-imputed-fraction)"
        )


def check_prices(prices: np.ndarray, limits: InputLimits | None = None) -> None:
    """Refuse to hand out a non-finite or absurd price, naming the rows."""
    limits = limits or InputLimits()
    prices = np.asarray(prices, dtype="float64")
    bad = np.flatnonzero(~np.isfinite(prices) | (np.abs(prices) > limits.max_abs_value))
    if len(bad):
        raise InputSchemaError(
            f"the model's price for rows {_rows(pd.Index(bad))} is not a usable number "
            f"(e.g. {prices[bad[0]]:g}): their inputs are far outside the training data"
        )
