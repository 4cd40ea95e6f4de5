"""Report stage: the HTML page and markdown summary on a 40-row synthetic frame."""

from __future__ import annotations

import html
import json
import re
import tomllib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from markupsafe import escape
from prefect import flow
from prefect.artifacts import Artifact

from houseprice import datasets, layout
from houseprice.config import PipelineConfig
from houseprice.tasks.drift import DriftReport
from houseprice.tasks.evaluate import REFERENCE, evaluate_models, fit_least_squares
from houseprice.tasks.features import FeatureSet, build_feature_set
from houseprice.tasks.promote import PromotionDecision
from houseprice.tasks.report import (
    METRICS_ARTIFACT_KEY,
    REPORT_ARTIFACT_KEY,
    REPORT_LINK_ARTIFACT_KEY,
    FailureInputs,
    ReportInputs,
    render_failure_markdown,
    render_failure_report,
    render_markdown_summary,
    render_report,
    rounded_table_rows,
    summarize_data,
    write_failure_report,
    write_report,
)
from houseprice.tasks.reporting.diagnostics import BreuschPagan
from houseprice.tasks.reporting.fitted import heteroskedasticity_view
from houseprice.tasks.reporting.metrics import metrics_table_rows, run_verdict
from houseprice.tasks.reporting.pages import render_page
from houseprice.tasks.reporting.view import build_report_view
from tests.fakes import train_result

HOSTILE = "<script>alert(1)</script>"
PLOTS = 2  # loss curves; the selected model's fit (predicted, residuals, histogram, QQ)
IMG = '<img src="data:image/png;base64,'


def _frame(rows: int = 40, spread_grows: bool = False) -> pd.DataFrame:
    """Houses: price linear in area, age and a 3-level kind, plus noise.

    spread_grows: the noise's spread grows with the area (heteroskedastic residuals).
    """
    rng = np.random.default_rng(7)
    area = rng.uniform(60, 260, rows)
    year = rng.integers(1950, 2020, rows).astype("float64")
    kind = rng.choice(["A", "B", "C"], rows)
    premium = pd.Series(kind).map({"A": 0.0, "B": 15_000.0, "C": -8_000.0}).to_numpy()
    spread = 6_000 * (area / 60) ** 2 / 4 if spread_grows else 6_000
    noise = rng.normal(0, 1, rows) * spread
    price = 40_000 + 1_200 * area + 250 * (year - 1950) + premium + noise
    return pd.DataFrame({HOSTILE: area, "Year_Built": year, "Kind": kind, "Sale_Price": price})


def _config(log_target: bool = False) -> PipelineConfig:
    data = {"numeric_features": [HOSTILE, "Year_Built"], "categorical_features": ["Kind"]}
    return PipelineConfig.model_validate({"data": data, "features": {"log_target": log_target}})


def _train_result(framework: str, features: FeatureSet, perturbation: float):
    """A 'trained' model: the least-squares answer nudged, with a loss curve falling onto it."""
    training = features.training
    exact = fit_least_squares(training.x_train, training.y_train)
    weights = exact.weights * (1 + perturbation)
    optimum = float(
        np.mean((training.x_train @ exact.weights + exact.bias - training.y_train) ** 2)
    )
    decay = 0.5 ** np.arange(12)
    return train_result(
        framework,
        weights,
        exact.bias,
        train_loss=(optimum * (1 + 20 * decay)).tolist(),
        val_loss=(optimum * (1.3 + 20 * decay)).tolist(),
        device_name="<b>Test CPU</b>",
        seconds=0.25,
        epochs=12,
    )


def _inputs(
    log_target: bool = False, tf_perturbation: float = -2e-4, frame=None, **sections
) -> ReportInputs:
    frame, config = _frame() if frame is None else frame, _config(log_target)
    features = build_feature_set(frame, config)
    results = [
        _train_result("torch", features, 1e-4),
        _train_result("tensorflow", features, tf_perturbation),
    ]
    evaluation = evaluate_models(features, results, config.evaluation)
    return ReportInputs(
        run_id="20250101T000000Z-abc123",
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        source="synthetic test frame",
        snapshot_hash="ab" * 32,
        data=summarize_data(frame, features),
        validation={
            "success": True,
            "evaluated": 12,
            "successful": 12,
            "failed": 0,
            "suite": HOSTILE,
        },
        features=features,
        results=results,
        evaluation=evaluation,
        stage_seconds={"ingest": 0.4, "validate": 1.1, "features": 0.1, "train": 3.2},
        **sections,
    )


