"""The validation fold: a frame validated in any number of chunks gives its whole result."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from prefect.logging import disable_run_logger

from houseprice import layout
from houseprice.chunks import Chunk, ChunkedTable, frame_table
from houseprice.flows.engine import LocalEngine
from houseprice.folds import combine_all, fold_frames
from houseprice.tasks.gx_merge import (
    merge_chunk_results,
    refuse_unmergeable,
    report_merged,
    validate_chunk,
)
from houseprice.tasks.profiles import combine_profiles, profile_frame
from houseprice.tasks.suites import (
    build_expectation_suite,
    build_learned_suite,
    build_learned_suite_from_profile,
)
from houseprice.tasks.validate import (
    DataValidationError,
    ValidationFold,
    run_validation,
    validate_table,
)
from tests.conftest import houses_config, make_houses

IN_SET = "expect_column_values_to_be_in_set"
ROW_COUNT = "expect_table_row_count_to_be_between"
CHANGES = {"min_rows": 25, "max_missing_fraction": 0.2, "value_ranges": {"area": (700, None)}}


def split(frame: pd.DataFrame, parts: int) -> list[pd.DataFrame]:
    """frame in parts consecutive chunks that keep its row labels, as a streamed read gives."""
    return [frame.iloc[rows] for rows in np.array_split(np.arange(len(frame)), parts)]


def flawed_houses() -> pd.DataFrame:
    """30 houses with out-of-range areas, nulls over and under the limit and an unknown level."""
    frame = make_houses(rows=30, seed=1)
    frame.loc[[4, 17, 25], "area"] = [650.0, 500.0, 690.0]  # below the 700 floor
    frame.loc[[11, 12], "area"] = np.nan  # 7% null overall (allowed), half of one small chunk
    frame.loc[[0, 1, 2, 3, 20, 21, 22], "hood"] = None  # 23% null: over the 20% allowed
    frame.loc[[15, 16], "hood"] = "West"  # 2 of 23 known values: fine at mostly 0.9, not 0.95
    return frame


def flawed_suite() -> dict:
    """The houses' suite, plus a level check at two thresholds and a row count nobody meets."""
    suite = build_expectation_suite(houses_config(**CHANGES))
    levels = ["North", "South", "East"]
    suite["expectations"] += [
        {"type": IN_SET, "kwargs": {"column": "hood", "value_set": levels, "mostly": m}, "meta": {}}
        for m in (0.9, 0.95)
    ]
    suite["expectations"].append({"type": ROW_COUNT, "kwargs": {"min_value": 40}, "meta": {}})
    return suite


@pytest.fixture(scope="module")
def whole():
    """The flawed houses validated whole: the reference every chunking must reproduce."""
    return run_validation(flawed_houses(), flawed_suite())


def comparable(entries: list[dict]) -> dict[str, dict]:
    """Result entries by their check (type and kwargs), their GX ids and batch ids set aside."""
    found = {}
    for entry in entries:
        config = entry["expectation_config"]
        kwargs = {k: v for k, v in config["kwargs"].items() if k != "batch_id"}
        outcome = dict(entry["result"])
        # GX tallies each NaN apart (NaN != NaN); the chunks' values reach the merge as JSON
        # nulls, tallied together. Only this tally of a float column's nulls differs.
        outcome.pop("partial_unexpected_counts", None)
        found[json.dumps([config["type"], kwargs], sort_keys=True)] = {
            "success": entry["success"],
            "result": outcome,
        }
    return found


