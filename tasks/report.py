"""Report: one self-contained HTML page, plus Prefect artifacts, to judge a run's models by.

Owns what the report shows (ReportInputs), its tables and verdict, the HTML page, the markdown
summary and the write-report task; the figures are drawn by tasks/plots.py. The page needs nothing
but itself (inline CSS, plots as base64 PNG, no scripts), so it can be mailed, attached to a
ticket or opened from an archived run folder years later.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE

from houseprice import storage
from houseprice.storage import RunPaths
from tasks.evaluate import REFERENCE, Evaluation, coefficients_in_original_units
from tasks.features import FeatureSet
from tasks.plots import loss_plot, model_label, prediction_plot, residual_plots
from tasks.trainers.common import TrainResult

if TYPE_CHECKING:
    from houseprice.config import PipelineConfig
    from tasks.ingest import IngestResult

# Stable keys, so the Prefect UI keeps every run's artifact as a version of the same entry.
REPORT_ARTIFACT_KEY = "houseprice-report"
METRICS_ARTIFACT_KEY = "houseprice-metrics"
REPORT_LINK_ARTIFACT_KEY = "houseprice-report-link"
VALIDATION_FIELDS = ("success", "evaluated", "successful", "failed", "suite", "failures")


@dataclass
class DataSummary:
    """The snapshot's shape, the target's distribution and the split sizes."""

    rows: int
    columns: int
    target: str
    target_stats: dict[str, float]  # pandas describe(): count, mean, std, min, 25%, 50%, 75%, max
    split_sizes: dict[str, int]  # train / validation / test rows


def summarize_data(frame: pd.DataFrame, features: FeatureSet) -> DataSummary:
    """Shape, target statistics and split sizes of the data a run trained on."""
    target = features.preprocessor.target
    stats = frame[target].astype("float64").describe()
    return DataSummary(
        rows=len(frame),
        columns=frame.shape[1],
        target=target,
        target_stats={str(name): float(value) for name, value in stats.items()},
        split_sizes={part: len(rows) for part, rows in features.split._asdict().items()},
    )


@dataclass
class ReportInputs:
    """Everything the report shows; promotion and drift are filled in by later stages."""

    run_id: str
    created_at: datetime
    source: str
    snapshot_hash: str
    data: DataSummary
    validation: dict[str, Any]  # {"success", "evaluated", "successful", "failed", "suite", ...}
    features: FeatureSet
    results: list[TrainResult]
    evaluation: Evaluation
    stage_seconds: dict[str, float]
    promotion: dict[str, Any] | None = None  # {"promoted": bool, "reason": str, "figures": {...}}
    drift: dict[str, Any] | None = None  # {"threshold": float, "scores": {feature: score}, ...}

    @property
    def devices(self) -> dict[str, str]:
        """Where each framework trained, read off its result so the two can never disagree."""
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
    ) -> ReportInputs:
        """Gather the report's inputs from the flow's stage outputs."""
        return cls(
            run_id=run.run_id,
            created_at=datetime.now(UTC),
            source=ingested.source,
            snapshot_hash=ingested.snapshot.content_hash,
            data=summarize_data(ingested.frame, features),
            validation=_validation_summary(validation),
            features=features,
            results=list(results),
            evaluation=evaluation,
            stage_seconds=dict(stage_seconds),
        )


def _validation_summary(validation: Any) -> dict[str, Any]:
    """A plain dict of the validation result; duck-typed so this stage never imports validate."""
    if isinstance(validation, Mapping):
        return dict(validation)
    return {
        name: getattr(validation, name) for name in VALIDATION_FIELDS if hasattr(validation, name)
    }


# ---------------------------------------------------------------------------------------------
# Numbers and verdict, shared by the HTML page and the markdown summary.


def _require_reference(evaluation: Evaluation) -> None:
    """Every figure here is judged against the least-squares answer; refuse to report without it."""
    if REFERENCE not in evaluation.models:
        raise ValueError(
            f"evaluation has no least-squares reference {REFERENCE!r} "
            f"(models: {sorted(evaluation.models)}); the report judges every trainer against it"
        )


# Each kind of figure: the ModelEvaluation field and its label. In-sample figures are listed only
# when there is no test part (a full-sample fit), labelled so nobody takes them for test error.
SPLIT_LABELS = {
    "test": "test",
    "validation": "validation",
    "cross_validated": "cross-validated",
    "in_sample": "in-sample (training rows)",
}


def metrics_table_rows(evaluation: Evaluation) -> list[dict[str, Any]]:
    """One row per model and split: RMSE, MAE, R², MAPE % and the RMSE gap to the reference."""
    _require_reference(evaluation)
    reference = evaluation.models[REFERENCE]
    rows = []
    for name, model in evaluation.models.items():
        for field_name, split in SPLIT_LABELS.items():
            metrics, baseline = getattr(model, field_name), getattr(reference, field_name)
            if metrics is None or baseline is None:
                continue
            if field_name == "in_sample" and model.test is not None:
                continue
            gap = None if name == REFERENCE else 100 * (metrics.rmse / baseline.rmse - 1)
            rows.append(
                {
                    "model": name,
                    "split": split,
                    "rmse": metrics.rmse,
                    "mae": metrics.mae,
                    "r2": metrics.r2,
                    "mape_pct": 100 * metrics.mape,
                    "rmse_gap_pct": gap,
                }
            )
    return rows


METRIC_HEADERS = ["model", "split", "RMSE", "MAE", "R²", "MAPE %", "RMSE vs reference"]
CHECK_HEADERS = [
    "trainer",
    "test RMSE vs reference",
    "train MSE vs optimum",
    "tolerance",
    "within",
]


def _metric_cells(row: dict[str, Any]) -> list[str]:
    """A metrics row as display strings, in METRIC_HEADERS order."""
    gap = "reference" if row["rmse_gap_pct"] is None else f"{row['rmse_gap_pct']:+.3g}%"
    return [
        model_label(row["model"]),
        row["split"],
        _format_number(row["rmse"]),
        _format_number(row["mae"]),
        f"{row['r2']:.4f}",
        f"{row['mape_pct']:.2f}",
        gap,
    ]


def _check_cells(name: str, check: dict[str, Any]) -> list[str]:
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


def _drifted_features(drift: dict[str, Any]) -> list[str]:
    """Features whose drift score exceeds the threshold."""
    threshold = drift.get("threshold")
    scores = drift.get("scores") or {}
    return [name for name, score in scores.items() if threshold is not None and score > threshold]


def _verdict(inputs: ReportInputs) -> tuple[bool, str]:
    """Whether the run looks sound, and one sentence saying why (or what to look at)."""
    return run_verdict(inputs.validation, inputs.evaluation.reference_check, inputs.drift)


def run_verdict(
    validation: Mapping[str, Any],
    checks: Mapping[str, dict[str, Any]],
    drift: dict[str, Any] | None,
) -> tuple[bool, str]:
    """PASS or CHECK, and why: the report's headline, also printed by `houseprice retrain`.

    validation is the validation summary ({"success", "failed", "evaluated"}), checks the
    evaluation's reference_check (per trainer), drift the drift report's dict or None.
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
    if drift and (drifted := _drifted_features(drift)):
        problems.append(f"drift above threshold in {', '.join(drifted)}")
    if problems:
        return False, "CHECK: " + "; ".join(problems) + "."
    trainers = " and ".join(model_label(name) for name in checks)
    return (
        True,
        f"PASS: {trainers} match the least-squares reference and the data passed validation.",
    )