PROMOTION = PromotionDecision(
    promoted=False,
    reason="no evidence it beats the champion",
    framework="torch",
    champion_run_id="20241231T000000Z-000000",
    figures={"challenger_test": {"rmse": 5100.0}, "comparison": {"relative_change": 0.012}},
)
DRIFT = DriftReport(
    checked=True, threshold=0.2, note="40 new rows", scores={"Year_Built": 0.05, "Kind": 0.35}
)


@pytest.fixture(scope="module")
def full() -> tuple[ReportInputs, str]:
    """Inputs with every optional section, and their page (rendered once: plotting is slow)."""
    inputs = _inputs(promotion=PROMOTION, drift=DRIFT)
    return inputs, render_report(inputs)


@pytest.fixture(scope="module")
def log_page() -> str:
    """A log-target run without the optional sections."""
    return render_report(_inputs(log_target=True))


def test_page_shows_the_selected_models_metrics_and_how_the_others_differ(full):
    inputs, page = full
    selected = inputs.evaluation.models["torch"]  # the gate's challenger
    for metrics in (selected.test, selected.validation):
        assert f"<td>{metrics.rmse:,.0f}</td>" in page and f"<td>{metrics.r2:.4f}</td>" in page
    differences = (
        page.split("<h3>The other models</h3>")[1].split("</table>")[0].split("<tbody>")[1]
    )
    for name, label in [(REFERENCE, "least squares (reference)"), ("tensorflow", "TensorFlow")]:
        gap = inputs.evaluation.models[name].test.rmse - selected.test.rmse
        assert f"<td>{label}</td><td>{gap:+,.4g}</td>" in differences
    assert "PyTorch" not in differences
    assert "Reference check" in page and "Framework agreement" in page


def test_page_is_self_contained(full):
    _, page = full
    sources = re.findall(r"<img[^>]*\ssrc=\"([^\"]*)\"", page)
    assert len(sources) == page.count(IMG) == PLOTS
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert plt.get_fignums() == []  # nothing left in pyplot's registry


def test_page_escapes_text_from_data_and_config(full):
    _, page = full
    assert "<script" not in page and "<b>Test CPU" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_page_escapes_feature_names_reasons_and_notes():
    """Text from the data or another stage is shown as text, whatever it holds."""
    breakout = '"><img src=x onerror=alert(1)>'
    drift = DriftReport(
        True, 0.2, HOSTILE, scores={breakout: 0.5, "Kind": 0.01}, not_comparable={HOSTILE: HOSTILE}
    )
    figures = {"comparison": {"relative_change": 0.01}}
    promotion = replace(PROMOTION, reason=HOSTILE, champion_run_id=HOSTILE, figures=figures)
    inputs = _inputs(promotion=promotion, drift=drift)
    page = render_page(build_report_view(inputs, plots=False))
    assert "<script" not in page and "<img" not in page
    assert f"<td>{escape(breakout)}</td><td>0.500</td>" in page
    assert f"(PyTorch): {escape(HOSTILE)}</p>" in page  # the promotion's reason
    assert f"Against champion {escape(HOSTILE)}," in page
    assert f"<li>{escape(HOSTILE)}: {escape(HOSTILE)}</li>" in page  # not comparable, and why
    assert f"CHECK: drift above threshold in {escape(breakout)}." in page


def test_failure_page_escapes_the_error_and_the_failed_expectations():
    failure = {key: HOSTILE for key in ("expectation_type", "column", "description")}
    suite = {"failed": 1, "evaluated": 2, "suite": HOSTILE, "failures": [failure | {"sample": []}]}
    inputs = FailureInputs(
        run_id="r",
        stage="validate",
        error=f"ValueError: {HOSTILE}",
        stage_seconds={HOSTILE: 1.0},
        validation=suite,
        data_docs='docs" onclick="alert(1)',
    )
    page, hostile = render_failure_report(inputs), escape(HOSTILE)
    assert "<script" not in page and '" onclick' not in page
    assert f"<pre>ValueError: {hostile}</pre>" in page
    assert f"<td>{hostile}</td><td>{hostile}</td><td>—</td><td>{hostile}</td>" in page
    assert f"suite <code>{hostile}</code> failed" in page and f"<td>{hostile}</td><td>1.00" in page
    assert 'href="docs&#34; onclick=&#34;alert(1)"' in page
    assert "<script" not in render_failure_markdown(inputs)


