"""GX's results on chunks, merged under GX's own rules into the result on the whole data.

Each chunk's result is trimmed to what merging needs (`validate_chunk`: counts, GX's first 20
offending values and their rows; small and JSON-able). Two chunks' results combine into one of
the same form (`combine_chunk_results`: counts summed, first values kept in row order, extremes
and row counts on the totals), so the validate stage folds any number of chunks
(tasks/validate.py). `report_merged` turns the total into GX's result, each expectation's
success recomputed from the totals as GX computes it, with the same report and Data Docs.

Which expectations merge: row counts (on the total), column min and max (the least and greatest
of the chunks'), the table's columns and a column's type (every chunk holds them), and GX's
row-by-row map expectations (counts summed, `mostly` on the totals). A suite with any other kind
(uniqueness, order, outliers, or a statistic of the whole column such as a mean, a quantile or
a distinct count) is refused by name before any chunk is read: its chunks cannot decide it.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from houseprice.tasks.expectation_failures import ValidationReport
from houseprice.tasks.gx_engine import (
    BATCH_ID,
    add_group_suite,
    ephemeral_context,
    import_gx,
    merge_group_results,
    report_results,
    run_groups,
    split_suite,
)
from houseprice.tasks.suites import COLUMN_SET, EXISTS, TYPE_LIST

if TYPE_CHECKING:
    from types import ModuleType

    from great_expectations.data_context import AbstractDataContext

# GX's SUMMARY results list this many offending values (and their rows) per expectation.
PARTIAL_UNEXPECTED = 20
_NO_EXCEPTION = {"raised_exception": False, "exception_traceback": None, "exception_message": None}

# How each kind of expectation merges. Row counts: on the total. Extremes: the least (greatest)
# of the chunks'. The table's columns and a column's type: every chunk holds them all, so the
# data passes when each chunk does. Row by row checks (GX's map expectations): counts summed.
_ROW_COUNT = {"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"}
_EXTREMES: dict[str, Callable[..., Any]] = {
    "expect_column_min_to_be_between": min,
    "expect_column_max_to_be_between": max,
}
_EVERY_CHUNK = {
    EXISTS,
    COLUMN_SET,
    TYPE_LIST,
    "expect_column_values_to_be_of_type",
    "expect_table_columns_to_match_ordered_list",
    "expect_table_column_count_to_equal",
    "expect_table_column_count_to_be_between",
}
_ROW_BY_ROW = (
    "expect_column_values_to_",
    "expect_column_value_lengths_",
    "expect_column_pair_values_",
    "expect_multicolumn_",
    "expect_select_column_values_",
)
# Map expectations whose verdict on a row depends on the other rows: no chunk can judge alone.
_CROSS_ROW = {
    "expect_column_values_to_be_unique",
    "expect_compound_columns_to_be_unique",
    "expect_column_values_to_be_increasing",
    "expect_column_values_to_be_decreasing",
    "expect_column_values_to_not_be_outliers",
}


def refuse_unmergeable(suite: dict[str, Any]) -> None:
    """Raise ValueError naming the suite's expectations that per-chunk results cannot decide."""
    kinds = {e["type"] for e in suite.get("expectations", [])}
    refused = sorted(
        kind
        for kind in kinds
        if kind in _CROSS_ROW
        or not (
            kind in _ROW_COUNT | _EVERY_CHUNK | _EXTREMES.keys() or kind.startswith(_ROW_BY_ROW)
        )
    )
    if refused:
        raise ValueError(
            f"suite {suite.get('name')!r} cannot be validated: {refused} are not expectations "
            "whose results on chunks merge. Every stage reads the data in chunks, so a suite "
            "may hold row counts, column min and max, the table's columns, column types and "
            "row-by-row checks (GX's expect_column_values_to_...), but no check that judges a "
            "row by other rows (uniqueness, order, outliers) or a statistic of the whole "
            "column (a mean, a quantile, a distinct count)"
        )


def validate_chunk(frame: pd.DataFrame, suite: dict[str, Any]) -> dict[str, Any]:
    """GX's result on one chunk, trimmed to what merging needs (JSON-able, small).

    Each expectation keeps its counts and GX's first 20 offending values and their index labels:
    give the chunks the data's row numbers and the merged lists name the whole data's rows.
    """
    gx = import_gx()
    results, order = run_groups(gx, ephemeral_context(gx), frame, suite)
    return {
        "rows": len(frame),
        "chunks": 1,
        "columns": [str(column) for column in frame.columns],
        "groups": [_trimmed(result, order) for result in results],
    }