def _rmse_ratio(check: dict[str, Any]) -> float:
    """A reference check's RMSE ratio (test rows, or in-sample in a full-sample fit)."""
    return check["rmse_ratio"] if "rmse_ratio" in check else check["test_rmse_ratio"]


def _format_number(value: float | None) -> str:
    """Thousands separators for large values, 4 significant digits otherwise."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _format_value(value: Any) -> str:
    """Any summary value (from validation, promotion, drift) as display text."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool):
        return {None: "—", True: "yes", False: "no"}[value]
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return _format_number(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str)
    return str(value)


# ---------------------------------------------------------------------------------------------
# Markdown summary (the Prefect artifact).


def render_markdown_summary(inputs: ReportInputs) -> str:
    """Verdict, promotion, drift, metrics table and reference check in markdown."""
    _require_reference(inputs.evaluation)
    _, verdict = _verdict(inputs)
    lines = [
        f"**{_md(verdict)}**",
        "",
        f"Run `{_md(inputs.run_id)}` on snapshot `{inputs.snapshot_hash[:12]}`.",
        "",
        *_promotion_markdown(inputs.promotion),
        *_drift_markdown(inputs.drift),
        *_markdown_table(METRIC_HEADERS, map(_metric_cells, metrics_table_rows(inputs.evaluation))),
        "",
        *_markdown_table(
            CHECK_HEADERS, (_check_cells(*i) for i in inputs.evaluation.reference_check.items())
        ),
    ]
    return "\n".join(lines) + "\n"