def test_every_template_ships_with_the_package():
    """The templates are read at run time, so an installed wheel must contain each of them."""
    root = Path(__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["houseprice.tasks.reporting"]
    templates = sorted((root / "tasks" / "reporting" / "templates").iterdir())
    assert templates
    for template in templates:
        relative = template.relative_to(template.parent.parent)
        assert any(relative.match(pattern) for pattern in patterns), relative


def test_equation_in_price_units(full):
    _, page = full
    assert "Sale_Price = " in page
    assert "[Kind=" in page  # categorical indicators are named as such
    assert "not price units" not in page


def test_log_target_says_coefficients_are_not_price_units(log_page):
    assert "log(Sale_Price) = " in log_page
    assert "not price units" in log_page
    assert re.search(r"prices estimate the median .*smearing factor 1\.\d{4} times it", log_page)


def test_optional_sections_render_only_when_given(full, log_page):
    _, page = full
    assert 'id="promotion"' in page and "not promoted" in page
    assert "<th>challenger (test rows)</th>" in page and "<td>RMSE</td><td>5,100</td>" in page
    assert 'id="drift"' in page and "1 of 2 compared features drifted past" in page
    assert "CHECK: drift above threshold in Kind" in page  # drift changes the verdict
    assert 'id="promotion"' not in log_page and 'id="drift"' not in log_page
    assert "PASS:" in log_page


def test_drift_counts_compared_features_and_lists_the_others_with_reasons():
    reason = "not in the champion's training rows"
    drift = DriftReport(
        checked=True,
        threshold=0.2,
        note="40 new rows against 40",
        scores={"Year_Built": 0.05, "Kind": 0.35},
        not_comparable={"Lot_Area": reason},
    )
    page = render_report(_inputs(drift=drift))
    assert "1 of 2 compared features drifted past the PSI threshold 0.2: Kind (PSI 0.350" in page
    assert f"<li>Lot_Area: {escape(reason)}</li>" in page
    assert "CHECK: drift above threshold in Kind." in page  # an uncompared feature is no drift


def test_markdown_summary_has_verdict_and_tables(full):
    inputs, _ = full
    summary = render_markdown_summary(replace(inputs, drift=None))
    assert summary.startswith("**PASS:")
    assert "| model | split | RMSE |" in summary
    assert summary.count("| PyTorch | ") == 4  # test, validation, cross-validated; its check
    assert "| mean predictor (baseline) | test |" in summary
    assert "| least squares (reference) | +" in summary and "| TensorFlow | +" in summary
    assert "| trainer | test RMSE vs reference |" in summary


def test_markdown_summary_gives_the_promotion_interval_and_drift(full):
    inputs, _ = full
    comparison = {"relative_change": -0.021, "ci_low": -0.034, "ci_high": -0.008}
    comparison |= {"confidence": 0.95, "samples": 2000}
    figures = {"comparison": comparison}
    promotion = replace(PROMOTION, promoted=True, reason="beats champion", figures=figures)
    summary = render_markdown_summary(replace(inputs, promotion=promotion))
    assert "**Promotion: promoted** (PyTorch): beats champion" in summary
    assert "-2.10%, 95% interval -3.40% .. -0.80% (paired bootstrap, 2,000 resamples)" in summary
    assert "above threshold in Kind**; 2 features compared, largest Kind 0.350" in summary


def test_markdown_summary_says_when_drift_was_not_checked(full):
    inputs, _ = full
    drift = DriftReport(checked=False, threshold=0.25, note="no champion to compare with")
    summary = render_markdown_summary(replace(inputs, drift=drift))
    assert "**Drift: not checked**: no champion to compare with" in summary


def test_table_artifact_rows_are_rounded_for_reading(full):
    inputs, _ = full
    exact, rounded = metrics_table_rows(inputs.evaluation), rounded_table_rows(inputs.evaluation)
    for before, after in zip(exact, rounded, strict=True):
        assert after["rmse"] == round(before["rmse"]) and after["mae"] == round(before["mae"])
        assert after["r2"] == round(before["r2"], 4)
        assert after["mape_pct"] == round(before["mape_pct"], 2)
        assert (before["rmse_gap_pct"] is None) == (after["rmse_gap_pct"] is None)


def test_verdict_from_the_recorded_figures_matches_the_page(full):
    inputs, page = full
    checks, drifted = inputs.evaluation.reference_check, inputs.drift.drifted
    ok, verdict = run_verdict(inputs.validation, checks, drifted=drifted)
    assert not ok and verdict.startswith("CHECK: drift above threshold in Kind")
    assert html.escape(verdict) in page


class _FailedSuite(RuntimeError):
    """Stands in for DataValidationError: the report reads its .report duck-typed."""

    def __init__(self, docs: Path) -> None:
        super().__init__("data validation failed: 1 of 3 expectations failed")
        failure = {
            "expectation_type": "expect_column_values_to_be_between",
            "column": "price",
            "sample": [-5.0, -12.5],
            "description": "2 of 60 values outside (0.0, None], e.g. [-5.0, -12.5]",
        }
        payload = {"failed": 1, "evaluated": 3, "suite": HOSTILE, "failures": [failure]}
        self.report = SimpleNamespace(to_dict=lambda: {**payload, "docs_index": str(docs)})


def test_failure_report_names_the_stage_and_each_failed_expectation(tmp_path):
    run = layout.RunPaths("20260101T000000Z-abcdef", tmp_path / "run")
    error = _FailedSuite(run.data_docs / "index.html")
    inputs = FailureInputs.from_error(run, "validate", error, {"ingest": 0.5, "validate": 2.0})
    page = render_failure_report(inputs)
    assert "FAILED in stage validate: _FailedSuite: data validation failed" in page
    assert "<td>expect_column_values_to_be_between</td><td>price</td><td>-5, -12.5</td>" in page
    assert 'href="validation/data_docs/index.html"' in page  # relative: the folder can move
    assert HOSTILE not in page and html.escape(HOSTILE) in page
    markdown = render_failure_markdown(inputs)
    assert markdown.startswith("**FAILED in stage validate: _FailedSuite: data validation")
    assert "| expect_column_values_to_be_between | price | -5, -12.5 |" in markdown


def test_failure_report_of_another_error_shows_the_error():
    run = layout.RunPaths("r", Path("/nowhere/r"))
    inputs = FailureInputs.from_error(run, "ingest", FileNotFoundError("no file x.csv"), {})
    assert inputs.validation is None
    assert "FileNotFoundError: no file x.csv" in render_failure_report(inputs)
    assert "```\nFileNotFoundError: no file x.csv\n```" in render_failure_markdown(inputs)


def test_verdict_names_a_trainer_off_the_reference():
    summary = render_markdown_summary(_inputs(tf_perturbation=0.05))
    assert summary.startswith("**CHECK: TensorFlow test RMSE is ")
    assert "PyTorch test RMSE" not in summary
    assert "| TensorFlow |" in summary and "| NO |" in summary


def test_metrics_table_rows(full):
    inputs, _ = full
    rows = metrics_table_rows(inputs.evaluation)
    assert [(r["model"], r["split"]) for r in rows] == [
        (m, s)
        for m in (REFERENCE, "torch", "tensorflow")
        for s in ("test", "validation", "cross-validated")  # 40 rows: too few to judge by test
    ]
    assert rows[0]["rmse_gap_pct"] is None
    torch_test = inputs.evaluation.models["torch"].test
    assert rows[3]["rmse"] == torch_test.rmse and rows[3]["mape_pct"] == 100 * torch_test.mape


def test_missing_reference_is_refused(full):
    inputs, _ = full
    models = {k: v for k, v in inputs.evaluation.models.items() if k != REFERENCE}
    broken = replace(inputs, evaluation=replace(inputs.evaluation, models=models))
    with pytest.raises(ValueError, match="least-squares reference 'ols'"):
        render_report(broken)
    with pytest.raises(ValueError, match="least-squares reference"):
        render_markdown_summary(broken)


def test_collect_reads_the_flows_stage_outputs(full, tmp_path):
    inputs, _ = full
    snapshot = datasets.Snapshot("cd" * 32, tmp_path / "snapshot.parquet", 40, 4)
    ingested = SimpleNamespace(frame=_frame(), snapshot=snapshot, source="memory")
    validation = SimpleNamespace(
        success=False, evaluated=12, successful=11, failed=1, failures=["x"]
    )
    collected = ReportInputs.collect(
        layout.RunPaths("r1", tmp_path), _config(), ingested, validation,
        inputs.features, inputs.results, inputs.evaluation, {"ingest": 1.0},
    )  # fmt: skip
    assert collected.validation == vars(validation)
    assert (collected.snapshot_hash, collected.source) == ("cd" * 32, "memory")
    assert collected.data.rows == 40 and sum(collected.data.split_sizes.values()) == 40
    assert collected.devices == {
        "torch": "<b>Test CPU</b> (cpu)",
        "tensorflow": "<b>Test CPU</b> (cpu)",
    }
    summary = render_markdown_summary(collected)
    assert summary.startswith("**CHECK: data validation failed (1 of 12 expectations)")


@pytest.mark.slow
def test_write_report_writes_page_and_artifacts(full, tmp_path, prefect_harness):
    inputs, _ = full
    run = layout.create_run(tmp_path, inputs.run_id)

    @flow
    def report_flow() -> Path:
        return write_report(inputs, run)

    path = report_flow()
    summary = Artifact.get(REPORT_ARTIFACT_KEY)
    table = Artifact.get(METRICS_ARTIFACT_KEY)
    assert path == run.report and path.read_text().count(IMG) == PLOTS
    assert summary.data.startswith("**CHECK: drift above threshold in Kind")
    assert "**Promotion: not promoted** (PyTorch)" in summary.data
    assert str(path) in summary.data
    rows = json.loads(table.data)
    assert rows[0]["model"] == REFERENCE and rows[0]["rmse"] == round(rows[0]["rmse"])
    link = Artifact.get(REPORT_LINK_ARTIFACT_KEY)
    assert path.resolve().as_uri() in link.data


@pytest.mark.slow
def test_failed_run_still_writes_its_report_and_artifacts(tmp_path, prefect_harness):
    run = layout.create_run(tmp_path, "20260101T000000Z-fa11ed")
    error = _FailedSuite(run.data_docs / "index.html")

    @flow
    def failing_flow() -> Path:
        return write_failure_report(run, "validate", error, {"validate": 1.0})

    path = failing_flow()
    assert path == run.report and "Failed expectations" in path.read_text()
    summary = Artifact.get(REPORT_ARTIFACT_KEY)
    assert summary.data.startswith("**FAILED in stage validate")
    assert "| price |" in summary.data
    assert path.resolve().as_uri() in Artifact.get(REPORT_LINK_ARTIFACT_KEY).data


def test_regression_table_reads_like_regression_output(full, log_page):
    inputs, page = full
    assert 'id="regression"' in page and "Regression table (least squares)" in page
    for header in ("std. error", "HC0 s.e.", "HC1 s.e.", "95% interval"):
        assert f"<th>{header}</th>" in page
    fit = inputs.evaluation.regression.fit
    assert f"n = {fit['n']:,} (the training rows)" in page and "adjusted R²" in page
    assert "<code>Year_Built</code>" in page and "***" in page  # a strong effect gets its stars
    assert "semi-elasticities" in log_page and "elasticity" in log_page


def test_scatter_panels_draw_at_most_the_cap_however_many_test_rows():
    from houseprice.tasks.plots import MAX_SCATTER_POINTS, scatter_rows

    assert scatter_rows(500) == slice(None, None, 1)  # small data: every row drawn
    for rows in (MAX_SCATTER_POINTS, MAX_SCATTER_POINTS + 1, 1_000_000, 7_500_001):
        drawn = len(range(rows)[scatter_rows(rows)])
        assert MAX_SCATTER_POINTS // 2 <= drawn <= MAX_SCATTER_POINTS


# ---------------------------------------------------------------------------------------------
# A report a person reads: sentences instead of keys, one model in full, residual diagnostics.

GATE_FIGURES = {  # what gate_promotion records against a champion (tasks/promote.py)
    "basis": "test",
    "challenger_test": {"rmse": 5100.0, "mae": 4000.0, "r2": 0.95, "mape": 0.031},
    "comparison": {
        "challenger_rmse": 5100.0,
        "champion_rmse": 5210.0,
        "relative_change": -0.0211,
        "ci_low": -0.034,
        "ci_high": -0.008,
        "confidence": 0.95,
        "samples": 2000,
    },
    "champion_test": {"rmse": 5210.0, "mae": 4100.0, "r2": 0.948, "mape": 0.033},
}
BEATS = PromotionDecision(
    True,
    "beats champion c1: RMSE change -2.11%; see `houseprice history`",
    "torch",
    "c1",
    GATE_FIGURES,
)
FIRST = PromotionDecision(
    True,
    "first champion: passes the absolute limits (on 7 test rows)",
    "torch",
    None,
    {"basis": "test", "challenger_test": GATE_FIGURES["challenger_test"]},
)
NOT_CHECKED = DriftReport(checked=False, threshold=0.25, note="not checked: no champion yet")


@pytest.fixture(scope="module")
def against_champion() -> str:
    """A page whose gate compared the challenger with a champion, without plots."""
    inputs = _inputs(promotion=BEATS, drift=DRIFT)
    return render_page(build_report_view(inputs, plots=False))


def test_breusch_pagan_matches_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    from statsmodels.stats.diagnostic import het_breuschpagan

    from houseprice.tasks.reporting.diagnostics import breusch_pagan, reference_residuals

    report_inputs = _inputs(frame=_frame(rows=300, spread_grows=True))
    residuals = reference_residuals(report_inputs.evaluation, report_inputs.features)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 4))
    cases = [
        (residuals.residuals, residuals.design),  # the report's own: heteroskedastic
        (rng.normal(size=500), x),  # homoskedastic
        (rng.normal(size=500) * (1 + np.abs(x[:, 1])), x),
    ]
    for resid, design in cases:
        ours = breusch_pagan(resid, design)
        lm, p, f, f_p = het_breuschpagan(resid, sm.add_constant(design))
        assert ours.df == design.shape[1] and ours.rows == len(resid)
        for mine, theirs in zip((ours.lm, ours.p, ours.f, ours.f_p), (lm, p, f, f_p), strict=True):
            assert mine == pytest.approx(theirs, rel=1e-8, abs=1e-300)