@pytest.mark.parametrize("parts", [1, 3, 7])
def test_merged_chunk_results_equal_the_whole_frames(whole, parts):
    suite = flawed_suite()
    results = [validate_chunk(chunk, suite) for chunk in split(flawed_houses(), parts)]
    total = combine_all(ValidationFold(suite), results)
    folded = fold_frames(ValidationFold(suite), split(flawed_houses(), parts))
    assert [g["results"] for g in folded["groups"]] == [g["results"] for g in total["groups"]]
    merged = report_merged(total, suite)
    assert (merged.success, merged.evaluated, merged.successful, merged.failed) == (
        whole.success,
        whole.evaluated,
        whole.successful,
        whole.failed,
    )
    assert merged.result["statistics"] == whole.result["statistics"]
    # Every check's verdict, counts (element, unexpected, missing), percents and first values.
    assert comparable(merged.result["results"]) == comparable(whole.result["results"])
    assert [str(f) for f in merged.failures] == [str(f) for f in whole.failures]
    assert merge_chunk_results(total, suite)["success"] is False
    if parts > 1:  # a check no chunk passes alone, yet the merge decides as the whole does
        rows_25 = suite["expectations"].index(
            {"type": ROW_COUNT, "kwargs": {"min_value": 25}, "meta": {}}
        )
        alone = [e for r in results for e in r["groups"][0]["results"] if e["index"] == rows_25]
        assert len(alone) == parts and not any(e["success"] for e in alone)  # 10 rows at most
        # Nulls and unknown levels crowd some chunk past its mostly, not the whole frame.
        failing = {
            e["index"] for r in results for e in r["groups"][0]["results"] if not e["success"]
        }
        assert len(failing) > whole.failed


def test_the_flawed_houses_fail_as_intended(whole):
    assert [str(f) for f in whole.failures] == [
        "expect_column_values_to_not_be_null on 'hood': 7 of 30 values are null "
        "(23.3%, at most 20% allowed)",
        "expect_column_values_to_be_between on 'area': 4 of 30 values outside [700.0, None], "
        "e.g. [650.0, 666.0, 500.0, 690.0]",  # 666 was drawn so
        "expect_column_values_to_be_in_set on 'hood': 2 of 30 values are not known levels, "
        "e.g. ['West']",  # at mostly 0.95; 21 of 23 known values meet mostly 0.9
        "expect_table_row_count_to_be_between: 30 rows, outside [40, None]",
    ]


def test_a_missing_column_and_text_in_numbers_fail_alike_in_chunks():
    frame = make_houses(rows=30).drop(columns=["area"]).assign(year=lambda f: f["year"].astype(str))
    frame.loc[4, "year"] = "new"
    suite = build_expectation_suite(houses_config())
    whole = run_validation(frame, suite)
    merged = report_merged(fold_frames(ValidationFold(suite), split(frame, 3)), suite)
    assert [str(f) for f in merged.failures] == [str(f) for f in whole.failures]
    assert {f.column for f in merged.failures} == {"area", "year"}
    assert comparable(merged.result["results"]) == comparable(whole.result["results"])


def test_a_wide_suite_in_column_groups_merges_group_by_group(whole, monkeypatch):
    import houseprice.tasks.gx_engine

    monkeypatch.setattr(houseprice.tasks.gx_engine, "COLUMNS_PER_GROUP", 2)
    suite = flawed_suite()
    results = [validate_chunk(chunk, suite) for chunk in split(flawed_houses(), 2)]
    assert len(results[0]["groups"]) == 3  # the table's checks, then 2 groups of columns
    merged = report_merged(combine_all(ValidationFold(suite), results), suite)
    assert [str(f) for f in merged.failures] == [str(f) for f in whole.failures]
    assert comparable(merged.result["results"]) == comparable(whole.result["results"])


def test_the_row_count_is_checked_on_the_total_rows():
    suite = {"name": "rows", "expectations": [{"type": ROW_COUNT, "kwargs": {"min_value": 25}}]}
    results = [validate_chunk(chunk, suite) for chunk in split(make_houses(rows=30), 2)]
    assert [r["groups"][0]["results"][0]["success"] for r in results] == [False, False]
    assert json.loads(json.dumps(results)) == results  # small, plain data: any worker can send it
    merged = merge_chunk_results(combine_all(ValidationFold(suite), results), suite)
    assert merged["success"] is True
    assert merged["results"][0]["result"] == {"observed_value": 30}


def test_the_combination_of_chunk_results_is_associative():
    suite = flawed_suite()
    fold = ValidationFold(suite)
    a, b, c = (validate_chunk(chunk, suite) for chunk in split(flawed_houses(), 3))
    assert fold.combine(fold.combine(a, b), c) == fold.combine(a, fold.combine(b, c))