def _promotion_markdown(promotion: dict[str, Any] | None) -> list[str]:
    """The promotion decision, its reason and its bootstrap interval, as markdown lines."""
    if promotion is None:
        return []
    verdict = "promoted" if promotion.get("promoted") else "not promoted"
    model = f" ({model_label(promotion['framework'])})" if promotion.get("framework") else ""
    lines = [f"**Promotion: {verdict}**{_md(model)}: {_md(promotion.get('reason', ''))}", ""]
    comparison = (promotion.get("figures") or {}).get("comparison") or {}
    if "relative_change" in comparison:
        line = (
            f"Test RMSE change against champion `{_md(promotion.get('champion_run_id'))}`: "
            f"{comparison['relative_change']:+.2%}"
        )
        if {"ci_low", "ci_high"} <= set(comparison):
            level = f"{comparison['confidence']:.0%} " if "confidence" in comparison else ""
            samples = f", {comparison['samples']:,} resamples" if "samples" in comparison else ""
            line += (
                f", {level}interval {comparison['ci_low']:+.2%} .. {comparison['ci_high']:+.2%} "
                f"(paired bootstrap{samples})"
            )
        lines += [line + ".", ""]
    return lines


def _drift_markdown(drift: dict[str, Any] | None) -> list[str]:
    """Drift in one markdown line: the features above the threshold, or why none."""
    if drift is None:
        return []
    if not drift.get("checked", True):
        return [f"**Drift: not checked**: {_md(drift.get('note') or '')}", ""]
    scores, drifted = drift.get("scores") or {}, _drifted_features(drift)
    top = sorted(scores.items(), key=lambda item: -item[1])[:3]
    largest = ", ".join(f"{_md(name)} {score:.3f}" for name, score in top)
    status = f"above threshold in {_md(', '.join(drifted))}" if drifted else "none above threshold"
    return [
        f"**Drift (PSI, threshold {drift.get('threshold')}): {status}**; "
        f"{len(scores)} features compared, largest {largest or '—'}.",
        "",
    ]


def _markdown_table(headers: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]


