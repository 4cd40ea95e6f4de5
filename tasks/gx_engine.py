"""Running a Great Expectations suite on one frame: GX's in-memory context, a wide suite in
column groups, and the report (with Data Docs) from GX's results.

The validate stage (tasks/validate.py) runs this on each chunk and merges the chunks' results
under GX's own rules (tasks/gx_merge.py); readable failures come from
tasks/expectation_failures.py.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from houseprice import layout
from houseprice.tasks.data_docs import build_data_docs, leave_out_of_docs
from houseprice.tasks.expectation_failures import (
    ValidationReport,
    describe_failure,
    json_safe,
)
from houseprice.tasks.suites import TYPE_LIST

if TYPE_CHECKING:
    from types import ModuleType

    from great_expectations.data_context import AbstractDataContext

# Past this many expectations Data Docs show only the column groups with a failure (and the
# table's checks): GX renders ~200 results a second here, and its pages were not built for
# thousands (GX #11542). Every result, passed or failed, stays in validation.json.
DOCS_DETAIL_LIMIT = 2_000
# GX's pandas engine copies the whole frame for every column check (its non-null filter), so a
# suite run whole costs columns x expectations: 200 columns took 58 s, 2,000 never finished.
# A wide suite runs in groups of this many columns, each on its own columns, so the cost grows
# linearly; GX's maintainers advise the same split for thousands of expectations (GX #11542).
COLUMNS_PER_GROUP = 50
# The names GX gives the frame's data source and asset; a result's batch id joins them.
DATASOURCE, ASSET = "houseprice", "frame"
BATCH_ID = f"{DATASOURCE}-{ASSET}"


def report_results(
    context: AbstractDataContext,
    results: list[dict[str, Any]],
    order: dict[str, int],
    suite: dict[str, Any],
    columns: set[str],
    docs_dir: Path | None,
    docs_static: Path | None,
) -> ValidationReport:
    """The report of the groups' GX results held in context (and its Data Docs, when asked).

    The groups' results are GX's own, or the merge of every chunk's (tasks/gx_merge.py).
    """
    docs_index, omitted = None, 0
    if docs_dir is not None:
        if sum(len(r["results"]) for r in results) > DOCS_DETAIL_LIMIT:
            passed = [r for r in results if r["success"] and r is not results[0]]
            omitted = sum(len(r["results"]) for r in passed)
            leave_out_of_docs(context, [r["suite_name"] for r in passed])
        static = docs_static or Path(docs_dir).parent / layout.DATA_DOCS_STATIC
        docs_index = build_data_docs(context, docs_dir, static)
    merged = merge_group_results(results, suite.get("name") or "")
    report = _summarize(merged, order, columns, docs_index)
    report.docs_omitted = omitted
    return report


def run_groups(
    gx: ModuleType, context: AbstractDataContext, frame: pd.DataFrame, suite: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Each group's GX result, and each expectation's index in the suite by its GX id."""
    batch = (
        context.data_sources.add_pandas(DATASOURCE)
        .add_dataframe_asset(ASSET)
        .add_batch_definition_whole_dataframe("all rows")
    )
    results, order = [], {}
    groups = split_suite(suite)
    for group in groups:
        gx_suite = add_group_suite(gx, context, suite, group, order, whole=len(groups) == 1)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=group.name, data=batch, suite=gx_suite)
        )
        rows = frame if group.columns is None else frame[[c for c in group.columns if c in frame]]
        # SUMMARY: counts plus up to 20 offending values, without COMPLETE's index of every row.
        result = definition.run(batch_parameters={"dataframe": rows}, result_format="SUMMARY")
        results.append(result.to_json_dict())
    return results, order


def add_group_suite(
    gx: ModuleType,
    context: AbstractDataContext,
    suite: dict[str, Any],
    group: SuiteGroup,
    order: dict[str, int],
    whole: bool,
) -> Any:
    """Add one group's part of suite to context; note its expectations' suite indices in order."""
    expectations = suite.get("expectations", [])
    part = {**suite, "name": group.name, "expectations": [expectations[i] for i in group.indices]}
    if not whole:
        part.pop("id", None)  # a suite's id is its own, not its parts'
    gx_suite = context.suites.add(load_suite(gx, part))
    order.update({e.id: i for e, i in zip(gx_suite.expectations, group.indices, strict=True)})
    return gx_suite


