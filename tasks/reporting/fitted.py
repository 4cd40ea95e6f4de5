"""The fitted models as a reader sees them: the selected model's equation, the regression table
and its heteroskedasticity test."""

from __future__ import annotations

from dataclasses import dataclass, replace

from houseprice.preprocessing import Preprocessor
from houseprice.tasks.evaluate import Evaluation, coefficients_in_original_units
from houseprice.tasks.plots import model_label
from houseprice.tasks.reporting.diagnostics import BreuschPagan
from houseprice.tasks.reporting.text import (
    Table,
    format_number,
    format_p_value,
    format_stat,
    significance,
)

# The Breusch–Pagan p-value below which the report calls the residuals heteroskedastic.
HETEROSKEDASTICITY_P = 0.05

REGRESSION_HEADERS = [
    "term",
    "coefficient",
    "std. error",
    "HC0 s.e.",
    "HC1 s.e.",
    "t",
    "p",
    "",
    "95% interval",
]


@dataclass(frozen=True)
class Equation:
    """One model's fitted equation, 'lhs = intercept + a × x + b × [column=level] ...'."""

    label: str
    text: str


@dataclass(frozen=True)
class EquationsView:
    """The selected model's equation (the others' differences are in the metrics section)."""

    target: str
    log_target: bool  # coefficients in log-price units: the page warns
    reference_levels: str | None  # 'column = level, ...'; None without categorical features
    equation: Equation


@dataclass(frozen=True)
class HeteroskedasticityView:
    """The Breusch–Pagan test of the reference's residuals, and what to do when it fires."""

    fired: bool
    text: str
    caption: str | None = None  # under the residual plots, when the test fired


@dataclass(frozen=True)
class RegressionView:
    """The least-squares fit as regression output: one row per term, and the fit's summary."""

    lhs: str
    rows_text: str  # 'all' (a full-sample fit) or 'the training'
    in_sample: bool
    units: str
    table: Table  # the first cell of each row is a term name
    summary: str
    dropped: dict[str, str]  # aliased design columns left out, and why
    heteroskedasticity: HeteroskedasticityView


def _lhs(prep: Preprocessor) -> str:
    """The fitted target as an equation's left-hand side: 'price' or 'log(price)'."""
    return f"log({prep.target})" if prep.log_target else prep.target


def model_coefficients(evaluation: Evaluation, prep: Preprocessor) -> dict[str, dict[str, float]]:
    """Each model's coefficients per raw feature unit; in log-price units for a log target."""
    if not prep.log_target:
        return {name: model.coefficients or {} for name, model in evaluation.models.items()}
    # log(price) is the same affine map of the raw features as price is without the log, so the
    # price-unit conversion applies unchanged; only the units of the answer differ.
    linear = replace(prep, log_target=False)
    return {
        name: coefficients_in_original_units(model.model, linear) or {}
        for name, model in evaluation.models.items()
    }


def _equation(lhs: str, coefficients: dict[str, float], prep: Preprocessor) -> str:
    """'lhs = intercept + a × x + b × [column=level] ...' with indicator columns in brackets."""
    terms = [format_number(coefficients["intercept"])]
    for name in prep.feature_names:
        value = coefficients[name]
        term = name if name in prep.numeric_features else f"[{name}]"
        terms.append(f"{'−' if value < 0 else '+'} {format_number(abs(value))} × {term}")
    return f"{lhs} = " + " ".join(terms)


def equations_view(
    coefficients: dict[str, dict[str, float]], prep: Preprocessor, selected: str
) -> EquationsView:
    """The selected model's equation in the target's units."""
    levels = ", ".join(f"{column} = {level}" for column, level in prep.reference_levels.items())
    return EquationsView(
        target=prep.target,
        log_target=prep.log_target,
        reference_levels=levels if prep.categorical_features else None,
        equation=Equation(
            model_label(selected), _equation(_lhs(prep), coefficients[selected], prep)
        ),
    )


def heteroskedasticity_view(
    test: BreuschPagan | None, rows: str, log_target: bool
) -> HeteroskedasticityView:
    """The test's result as sentences; when it fires, which standard errors to read instead."""
    if test is None:
        return HeteroskedasticityView(
            False, "Breusch–Pagan test: not defined here (too few rows or no feature)."
        )
    result = (
        f"Breusch–Pagan test of the least-squares residuals on the {test.rows:,} {rows} rows "
        f"(Koenker's studentized form): LM = {format_stat(test.lm)} on {test.df} df, "
        f"p {_p_text(test.p)}; F = {format_stat(test.f)}, p {_p_text(test.f_p)}."
    )
    if test.p >= HETEROSKEDASTICITY_P:
        return HeteroskedasticityView(
            False,
            f"{result} No evidence that the residual spread changes with the features "
            f"(p ≥ {HETEROSKEDASTICITY_P}): the classical standard errors can be read as they are.",
        )
    advice = (
        "read the HC1 column instead of the classical standard error (and do not trust the "
        "classical t, p and interval)"
    )
    if not log_target:
        advice += ", or model the logarithm of the price (`features.log_target: true`), which "
        advice += "often evens out a spread that grows with the price"
    return HeteroskedasticityView(
        True,
        f"{result} The residual spread changes with the features (heteroskedasticity, "
        f"p < {HETEROSKEDASTICITY_P}): {advice}.",
        caption=(
            "The residuals' spread is not constant: the Breusch–Pagan test rejects constant "
            f"variance (p {_p_text(test.p)})."
        ),
    )


def _p_text(p: float) -> str:
    """'= 0.0123' or '< 1e-16'."""
    text = format_p_value(p)
    return text if text.startswith("<") else f"= {text}"


def regression_view(
    evaluation: Evaluation, prep: Preprocessor, heteroskedasticity: HeteroskedasticityView
) -> RegressionView | None:
    """The reference's regression table and fit summary; None when none was computed."""
    regression = evaluation.regression
    if regression is None:
        return None
    fit, in_sample = regression.fit, len(evaluation.y_test) == 0
    rows_text = "all" if in_sample else "the training"
    df1, df2 = fit["f_df"]
    f_p = _p_text(fit["f_p"])
    summary = (
        f"n = {fit['n']:,} ({rows_text} rows); R² = {format_stat(fit['r2'])}, adjusted R² = "
        f"{format_stat(fit['adj_r2'])}; residual standard error {format_stat(fit['rse'])} on "
        f"{df2:,} degrees of freedom; F = {format_stat(fit['f'])} on {df1} and {df2:,} df, "
        f"p {f_p}."
    )
    rows = [
        [
            row["term"],
            format_stat(row["coef"], 6),
            *(format_stat(row[key]) for key in ("se", "se_hc0", "se_hc1", "t")),
            format_p_value(row["p"]),
            significance(row["p"]),
            f"{format_stat(row['ci_low'])} .. {format_stat(row['ci_high'])}",
        ]
        for row in regression.table
    ]
    return RegressionView(
        lhs=_lhs(prep),
        rows_text=rows_text,
        in_sample=in_sample,
        units=evaluation.coefficient_units,
        table=Table(REGRESSION_HEADERS, rows),
        summary=summary,
        dropped=dict(prep.dropped_columns),
        heteroskedasticity=heteroskedasticity,
    )
