"""Column typing: the profile folds over chunks, and numbers, dates and levels are never guessed."""

from __future__ import annotations

from functools import reduce

import pandas as pd
import pytest

from houseprice.columns import (
    CATEGORICAL,
    DATES,
    NUMERIC,
    SPOILT,
    ColumnError,
    combine_profiles,
    decide_features,
    finish_profile,
    parse_numbers,
    profile_columns,
)
from tests.conftest import make_houses


def _mixed_frame(rows: int = 300) -> pd.DataFrame:
    """One column of each judgment, as text where a CSV would leave it text."""
    houses = make_houses(rows=rows, seed=2)
    grouped = [f"{int(a):,}" for a in houses["area"]]
    dashed = [str(a) if i % 5 else "-" for i, a in enumerate(houses["area"])]
    dates = pd.date_range("2008-01-01", periods=rows, freq="D").strftime("%Y-%m-%d")
    return houses.assign(
        grouped=pd.Series(grouped, dtype="str"),
        dashed=pd.Series(dashed, dtype="str"),
        sold=pd.Series(list(dates), dtype="str"),
        note=pd.Series([None if i % 7 == 0 else f"n{i % 11}" for i in range(rows)], dtype="str"),
    )


def test_profiling_whole_or_in_three_chunks_gives_the_same_judgments():
    frame = _mixed_frame()
    whole = finish_profile(profile_columns(frame))
    pieces = [frame.iloc[:100], frame.iloc[100:170], frame.iloc[170:]]
    folded = finish_profile(reduce(combine_profiles, [profile_columns(p) for p in pieces]))
    assert folded == whole
    kinds = {name: judgment.kind for name, judgment in whole.items()}
    assert kinds == {
        "area": NUMERIC,
        "year": NUMERIC,
        "price": NUMERIC,
        "hood": CATEGORICAL,
        "grouped": SPOILT,
        "dashed": SPOILT,
        "sold": DATES,
        "note": CATEGORICAL,
    }
    assert whole["note"].levels == 11 and whole["note"].missing_share == pytest.approx(43 / 300)


def test_numbers_parse_only_in_the_notation_they_are_read_in():
    text = pd.Series(["1,656", "1.656", "1234,5", "12", "1'000", "-"], dtype="str")
    assert parse_numbers(text).tolist()[3] == 12.0
    assert parse_numbers(text).isna().tolist() == [True, False, True, False, True, True]
    assert parse_numbers(text, (",", "."))[0] == 1656.0
    assert parse_numbers(text, (None, ","))[2] == 1234.5
    assert parse_numbers(text, (".", ","))[1] == 1656.0
    assert parse_numbers(text, ("'", "."))[4] == 1000.0


def test_a_refused_column_names_the_notation_that_would_read_it():
    frame = _mixed_frame()
    with pytest.raises(ColumnError) as caught:
        decide_features(frame, "price", ["grouped", "year"], [])
    message = str(caught.value)
    assert "column 'grouped' holds numbers except in" in message
    assert "are numbers written for --thousands ','" in message and "e.g. '" in message
    assert "--categorical" in message


def test_placeholders_are_named_with_their_count():
    with pytest.raises(ColumnError, match=r"60 are not numbers \(e.g. \['-'\]\)"):
        decide_features(_mixed_frame(), "price", ["dashed"], [])


def test_a_date_named_as_a_feature_is_refused_with_advice_unless_declared():
    frame = _mixed_frame()
    with pytest.raises(ColumnError, match=r"'sold' holds dates.*fractional year, e.g. 2008.5"):
        decide_features(frame, "price", ["sold", "area"], [])
    assert decide_features(frame, "price", ["area"], ["sold"]).numeric == ["area"]


def test_a_named_category_with_a_level_per_row_is_refused_unless_declared():
    frame = make_houses(rows=200).assign(code=[f"c{i}" for i in range(200)])
    with pytest.raises(ColumnError, match=r"'code' has 200 distinct values in 200 rows"):
        decide_features(frame, "price", ["code", "area"], [])
    assert decide_features(frame, "price", ["area"], ["code"]).numeric == ["area"]
    # 60 levels in 200 rows is a category with few rows per level, not an identifier.
    few = frame.assign(code=[f"c{i % 60}" for i in range(200)])
    assert decide_features(few, "price", ["code"], []).categorical == ["code"]
