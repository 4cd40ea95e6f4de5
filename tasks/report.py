"""Report: one self-contained HTML page, plus Prefect artifacts, to judge a run's models by.

Owns what the report is built from (ReportInputs, FailureInputs) and the tasks that write it and
publish its artifacts. tasks/reporting/ turns the inputs into one typed view and renders it with
Jinja2 templates; tasks/plots.py draws the figures. The page needs nothing but itself (inline
CSS, plots as base64 PNG, no scripts), so it can be mailed, attached to a ticket or opened from
an archived run folder years later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE

from houseprice import storage
from houseprice.layout import RunPaths
from houseprice.tasks.evaluate import Evaluation
from houseprice.tasks.features import FeatureSet
from houseprice.tasks.reporting.failure import build_failure_view
from houseprice.tasks.reporting.metrics import metrics_table_rows
from houseprice.tasks.reporting.pages import (
    failure_markdown,
    render_failure_page,
    render_page,
    summary_markdown,
)
from houseprice.tasks.reporting.view import build_report_view
from houseprice.trainers.common import TrainResult

if TYPE_CHECKING:
    from houseprice.config import PipelineConfig
    from houseprice.tasks.drift import DriftReport
    from houseprice.tasks.ingest import IngestResult
    from houseprice.tasks.promote import PromotionDecision

# Stable keys, so the Prefect UI keeps every run's artifact as a version of the same entry.
REPORT_ARTIFACT_KEY = "houseprice-report"
METRICS_ARTIFACT_KEY = "houseprice-metrics"
REPORT_LINK_ARTIFACT_KEY = "houseprice-report-link"
VALIDATION_FIELDS = (
    "success",
    "evaluated",
    "successful",
    "failed",
    "suite",
    "failures",
    "docs_index",
)


@dataclass
class DataSummary:
    """The snapshot's shape, the target's distribution and the split sizes."""

    rows: int
    columns: int
    target: str
    target_stats: dict[str, float]  # pandas describe(): count, mean, std, min, 25%, 50%, 75%, max
    split_sizes: dict[str, int]  # train / validation / test rows
    target_basis: str = "every row"  # the rows target_stats describe


def summarize_data(
    frame: pd.DataFrame, features: FeatureSet, shape: tuple[int, int] | None = None
) -> DataSummary:
    """Shape, target statistics and split sizes of the data a run trained on.

    shape is the whole data's (rows, columns) where frame is only its first chunk (a streamed
    source); the target's statistics then come from the test part, a content-hash sample of
    every row, and say so.
    """
    target = features.preprocessor.target
    sample = features.split.test if features.on_disk else frame
    stats = sample[target].astype("float64").describe()
    rows, columns = shape or frame.shape
    return DataSummary(
        rows=rows,
        columns=columns,
        target=target,
        target_stats={str(name): float(value) for name, value in stats.items()},
        split_sizes=features.part_sizes(),
        target_basis=f"the {len(sample):,} test rows" if features.on_disk else "every row",
    )


@dataclass
class ReportInputs:
    """Everything the report is built from: the stages' results, typed as they made them."""

    run_id: str
    created_at: datetime
    source: str
    snapshot_hash: str
    data: DataSummary
    validation: dict[str, Any]  # {"success", "evaluated", "successful", "failed", "suite", ...}
    features: FeatureSet
    results: list[TrainResult]  # whatever trainers ran, in the order they were configured
    evaluation: Evaluation
    stage_seconds: dict[str, float]
    promotion: PromotionDecision | None = None  # None: no gate ran
    drift: DriftReport | None = None  # None: no drift check ran
    data_docs: str | None = None  # the Data Docs index, relative to report.html

    @property
    def devices(self) -> dict[str, str]:
        """Where each trainer ran, read off its result so the two can never disagree."""
        return {r.framework: f"{r.device_name} ({r.device})" for r in self.results}

    @classmethod
    def collect(
        cls,
        run: RunPaths,
        config: PipelineConfig,
        ingested: IngestResult,
        validation: Any,
        features: FeatureSet,
        results: list[TrainResult],
        evaluation: Evaluation,
        stage_seconds: dict[str, float],
        promotion: PromotionDecision | None = None,
        drift: DriftReport | None = None,
    ) -> ReportInputs:
        """Gather the report's inputs from the flow's stage outputs."""
        return cls(
            run_id=run.run_id,
            created_at=datetime.now(UTC),
            source=ingested.source,
            snapshot_hash=ingested.snapshot.content_hash,
            data=summarize_data(
                ingested.frame, features, (ingested.snapshot.rows, ingested.snapshot.columns)
            ),
            validation=_validation_summary(validation),
            features=features,
            results=list(results),
            evaluation=evaluation,
            stage_seconds=dict(stage_seconds),
            promotion=promotion,
            drift=drift,
            data_docs=_relative_docs(run, _validation_summary(validation).get("docs_index")),
        )


