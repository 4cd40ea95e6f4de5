"""The report's view: one typed object, built once from a run's results, that the templates render.

Every number is turned into display text here, so the templates hold markup and nothing else,
and the markdown summary reads the same view as the page. Trainers are whatever ran: each is
named by model_label and listed in the order evaluation gives, never by framework here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from houseprice.preprocessing import Preprocessor
from houseprice.tasks.evaluate import REFERENCE, Evaluation
from houseprice.tasks.plots import loss_plot, model_label, prediction_plot, residual_plots
from houseprice.tasks.reporting.fitted import (
    EquationsView,
    RegressionView,
    equations_view,
    regression_view,
)
from houseprice.tasks.reporting.metrics import (
    MetricsView,
    metrics_view,
    require_reference,
    run_verdict,
)
from houseprice.tasks.reporting.text import Table, format_value

if TYPE_CHECKING:
    from houseprice.tasks.drift import DriftReport
    from houseprice.tasks.promote import PromotionDecision
    from houseprice.tasks.report import DataSummary, ReportInputs


@dataclass(frozen=True)
class Verdict:
    """PASS or CHECK, and the sentence that says why."""

    ok: bool
    text: str


@dataclass(frozen=True)
class PromotionView:
    """The gate's decision, its reason and, against a champion, the bootstrap interval."""

    promoted: bool
    reason: str
    model: str | None  # the challenger's label
    champion_run_id: str | None
    change: str | None  # the challenger's relative test RMSE change against the champion
    interval: str | None  # '95% interval -3.40% .. -0.80% (paired bootstrap, 2,000 resamples)'
    figures: Table | None
    fields: Table | None


@dataclass(frozen=True)
class DataView:
    """The snapshot's shape, the target's distribution and the split sizes."""

    rows: str
    columns: str
    target: str
    log_target: bool
    estimate: str  # with a log target, what predictions estimate: a sentence, else ''
    numeric: int
    categorical: int
    design_columns: int
    stats: Table
    splits: Table


@dataclass(frozen=True)
class ValidationView:
    """The expectation suite's outcome and counts."""

    success: bool
    counts: Table | None
    failures: list[str]


@dataclass(frozen=True)
class DriftRow:
    """One compared feature: its PSI and whether that is above the threshold."""

    feature: str
    score: str
    drifted: bool


@dataclass(frozen=True)
class DriftView:
    """The drift check: scores per compared feature, the drifted ones, and everything else."""

    checked: bool
    note: str
    threshold: str
    drifted: list[str]  # largest first, as DriftReport.drifted gives them
    rows: list[DriftRow]
    largest: str  # the three largest scores, 'Kind 0.350, Year_Built 0.050'
    fields: Table | None


@dataclass(frozen=True)
class Figure:
    """A plot as an inline PNG, with its heading."""

    title: str
    uri: str
    alt: str


@dataclass(frozen=True)
class TimingsView:
    """Seconds and share per stage, and the total."""

    rows: list[list[str]]
    total: str
    total_share: str


@dataclass(frozen=True)
class ReportView:
    """Everything report.html shows, as display text: the templates' one input."""

    run_id: str
    facts: dict[str, str]
    verdict: Verdict
    snapshot_hash: str
    promotion: PromotionView | None
    data: DataView
    validation: ValidationView
    drift: DriftView | None
    metrics: MetricsView
    regression: RegressionView | None
    equations: EquationsView
    figures: list[Figure]
    training: Table
    timings: TimingsView


def build_report_view(inputs: ReportInputs, plots: bool = True) -> ReportView:
    """The view of a finished run; refuses an evaluation without the least-squares reference.

    plots=False leaves the figures out (drawing them takes most of the time), for the markdown
    summary on its own.
    """
    require_reference(inputs.evaluation)
    prep = inputs.features.preprocessor
    drifted = inputs.drift.drifted if inputs.drift is not None else []
    return ReportView(
        run_id=inputs.run_id,
        facts={
            "created": inputs.created_at.isoformat(timespec="seconds"),
            "source": inputs.source,
            "snapshot": inputs.snapshot_hash,
        },
        verdict=Verdict(
            *run_verdict(inputs.validation, inputs.evaluation.reference_check, drifted=drifted)
        ),
        snapshot_hash=inputs.snapshot_hash,
        promotion=promotion_view(inputs.promotion) if inputs.promotion is not None else None,
        data=_data_view(inputs),
        validation=_validation_view(inputs.validation),
        drift=drift_view(inputs.drift) if inputs.drift is not None else None,
        metrics=metrics_view(inputs.evaluation),
        regression=regression_view(inputs.evaluation, prep),
        equations=equations_view(inputs.evaluation, prep),
        figures=_figures(inputs) if plots else [],
        training=_training_table(inputs),
        timings=timings_view(inputs.stage_seconds),
    )


def promotion_view(decision: PromotionDecision) -> PromotionView:
    """The decision as text; the interval is read off the gate's comparison figures."""
    comparison = decision.figures.get("comparison") or {}
    change = interval = None
    if "relative_change" in comparison:
        change = f"{comparison['relative_change']:+.2%}"
        if {"ci_low", "ci_high"} <= set(comparison):
            level = f"{comparison['confidence']:.0%} " if "confidence" in comparison else ""
            samples = f", {comparison['samples']:,} resamples" if "samples" in comparison else ""
            interval = (
                f"{level}interval {comparison['ci_low']:+.2%} .. {comparison['ci_high']:+.2%} "
                f"(paired bootstrap{samples})"
            )
    fields = {"framework": decision.framework, "champion_run_id": decision.champion_run_id}
    return PromotionView(
        promoted=decision.promoted,
        reason=decision.reason,
        model=model_label(decision.framework) if decision.framework else None,
        champion_run_id=decision.champion_run_id,
        change=change,
        interval=interval,
        figures=Table.fields("figure", decision.figures),
        fields=Table.fields("field", fields),
    )