def combine_chunk_results(
    first: dict[str, Any], second: dict[str, Any], suite: dict[str, Any]
) -> dict[str, Any]:
    """The trimmed result of first's rows followed by second's, in validate_chunk's form."""
    expectations = suite.get("expectations", [])
    groups = []
    for one, other in zip(first["groups"], second["groups"], strict=True):
        if one["suite_name"] != other["suite_name"]:
            raise ValueError("the chunks were validated against another suite (or grouping)")
        others = {entry["index"]: entry for entry in other["results"]}
        entries = [
            _combined_entry(expectations[entry["index"]], entry, others[entry["index"]])
            for entry in one["results"]
        ]
        groups.append({**one, "results": entries})
    return {
        "rows": first["rows"] + second["rows"],
        "chunks": first["chunks"] + second["chunks"],
        "columns": first["columns"],
        "groups": groups,
    }


def _combined_entry(
    expectation: dict[str, Any], first: dict[str, Any], second: dict[str, Any]
) -> dict[str, Any]:
    """One expectation's trimmed result over two chunks: merged, then trimmed again."""
    merged = _merge_entry(expectation, [first, second])
    info = merged["exception_info"]
    return {
        "index": first["index"],
        "success": merged["success"],
        "result": merged["result"],
        "exception_info": info if _raised(info) else None,
    }


def _trimmed(result: dict[str, Any], order: dict[str, int]) -> dict[str, Any]:
    entries = []
    for entry in result["results"]:
        outcome = {
            k: v for k, v in (entry.get("result") or {}).items() if k != "partial_unexpected_counts"
        }
        info = entry.get("exception_info")
        entries.append(
            {
                "index": order[entry["expectation_config"]["id"]],  # in the suite; GX may reorder
                "success": entry["success"],
                "result": outcome,
                "exception_info": info if _raised(info) else None,  # kept only when raised
            }
        )
    # The batch markers (load time, data fingerprint) are the chunk's own, not the data's.
    meta = {k: v for k, v in result["meta"].items() if k != "batch_markers"}
    return {"suite_name": result["suite_name"], "meta": meta, "results": entries}


def _raised(info: dict[str, Any] | None) -> bool:
    # GX gives one flat record, or one per metric ({metric_id: {...}}) when a metric raised.
    records = [info] if info and "raised_exception" in info else list((info or {}).values())
    return any(isinstance(r, dict) and r.get("raised_exception") for r in records)


def merge_chunk_results(total: dict[str, Any], suite: dict[str, Any]) -> dict[str, Any]:
    """GX's result on the whole data from the combined result of all its chunks."""
    gx = import_gx()
    groups, _ = _merge_groups(gx, ephemeral_context(gx), total, suite)
    return merge_group_results(groups, suite.get("name") or "")


def report_merged(
    total: dict[str, Any],
    suite: dict[str, Any],
    docs_dir: Path | None = None,
    docs_static: Path | None = None,
) -> ValidationReport:
    """The report (and Data Docs) of the whole data, from the combined result of its chunks."""
    gx = import_gx()
    context = ephemeral_context(gx)
    groups, order = _merge_groups(gx, context, total, suite)
    for group in groups:
        _store_result(context, group)  # where Data Docs read it, as GX's own run stores it
    columns = set(total["columns"])
    return report_results(context, groups, order, suite, columns, docs_dir, docs_static)


# ---------------------------------------------------------------------------------------------
# Merging: per expectation, as GX computes each kind's success.