def _md(text: str) -> str:
    """Keep a value (a feature name, say) from breaking out of its cell or injecting HTML."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("`", "'")


# ---------------------------------------------------------------------------------------------
# HTML page.


class _Html(str):
    """Markup built here from escaped parts; _table passes it through unescaped."""


def _e(value: Any) -> str:
    return html.escape(_format_value(value))


def _table(headers: list[str], rows: Iterable[list[Any]]) -> _Html:
    """An HTML table; every cell is escaped unless it is _Html built by this module."""
    cell = lambda v: v if isinstance(v, _Html) else _e(v)  # noqa: E731
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return _Html(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _section(anchor: str, title: str, *parts: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{"".join(parts)}</section>'


def _badge(ok: bool, yes: str, no: str) -> _Html:
    return _Html(
        f'<span class="badge {"ok" if ok else "bad"}">{html.escape(yes if ok else no)}</span>'
    )


def _image(uri: str, alt: str) -> str:
    return f'<figure><img src="{uri}" alt="{html.escape(alt)}"></figure>'


def _header(inputs: ReportInputs) -> str:
    ok, verdict = _verdict(inputs)
    facts = {
        "created": inputs.created_at.isoformat(timespec="seconds"),
        "source": inputs.source,
        "snapshot": inputs.snapshot_hash,
    }
    meta = "".join(f"<dt>{_e(k)}</dt><dd><code>{_e(v)}</code></dd>" for k, v in facts.items())
    return (
        f"<header><h1>House-price run {_e(inputs.run_id)}</h1><dl>{meta}</dl>"
        f'<p class="verdict {"ok" if ok else "bad"}">{_e(verdict)}</p></header>'
    )


def _data_section(inputs: ReportInputs) -> str:
    data, prep = inputs.data, inputs.features.preprocessor
    shape = (
        f"<p>{data.rows:,} rows × {data.columns:,} columns; target <code>{_e(data.target)}</code>"
        f"{' (modelled as log)' if prep.log_target else ''}. {len(prep.numeric_features)} numeric "
        f"and {len(prep.categorical_features)} categorical features give "
        f"{len(prep.feature_names)} design columns.</p>"
    )
    stats = _table(["statistic", data.target], data.target_stats.items())
    splits = _table(["split", "rows"], data.split_sizes.items())
    return _section("data", "Data", shape, f'<div class="row">{stats}{splits}</div>')


def _validation_section(summary: dict[str, Any]) -> str:
    status = _badge(bool(summary.get("success")), "passed", "failed")
    counts = _flatten({k: v for k, v in summary.items() if k not in ("success", "failures")})
    failures = "".join(f"<li>{_e(failure)}</li>" for failure in summary.get("failures") or [])
    return _section(
        "validation",
        "Data validation",
        f"<p>Expectation suite {status}</p>",
        _table(["field", "value"], counts.items()),
        f"<ul>{failures}</ul>" if failures else "",
    )


def _metrics_section(inputs: ReportInputs) -> str:
    evaluation = inputs.evaluation
    rows = map(_metric_cells, metrics_table_rows(evaluation))
    checks = (_check_cells(*item) for item in evaluation.reference_check.items())
    return _section(
        "metrics",
        "Metrics (price units)",
        "<p>RMSE and MAE in price units; the last column is each model's RMSE relative to the "
        "least-squares reference on the same split.</p>",
        _basis_note(evaluation),
        _table(METRIC_HEADERS, rows),
        "<h3>Reference check</h3><p>Each trainer against the exact least-squares solution.</p>",
        _table(CHECK_HEADERS, checks),
        _agreement(evaluation),
    )


def _basis_note(evaluation: Evaluation) -> str:
    """Which figures judge the models, and why; warns that in-sample figures flatter."""
    cv = evaluation.cross_validation
    if cv is None:
        return f"<p>Judged on the {len(evaluation.y_test):,} test rows.</p>"
    held = len(evaluation.y_test)
    why = (
        "a full-sample fit holds out no rows"
        if held == 0
        else f"the test part has only {held:,} rows, too few to judge by"
    )
    note = (
        f"<p>Judged by <strong>cross-validation</strong> ({_e(cv['folds'])}-fold, repeated "
        f"{_e(cv['repeats'])} times on all {_e(cv['rows'])} rows; the mean over repeats), since "
        f"{_e(why)}. Each trainer is scored by the exact optimum of its cost refitted per fold, "
        "which it matches on the full fit (reference check).</p>"
    )
    if held == 0:
        note += (
            "<p class='warn'>In-sample figures are measured on the rows the model was fitted "
            "to: they overstate how well it predicts new houses.</p>"
        )
    return note


def _agreement(evaluation: Evaluation) -> str:
    if not evaluation.agreement:
        return "<p>Only one trainer ran, so there is no framework agreement to show.</p>"
    first, second = (model_label(name) for name in list(evaluation.reference_check)[:2])
    a = evaluation.agreement
    rows = a.get("rows", "test")
    return (
        f"<h3>Framework agreement</h3><p>{_e(first)} and {_e(second)} predictions on the "
        f"{_e(rows)} rows differ by "
        f"at most {_e(a['max_abs_diff'])} (RMS {_e(a['rms_diff'])}, "
        f"{100 * a['relative_rms_diff']:.2e}% of the mean prediction).</p>"
    )


def _coefficients(inputs: ReportInputs) -> dict[str, dict[str, float]]:
    """Each model's coefficients per raw feature unit; in log-price units for a log target."""
    prep = inputs.features.preprocessor
    if not prep.log_target:
        return {name: model.coefficients or {} for name, model in inputs.evaluation.models.items()}
    # log(price) is the same affine map of the raw features as price is without the log, so the
    # price-unit conversion applies unchanged; only the units of the answer differ.
    linear = replace(prep, log_target=False)
    return {
        name: coefficients_in_original_units(model.model, linear) or {}
        for name, model in inputs.evaluation.models.items()
    }