def test_breusch_pagan_is_undefined_without_features_or_spread():
    from houseprice.tasks.reporting.diagnostics import breusch_pagan

    assert breusch_pagan(np.ones(10), np.arange(10.0)[:, None]) is None  # no spread to explain
    assert breusch_pagan(np.arange(10.0), np.empty((10, 0))) is None  # no feature
    design = np.random.default_rng(0).normal(size=(3, 2))
    assert breusch_pagan(np.arange(3.0), design) is None  # no more rows than parameters


def test_heteroskedastic_residuals_recommend_robust_errors_or_a_log_target():
    frame = _frame(rows=300, spread_grows=True)
    view = build_report_view(_inputs(frame=frame))
    page = render_page(view)
    caption = view.figures[-1].caption  # under the residual plots that show it
    assert caption.startswith("The residuals' spread is not constant") and IMG in page
    assert f'{escape(caption)} <a href="#regression">What to do about it</a>' in page
    aside = page.split("<h3>Heteroskedasticity</h3>")[1].split("</aside>")[0]
    assert "Breusch–Pagan test" in aside and "heteroskedasticity, p &lt; 0.05" in aside
    assert "read the HC1 column" in aside and "<code>features.log_target: true</code>" in aside
    fired = BreuschPagan(lm=30.0, p=1e-6, df=3, f=11.0, f_p=1e-6, rows=300)
    logged = heteroskedasticity_view(fired, "training", log_target=True)
    assert logged.fired and "read the HC1 column" in logged.text
    assert "log_target" not in logged.text  # already modelled as log


