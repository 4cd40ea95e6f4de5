"""The view of a failed run's report: the stage that stopped it, the error, the failed suite."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from houseprice.tasks.reporting.text import Table, format_value
from houseprice.tasks.reporting.view import TimingsView, timings_view

if TYPE_CHECKING:
    from houseprice.tasks.report import FailureInputs

FAILURE_HEADERS = ["expectation", "column", "sample values", "what failed"]


@dataclass(frozen=True)
class FailedSuiteView:
    """A failed validation: how many expectations failed, of which suite, and each failure."""

    failed: str
    evaluated: str
    suite: str
    failures: Table


@dataclass(frozen=True)
class FailureView:
    """Everything a failed run's report shows, as display text."""

    run_id: str
    headline: str
    error: str
    suite: FailedSuiteView | None  # only when validation stopped the run
    data_docs: str | None  # the Data Docs index, relative to report.html
    timings: TimingsView


def _failure_cells(failure: dict[str, Any]) -> list[str]:
    """One failed expectation as display strings, in FAILURE_HEADERS order."""
    sample = ", ".join(format_value(value) for value in failure.get("sample") or [])
    return [
        failure.get("expectation_type", ""),
        failure.get("column") or "—",
        sample or "—",
        failure.get("description", ""),
    ]


def build_failure_view(inputs: FailureInputs) -> FailureView:
    """The view of a failed run, with the failed expectations when validation stopped it."""
    suite = None
    if (validation := inputs.validation) is not None:
        suite = FailedSuiteView(
            failed=format_value(validation.get("failed")),
            evaluated=format_value(validation.get("evaluated")),
            suite=format_value(validation.get("suite")),
            failures=Table(
                FAILURE_HEADERS, [_failure_cells(f) for f in validation.get("failures") or []]
            ),
        )
    return FailureView(
        run_id=inputs.run_id,
        headline=inputs.headline,
        error=inputs.error,
        suite=suite,
        data_docs=inputs.data_docs,
        timings=timings_view(inputs.stage_seconds),
    )