def _equation(
    lhs: str, coefficients: dict[str, float], numeric: list[str], names: list[str]
) -> str:
    """'lhs = intercept + a × x + b × [column=level] ...' with indicator columns in brackets."""
    terms = [_format_number(coefficients["intercept"])]
    for name in names:
        value = coefficients[name]
        term = name if name in numeric else f"[{name}]"
        terms.append(f"{'−' if value < 0 else '+'} {_format_number(abs(value))} × {term}")
    return f"{lhs} = " + " ".join(terms)


def _equations_section(inputs: ReportInputs) -> str:
    prep = inputs.features.preprocessor
    coefficients = _coefficients(inputs)
    lhs = f"log({prep.target})" if prep.log_target else prep.target
    equations = "".join(
        f"<h3>{_e(model_label(name))}</h3><p class='equation'>"
        f"{_e(_equation(lhs, coefs, prep.numeric_features, prep.feature_names))}</p>"
        for name, coefs in coefficients.items()
    )
    note = (
        f"<p class='warn'>The target is log-transformed: these coefficients are in log-price "
        f"units, <strong>not price units</strong>. A coefficient b multiplies {_e(prep.target)} "
        "by exp(b) (about 1 + b when small) per unit of its feature.</p>"
        if prep.log_target
        else "<p>Coefficients are in price units per unit of each raw feature.</p>"
    )
    levels = ", ".join(f"{column} = {level}" for column, level in prep.reference_levels.items())
    indicator = (
        f"<p>[column=level] is 1 for that level and 0 otherwise; the reference levels "
        f"({_e(levels)}) are part of the intercept.</p>"
        if prep.categorical_features
        else ""
    )
    names = ["intercept", *prep.feature_names]
    table = _table(
        ["term", *map(model_label, coefficients)],
        ([n, *(c[n] for c in coefficients.values())] for n in names),
    )
    return _section("equations", "Fitted equations", note, indicator, equations, table)


def _significance(p: float | None) -> str:
    """The usual stars: *** p < 0.001, ** < 0.01, * < 0.05, . < 0.1."""
    if p is None or not math.isfinite(p):
        return ""
    return next((mark for limit, mark in SIGNIFICANCE if p < limit), "")


SIGNIFICANCE = ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."))
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


def _stat(value: float | None, digits: int = 4) -> str:
    """A statistic with `digits` significant digits, thousands separated when large."""
    if value is None or not math.isfinite(value):
        return "—"
    if abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return f"{value:,.{digits}g}"


