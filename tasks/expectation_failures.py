"""Expectation failures in words: which check, on which column, and a few offending values.

Turns one failed entry of a GX validation result into an ExpectationFailure whose message a
person can act on ("3 of 2930 values outside [1, None], e.g. [-5.0]"), and holds the
ValidationReport that collects them and the DataValidationError that lists them;
tasks/validate.py runs the suites. Needs neither GX nor Prefect.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from houseprice.columns import summarize_names
from houseprice.errors import InputError
from houseprice.tasks.suites import (
    BETWEEN,
    COLUMN_SET,
    EXISTS,
    FINITE_BOUND,
    MAGNITUDE_NOTE,
    NOT_NULL,
    TYPE_LIST,
)

FAILURE_SAMPLE_SIZE = 5
# Failed expectations spelled out in the error; the rest are counted (all are in the JSON).
FAILURES_LISTED = 20


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


def describe_failure(
    entry: dict[str, Any], columns: set[str], mistyped: set[str | None]
) -> ExpectationFailure:
    """A failed GX result entry in words; columns: the frame's, mistyped: those not numeric."""
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
        return json_safe(payload)


class DataValidationError(InputError, RuntimeError):
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


def json_safe(value: Any) -> Any:
    """value with non-finite floats as strings, so the JSON stays strict (no Infinity/NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value
