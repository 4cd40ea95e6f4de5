"""Validate: the bundled data passes its suite; bad data fails naming the column and values."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prefect.logging import disable_run_logger

from houseprice import layout, storage
from houseprice.chunks import frame_table
from houseprice.config import DataConfig
from houseprice.flows.engine import LocalEngine
from houseprice.tasks.suites import (
    build_expectation_suite,
    build_landing_suite,
    build_learned_suite,
)
from houseprice.tasks.validate import DataValidationError, run_validation, validate_table
from tests.conftest import houses_config, make_houses


def validate(frame: pd.DataFrame, **changes):
    return run_validation(frame, build_expectation_suite(houses_config(**changes)))


def failure_lines(report) -> list[str]:
    return [str(failure) for failure in report.failures]


def test_bundled_data_passes_bundled_suite():
    frame = pd.read_parquet(storage.BUNDLED_DATA)
    suite = build_expectation_suite(DataConfig(), storage.read_json(storage.BUNDLED_SUITE))
    report = run_validation(frame, suite)
    assert report.success, "\n".join(failure_lines(report))
    assert report.evaluated == report.successful == len(suite["expectations"]) > 100


def test_bundled_source_still_checks_the_users_columns():
    data = DataConfig(numeric_features=["Pool_Area"], categorical_features=["Misc_Feature"])
    suite = build_expectation_suite(data, storage.read_json(storage.BUNDLED_SUITE))
    checks = [(e["type"], e["kwargs"]) for e in suite["expectations"]]
    assert ("expect_column_to_exist", {"column": "Pool_Area"}) in checks
    not_null = {"column": "Misc_Feature", "mostly": 0.8}
    assert ("expect_column_values_to_not_be_null", not_null) in checks
    assert len(checks) == len({json.dumps(check, sort_keys=True) for check in checks})


def test_clean_houses_pass(houses):
    report = validate(houses, value_ranges={"year": (1900, 2030)})
    assert report.success and report.failed == 0 and report.failures == []


def test_negative_price_fails_naming_column_and_value(houses):
    houses.loc[[3, 7], "price"] = [-5.0, -120.0]
    report = validate(houses)
    assert not report.success
    [failure] = report.failures
    assert failure.column == "price" and failure.sample == [-5.0, -120.0]
    assert str(failure) == (
        "expect_column_values_to_be_between on 'price': 2 of 20 values outside (0.0, None], "
        "e.g. [-5.0, -120.0]"
    )


def test_value_range_from_config_fails(houses):
    houses.loc[0, "year"] = 1066
    report = validate(houses, value_ranges={"year": (1850, None)})
    assert failure_lines(report) == [
        "expect_column_values_to_be_between on 'year': 1 of 20 values outside [1850.0, None], "
        "e.g. [1066]"
    ]


def test_missing_column_fails_clearly(houses):
    report = validate(houses.drop(columns=["area"]))
    lines = failure_lines(report)
    assert lines[0] == "expect_column_to_exist: column 'area' is missing"
    # The column's other checks cannot run; they say why instead of showing GX's exception.
    assert all("column 'area' is missing" in line for line in lines)
    assert {failure.column for failure in report.failures} == {"area"}


def test_strings_in_numeric_feature_fail(houses):
    houses["area"] = houses["area"].astype(str)
    houses.loc[2, "area"] = "big"
    lines = failure_lines(validate(houses))
    assert lines[0] == (
        "expect_column_values_to_be_in_type_list on 'area': column type is str, "
        "expected a numeric type"
    )
    assert (
        "expect_column_values_to_be_between on 'area': not evaluated, column 'area' is not numeric"
    ) in lines


def test_too_few_rows_fail(houses):
    lines = failure_lines(validate(houses.head(5)))
    assert lines == ["expect_table_row_count_to_be_between: 5 rows, outside [10, None]"]


def test_infinities_fail(houses):
    houses.loc[4, "area"] = np.inf
    houses.loc[9, "price"] = -np.inf
    lines = failure_lines(validate(houses))
    between = "expect_column_values_to_be_between"
    assert f"{between} on 'area': 1 of 20 values are infinite, e.g. [inf]" in lines
    assert f"{between} on 'price': 1 of 20 values are infinite, e.g. [-inf]" in lines


@pytest.mark.parametrize(("missing", "passes"), [(4, True), (5, False)])
def test_null_fraction_limit(houses, missing, passes):
    # 4 of 20 is exactly the 20% allowed; 5 is over it. The categorical column counts too.
    houses.loc[: missing - 1, "hood"] = None
    report = validate(houses, max_missing_fraction=0.2)
    assert report.success is passes
    if not passes:
        assert failure_lines(report) == [
            "expect_column_values_to_not_be_null on 'hood': 5 of 20 values are null "
            "(25.0%, at most 20% allowed)"
        ]


def test_a_wide_suite_run_in_column_groups_reports_as_if_run_whole(houses, monkeypatch):
    import houseprice.tasks.gx_engine

    extra = [f"x{i}" for i in range(7)]
    frame = houses.assign(**{column: np.arange(20.0) for column in extra})
    frame.loc[3, "x2"], frame.loc[5, "x5"], frame.loc[1, "area"] = -5.0, np.inf, np.nan
    frame = frame.drop(columns=["year"])
    changes = {"numeric_features": ["area", "year", *extra], "value_ranges": {"x2": (0, None)}}
    suite = build_expectation_suite(houses_config(**changes, max_missing_fraction=0))
    whole = run_validation(frame, suite)
    monkeypatch.setattr(houseprice.tasks.gx_engine, "COLUMNS_PER_GROUP", 3)
    assert (
        len(houseprice.tasks.gx_engine.split_suite(suite, 3)) == 5
    )  # the table's checks, then 4 groups
    grouped = run_validation(frame, suite)
    counts = lambda report: (report.success, report.evaluated, report.successful, report.failed)  # noqa: E731
    assert counts(grouped) == counts(whole) == (False, len(suite["expectations"]), 46, 9)
    assert failure_lines(grouped) == failure_lines(whole)  # in suite order, worded alike
    assert grouped.result["suite_name"] == whole.result["suite_name"] == "houseprice"
    between = "expect_column_values_to_be_between"
    assert (
        failure_lines(grouped)[-1]
        == f"{between} on 'x2': 1 of 20 values outside [0.0, None], e.g. [-5.0]"
    )


def test_past_the_detail_limit_data_docs_show_only_groups_with_a_failure(
    houses, tmp_path, monkeypatch
):
    import houseprice.tasks.gx_engine

    monkeypatch.setattr(houseprice.tasks.gx_engine, "COLUMNS_PER_GROUP", 2)
    monkeypatch.setattr(houseprice.tasks.gx_engine, "DOCS_DETAIL_LIMIT", 10)
    houses.loc[0, "area"] = -1.0  # fails only the range check of the group (price, area)
    suite = build_expectation_suite(houses_config(value_ranges={"area": (0, None)}))
    report = run_validation(houses, suite, tmp_path / "docs")
    pages = sorted(p.name for p in (tmp_path / "docs" / "validations").iterdir())
    assert pages == ["houseprice (columns 1-2 of 4)", "houseprice (table)"]
    checks_on = lambda *columns: sum(  # noqa: E731
        e["kwargs"].get("column") in columns for e in suite["expectations"]
    )
    assert report.docs_omitted == checks_on("year", "hood") > 0
    assert len(report.result["results"]) == report.evaluated == len(suite["expectations"])
    assert failure_lines(report) == [
        "expect_column_values_to_be_between on 'area': 1 of 20 values outside [0.0, None], "
        "e.g. [-1.0]"
    ]


def test_unknown_expectation_is_refused(houses):
    suite = build_expectation_suite(houses_config())
    suite["expectations"].append({"type": "expect_price_to_be_fair", "kwargs": {}})
    with pytest.raises(ValueError, match=r"cannot be validated: \['expect_price_to_be_fair'\]"):
        run_validation(houses, suite)


def test_data_docs_built_without_network(houses, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"validation tried the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    report = run_validation(houses, build_expectation_suite(houses_config()), tmp_path / "docs")
    assert report.docs_index == tmp_path / "docs" / "index.html"
    assert "<html" in report.docs_index.read_text().lower()
    assert list((tmp_path / "docs" / "validations").rglob("*.html"))
    # No temporary folder left beside it; the styles and scripts in the one shared folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data_docs_static", "docs"]


GX_DARK_LOGO = (
    "url('https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/full_logo_dark.png')"
)


def test_data_docs_load_nothing_from_the_network(houses, tmp_path):
    report = run_validation(houses, build_expectation_suite(houses_config()), tmp_path / "docs")
    pages = list((tmp_path / "docs").rglob("*.html"))
    assert len(pages) >= 3  # index, the suite, the validation result
    for page in pages:
        html = page.read_text()
        assert not re.search(r"<(link|script|img)\b[^>]*(href|src)=\"https?://", html), page
        assert "https://cdn" not in html
        # GX's one remote URL in CSS (a dark-mode logo) is overridden by the custom styles.
        assert re.findall(r"url\('https?://[^)]*\)", html) == [GX_DARK_LOGO], page
        assert html.index(GX_DARK_LOGO) < html.index(".navbar-brand a { background: none; }")
        local = re.findall(r"(?:href|src)=\"([^\"#:]+\.(?:css|js|ico|png))\"", html)
        assert {Path(ref).name for ref in local} >= {"bootstrap.min.css", "jquery.min.js"}, page
        for ref in local:
            assert (page.parent / ref).resolve().is_file(), (page, ref)
    assert report.success


def test_runs_share_one_copy_of_the_data_docs_assets(houses, tmp_path):
    suite = build_expectation_suite(houses_config())
    for run in ("one", "two"):
        run_validation(houses, suite, tmp_path / run / "docs", tmp_path / "shared")
        assert not (tmp_path / run / "docs" / "static").exists()  # GX's 4 MB copy is dropped
    (version,) = (tmp_path / "shared").iterdir()
    files = {p.relative_to(version).as_posix() for p in version.rglob("*") if p.is_file()}
    assert {"css/bootstrap.min.css", "js/jquery.min.js", "images/logo-long.png"} <= files
    # The libraries GX's pages name (~0.8 MB), not GX's 4 MB of fonts and images.
    assert sum(p.stat().st_size for p in version.rglob("*") if p.is_file()) < 1_000_000


def test_task_writes_result_and_docs(houses, tmp_path):
    run = layout.RunPaths("test-run", tmp_path / "run")
    with disable_run_logger():
        report = validate_table(
            frame_table(houses, "houses", 1_000), houses_config(), run, LocalEngine()
        )
    assert report.success
    written = json.loads(run.validation.read_text())
    assert written["success"] is True and written["evaluated"] == report.evaluated
    assert written["result"]["statistics"]["unsuccessful_expectations"] == 0
    assert (run.data_docs / "index.html").is_file()


def test_task_raises_after_writing_result(houses, tmp_path):
    houses.loc[0, "price"] = np.inf
    run = layout.RunPaths("test-run", tmp_path / "run")
    with disable_run_logger(), pytest.raises(DataValidationError) as raised:
        validate_table(frame_table(houses, "houses", 1_000), houses_config(), run, LocalEngine())
    assert "'price': 1 of 20 values are infinite, e.g. [inf]" in str(raised.value)
    # Strict JSON: the infinite sample is stored as a string, not as a bare Infinity.
    written = json.loads(run.validation.read_text(), parse_constant=pytest.fail)
    assert written["success"] is False
    assert written["failures"][0]["sample"] == ["inf"]


# ---------------------------------------------------------------------------------------------
# A suite learned from trusted data.


@pytest.fixture(scope="module")
def learned():
    """The suite learned from 200 trusted houses, with year as the time column."""
    return build_learned_suite(make_houses(rows=200, seed=0), target="price", time_column="year")


def learned_check(suite, kind, column):
    """The kwargs of the learned expectation (the one with a note) of a kind on a column."""
    [found] = [
        e["kwargs"]
        for e in suite["expectations"]
        if e["type"] == kind and e["kwargs"].get("column") == column and e["meta"].get("notes")
    ]
    return found


def test_learned_suite_profiles_columns_ranges_levels_and_nulls(learned):
    trusted = make_houses(rows=200, seed=0)
    area = learned_check(learned, "expect_column_values_to_be_between", "area")
    low, high = trusted["area"].min(), trusted["area"].max()
    margin, step = 0.1 * (high - low), 0.01 * (high - low)  # rounded outward by under a step
    assert low - margin - step <= area["min_value"] <= low - margin
    assert high + margin <= area["max_value"] <= high + margin + step
    price = learned_check(learned, "expect_column_values_to_be_between", "price")
    assert price["min_value"] >= trusted["price"].min() / 2  # a price in $100s would fail
    skewed = build_learned_suite(pd.DataFrame({"price": [1.0, 1000.0]}), target="price")
    price = learned_check(skewed, "expect_column_values_to_be_between", "price")
    assert price["min_value"] == 0 and price["strict_min"] is True  # a price stays above zero
    year = learned_check(learned, "expect_column_values_to_be_between", "year")
    assert "max_value" not in year  # the time column: new rows are newer
    hood = learned_check(learned, "expect_column_values_to_be_in_set", "hood")
    assert hood == {"column": "hood", "value_set": ["East", "North", "South"], "mostly": 0.9}
    assert learned_check(learned, "expect_column_values_to_not_be_null", "area")["mostly"] == 0.95
    assert run_validation(trusted, learned).success


def test_similar_data_passes_the_learned_suite_with_a_few_new_levels(learned):
    fresh = make_houses(rows=30, seed=7).assign(year=2031)  # newer than anything seen: fine
    fresh.loc[0, "hood"] = "West"  # a new neighborhood, 1 row of 30
    report = run_validation(fresh, build_landing_suite(houses_config(), learned))
    assert report.success, failure_lines(report)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda f: f.assign(area=f["area"] * 10.76),
            "expect_column_values_to_be_between on 'area'",
        ),
        (lambda f: f.assign(area=f["area"].astype(str)), "in_type_list on 'area'"),
        (lambda f: f.assign(hood="Elsewhere"), "6 of 6 values are not known levels"),
        (lambda f: f.assign(agent="X"), "columns differ from the suite's: unexpected ['agent']"),
    ],
)
def test_out_of_range_or_new_type_data_fails_the_learned_suite(learned, change, expected):
    report = run_validation(change(make_houses(rows=6, seed=7)), learned)
    assert not report.success
    assert any(expected in line for line in failure_lines(report)), failure_lines(report)


def test_learned_suite_is_editable_json(learned, tmp_path):
    path = storage.write_json_atomic(tmp_path / "suite.json", learned)
    text = path.read_text()
    assert '"notes": "observed' in text  # each learned bound says where it came from
    edited = json.loads(text)
    learned_check(edited, "expect_column_values_to_be_between", "area")["max_value"] = 1000
    storage.write_json_atomic(path, edited)
    again = storage.read_json(path)
    houses = make_houses(rows=20, seed=7)
    assert run_validation(houses, storage.read_json(tmp_path / "suite.json")).success is False
    assert run_validation(houses, learned).success
    assert again == edited


def test_landing_suite_drops_only_the_minimum_row_count(learned):
    full = build_expectation_suite(houses_config(), learned)
    landing = build_landing_suite(houses_config(), learned)
    removed = [e for e in full["expectations"] if e not in landing["expectations"]]
    assert [e["type"] for e in removed] == ["expect_table_row_count_to_be_between"]
    assert run_validation(make_houses(rows=3, seed=7), landing).success


def test_learned_null_headroom_grows_with_the_trusted_null_rate():
    trusted = make_houses(rows=20, seed=0)
    trusted.loc[:7, "hood"] = None  # 40% null
    suite = build_learned_suite(trusted, target="price")
    assert learned_check(suite, "expect_column_values_to_not_be_null", "hood")["mostly"] == 0.35
    for nulls, passes in ((12, True), (14, False)):  # 60% is within the headroom, 70% is not
        fresh = make_houses(rows=20, seed=1)
        fresh.loc[: nulls - 1, "hood"] = None
        assert run_validation(fresh, suite).success is passes