def _p_value(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "—"
    return "< 1e-16" if p < 1e-16 else (f"{p:.3g}" if p < 0.001 else f"{p:.4f}")


def _regression_section(inputs: ReportInputs) -> str:
    """The least-squares fit as regression output: estimate, SEs, t, p, interval; fit summary."""
    regression = inputs.evaluation.regression
    if regression is None:
        return ""
    prep, fit = inputs.features.preprocessor, regression.fit
    rows = [
        [
            _Html(f"<code>{_e(row['term'])}</code>"),
            _stat(row["coef"], 6),
            _stat(row["se"]),
            _stat(row["se_hc0"]),
            _stat(row["se_hc1"]),
            _stat(row["t"]),
            _p_value(row["p"]),
            _significance(row["p"]),
            f"{_stat(row['ci_low'])} .. {_stat(row['ci_high'])}",
        ]
        for row in regression.table
    ]
    lhs = f"log({prep.target})" if prep.log_target else prep.target
    in_sample = len(inputs.evaluation.y_test) == 0
    rows_text = "all" if in_sample else "the training"
    df1, df2 = fit["f_df"]
    f_p = _p_value(fit["f_p"])
    f_p = f_p if f_p.startswith("<") else f"= {f_p}"
    summary = (
        f"<p>n = {fit['n']:,} ({rows_text} rows); R² = {_stat(fit['r2'])}, adjusted R² = "
        f"{_stat(fit['adj_r2'])}; residual standard error {_stat(fit['rse'])} on {df2:,} "
        f"degrees of freedom; F = {_stat(fit['f'])} on {df1} and {df2:,} df, "
        f"p {html.escape(f_p)}.</p>"
    )
    notes = (
        f"<p>Ordinary least squares of <code>{_e(lhs)}</code> on the raw (unscaled) features "
        f"of {rows_text} rows{' (in-sample: a full-sample fit)' if in_sample else ''}. "
        f"Coefficients: {_e(inputs.evaluation.coefficient_units)}. t, p and the 95% interval "
        "use the classical standard error; HC0 (White) and HC1 (HC0 × n/(n−k)) are "
        "heteroskedasticity-robust alternatives: prefer them when the residual spread grows "
        "with the price. Stars: *** p &lt; 0.001, ** &lt; 0.01, * &lt; 0.05, . &lt; 0.1.</p>"
    )
    return _section(
        "regression",
        "Regression table (least squares)",
        notes,
        _table(REGRESSION_HEADERS, rows),
        summary,
        _dropped_note(prep.dropped_columns),
    )


def _dropped_note(dropped: dict[str, str]) -> str:
    """The aliased design columns left out, and why; nothing when none were."""
    if not dropped:
        return ""
    items = "".join(f"<li><code>{_e(name)}</code>: {_e(why)}</li>" for name, why in dropped.items())
    return (
        "<p class='warn'>Left out of the design: these columns are (near) linear combinations "
        "of the others on the training rows, so no coefficient of theirs could be estimated. "
        "Their effect is carried by the columns named.</p>"
        f"<ul>{items}</ul>"
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


def _plots_section(inputs: ReportInputs) -> str:
    evaluation, target = inputs.evaluation, inputs.features.preprocessor.target
    optimum = evaluation.models[REFERENCE].train_mse_scaled
    parts = []
    if inputs.results:
        parts += [
            "<h3>Loss curves</h3>",
            _image(loss_plot(inputs.results, optimum), "loss curves"),
        ]
    evaluation, rows = _plotted_rows(evaluation)
    scatter, histogram = residual_plots(evaluation, target)
    parts += [
        f"<h3>Predicted vs actual ({rows})</h3>",
        _image(prediction_plot(evaluation, target), "predicted vs actual"),
        f"<h3>Residuals vs predicted ({rows})</h3>",
        _image(scatter, "residuals vs predicted"),
        f"<h3>Residual histogram ({rows})</h3>",
        _image(histogram, "residual histogram"),
    ]
    return _section("plots", "Plots", *parts)


def _training_section(inputs: ReportInputs) -> str:
    headers = [
        "framework",
        "device",
        "optimizer",
        "epochs",
        "stop reason",
        "fit seconds",
        "final train MSE",
        "final validation MSE",
    ]
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
    return _section("training", "Training", _table(headers, rows))


def _timings_section(stage_seconds: dict[str, float]) -> str:
    total = sum(stage_seconds.values())
    rows = [
        [stage, f"{s:.2f}", f"{100 * s / total:.0f}%" if total else "—"]
        for stage, s in stage_seconds.items()
    ]
    rows.append([_Html("<strong>total</strong>"), f"{total:.2f}", "100%" if total else "—"])
    return _section("timings", "Stage timings", _table(["stage", "seconds", "share"], rows))


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested figures as 'outer.inner' keys, so every number gets a table row of its own."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _promotion_section(promotion: dict[str, Any]) -> str:
    status = _badge(bool(promotion.get("promoted")), "promoted", "not promoted")
    reason = f"<p>{_e(promotion['reason'])}</p>" if promotion.get("reason") else ""
    figures = _flatten(promotion.get("figures") or {})
    others = _flatten(
        {k: v for k, v in promotion.items() if k not in ("promoted", "reason", "figures")}
    )
    tables = [
        _table([heading, "value"], items.items())
        for heading, items in (("figure", figures), ("field", others))
        if items
    ]
    return _section("promotion", "Promotion", f"<p>Candidate {status}</p>", reason, *tables)


def _drift_section(drift: dict[str, Any]) -> str:
    threshold, drifted = drift.get("threshold"), set(_drifted_features(drift))
    rows = [
        [feature, score, _badge(feature not in drifted, "ok", "drifted")]
        for feature, score in (drift.get("scores") or {}).items()
    ]
    # Not-comparable features have no score, so the count leaves them out; they are listed, with
    # their reasons, among the other fields as not_comparable.<feature> rows.
    others = _flatten({k: v for k, v in drift.items() if k not in ("scores", "threshold")})
    return _section(
        "drift",
        "Drift",
        f"<p>Threshold {_e(threshold)}; "
        f"{len(drifted)} of {len(rows)} compared features above it.</p>",
        _table(["feature", "score", "status"], rows),
        _table(["field", "value"], others.items()) if others else "",
    )


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1320px;margin:24px auto;
  padding:0 16px;color:#222}
h1{font-size:22px;margin-bottom:4px}
h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:8px 0}
dt{color:#666}dd{margin:0}
table{border-collapse:collapse;margin:8px 16px 8px 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:3px 8px}th{background:#f4f4f4;text-align:left}
td:not(:first-child){text-align:right}.row{display:flex;flex-wrap:wrap;align-items:flex-start}
.verdict{padding:8px 12px;border-radius:4px;font-weight:600}
.verdict.ok{background:#e6f4ea;color:#1e6b34}.verdict.bad{background:#fdecea;color:#a12622}
.badge{padding:1px 6px;border-radius:3px;font-weight:600}.badge.ok{background:#e6f4ea;color:#1e6b34}
.badge.bad{background:#fdecea;color:#a12622}
.warn{background:#fff4e5;padding:6px 10px;border-radius:4px}
.equation{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;overflow-wrap:anywhere}
figure{margin:8px 0}img{max-width:100%}code{font-size:12px}
.text td:not(:first-child){text-align:left}
"""


def render_report(inputs: ReportInputs) -> str:
    """The whole report as one self-contained HTML page (inline CSS, plots as base64 PNG)."""
    _require_reference(inputs.evaluation)
    sections = [
        _header(inputs),
        _promotion_section(inputs.promotion) if inputs.promotion is not None else "",
        _data_section(inputs),
        _validation_section(inputs.validation),
        _drift_section(inputs.drift) if inputs.drift is not None else "",
        _metrics_section(inputs),
        _regression_section(inputs),
        _equations_section(inputs),
        _plots_section(inputs),
        _training_section(inputs),
        _timings_section(inputs.stage_seconds),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>House-price run {_e(inputs.run_id)}</title><style>{CSS}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )


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


def _publish_report_link(path: Path, description: str) -> None:
    """A Prefect link artifact that opens the report from the UI (a file:// address)."""
    create_link_artifact(
        Path(path).resolve().as_uri(),
        link_text=f"report.html of {description}",
        key=REPORT_LINK_ARTIFACT_KEY,
        description=description,
    )


@task(name="write-report", cache_policy=NO_CACHE)  # the inputs hold whole datasets: never hash them
def write_report(inputs: ReportInputs, run: RunPaths) -> Path:
    """Write report.html and publish the summary, metrics and a link as Prefect artifacts."""
    path = storage.write_text_atomic(run.report, render_report(inputs))
    description = f"houseprice run {inputs.run_id}"
    summary = render_markdown_summary(inputs) + f"\nFull report: `{path}`\n"
    create_markdown_artifact(summary, key=REPORT_ARTIFACT_KEY, description=description)
    create_table_artifact(
        rounded_table_rows(inputs.evaluation), key=METRICS_ARTIFACT_KEY, description=description
    )
    _publish_report_link(path, description)
    get_run_logger().info("report: wrote %s", path)
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
        docs = (validation or {}).get("docs_index")
        return cls(
            run_id=run.run_id,
            stage=stage,
            error=f"{type(error).__name__}: {error}",
            stage_seconds=dict(stage_seconds),
            validation=validation,
            data_docs=Path(os.path.relpath(docs, run.root)).as_posix() if docs else None,
        )

    @property
    def headline(self) -> str:
        """'FAILED in stage X: the error's first line'."""
        where = f" in stage {self.stage}" if self.stage else ""
        return f"FAILED{where}: {self.error.splitlines()[0]}"


FAILURE_HEADERS = ["expectation", "column", "sample values", "what failed"]


def _failure_cells(failure: dict[str, Any]) -> list[str]:
    """One failed expectation as display strings, in FAILURE_HEADERS order."""
    sample = ", ".join(_format_value(value) for value in failure.get("sample") or [])
    return [
        failure.get("expectation_type", ""),
        failure.get("column") or "—",
        sample or "—",
        failure.get("description", ""),
    ]


def render_failure_report(inputs: FailureInputs) -> str:
    """A failed run's page: the stage, the error and, for validation, each failed expectation."""
    parts = [
        f"<header><h1>House-price run {_e(inputs.run_id)}</h1>"
        f'<p class="verdict bad">{_e(inputs.headline)}</p></header>',
        _section("error", "Error", f"<pre>{html.escape(inputs.error)}</pre>"),
    ]
    if inputs.validation is not None:
        validation = inputs.validation
        docs = (
            f'<p>Every expectation, passed and failed: <a href="{html.escape(inputs.data_docs)}">'
            "Great Expectations Data Docs</a></p>"
            if inputs.data_docs
            else ""
        )
        parts.append(
            _section(
                "validation",
                "Failed expectations",
                f"<p>{_e(validation.get('failed'))} of {_e(validation.get('evaluated'))} "
                f"expectations of suite <code>{_e(validation.get('suite'))}</code> failed.</p>",
                '<div class="text">'
                + _table(FAILURE_HEADERS, map(_failure_cells, validation.get("failures") or []))
                + "</div>",
                docs,
            )
        )
    parts.append(_timings_section(inputs.stage_seconds))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>House-price run {_e(inputs.run_id)} failed</title><style>{CSS}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )


def render_failure_markdown(inputs: FailureInputs) -> str:
    """The failure in markdown for the Prefect artifact: the same facts as the page."""
    lines = [f"**{_md(inputs.headline)}**", "", f"Run `{_md(inputs.run_id)}`.", ""]
    if inputs.validation is not None:
        failures = inputs.validation.get("failures") or []
        lines += [*_markdown_table(FAILURE_HEADERS, map(_failure_cells, failures)), ""]
    else:
        lines += ["```", inputs.error.replace("`", "'"), "```", ""]
    return "\n".join(lines) + "\n"


@task(name="write-failure-report", cache_policy=NO_CACHE)
def write_failure_report(
    run: RunPaths, stage: str | None, error: BaseException, stage_seconds: dict[str, float]
) -> Path:
    """Write a failed run's report.html and publish it as Prefect artifacts."""
    inputs = FailureInputs.from_error(run, stage, error, stage_seconds)
    path = storage.write_text_atomic(run.report, render_failure_report(inputs))
    description = f"houseprice run {inputs.run_id} (failed)"
    summary = render_failure_markdown(inputs) + f"\nFull report: `{path}`\n"
    create_markdown_artifact(summary, key=REPORT_ARTIFACT_KEY, description=description)
    _publish_report_link(path, description)
    get_run_logger().info("report: wrote %s", path)
    return path
