"""The report's view: one typed object, built once from a run's results, that the templates render.

Every number is turned into display text here, so the templates hold markup and nothing else,
and the markdown summary reads the same view as the page. Trainers are whatever ran: each is
named by model_label and listed in the order evaluation gives, never by framework here. One
model, the selected one (the gate's challenger), is shown in full: its equation and plots; the
others appear as their differences from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from houseprice.preprocessing import Preprocessor
from houseprice.tasks.evaluate import REFERENCE, Evaluation
from houseprice.tasks.plots import fit_plots, loss_plot, model_label
from houseprice.tasks.promote import select_run_model
from houseprice.tasks.reporting.comparisons import (
    DriftView,
    PromotionView,
    drift_view,
    promotion_view,
)
from houseprice.tasks.reporting.diagnostics import (
    baseline_metrics,
    breusch_pagan,
    reference_residuals,
    training_mean_price,
)
from houseprice.tasks.reporting.fitted import (
    EquationsView,
    RegressionView,
    equations_view,
    heteroskedasticity_view,
    model_coefficients,
    regression_view,
)
from houseprice.tasks.reporting.metrics import (
    MetricsView,
    metrics_view,
    require_reference,
    run_verdict,
)
from houseprice.tasks.reporting.text import Table, format_number, format_value

if TYPE_CHECKING:
    from houseprice.tasks.report import DataSummary, ReportInputs


@dataclass(frozen=True)
class Verdict:
    """PASS or CHECK, the sentence that says why, and the sections that show it."""

    ok: bool
    text: str
    see: list[tuple[str, str]]  # (section id, what to read there) for each problem


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
    """The expectation suite's outcome as a sentence, its failures, and the Data Docs."""

    success: bool
    text: str
    failures: list[str]
    data_docs: str | None  # the Data Docs index, relative to report.html


@dataclass(frozen=True)
class SelectedView:
    """The model the report shows in full: the gate's challenger, else the reference."""

    name: str
    label: str
    why: str


@dataclass(frozen=True)
class Figure:
    """A plot as an inline PNG, with its heading."""

    title: str
    uri: str
    alt: str
    caption: str | None = None  # what the figure shows that a test confirms


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
    contents: list[tuple[str, str]]  # (section id, heading), in page order
    selected: SelectedView
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
    evaluation, features = inputs.evaluation, inputs.features
    prep = features.preprocessor
    drifted = inputs.drift.drifted if inputs.drift is not None else []
    selected = selected_view(inputs)
    coefficients = model_coefficients(evaluation, prep)
    residuals = reference_residuals(evaluation, features)
    test = breusch_pagan(residuals.residuals, residuals.design)
    baseline = baseline_metrics(evaluation, features)
    price = training_mean_price(features)
    promotion = promotion_view(inputs.promotion) if inputs.promotion is not None else None
    drift = drift_view(inputs.drift) if inputs.drift is not None else None
    regression = regression_view(
        evaluation, prep, heteroskedasticity_view(test, residuals.rows, prep.log_target)
    )
    caption = regression.heteroskedasticity.caption if regression is not None else None
    figures = _figures(inputs, selected.name, caption) if plots else []
    return ReportView(
        run_id=inputs.run_id,
        facts={
            "created": inputs.created_at.isoformat(timespec="seconds"),
            "source": inputs.source,
            "snapshot": inputs.snapshot_hash,
        },
        verdict=Verdict(
            *run_verdict(inputs.validation, evaluation.reference_check, drifted=drifted),
            see=_where_to_look(inputs.validation, evaluation, drifted),
        ),
        snapshot_hash=inputs.snapshot_hash,
        contents=_contents(promotion, drift, regression, bool(figures)),
        selected=selected,
        promotion=promotion,
        data=_data_view(inputs),
        validation=_validation_view(inputs.validation, inputs.data_docs),
        drift=drift,
        metrics=metrics_view(
            evaluation, selected.name, coefficients, baseline, price and format_number(price)
        ),
        regression=regression,
        equations=equations_view(coefficients, prep, selected.name),
        figures=figures,
        training=_training_table(inputs),
        timings=timings_view(inputs.stage_seconds),
    )


