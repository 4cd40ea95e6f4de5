"""Validate: run an expectation suite over the ingested frame with GX, before training on it.

Owns running Great Expectations (an in-memory context, Data Docs), turning its result into a
ValidationReport with readable failures, and the `validate_data` task that stops a run whose
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

from houseprice import storage
from houseprice.columns import summarize_names
from houseprice.config import BUNDLED_SOURCE, DataConfig
from tasks.data_docs import make_offline
from tasks.suites import (
    BETWEEN,
    COLUMN_SET,
    EXISTS,
    FINITE_BOUND,
    MAGNITUDE_NOTE,
    NOT_NULL,
    TYPE_LIST,
    build_expectation_suite,
)

if TYPE_CHECKING:
    from types import ModuleType

    from great_expectations.data_context import AbstractDataContext


FAILURE_SAMPLE_SIZE = 5
# Failed expectations spelled out in the error; the rest are counted (all are in result.json).
FAILURES_LISTED = 20
DOCS_SITE = "run"
# GX's pandas engine copies the whole frame for every column check (its non-null filter), so a
# suite run whole costs columns x expectations: 200 columns took 58 s, 2,000 would take hours.
# A wide suite runs in groups of this many columns, each on its own columns, so the cost grows
# linearly; GX's maintainers advise the same split for thousands of expectations (GX #11542).
COLUMNS_PER_GROUP = 50


@dataclass
class ExpectationFailure:
    """One failed expectation: what was checked, on which column, and a few offending values."""

    expectation_type: str
    column: str | None
    sample: list[Any]  # up to FAILURE_SAMPLE_SIZE distinct bad values, or the observed value
    description: str  # one line, e.g. "3 of 2930 values outside [1, None], e.g. [-5.0]"

    def __str__(self) -> str:
        on = f" on {self.column!r}" if self.column and self.expectation_type != EXISTS else ""
        return f"{self.expectation_type}{on}: {self.description}"


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
    batch = (
        context.data_sources.add_pandas("houseprice")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("all rows")
    )
    expectations, results, order = suite.get("expectations", []), [], {}
    for group in _split_suite(suite, COLUMNS_PER_GROUP):
        part = {
            **suite,
            "name": group.name,
            "expectations": [expectations[i] for i in group.indices],
        }
        gx_suite = context.suites.add(_load_suite(gx, part))
        order.update({e.id: i for e, i in zip(gx_suite.expectations, group.indices, strict=True)})
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=group.name, data=batch, suite=gx_suite)
        )
        rows = frame if group.columns is None else frame[[c for c in group.columns if c in frame]]
        # SUMMARY: counts plus up to 20 offending values, without COMPLETE's index of every row.
        result = definition.run(batch_parameters={"dataframe": rows}, result_format="SUMMARY")
        results.append(result.to_json_dict())
    docs_index = None
    if docs_dir is not None:
        static = docs_static or Path(docs_dir).parent / storage.DATA_DOCS_STATIC
        docs_index = _build_docs(context, docs_dir, static)
    merged = _merge_results(results, suite.get("name") or "")
    return _summarize(merged, order, set(frame.columns), docs_index)


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


def _build_docs(context: AbstractDataContext, docs_dir: Path, static: Path) -> Path:
    """Render Data Docs into docs_dir (built beside it, then renamed into place)."""

    def build(folder: Path) -> None:
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                # GX refuses a relative base_directory (the default artifacts folder is one).
                "base_directory": str(Path(folder).resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        context.add_data_docs_site(DOCS_SITE, site)
        context.build_data_docs(site_names=[DOCS_SITE])
        make_offline(folder, static)  # GX's pages would fetch their styles from CDNs

    storage.write_with_atomic(Path(docs_dir), build)
    return Path(docs_dir) / "index.html"


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
        failures=[_describe_failure(entry, columns, mistyped) for entry in failed],
        result=_json_safe(result),
        docs_index=docs_index,
    )


def _describe_failure(
    entry: dict[str, Any], columns: set[str], mistyped: set[str | None]
) -> ExpectationFailure:
    kind = entry["expectation_config"]["type"]
    kwargs = entry["expectation_config"]["kwargs"]
    column = kwargs.get("column")
    outcome = entry.get("result") or {}
    sample = _sample(outcome)
    error = _exception_message(entry.get("exception_info"))
    if kind == EXISTS:
        text = f"column {column!r} is missing"
    elif kind == COLUMN_SET and not error:
        mismatched = (outcome.get("details") or {}).get("mismatched") or {}
        parts = [
            f"{key} {mismatched[key]}" for key in ("missing", "unexpected") if key in mismatched
        ]
        text = "columns differ from the suite's: " + ("; ".join(parts) or f"observed {sample}")
    elif column is not None and column not in columns:
        text = f"not evaluated, column {column!r} is missing"
    elif error and column in mistyped and kind != TYPE_LIST:
        text = f"not evaluated, column {column!r} is not numeric"
    elif error:
        text = f"could not be evaluated: {error}"
    elif outcome.get("unexpected_count") is not None:
        notes = (entry["expectation_config"].get("meta") or {}).get("notes")
        text = _describe_unexpected(kind, kwargs, outcome, sample, notes)
    else:
        text = _describe_observed(kind, kwargs, outcome.get("observed_value"))
    return ExpectationFailure(kind, column, sample, text)


def _describe_unexpected(
    kind: str, kwargs: dict[str, Any], outcome: dict[str, Any], sample: list[Any], notes: Any
) -> str:
    counted = f"{outcome['unexpected_count']} of {outcome['element_count']} values"
    if kind == NOT_NULL:
        allowed = 100 * (1 - kwargs.get("mostly", 1.0))
        percent = outcome.get("unexpected_percent") or 0.0  # None on an empty frame
        return f"{counted} are null ({percent:.1f}%, at most {allowed:g}% allowed)"
    if kind == BETWEEN and kwargs.get("max_value") == FINITE_BOUND == -kwargs.get("min_value", 0):
        problem = "are infinite"
    elif kind == BETWEEN and notes == MAGNITUDE_NOTE:
        problem = f"exceed ±{kwargs['max_value']:g} in magnitude (data.max_abs_value)"
    elif kind == BETWEEN:
        problem = f"outside {_bounds(kwargs)}"
    elif kind == TYPE_LIST:
        problem = "are not numbers"
    elif kind == "expect_column_values_to_be_in_set":
        problem = "are not known levels"
    else:
        problem = "are unexpected"
    return f"{counted} {problem}, e.g. {sample}"


def _describe_observed(kind: str, kwargs: dict[str, Any], observed: Any) -> str:
    if kind == TYPE_LIST:
        return f"column type is {observed}, expected a numeric type"
    if kind == "expect_table_row_count_to_be_between":
        return f"{observed} rows, outside {_bounds(kwargs)}"
    return f"observed {observed!r}"


def _bounds(kwargs: dict[str, Any]) -> str:
    low = "(" if kwargs.get("strict_min") else "["
    high = ")" if kwargs.get("strict_max") else "]"
    return f"{low}{kwargs.get('min_value')}, {kwargs.get('max_value')}{high}"


def _sample(outcome: dict[str, Any]) -> list[Any]:
    values = outcome.get("partial_unexpected_list")
    if not values:
        observed = outcome.get("observed_value")
        return [] if observed is None else [observed]
    distinct: list[Any] = []
    for value in values:
        if value not in distinct:
            distinct.append(value)
    return distinct[:FAILURE_SAMPLE_SIZE]


def _exception_message(info: dict[str, Any] | None) -> str | None:
    # GX nests exceptions per metric ({metric_id: {...}}) or gives one flat record.
    records = [info] if info and "raised_exception" in info else list((info or {}).values())
    for record in records:
        if isinstance(record, dict) and record.get("raised_exception"):
            return str(record.get("exception_message", "")).strip() or "unknown error"
    return None


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
    run: storage.RunPaths,
    learned: dict[str, Any] | None = None,
) -> ValidationReport:
    """Check the data against its expectation suite; stop the run if it fails."""
    # Landing mode passes the suite learned from its first version; bundled data has its own.
    base = learned
    if base is None and data.source == BUNDLED_SOURCE:
        base = storage.read_json(storage.BUNDLED_SUITE)
    suite = build_expectation_suite(data, base)
    # Progress for the person waiting: importing GX alone takes seconds.
    get_run_logger().info("validate: loading Great Expectations")
    _import_gx()
    get_run_logger().info("validate: checking %d rows, then writing Data Docs", len(frame))
    report = run_validation(frame, suite, run.data_docs, run.data_docs_static)
    storage.write_json_atomic(run.validation, report.to_dict())
    get_run_logger().info("%s; Data Docs: %s", report.summary(), report.docs_index)
    if not report.success:
        raise DataValidationError(report)
    return report
