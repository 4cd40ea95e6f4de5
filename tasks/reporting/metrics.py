"""The report's numbers: metrics per model and split, the reference check, and the verdict.

Shared by the page, the markdown summary, the table artifact and `houseprice retrain`'s closing
lines, so all of them say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from houseprice.tasks.evaluate import REFERENCE, Evaluation, RegressionMetrics
from houseprice.tasks.plots import model_label
from houseprice.tasks.reporting.text import Table, format_number, format_value

# Each kind of figure: the ModelEvaluation field and its label. In-sample figures are listed only
# when there is no test part (a full-sample fit), labelled so nobody takes them for test error.
SPLIT_LABELS = {
    "test": "test",
    "validation": "validation",
    "cross_validated": "cross-validated",
    "in_sample": "in-sample (training rows)",
}
METRIC_HEADERS = ["model", "split", "RMSE", "MAE", "R²", "MAPE %", "RMSE vs least squares"]
# The mean predictor: every house at the training rows' mean price, the floor any model must beat.
BASELINE = "baseline"
BASELINE_LABEL = "mean predictor (baseline)"
CHECK_HEADERS = [
    "trainer",
    "test RMSE vs reference",
    "train MSE vs optimum",
    "tolerance",
    "within",
]


def require_reference(evaluation: Evaluation) -> None:
    """Every figure here is judged against the least-squares answer; refuse to report without it."""
    if REFERENCE not in evaluation.models:
        raise ValueError(
            f"evaluation has no least-squares reference {REFERENCE!r} "
            f"(models: {sorted(evaluation.models)}); the report judges every trainer against it"
        )


def metrics_table_rows(
    evaluation: Evaluation,
    models: Iterable[str] | None = None,
    baseline: Mapping[str, RegressionMetrics] | None = None,
) -> list[dict[str, Any]]:
    """One row per model and split: RMSE, MAE, R², MAPE % and the RMSE gap to the reference.

    models picks and orders the models (default: all); baseline adds the mean predictor's rows,
    keyed by ModelEvaluation field ('test', 'validation', 'in_sample').
    """
    require_reference(evaluation)
    reference = evaluation.models[REFERENCE]
    has_test = reference.test is not None
    rows = []
    sources = {
        name: {part: getattr(evaluation.models[name], part) for part in SPLIT_LABELS}
        for name in models or evaluation.models
    }
    if baseline:
        sources[BASELINE] = dict(baseline)
    for name, parts in sources.items():
        for field_name, split in SPLIT_LABELS.items():
            metrics, exact = parts.get(field_name), getattr(reference, field_name)
            if metrics is None or exact is None or (field_name == "in_sample" and has_test):
                continue
            gap = None if name == REFERENCE else 100 * (metrics.rmse / exact.rmse - 1)
            rows.append(
                {
                    "model": name,
                    "split": split,
                    "rmse": metrics.rmse,
                    "mae": metrics.mae,
                    "r2": metrics.r2,
                    "mape_pct": 100 * metrics.mape,  # metrics.json keeps the fraction
                    "rmse_gap_pct": gap,
                }
            )
    return rows


def metric_label(name: str) -> str:
    """A model's name in the metrics tables, the baseline included."""
    return BASELINE_LABEL if name == BASELINE else model_label(name)


def metric_cells(row: dict[str, Any]) -> list[str]:
    """A metrics row as display strings, in METRIC_HEADERS order."""
    gap = row["rmse_gap_pct"]
    gap = "reference" if gap is None else (f"{gap:+,.0f}%" if abs(gap) >= 1000 else f"{gap:+.3g}%")
    return [
        metric_label(row["model"]),
        row["split"],
        format_number(row["rmse"]),
        format_number(row["mae"]),
        f"{row['r2']:.4f}",
        f"{row['mape_pct']:.2f}",
        gap,
    ]


def check_cells(name: str, check: dict[str, Any]) -> list[str]:
    """A reference-check entry as display strings, in CHECK_HEADERS order."""
    rows = check.get("rmse_rows", "test")
    label = "" if rows == "test" else " (in-sample: no test rows)"
    return [
        model_label(name),
        f"{100 * (_rmse_ratio(check) - 1):+.3g}%{label}",
        f"{100 * (check['train_mse_ratio'] - 1):+.3g}%",
        f"±{100 * check['tolerance']:g}%",
        "yes" if check["within_tolerance"] else "NO",
    ]


def _rmse_ratio(check: dict[str, Any]) -> float:
    """A reference check's RMSE ratio (test rows, or in-sample in a full-sample fit)."""
    return check["rmse_ratio"] if "rmse_ratio" in check else check["test_rmse_ratio"]


def run_verdict(
    validation: Mapping[str, Any],
    checks: Mapping[str, dict[str, Any]],
    *,
    drifted: Iterable[str] = (),
) -> tuple[bool, str]:
    """PASS or CHECK, and why: the report's headline, also printed by `houseprice retrain`.

    validation is the validation summary ({"success", "failed", "evaluated"}), checks the
    evaluation's reference_check (per trainer), drifted the features DriftReport.drifted names.
    """
    problems = []
    if not validation.get("success", False):
        failed, evaluated = (validation.get(k, "?") for k in ("failed", "evaluated"))
        problems.append(f"data validation failed ({failed} of {evaluated} expectations)")
    if not checks:
        problems.append("no trained model to check against the reference")
    for name, check in checks.items():
        if not check["within_tolerance"]:
            gap = 100 * abs(_rmse_ratio(check) - 1)
            rows = "test" if check.get("rmse_rows", "test") == "test" else "in-sample"
            problems.append(
                f"{model_label(name)} {rows} RMSE is {gap:.4f}% off the least-squares reference"
            )
    if drifted := list(drifted):
        problems.append(f"drift above threshold in {', '.join(drifted)}")
    if problems:
        return False, "CHECK: " + "; ".join(problems) + "."
    trainers = " and ".join(model_label(name) for name in checks)
    return (
        True,
        f"PASS: {trainers} match the least-squares reference and the data passed validation.",
    )