class SuiteGroup(NamedTuple):
    """Part of a suite validated on its own: its expectations (indices in the suite), columns."""

    name: str
    indices: list[int]
    columns: list[Any] | None  # None: the whole frame (the suite whole, or its table checks)


def split_suite(suite: dict[str, Any], size: int | None = None) -> list[SuiteGroup]:
    """The suite whole when it checks at most size columns; else its table checks, then groups.

    size defaults to COLUMNS_PER_GROUP, read at each call, so every run and merge groups alike.
    """
    size = COLUMNS_PER_GROUP if size is None else size
    by_column: dict[Any, list[int]] = {}
    table = []
    for i, expectation in enumerate(suite.get("expectations", [])):
        column = (expectation.get("kwargs") or {}).get("column")
        (table if column is None else by_column.setdefault(column, [])).append(i)
    name = suite.get("name") or "houseprice"
    if len(by_column) <= size:
        return [SuiteGroup(name, [*range(len(suite.get("expectations", [])))], None)]
    columns = list(by_column)
    groups = [SuiteGroup(f"{name} (table)", table, None)] if table else []
    for start in range(0, len(columns), size):
        chunk = columns[start : start + size]
        label = f"{name} (columns {start + 1}-{start + len(chunk)} of {len(columns)})"
        groups.append(SuiteGroup(label, [i for column in chunk for i in by_column[column]], chunk))
    return groups


def merge_group_results(results: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """One GX result from the groups' results, as if the suite had run whole."""
    if len(results) == 1:
        return results[0]
    keys = ("evaluated_expectations", "successful_expectations", "unsuccessful_expectations")
    counts = {key: sum(r["statistics"][key] for r in results) for key in keys}
    evaluated = counts["evaluated_expectations"]
    percent = 100 * counts["successful_expectations"] / evaluated if evaluated else None
    return {
        **results[0],
        "success": all(r["success"] for r in results),
        "results": [entry for r in results for entry in r["results"]],
        "suite_name": name,
        "statistics": {**counts, "success_percent": percent},
        "meta": {**results[0]["meta"], "groups": [r["suite_name"] for r in results]},
    }


def import_gx() -> ModuleType:
    """great_expectations, imported on first use."""
    # Imported lazily: it takes ~2.5 s (measured), which every CLI command and flow import would
    # pay. At import it logs ~200 INFO lines about its own API docs; keep them out of our logs
    # unless someone configured its logger on purpose.
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    import great_expectations as gx

    return gx


def ephemeral_context(gx: ModuleType) -> AbstractDataContext:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        # GX 1.24 has no analytics client left (nothing reads this flag or GX_ANALYTICS_ENABLED);
        # the documented opt-out is kept so a version that still has one stays quiet too.
        analytics_enabled=False,
        # Without this every run draws tqdm "Calculating Metrics" bars on stderr.
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def load_suite(gx: ModuleType, suite: dict[str, Any]) -> Any:
    loaded = gx.ExpectationSuite(**copy.deepcopy(suite))  # GX adds keys to what it is given
    # GX logs and drops an expectation of an unknown type instead of raising; refuse that.
    if len(loaded.expectations) != len(suite.get("expectations", [])):
        raise ValueError(
            f"suite {suite.get('name')!r}: some expectations are not valid GX expectations "
            "(see the error logged above)"
        )
    return loaded


# ---------------------------------------------------------------------------------------------
# Turning GX's result into readable failures.


def _summarize(
    result: dict[str, Any], order: dict[str, int], columns: set[str], docs_index: Path | None
) -> ValidationReport:
    entries = sorted(
        result["results"], key=lambda r: order.get(r["expectation_config"].get("id"), len(order))
    )
    failed = [entry for entry in entries if not entry["success"]]
    # Checks on a column whose type is wrong fail with GX exceptions; name the cause instead.
    mistyped = {
        entry["expectation_config"]["kwargs"].get("column")
        for entry in failed
        if entry["expectation_config"]["type"] == TYPE_LIST
    }
    stats = result["statistics"]
    return ValidationReport(
        success=bool(result["success"]),
        suite=result.get("suite_name") or "",
        evaluated=stats["evaluated_expectations"],
        successful=stats["successful_expectations"],
        failed=stats["unsuccessful_expectations"],
        failures=[describe_failure(entry, columns, mistyped) for entry in failed],
        result=json_safe(result),
        docs_index=docs_index,
    )