def test_homoskedastic_residuals_say_so(full):
    _, page = full
    assert "<figcaption" not in page
    assert "No evidence that the residual spread changes with the features" in page
    assert "read the HC1 column" not in page


def test_page_has_one_equation_and_one_set_of_fit_plots(full):
    _, page = full
    assert page.count('class="equation"') == 1
    assert '<h3>PyTorch</h3><p class="equation">Sale_Price = ' in page
    assert page.count("fit and residuals") == 1 and page.count(IMG) == PLOTS
    assert "QQ" in page


def test_promotion_is_told_in_sentences_not_keys(against_champion):
    page = against_champion
    for key in ("ci_low", "ci_high", "challenger_test", "champion_test", "comparison."):
        assert key not in page
    assert "relative_change" not in page and "drifted []" not in page
    assert (
        "The challenger&#39;s test RMSE is 5,100 against the champion&#39;s 5,210 (run c1), "
        "a change of -2.11%." in page
    )
    assert (
        "The 95% paired-bootstrap interval of the change (2,000 resamples) runs from -3.40% "
        "to -0.80%, so the challenger is better beyond noise." in page
    )
    assert "<th>champion (same test rows)</th>" in page


def test_backticks_in_reasons_become_code_not_literal_backticks(against_champion):
    assert "see <code>houseprice history</code>" in against_champion
    assert "`" not in against_champion