@dataclass(frozen=True)
class BasisView:
    """What judges the models: the test rows, or cross-validation (and why)."""

    test_rows: str
    folds: str | None  # None: judged on the test rows
    repeats: str | None
    rows: str | None
    why: str
    full_sample: bool  # no held-out rows: in-sample figures flatter


@dataclass(frozen=True)
class AgreementView:
    """How closely two trainers' predictions agree."""

    first: str
    second: str
    rows: str
    max_abs_diff: str
    rms_diff: str
    relative_pct: str


@dataclass(frozen=True)
class MetricsView:
    """The selected model and the baseline, the others' differences, the checks, the agreement."""

    basis: BasisView
    selected: str  # the selected model's label
    table: Table
    baseline: str | None  # what the baseline is, or why it is missing
    differences: Table | None  # None: no other model
    differences_basis: str  # the figures the differences are taken on
    checks: Table
    agreements: list[AgreementView]


DIFFERENCE_HEADERS = [
    "model",
    "RMSE difference",
    "R² difference",
    "MAPE difference (points)",
    "largest coefficient gap",
    "matches least squares",
]


def metrics_view(
    evaluation: Evaluation,
    selected: str,
    coefficients: Mapping[str, Mapping[str, float]],
    baseline: Mapping[str, RegressionMetrics] | None,
    baseline_price: str | None = None,
) -> MetricsView:
    """The selected model and the baseline per split, the others' differences, the checks."""
    rows = metrics_table_rows(evaluation, [selected], baseline)
    others = [name for name in evaluation.models if name != selected]
    basis = "test" if len(evaluation.y_test) else "in-sample"
    return MetricsView(
        basis=_basis_view(evaluation),
        selected=model_label(selected),
        table=Table(METRIC_HEADERS, [metric_cells(row) for row in rows]),
        baseline=(
            f"The baseline prices every house at the training rows' mean, {baseline_price}: "
            "a model must beat it to be worth anything."
            if baseline
            else "No baseline: the training rows' mean was not recorded (rows on disk, "
            "target not standardized)."
        ),
        differences=Table(
            DIFFERENCE_HEADERS,
            [_difference_cells(evaluation, name, selected, coefficients) for name in others],
        )
        if others
        else None,
        differences_basis=basis,
        checks=Table(CHECK_HEADERS, [check_cells(*i) for i in evaluation.reference_check.items()]),
        agreements=_agreement_views(evaluation),
    )


def compared_metrics(evaluation: Evaluation, name: str) -> RegressionMetrics | None:
    """The figures models are compared on: test, else in-sample.

    Not the cross-validated ones: those score each trainer's exact optimum refitted per fold,
    the same for every model by construction.
    """
    model = evaluation.models[name]
    return model.test or model.in_sample


def _difference_cells(
    evaluation: Evaluation,
    name: str,
    selected: str,
    coefficients: Mapping[str, Mapping[str, float]],
) -> list[str]:
    """How one model differs from the selected one, in DIFFERENCE_HEADERS order."""
    mine, theirs = compared_metrics(evaluation, name), compared_metrics(evaluation, selected)
    check = evaluation.reference_check.get(name)
    matches = "reference" if check is None else ("yes" if check["within_tolerance"] else "NO")
    if mine is None or theirs is None:
        metric_gaps = ["—"] * 3
    else:
        metric_gaps = [
            f"{mine.rmse - theirs.rmse:+,.4g}",
            f"{mine.r2 - theirs.r2:+.2g}",
            f"{100 * (mine.mape - theirs.mape):+.3g}",
        ]
    gap = coefficient_gap(coefficients[name], coefficients[selected])
    return [model_label(name), *metric_gaps, gap, matches]


def coefficient_gap(coefficients: Mapping[str, float], selected: Mapping[str, float]) -> str:
    """The largest gap between two models' coefficients, relative to the selected model's.

    Relative, because the terms' units differ (price per m², per year, per level): an absolute
    maximum would always name the term with the largest unit.
    """
    if not selected:
        return "—"

    def relative(term: str) -> float:
        return abs(coefficients[term] - selected[term]) / max(abs(selected[term]), 1e-300)

    term = max(selected, key=relative)
    absolute = coefficients[term] - selected[term]
    return f"{100 * relative(term):.2g}% on {term} ({absolute:+.3g})"


def _basis_view(evaluation: Evaluation) -> BasisView:
    """Which figures judge the models, and why."""
    cv, held = evaluation.cross_validation, len(evaluation.y_test)
    why = (
        "a full-sample fit holds out no rows"
        if held == 0
        else f"the test part has only {held:,} rows, too few to judge by"
    )
    return BasisView(
        test_rows=f"{held:,}",
        folds=format_value(cv["folds"]) if cv else None,
        repeats=format_value(cv["repeats"]) if cv else None,
        rows=format_value(cv["rows"]) if cv else None,
        why=why,
        full_sample=cv is not None and held == 0,
    )


def _agreement_views(evaluation: Evaluation) -> list[AgreementView]:
    """Each pair of trainers' agreement, as evaluation measured it; none with only one trainer."""
    return [
        AgreementView(
            first=model_label(pair.first),
            second=model_label(pair.second),
            rows=pair.rows,
            max_abs_diff=format_value(pair.max_abs_diff),
            rms_diff=format_value(pair.rms_diff),
            relative_pct=f"{100 * pair.relative_rms_diff:.2e}",
        )
        for pair in evaluation.agreements
    ]
