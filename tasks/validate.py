"""Validate: run an expectation suite over the ingested frame with GX, before training on it.

Owns running Great Expectations (an in-memory context, a wide suite in column groups, Data
Docs), turning its result into a ValidationReport with readable failures (worded by
tasks/expectation_failures.py), and the `validate_data` task that stops a run whose
data fails. What the data is expected to look like is built in tasks/suites.py: the bundled Ames
data has a curated suite (data/ames_suite.json), and every source also gets the checks its
DataConfig implies, so overriding the features on bundled data is still checked.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import layout, storage
from houseprice.columns import summarize_names
from houseprice.config import BUNDLED_SOURCE, DataConfig
from houseprice.tasks.data_docs import build_data_docs, leave_out_of_docs
from houseprice.tasks.expectation_failures import ExpectationFailure, describe_failure
from houseprice.tasks.suites import TYPE_LIST, build_expectation_suite

if TYPE_CHECKING:
    from types import ModuleType

    from great_expectations.data_context import AbstractDataContext


# Failed expectations spelled out in the error; the rest are counted (all are in the JSON).
FAILURES_LISTED = 20
# Past this many expectations Data Docs show only the column groups with a failure (and the
# table's checks): GX renders ~200 results a second here, and its pages were not built for
# thousands (GX #11542). Every result, passed or failed, stays in validation.json.
DOCS_DETAIL_LIMIT = 2_000
# GX's pandas engine copies the whole frame for every column check (its non-null filter), so a
# suite run whole costs columns x expectations: 200 columns took 58 s, 2,000 never finished.
# A wide suite runs in groups of this many columns, each on its own columns, so the cost grows
# linearly; GX's maintainers advise the same split for thousands of expectations (GX #11542).
COLUMNS_PER_GROUP = 50


@dataclass
class ValidationReport:
    """Outcome of one suite run: verdict, counts, readable failures and GX's full result."""

    success: bool
    suite: str
    evaluated: int
    successful: int
    failed: int
    failures: list[ExpectationFailure] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)  # GX's result, JSON-safe
    docs_index: Path | None = None  # Data Docs index.html, when docs were built
    docs_omitted: int = 0  # passed expectations left out of Data Docs (a wide suite's)

    def summary(self) -> str:
        """One line: verdict and counts."""
        verdict = "passed" if self.success else "failed"
        return (
            f"suite {self.suite!r} {verdict}: {self.successful} of {self.evaluated} "
            f"expectations met, {self.failed} failed"
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything as strict JSON (infinities and NaN become strings)."""
        payload = asdict(self)
        payload["failures"] = [{**asdict(f), "message": str(f)} for f in self.failures]
        payload["docs_index"] = str(self.docs_index) if self.docs_index else None
        return _json_safe(payload)


class DataValidationError(RuntimeError):
    """The data failed its expectation suite; the message lists every failed expectation."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        lines = [f"data validation failed: {report.summary()}"]
        lines += [f"  - {failure}" for failure in report.failures[:FAILURES_LISTED]]
        if len(report.failures) > FAILURES_LISTED:  # a wide file's every column: see the JSON
            hidden = report.failures[FAILURES_LISTED:]
            columns = summarize_names(list(dict.fromkeys(str(f.column) for f in hidden)))
            lines.append(f"  - and {len(hidden)} more failures, on columns {columns}")
        if report.docs_index:
            lines.append(f"Data Docs: {report.docs_index}")
        super().__init__("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# Running a suite with GX.


def run_validation(
    frame: pd.DataFrame,
    suite: dict[str, Any],
    docs_dir: Path | None = None,
    docs_static: Path | None = None,
) -> ValidationReport:
    """Validate frame against a GX suite JSON dict; build Data Docs into docs_dir when given.

    The docs work offline; their styles and scripts go to docs_static (shared by every run;
    default: a folder beside docs_dir).
    """
    gx = _import_gx()
    context = _ephemeral_context(gx)
    results, order = _run_groups(gx, context, frame, suite)
    docs_index, omitted = None, 0
    if docs_dir is not None:
        if sum(len(r["results"]) for r in results) > DOCS_DETAIL_LIMIT:
            passed = [r for r in results if r["success"] and r is not results[0]]
            omitted = sum(len(r["results"]) for r in passed)
            leave_out_of_docs(context, [r["suite_name"] for r in passed])
        static = docs_static or Path(docs_dir).parent / layout.DATA_DOCS_STATIC
        docs_index = build_data_docs(context, docs_dir, static)
    merged = _merge_results(results, suite.get("name") or "")
    report = _summarize(merged, order, set(frame.columns), docs_index)
    report.docs_omitted = omitted
    return report


def _run_groups(
    gx: ModuleType, context: AbstractDataContext, frame: pd.DataFrame, suite: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Each group's GX result, and each expectation's index in the suite by its GX id."""
    batch = (
        context.data_sources.add_pandas("houseprice")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("all rows")
    )
    expectations, results, order = suite.get("expectations", []), [], {}
    groups = _split_suite(suite, COLUMNS_PER_GROUP)
    for group in groups:
        part = {
            **suite,
            "name": group.name,
            "expectations": [expectations[i] for i in group.indices],
        }
        if len(groups) > 1:
            part.pop("id", None)  # a suite's id is its own, not its parts'
        gx_suite = context.suites.add(_load_suite(gx, part))
        order.update({e.id: i for e, i in zip(gx_suite.expectations, group.indices, strict=True)})
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=group.name, data=batch, suite=gx_suite)
        )
        rows = frame if group.columns is None else frame[[c for c in group.columns if c in frame]]
        # SUMMARY: counts plus up to 20 offending values, without COMPLETE's index of every row.
        result = definition.run(batch_parameters={"dataframe": rows}, result_format="SUMMARY")
        results.append(result.to_json_dict())
    return results, order


class _Group(NamedTuple):
    """Part of a suite validated on its own: its expectations (indices in the suite), columns."""

    name: str
    indices: list[int]
    columns: list[Any] | None  # None: the whole frame (the suite whole, or its table checks)


def _split_suite(suite: dict[str, Any], size: int) -> list[_Group]:
    """The suite whole when it checks at most size columns; else its table checks, then groups."""
    by_column: dict[Any, list[int]] = {}
    table = []
    for i, expectation in enumerate(suite.get("expectations", [])):
        column = (expectation.get("kwargs") or {}).get("column")
        (table if column is None else by_column.setdefault(column, [])).append(i)
    name = suite.get("name") or "houseprice"
    if len(by_column) <= size:
        return [_Group(name, [*range(len(suite.get("expectations", [])))], None)]
    columns = list(by_column)
    groups = [_Group(f"{name} (table)", table, None)] if table else []
    for start in range(0, len(columns), size):
        chunk = columns[start : start + size]
        label = f"{name} (columns {start + 1}-{start + len(chunk)} of {len(columns)})"
        groups.append(_Group(label, [i for column in chunk for i in by_column[column]], chunk))
    return groups


def _merge_results(results: list[dict[str, Any]], name: str) -> dict[str, Any]:
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


def _import_gx() -> ModuleType:
    """great_expectations, imported on first use."""
    # Imported lazily: it takes ~2.5 s (measured), which every CLI command and flow import would
    # pay. At import it logs ~200 INFO lines about its own API docs; keep them out of our logs
    # unless someone configured its logger on purpose.
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    import great_expectations as gx

    return gx


def _ephemeral_context(gx: ModuleType) -> AbstractDataContext:
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


def _load_suite(gx: ModuleType, suite: dict[str, Any]) -> Any:
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
        result=_json_safe(result),
        docs_index=docs_index,
    )


def _json_safe(value: Any) -> Any:
    """value with non-finite floats as strings, so the JSON stays strict (no Infinity/NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------------


# retries=0 stated, not defaulted: a failing suite is a fact about the data, so a retry cannot help,
# and an explicit value is not overridden by PREFECT_TASK_DEFAULT_RETRIES. No cache: a cached
# result would skip writing this run's validation files.
@task(name="validate-data", retries=0, cache_policy=NO_CACHE)
def validate_data(
    frame: pd.DataFrame,
    data: DataConfig,
    run: layout.RunPaths,
    learned: dict[str, Any] | None = None,
) -> ValidationReport:
    """Check the data against its expectation suite; stop the run if it fails."""
    # Landing mode passes the suite learned from its first version; bundled data has its own.
    base = learned
    if base is None and data.source == BUNDLED_SOURCE:
        base = storage.read_json(storage.BUNDLED_SUITE)
    suite = build_expectation_suite(data, base)
    # Progress for the person waiting: importing GX alone takes seconds, a wide suite minutes.
    get_run_logger().info(
        "validate: loading Great Expectations, checking %d rows x %d columns against %d "
        "expectations, then writing Data Docs",
        *frame.shape,
        len(suite["expectations"]),
    )
    report = run_validation(frame, suite, run.data_docs, run.data_docs_static)
    storage.write_json_atomic(run.validation, report.to_dict())
    # A wide suite's docs show only its groups with a failure; the JSON has every result.
    omitted = (
        f" (only column groups with a failure; every result is in {run.validation.name})"
        if report.docs_omitted
        else ""
    )
    get_run_logger().info("%s; Data Docs: %s%s", report.summary(), report.docs_index, omitted)
    if not report.success:
        raise DataValidationError(report)
    return report