def _estimate(prep: Preprocessor) -> str:
    """With a log target, whether prices are the median or (smeared) mean estimate; else ''."""
    if not prep.log_target:
        return ""
    factor = f"Duan's smearing factor {prep.smearing_factor:.4f}"
    if prep.estimate == "mean":
        return f"prices estimate the mean: exp of the predicted log times {factor}"
    return f"prices estimate the median (exp of the predicted log); the mean is {factor} times it"


def _data_view(inputs: ReportInputs) -> DataView:
    """The data section: shape, features, target statistics and split sizes."""
    data, prep = inputs.data, inputs.features.preprocessor
    return DataView(
        rows=f"{data.rows:,}",
        columns=f"{data.columns:,}",
        target=data.target,
        log_target=prep.log_target,
        estimate=_estimate(prep),
        numeric=len(prep.numeric_features),
        categorical=len(prep.categorical_features),
        design_columns=len(prep.feature_names),
        stats=Table.of(["statistic", _target_header(data)], data.target_stats.items()),
        splits=Table.of(["split", "rows"], data.split_sizes.items()),
    )


def _target_header(data: DataSummary) -> str:
    """The target's column header, naming the rows its statistics describe when not all."""
    if data.target_basis == "every row":
        return data.target
    return f"{data.target} ({data.target_basis})"


def _validation_view(summary: Mapping[str, Any]) -> ValidationView:
    """The suite's verdict, its counts and any failures, from the validation summary."""
    counts = {k: v for k, v in summary.items() if k not in ("success", "failures")}
    return ValidationView(
        success=bool(summary.get("success")),
        counts=Table.fields("field", counts),
        failures=[format_value(failure) for failure in summary.get("failures") or []],
    )


def drift_view(drift: DriftReport) -> DriftView:
    """Scores per compared feature; features that could not be compared are listed with why."""
    drifted = drift.drifted
    top = sorted(drift.scores.items(), key=lambda item: -item[1])[:3]
    others = {
        "drifted": drifted,
        "ks": drift.ks,
        "checked": drift.checked,
        "note": drift.note,
        "champion_run_id": drift.champion_run_id,
        "reference_rows": drift.reference_rows,
        "current_rows": drift.current_rows,
        "not_comparable": drift.not_comparable,
    }
    return DriftView(
        checked=drift.checked,
        note=drift.note,
        threshold=format_value(drift.threshold),
        drifted=drifted,
        rows=[
            DriftRow(feature, format_value(score), feature in drifted)
            for feature, score in drift.scores.items()
        ],
        largest=", ".join(f"{name} {score:.3f}" for name, score in top),
        fields=Table.fields("field", others),
    )


def _plotted_rows(evaluation: Evaluation) -> tuple[Evaluation, str]:
    """The evaluation whose test rows the plots show, and what they are: test, else in-sample."""
    if len(evaluation.y_test) or evaluation.y_train is None:
        return evaluation, "test"
    models = {
        name: replace(model, test_predictions=model.train_predictions)
        for name, model in evaluation.models.items()
    }
    return replace(evaluation, models=models, y_test=evaluation.y_train), "in-sample"


def _figures(inputs: ReportInputs) -> list[Figure]:
    """Loss curves (when trainers ran), predictions against actual prices, and residuals."""
    evaluation, target = inputs.evaluation, inputs.features.preprocessor.target
    figures = []
    if inputs.results:
        optimum = evaluation.models[REFERENCE].train_mse_scaled
        figures.append(Figure("Loss curves", loss_plot(inputs.results, optimum), "loss curves"))
    evaluation, rows = _plotted_rows(evaluation)
    scatter, histogram = residual_plots(evaluation, target)
    predicted = prediction_plot(evaluation, target)
    return [
        *figures,
        Figure(f"Predicted vs actual ({rows})", predicted, "predicted vs actual"),
        Figure(f"Residuals vs predicted ({rows})", scatter, "residuals vs predicted"),
        Figure(f"Residual histogram ({rows})", histogram, "residual histogram"),
    ]


TRAINING_HEADERS = [
    "framework",
    "device",
    "optimizer",
    "epochs",
    "stop reason",
    "fit seconds",
    "final train MSE",
    "final validation MSE",
]


def _training_table(inputs: ReportInputs) -> Table:
    """One row per trainer that ran: where, how, how long, and its final losses."""
    rows = (
        [
            model_label(r.framework),
            inputs.devices[r.framework],
            r.optimizer,
            r.epochs,
            r.stop_reason,
            f"{r.seconds:.2f}",
            r.train_loss[-1] if r.train_loss else None,
            r.val_loss[-1] if r.val_loss else None,
        ]
        for r in inputs.results
    )
    return Table.of(TRAINING_HEADERS, rows)


def timings_view(stage_seconds: Mapping[str, float]) -> TimingsView:
    """Each stage's seconds and share of the total."""
    total = sum(stage_seconds.values())
    rows = [
        [stage, f"{s:.2f}", f"{100 * s / total:.0f}%" if total else "—"]
        for stage, s in stage_seconds.items()
    ]
    return TimingsView(rows, f"{total:.2f}", "100%" if total else "—")