def _where_to_look(
    validation: Mapping[str, Any], evaluation: Evaluation, drifted: list[str]
) -> list[tuple[str, str]]:
    """The sections that explain a CHECK verdict, one per kind of problem, in page order."""
    off = not all(check["within_tolerance"] for check in evaluation.reference_check.values())
    problems = {
        "validation": not validation.get("success", False),
        "drift": bool(drifted),
        "metrics": off or not evaluation.reference_check,
    }
    readings = {
        "validation": "the failed expectations",
        "drift": "which features drifted, and how far",
        "metrics": "the reference check: each trainer against least squares",
    }
    return [(key, readings[key]) for key, problem in problems.items() if problem]


def selected_view(inputs: ReportInputs) -> SelectedView:
    """The gate's challenger (the model a promotion would make champion), else the reference."""
    name = inputs.promotion.framework if inputs.promotion is not None else None
    name = name or select_run_model(inputs.evaluation)
    if name is None:
        why = (
            "No trainer matched the least-squares reference, so the report shows the reference "
            "itself; the trainers' gaps are in the tables of other models and the reference check."
        )
        return SelectedView(REFERENCE, model_label(REFERENCE), why)
    chosen_by = "validation" if inputs.evaluation.models[name].validation else "in-sample"
    why = (
        f"The report shows {model_label(name)} in full: of the trainers that match the "
        f"least-squares reference, it has the lowest {chosen_by} RMSE, so it is the one a "
        "promotion would make champion. The other models are compared with it in one table."
    )
    return SelectedView(name, model_label(name), why)


# Every section the page may have, in page order: (id, heading).
SECTIONS = (
    ("promotion", "Promotion"),
    ("data", "Data"),
    ("validation", "Data validation"),
    ("drift", "Drift"),
    ("metrics", "Metrics"),
    ("regression", "Regression table (least squares)"),
    ("equation", "Fitted equation"),
    ("plots", "Plots"),
    ("training", "Training"),
    ("timings", "Stage timings"),
)


def _contents(
    promotion: PromotionView | None,
    drift: DriftView | None,
    regression: RegressionView | None,
    figures: bool,
) -> list[tuple[str, str]]:
    """The table of contents: the sections this page has."""
    absent = {
        "promotion": promotion is None,
        "drift": drift is None,
        "regression": regression is None,
        "plots": not figures,
    }
    return [(key, heading) for key, heading in SECTIONS if not absent.get(key, False)]


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


def _validation_view(summary: Mapping[str, Any], data_docs: str | None) -> ValidationView:
    """The suite's verdict as a sentence, and any failures, from the validation summary."""
    success = bool(summary.get("success"))
    evaluated, failed = summary.get("evaluated"), summary.get("failed")
    suite = f" of suite {summary['suite']}" if summary.get("suite") else ""
    if evaluated is None:
        text = "The data passed validation." if success else "The data failed validation."
    elif success:
        text = f"All {format_value(evaluated)} expectations{suite} passed."
    else:
        text = f"{format_value(failed)} of {format_value(evaluated)} expectations{suite} failed:"
    return ValidationView(
        success=success,
        text=text,
        failures=[format_value(failure) for failure in summary.get("failures") or []],
        data_docs=data_docs,
    )


def _plotted_rows(evaluation: Evaluation, name: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(actual, predicted) of the rows the plots show, and what they are: test, else in-sample."""
    model = evaluation.models[name]
    if len(evaluation.y_test) or evaluation.y_train is None or model.train_predictions is None:
        return evaluation.y_test, model.test_predictions, "test"
    return evaluation.y_train, model.train_predictions, "in-sample"


def _figures(inputs: ReportInputs, selected: str, caption: str | None) -> list[Figure]:
    """Loss curves (when trainers ran) and the selected model's fit and residuals."""
    evaluation, target = inputs.evaluation, inputs.features.preprocessor.target
    figures = []
    if inputs.results:
        optimum = evaluation.models[REFERENCE].train_mse_scaled
        figures.append(Figure("Loss curves", loss_plot(inputs.results, optimum), "loss curves"))
    actual, predicted, rows = _plotted_rows(evaluation, selected)
    if not len(actual):
        return figures
    title = f"{model_label(selected)}: fit and residuals ({rows} rows)"
    alt = "predicted vs actual, residuals vs predicted, residual histogram, normal QQ plot"
    fit = fit_plots(actual, predicted, selected, target)
    return [*figures, Figure(title, fit, alt, caption)]


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
