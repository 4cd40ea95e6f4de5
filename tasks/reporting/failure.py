"""The view of a failed run's report: the stage that stopped it, the error, the failed suite."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from houseprice.tasks.reporting.text import Table, format_value
from houseprice.tasks.reporting.view import TimingsView, timings_view

if TYPE_CHECKING:
    from houseprice.tasks.report import FailureInputs

FAILURE_HEADERS = ["expectation", "column", "sample values", "what failed"]
# A run is promoted only after it completes (flows/retrain.py), so a failed one changes nothing.
CONSEQUENCE = (
    "Nothing from this run is used: a failed run is never promoted, so the champion (if there "
    "is one) stays as it was and `houseprice predict` keeps scoring with it."
)


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
    consequence: str  # what the failure means for the models in use
    next_step: str  # what to do about it
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


def _next_step(validation: bool, docs: bool) -> str:
    """What to do: fix the data (or the suite) after a failed validation, else the error."""
    if not validation:
        return "Fix what the error below names, then run `houseprice retrain` again."
    where = " (the Data Docs linked below show every expectation and the values it saw)"
    return (
        "The data did not meet its expectation suite, so nothing was trained. Fix or drop the "
        "rows the table names and run `houseprice retrain` again; if the data is right and an "
        f"expectation is wrong, change the suite instead{where if docs else ''}."
    )


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
        consequence=CONSEQUENCE,
        next_step=_next_step(suite is not None, inputs.data_docs is not None),
        suite=suite,
        data_docs=inputs.data_docs,
        timings=timings_view(inputs.stage_seconds),
    )
