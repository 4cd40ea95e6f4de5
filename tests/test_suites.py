"""Suites: built from the config, curated for the bundled data, learned from trusted data.

Building a suite needs neither Great Expectations nor Prefect: these tests read the suite JSON
itself. tests/test_validate.py runs suites against data.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from houseprice import storage
from houseprice.config import DataConfig
from houseprice.tasks import suites
from houseprice.tasks.suites import (
    BETWEEN,
    COLUMN_SET,
    EXISTS,
    NOT_NULL,
    TYPE_LIST,
    build_bundled_suite,
    build_expectation_suite,
    build_landing_suite,
    build_learned_suite,
)
from tests.conftest import houses_config, make_houses

IN_SET = "expect_column_values_to_be_in_set"
ROW_COUNT = "expect_table_row_count_to_be_between"


def houses_data(**changes) -> DataConfig:
    """conftest's house table config, needing 12 rows."""
    return houses_config(**{"min_rows": 12, **changes})


def checks(suite, kind, column=None) -> list[dict]:
    """The kwargs of every expectation of a kind (on a column, when given)."""
    return [
        e["kwargs"]
        for e in suite["expectations"]
        if e["type"] == kind and (column is None or e["kwargs"].get("column") == column)
    ]


def noted(suite, kind, column) -> dict:
    """The one expectation of a kind on a column that carries a note (a learned or curated one)."""
    [found] = [
        e
        for e in suite["expectations"]
        if e["type"] == kind and e["kwargs"].get("column") == column and e["meta"].get("notes")
    ]
    return found


# ---------------------------------------------------------------------------------------------
# The suite a config implies.


def test_the_config_suite_checks_row_count_columns_types_and_the_target():
    suite = build_expectation_suite(houses_data())
    assert suite["name"] == "houseprice"
    assert checks(suite, ROW_COUNT) == [{"min_value": 12}]
    assert [c["column"] for c in checks(suite, EXISTS)] == ["price", "area", "year", "hood"]
    assert [c["column"] for c in checks(suite, TYPE_LIST)] == ["price", "area", "year"]
    assert checks(suite, TYPE_LIST, "hood") == []  # a categorical column may hold any type
    assert {"column": "price"} in checks(suite, NOT_NULL, "price")  # no missing targets at all
    assert {"column": "price", "min_value": 0, "strict_min": True} in checks(suite, BETWEEN)


def test_each_numeric_column_must_be_finite_and_within_max_abs_value():
    suite = build_expectation_suite(houses_data(max_abs_value=1e9))
    for column in ("price", "area", "year"):
        bounds = checks(suite, BETWEEN, column)
        assert {"column": column, "min_value": -1e9, "max_value": 1e9} in bounds
        assert {
            "column": column,
            "min_value": -suites.FINITE_BOUND,
            "max_value": suites.FINITE_BOUND,
        } in bounds


def test_features_may_miss_up_to_max_missing_fraction_exactly():
    suite = build_expectation_suite(houses_data(max_missing_fraction=0.7))
    # 1 - 0.7 is 0.30000000000000004 in floats: a column exactly 70% missing must still pass.
    assert checks(suite, NOT_NULL, "hood") == [{"column": "hood", "mostly": 0.3}]


def test_value_ranges_add_a_bounds_check_and_a_column_that_must_exist():
    ranges = {"year": (1900, None), "lot": (0, 50_000), "zip": (None, None)}
    suite = build_expectation_suite(houses_data(value_ranges=ranges))
    assert {"column": "year", "min_value": 1900} in checks(suite, BETWEEN, "year")
    assert checks(suite, BETWEEN, "lot") == [{"column": "lot", "min_value": 0, "max_value": 50_000}]
    assert checks(suite, BETWEEN, "zip") == []  # no bound given: existence only
    assert {"column": "lot"} in checks(suite, EXISTS) and {"column": "zip"} in checks(suite, EXISTS)


def test_a_base_suite_comes_first_is_not_changed_and_is_never_repeated():
    base = {
        "name": "mine",
        "meta": {"owner": "me"},
        "expectations": [suites._expect(EXISTS, column="area"), suites._expect(EXISTS, column="x")],
    }
    before = json.dumps(base, sort_keys=True)
    suite = build_expectation_suite(houses_data(), base)
    assert json.dumps(base, sort_keys=True) == before
    assert (suite["name"], suite["meta"]) == ("mine", {"owner": "me"})
    assert suite["expectations"][:2] == base["expectations"]
    assert [c["column"] for c in checks(suite, EXISTS)] == ["area", "x", "price", "year", "hood"]


# ---------------------------------------------------------------------------------------------
# The curated suite for the bundled data.


def test_the_bundled_suite_bounds_every_curated_column_and_says_why():
    suite = build_bundled_suite()
    assert checks(suite, ROW_COUNT) == [{"min_value": 2_930}]
    price = noted(suite, BETWEEN, "Sale_Price")
    assert price["kwargs"] == {"column": "Sale_Price", "min_value": 5_000, "max_value": 2_000_000}
    assert price["meta"]["notes"] == "observed $12,789-$755,000"
    for column in suites._AMES_RANGES:
        assert {"column": column} in checks(suite, NOT_NULL, column)
        assert checks(suite, TYPE_LIST, column)
    # The release spells warranty deed "WD " with a space; trimming it would refuse most rows.
    assert "WD " in checks(suite, IN_SET, "Sale_Type")[0]["value_set"]