def _relative_docs(run: RunPaths, docs: str | Path | None) -> str | None:
    """The Data Docs index relative to report.html, so the run folder can move; None without."""
    return Path(os.path.relpath(docs, run.root)).as_posix() if docs else None


def _validation_summary(validation: Any) -> dict[str, Any]:
    """A plain dict of the validation result; duck-typed so this stage never imports validate."""
    if isinstance(validation, Mapping):
        return dict(validation)
    return {
        name: getattr(validation, name) for name in VALIDATION_FIELDS if hasattr(validation, name)
    }


def render_report(inputs: ReportInputs) -> str:
    """The whole report as one self-contained HTML page (inline CSS, plots as base64 PNG)."""
    return render_page(build_report_view(inputs))


def render_markdown_summary(inputs: ReportInputs) -> str:
    """Verdict, promotion, drift, metrics table and reference check in markdown."""
    return summary_markdown(build_report_view(inputs, plots=False))


def rounded_table_rows(evaluation: Evaluation) -> list[dict[str, Any]]:
    """metrics_table_rows rounded for reading: whole price units, R² to 4 places, % to 2."""
    digits = {"rmse": 0, "mae": 0, "r2": 4, "mape_pct": 2, "rmse_gap_pct": 4}
    return [
        {
            key: round(value, digits[key]) if key in digits and value is not None else value
            for key, value in row.items()
        }
        for row in metrics_table_rows(evaluation)
    ]


def _publish(path: Path, markdown: str, description: str) -> None:
    """The markdown summary, and a link that opens the page from the UI (a file:// address)."""
    summary = markdown + f"\nFull report: `{path}`\n"
    create_markdown_artifact(summary, key=REPORT_ARTIFACT_KEY, description=description)
    create_link_artifact(
        Path(path).resolve().as_uri(),
        link_text=f"report.html of {description}",
        key=REPORT_LINK_ARTIFACT_KEY,
        description=description,
    )
    get_run_logger().info("report: wrote %s", path)


@task(name="write-report", cache_policy=NO_CACHE)  # the inputs hold whole datasets: never hash them
def write_report(inputs: ReportInputs, run: RunPaths) -> Path:
    """Write report.html and publish the summary, metrics and a link as Prefect artifacts."""
    view = build_report_view(inputs)  # once: the page and the summary show the same figures
    path = storage.write_text_atomic(run.report, render_page(view))
    description = f"houseprice run {inputs.run_id}"
    create_table_artifact(
        rounded_table_rows(inputs.evaluation), key=METRICS_ARTIFACT_KEY, description=description
    )
    _publish(path, summary_markdown(view), description)
    return path


# ---------------------------------------------------------------------------------------------
# The report of a failed run: which stage stopped it and why.


@dataclass
class FailureInputs:
    """What a failed run's report shows."""

    run_id: str
    stage: str | None  # the stage that raised; None when it failed outside any stage
    error: str  # "ExceptionType: message"
    stage_seconds: dict[str, float]
    validation: dict[str, Any] | None = None  # a failed validation's summary, with failures
    data_docs: str | None = None  # the Data Docs index, relative to report.html

    @classmethod
    def from_error(
        cls, run: RunPaths, stage: str | None, error: BaseException, stage_seconds: dict
    ) -> FailureInputs:
        """Read the failure off the error; a failed validation carries its whole report."""
        report = getattr(error, "report", None)  # DataValidationError; duck-typed, as above
        validation = report.to_dict() if hasattr(report, "to_dict") else None
        return cls(
            run_id=run.run_id,
            stage=stage,
            error=f"{type(error).__name__}: {error}",
            stage_seconds=dict(stage_seconds),
            validation=validation,
            data_docs=_relative_docs(run, (validation or {}).get("docs_index")),
        )

    @property
    def headline(self) -> str:
        """'FAILED in stage X: the error's first line'."""
        where = f" in stage {self.stage}" if self.stage else ""
        return f"FAILED{where}: {self.error.splitlines()[0]}"


def render_failure_report(inputs: FailureInputs) -> str:
    """A failed run's page: the stage, the error and, for validation, each failed expectation."""
    return render_failure_page(build_failure_view(inputs))


def render_failure_markdown(inputs: FailureInputs) -> str:
    """The failure in markdown for the Prefect artifact: the same facts as the page."""
    return failure_markdown(build_failure_view(inputs))


@task(name="write-failure-report", cache_policy=NO_CACHE)
def write_failure_report(
    run: RunPaths, stage: str | None, error: BaseException, stage_seconds: dict[str, float]
) -> Path:
    """Write a failed run's report.html and publish it as Prefect artifacts."""
    view = build_failure_view(FailureInputs.from_error(run, stage, error, stage_seconds))
    path = storage.write_text_atomic(run.report, render_failure_page(view))
    _publish(path, failure_markdown(view), f"houseprice run {view.run_id} (failed)")
    return path