def test_mape_is_in_percent_everywhere_and_a_fraction_in_metrics_json(against_champion):
    page = against_champion
    labels = re.findall(r"<t[hd]>([^<]*MAPE[^<]*)</t[hd]>", page)  # every table's MAPE label
    assert len(labels) == 3 and all(label.endswith(("%", "(points)")) for label in labels)
    assert "<td>MAPE %</td><td>3.10</td><td>3.30</td>" in page  # the gate recorded 0.031, 0.033
    inputs = _inputs()  # no gate: the selected model is the lowest validation RMSE's
    test = inputs.evaluation.models["tensorflow"].test
    summary = render_markdown_summary(inputs)
    assert f"| TensorFlow | test | {test.rmse:,.0f} | {test.mae:,.0f} | {test.r2:.4f} | " in summary
    assert f"| {test.r2:.4f} | {100 * test.mape:.2f} |" in summary
    payload = inputs.evaluation.metrics_payload()  # metrics.json: the documented fraction
    assert payload["tensorflow"]["test"]["mape"] == test.mape < 1


def test_contents_link_to_every_section_and_every_link_resolves(full, against_champion):
    for page in (full[1], against_champion):
        targets = re.findall(r'href="#([^"]+)"', page)
        ids = set(re.findall(r'id="([^"]+)"', page))
        assert targets and set(targets) <= ids
        assert {"metrics", "regression", "equation", "drift", "promotion"} <= set(targets)