def test_committed_suite_is_what_the_generator_builds():
    # The JSON is the source of truth; this catches a hand edit the generator would later undo.
    import great_expectations as gx

    committed = gx.ExpectationSuite(**storage.read_json(storage.BUNDLED_SUITE))
    generated = build_bundled_suite()
    assert len(committed.expectations) == len(generated["expectations"])
    assert committed.expectations == gx.ExpectationSuite(**generated).expectations


# ---------------------------------------------------------------------------------------------
# The suite learned from trusted data, and editing it.


@pytest.fixture(scope="module")
def trusted() -> pd.DataFrame:
    """200 trusted houses plus a flag, a date, an identifier and a mostly empty column."""
    frame = make_houses(rows=200, seed=0)
    return frame.assign(
        garage=np.arange(200) % 2 == 0,
        sold=pd.date_range("2020-01-01", periods=200, freq="D"),
        parcel=[f"P{i:04d}" for i in range(200)],
        pool=[np.nan] * 190 + [1.0] * 10,
    )


@pytest.fixture(scope="module")
def learned(trusted) -> dict:
    """The suite learned from trusted, with year as the time column."""
    return build_learned_suite(trusted, target="price", time_column="year")


def test_the_learned_suite_fixes_the_exact_column_set(learned, trusted):
    assert checks(learned, COLUMN_SET) == [
        {"column_set": list(trusted.columns), "exact_match": True}
    ]
    assert learned["name"] == "learned" and "200 trusted rows" in learned["notes"]


def test_learned_ranges_widen_the_observed_one_by_a_tenth_and_keep_a_floor(learned, trusted):
    low, high = trusted["area"].min(), trusted["area"].max()
    area = noted(learned, BETWEEN, "area")
    span = high - low
    assert low - 0.11 * span <= area["kwargs"]["min_value"] <= low - 0.1 * span
    assert high + 0.1 * span <= area["kwargs"]["max_value"] <= high + 0.11 * span
    assert f"observed {low:g} to {high:g}" in area["meta"]["notes"]
    price = noted(learned, BETWEEN, "price")["kwargs"]
    assert price["min_value"] >= trusted["price"].min() / 2  # a price in $100s fails
    year = noted(learned, BETWEEN, "year")
    assert "max_value" not in year["kwargs"] and "no upper bound" in year["meta"]["notes"]
    assert isinstance(year["kwargs"]["min_value"], int)  # an integer column keeps integer bounds


def test_levels_are_listed_for_categories_only(learned):
    hood = noted(learned, IN_SET, "hood")["kwargs"]
    assert hood == {"column": "hood", "value_set": ["East", "North", "South"], "mostly": 0.9}
    assert noted(learned, IN_SET, "garage")["kwargs"]["value_set"] == [False, True]  # not numeric
    assert checks(learned, BETWEEN, "garage") == []
    assert checks(learned, IN_SET, "parcel") == []  # 200 distinct values: an identifier
    assert checks(learned, IN_SET, "sold") == checks(learned, BETWEEN, "sold") == []


def test_null_allowances_follow_the_trusted_null_rate(learned):
    assert checks(learned, NOT_NULL, "price") == [{"column": "price"}]  # the target: never
    assert checks(learned, NOT_NULL, "area") == [{"column": "area", "mostly": 0.95}]
    assert checks(learned, NOT_NULL, "pool") == []  # 95% null: any share of nulls passes


def test_a_column_never_below_zero_stays_non_negative_and_a_price_stays_positive():
    suite = build_learned_suite(pd.DataFrame({"price": [1.0, 1000.0], "n": [0, 9]}), "price")
    assert checks(suite, BETWEEN, "price")[-1] == {
        "column": "price",
        "min_value": 0,
        "max_value": 1100,
        "strict_min": True,
    }
    assert checks(suite, BETWEEN, "n")[-1] == {"column": "n", "min_value": 0, "max_value": 10}


def test_an_edited_learned_suite_round_trips_and_the_landing_suite_keeps_the_edit(
    learned, tmp_path
):
    path = storage.write_json_atomic(tmp_path / "suite.json", learned)
    json.loads(path.read_text(), parse_constant=pytest.fail)  # strict JSON, no NaN or Infinity
    assert storage.read_json(path) == learned
    edited = storage.read_json(path)
    noted(edited, BETWEEN, "area")["kwargs"]["max_value"] = 1_000
    storage.write_json_atomic(path, edited)
    landing = build_landing_suite(houses_data(), storage.read_json(path))
    assert noted(edited, BETWEEN, "area") in landing["expectations"]
    assert checks(landing, ROW_COUNT) == []  # a file may hold one day's few sales
    full = build_expectation_suite(houses_data(), storage.read_json(path))
    dropped = [e for e in full["expectations"] if e not in landing["expectations"]]
    assert [e["type"] for e in dropped] == [ROW_COUNT]