def _merge_groups(
    gx: ModuleType,
    context: AbstractDataContext,
    total: dict[str, Any],
    suite: dict[str, Any],
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Each column group's GX result, and each expectation's suite index by its GX id."""
    refuse_unmergeable(suite)
    groups = split_suite(suite)
    if [part["suite_name"] for part in total["groups"]] != [group.name for group in groups]:
        raise ValueError("the chunks were validated against another suite (or column grouping)")
    merged, order = [], {}
    for group, part in zip(groups, total["groups"], strict=True):
        gx_suite = add_group_suite(gx, context, suite, group, order, whole=len(groups) == 1)
        by_index = {entry["index"]: entry for entry in part["results"]}
        entries = [
            _merge_entry(expectation.configuration.to_json_dict(), [by_index[i]])
            for expectation, i in zip(gx_suite.expectations, group.indices, strict=True)
        ]
        merged.append(_group_result(group.name, entries, part["meta"], total["chunks"]))
    return merged, order


def _group_result(
    name: str, entries: list[dict[str, Any]], meta: dict[str, Any], chunks: int
) -> dict[str, Any]:
    successful = sum(bool(entry["success"]) for entry in entries)
    statistics = {
        "evaluated_expectations": len(entries),
        "successful_expectations": successful,
        "unsuccessful_expectations": len(entries) - successful,
        "success_percent": successful / len(entries) * 100 if entries else None,  # as GX's
    }
    return {
        "success": successful == len(entries),
        "results": entries,
        "suite_name": name,
        "suite_parameters": {},
        "statistics": statistics,
        "meta": {**meta, "chunks": chunks},
        "id": None,
    }


def _merge_entry(config: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One expectation's result on the whole data from its result on each chunk."""
    kind, kwargs = config["type"], config["kwargs"]
    outcomes = [entry["result"] for entry in entries]
    failed = next((entry for entry in entries if entry["exception_info"]), None)
    info = None
    if failed is not None:  # GX could not evaluate it (a missing column): nor on the whole
        success, outcome, info = False, failed["result"], failed["exception_info"]
    elif kind in _ROW_COUNT:
        total = sum(outcome["observed_value"] for outcome in outcomes)
        success = total == kwargs["value"] if "value" in kwargs else _between(total, kwargs)
        outcome = {"observed_value": total}
    elif kind in _EXTREMES:
        seen = [o["observed_value"] for o in outcomes if o.get("observed_value") is not None]
        observed = _EXTREMES[kind](seen) if seen else None
        success, outcome = _between(observed, kwargs), {"observed_value": observed}
    elif all("unexpected_count" in outcome for outcome in outcomes):
        success, outcome = _merge_counts(outcomes, kwargs.get("mostly", 1.0))
    elif kind in _EVERY_CHUNK:  # a type checked by dtype on some chunks, value by value on others
        shown = next((entry for entry in entries if not entry["success"]), entries[0])
        success, outcome = all(entry["success"] for entry in entries), shown["result"]
    else:
        raise ValueError(f"{kind}: its chunks' results hold no counts to merge")
    return {
        "success": bool(success),
        "expectation_config": {**config, "kwargs": {"batch_id": BATCH_ID, **kwargs}},
        "result": outcome,
        "meta": {},
        "exception_info": info or dict(_NO_EXCEPTION),
    }


def _merge_counts(outcomes: list[dict[str, Any]], mostly: float) -> tuple[bool, dict[str, Any]]:
    """A map expectation's counts summed, success and percents as GX derives them from counts."""
    total = sum(o["element_count"] for o in outcomes)
    unexpected = sum(o["unexpected_count"] for o in outcomes)
    # Most map checks ignore nulls (GX reports them as missing and judges the rest); the null
    # checks themselves judge every row and report no missing count.
    ignores_nulls = all("missing_count" in o for o in outcomes)
    missing = sum(o["missing_count"] for o in outcomes) if ignores_nulls else 0
    considered = total - missing
    # GX: vacuously met with nothing to judge, else met when the share of good rows >= mostly.
    success = considered == 0 or (float(considered) - unexpected) / float(considered) >= mostly
    percent = lambda count, of: count / of * 100 if total > 0 and of > 0 else None  # noqa: E731
    merged: dict[str, Any] = {
        "element_count": total,
        "unexpected_count": unexpected,
        "unexpected_percent": percent(unexpected, considered),
    }
    partial = _first(outcomes, "partial_unexpected_list")
    if partial is not None:
        merged["partial_unexpected_list"] = partial
    if ignores_nulls:
        merged["missing_count"] = missing
        merged["missing_percent"] = percent(missing, total)
        merged["unexpected_percent_total"] = percent(unexpected, total)
        merged["unexpected_percent_nonmissing"] = percent(unexpected, considered)
    try:  # GX's own tally of the partial list; values it cannot hash get none, as in GX
        common = Counter(partial or []).most_common(PARTIAL_UNEXPECTED)
        ranked = sorted(common, key=lambda pair: (-pair[1], pair[0]))
        merged["partial_unexpected_counts"] = [{"value": v, "count": n} for v, n in ranked]
    except TypeError:
        pass
    indices = _first(outcomes, "partial_unexpected_index_list")
    if indices is not None:
        merged["partial_unexpected_index_list"] = indices
    return success, merged


def _first(outcomes: list[dict[str, Any]], key: str) -> list[Any] | None:
    """The first PARTIAL_UNEXPECTED items of the chunks' lists under key, in chunk order."""
    if not any(key in outcome for outcome in outcomes):
        return None
    items = (item for outcome in outcomes for item in outcome.get(key) or [])
    return list(itertools.islice(items, PARTIAL_UNEXPECTED))


def _between(value: Any, kwargs: dict[str, Any]) -> bool:
    """GX's test of an observed value against min_value / max_value (strict or not)."""
    if value is None:
        return False
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    above = low is None or (value > low if kwargs.get("strict_min") else value >= low)
    below = high is None or (value < high if kwargs.get("strict_max") else value <= high)
    return above and below


def _store_result(context: AbstractDataContext, result: dict[str, Any]) -> None:
    """Put a merged group result in the context's validation store, as a GX run would."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    store = context.validation_results_store
    run_time = (result["meta"].get("run_id") or {}).get("run_time")
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=result["suite_name"]),
        run_id=RunIdentifier(run_time=run_time),
        batch_identifier=BATCH_ID,
    )
    store.set(key, store.deserialize(result))