def test_the_stage_writes_and_raises_alike_in_one_chunk_and_in_many(tmp_path):
    data = houses_config(**CHANGES)
    whole_run = layout.RunPaths("whole", tmp_path / "whole")
    chunked_run = layout.RunPaths("chunked", tmp_path / "chunked")
    frame = flawed_houses()
    with disable_run_logger():
        with pytest.raises(DataValidationError) as whole:
            validate_table(frame_table(frame, "houses", 1_000), data, whole_run, LocalEngine())
        with pytest.raises(DataValidationError) as chunked:
            table = frame_table(frame, "houses", 11)
            assert len(table.chunks) == 3
            validate_table(table, data, chunked_run, LocalEngine(threads=2))
    assert str(chunked.value).split("Data Docs:")[0] == str(whole.value).split("Data Docs:")[0]
    written = [json.loads(run.validation.read_text()) for run in (whole_run, chunked_run)]
    keys = ("success", "suite", "evaluated", "successful", "failed", "failures", "docs_omitted")
    assert [{k: w[k] for k in keys} for w in written[1:]] == [{k: written[0][k] for k in keys}]
    pages = [
        sorted(p.relative_to(run.data_docs).parts[:2] for p in run.data_docs.rglob("*.html"))
        for run in (whole_run, chunked_run)
    ]
    assert pages[0] == pages[1] and len(pages[0]) == 3  # index, the suite, the result
    assert (chunked_run.data_docs / "index.html").is_file()


def test_chunked_stage_returns_the_report_of_clean_data(tmp_path):
    run = layout.RunPaths("clean", tmp_path / "run")
    frame = make_houses(rows=20)
    with disable_run_logger():
        table = frame_table(frame, "houses", 10)
        report = validate_table(table, houses_config(), run, LocalEngine())
    assert report.success and report.failed == 0 and report.evaluated > 10
    assert json.loads(run.validation.read_text())["success"] is True


def test_checks_that_need_other_chunks_are_refused_before_any_chunk_is_read(tmp_path):
    learned = {
        "name": "learned",
        "expectations": [
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "area"}},
            {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "area"}},
            {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "hood"}},
        ],
    }

    missing = str(tmp_path / "never-read.parquet")  # reading it would raise another error
    table = ChunkedTable(missing, (missing,), (Chunk(0, missing, (0,), 10),), 10, ("area",))
    run = layout.RunPaths("refused", tmp_path / "run")
    with disable_run_logger(), pytest.raises(ValueError, match="cannot be validated") as refused:
        validate_table(table, houses_config(), run, LocalEngine(), learned)
    assert "['expect_column_mean_to_be_between', 'expect_column_values_to_be_unique']" in str(
        refused.value
    )
    refuse_unmergeable(flawed_suite())  # every check of the houses' suites merges


# ---------------------------------------------------------------------------------------------
# A suite learned from chunks' profiles is the one learned from the whole frame.


def trusted_frame(rows: int = 300) -> pd.DataFrame:
    """Trusted houses with nulls, an integer and a float column, levels, a flag and a date."""
    frame = make_houses(rows=rows, seed=3)
    frame.loc[34:67, "area"] = np.nan  # the whole second chunk of 9: no value seen there
    frame.loc[::7, "hood"] = None
    frame["flag"] = np.arange(rows) % 2 == 0
    frame["sold"] = pd.date_range("2020-01-01", periods=rows, freq="D")
    frame["agent"] = [f"a{i % 150}" for i in range(rows)]  # 150 levels: too many to list
    frame["n"] = pd.array(np.arange(rows) % 9, dtype="Int64")
    return frame


@pytest.mark.parametrize("parts", [1, 4, 9])
def test_learned_suite_from_chunk_profiles_is_the_whole_frames(parts):
    frame = trusted_frame()
    profile = combine_profiles(profile_frame(chunk) for chunk in split(frame, parts))
    chunked = build_learned_suite_from_profile(profile, "price", "year")
    assert chunked == build_learned_suite(frame, "price", "year")
    kinds = {e["type"] for e in chunked["expectations"] if e["kwargs"].get("column") == "agent"}
    assert IN_SET not in kinds


def test_profiles_of_int_and_float_chunks_combine_as_pandas_concatenates():
    ints, floats = pd.DataFrame({"x": [1, 5]}), pd.DataFrame({"x": [0.5, np.nan]})
    profile = profile_frame(ints) + profile_frame(floats)
    assert profile == profile_frame(pd.concat([ints, floats]))
    assert profile.columns["x"].kind == "float" and profile.columns["x"].low == 0.5
    with pytest.raises(ValueError, match="different columns"):
        profile_frame(ints) + profile_frame(floats.rename(columns={"x": "y"}))