def test_a_run_without_a_champion_says_so_and_has_no_empty_table():
    page = render_page(build_report_view(_inputs(promotion=FIRST, drift=NOT_CHECKED), plots=False))
    assert not re.search(r"<tbody>\s*</tbody>", page)
    promotion = page.split('id="promotion"')[1].split("</section>")[0]
    drift = page.split('id="drift"')[1].split("</section>")[0]
    assert "There is no champion yet, so there was nothing to compare with" in promotion
    assert "champion (same test rows)" not in promotion
    assert "Drift was not checked: no champion yet." in drift  # said once
    assert "<table" not in drift


def test_drift_says_which_columns_drifted_and_by_how_much(full):
    _, page = full
    drift = page.split('id="drift"')[1].split("</section>")[0]
    assert "1 of 2 compared features drifted past the PSI threshold 0.2: " in drift
    assert "Kind (PSI 0.350, major shift)" in drift
    assert "<td>Year_Built</td><td>0.050</td><td>—</td><td>stable</td>" in drift
    calm = DriftReport(True, 0.25, "", scores={"Kind": 0.12, "Year_Built": 0.01})
    page = render_page(build_report_view(_inputs(drift=calm), plots=False))
    assert "No drift: all 2 compared features have a PSI at or below the threshold 0.25" in page


def test_metrics_table_scores_the_mean_predictor_as_baseline(full):
    inputs, page = full
    training_mean = inputs.features.preprocessor.inverse_target(
        np.mean(inputs.features.training.y_train)
    )
    actual = inputs.evaluation.y_test
    rmse = float(np.sqrt(np.mean((actual - training_mean) ** 2)))
    assert f"<td>mean predictor (baseline)</td><td>test</td><td>{rmse:,.0f}</td>" in page
    assert f"training rows&#39; mean, {float(training_mean):,.0f}" in page


def test_data_docs_are_linked_relative_to_the_report(full, tmp_path):
    inputs, _ = full
    run = layout.RunPaths("r1", tmp_path)
    snapshot = datasets.Snapshot("cd" * 32, tmp_path / "snapshot.parquet", 40, 4)
    ingested = SimpleNamespace(frame=_frame(), snapshot=snapshot, source="memory")
    validation = SimpleNamespace(
        success=True, evaluated=3, successful=3, failed=0, suite="s",
        docs_index=run.data_docs / "index.html",
    )  # fmt: skip
    collected = ReportInputs.collect(
        run, _config(), ingested, validation, inputs.features, inputs.results,
        inputs.evaluation, {"ingest": 1.0},
    )  # fmt: skip
    page = render_page(build_report_view(collected, plots=False))
    assert '<a href="validation/data_docs/index.html">Great Expectations Data Docs</a>' in page
    assert "All 3 expectations of suite s passed." in page


def test_check_verdict_links_each_problem_to_the_section_that_shows_it():
    page = render_page(build_report_view(_inputs(tf_perturbation=0.05, drift=DRIFT), plots=False))
    assert "CHECK: TensorFlow test RMSE is " in page
    where = page.split("Where to look: ")[1].split("</p>")[0]
    assert re.findall(r'href="#([^"]+)"', where) == ["drift", "metrics"]
    assert "Where to look" not in render_page(build_report_view(_inputs(), plots=False))


def test_failure_report_says_what_it_means_and_what_to_do(tmp_path):
    run = layout.RunPaths("20260101T000000Z-abcdef", tmp_path / "run")
    failed = FailureInputs.from_error(run, "validate", _FailedSuite(run.data_docs / "x"), {})
    page, markdown = render_failure_report(failed), render_failure_markdown(failed)
    assert "a failed run is never promoted, so the champion" in page
    assert "Fix or drop the rows the table names and run <code>houseprice retrain</code>" in page
    assert "What to do: The data did not meet its expectation suite" in markdown
    assert page.index("Failed expectations") < page.index("<h2>Error</h2>")
    other = FailureInputs.from_error(run, "train", RuntimeError("out of memory"), {})
    assert "Fix what the error below names" in render_failure_report(other)


def test_a_rerun_on_the_same_rows_reads_as_the_same_score_not_noise():
    from houseprice.tasks.reporting.comparisons import promotion_view

    same = GATE_FIGURES["comparison"] | {"relative_change": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    view = promotion_view(replace(BEATS, promoted=False, figures={"comparison": same}))
    assert view.sentences[-1].endswith("so the two models score the same on these rows.")
    assert promotion_view(BEATS).sentences[-1].endswith("so the challenger is better beyond noise.")


def test_drift_lists_the_largest_and_every_unstable_feature_and_counts_the_stable_rest():
    from houseprice.tasks.reporting.comparisons import drift_view

    scores = {f"f{i}": 0.001 * i for i in range(12)} | {"moved": 0.15, "jumped": 0.9}
    view = drift_view(DriftReport(True, 0.25, "", scores=scores))
    assert [row.feature for row in view.rows] == ["jumped", "moved", "f11", "f10", "f9"]
    assert [row.meaning for row in view.rows[:3]] == ["major shift", "moderate shift", "stable"]
    assert view.stable_left_out == 9
    page = render_page(
        build_report_view(_inputs(drift=DriftReport(True, 0.25, "", scores=scores)), plots=False)
    )
    assert "The other 9 compared features are stable (PSI below 0.1)." in page


def test_with_no_trainer_on_the_reference_the_page_shows_the_reference_in_full():
    inputs = _inputs()
    checks = {
        name: check | {"within_tolerance": False}
        for name, check in inputs.evaluation.reference_check.items()
    }
    off = replace(inputs, evaluation=replace(inputs.evaluation, reference_check=checks))
    page = render_page(build_report_view(off, plots=False))
    assert "No trainer matched the least-squares reference" in page
    assert '<h3>least squares (reference)</h3><p class="equation">' in page
    differences = page.split("<h3>The other models</h3>")[1].split("</table>")[0]
    assert "<td>PyTorch</td>" in differences and "<td>TensorFlow</td>" in differences
    assert differences.count("<td>NO</td>") == 2
