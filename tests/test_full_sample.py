"""`houseprice retrain --all-rows` end to end: the regression table statsmodels would print."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from houseprice import layout, registry, storage
from houseprice.cli import build_parser, config_from_arguments
from tests.test_statistics import (
    TRUE_COEFFICIENTS,
    assert_table_matches_statsmodels,
    heteroskedastic_houses,
    statsmodels_fit,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def all_rows_run(tmp_path_factory, prefect_harness):
    """One flow run with --all-rows on 300 generated houses with heteroskedastic noise."""
    from houseprice.flows.retrain import retrain

    root = tmp_path_factory.mktemp("all-rows")
    frame = heteroskedastic_houses()
    frame.to_csv(root / "houses.csv", index=False)
    arguments = [
        "retrain",
        "--source",
        str(root / "houses.csv"),
        "--target",
        "price",
        "--features",
        "sqft,beds,age,hood",
        "--categorical",
        "hood",
        "--all-rows",
        "--data-dir",
        str(root / "data"),
        "--artifacts-dir",
        str(root / "artifacts"),
    ]
    config = config_from_arguments(build_parser().parse_args(arguments))
    assert config.split.full_sample
    folder = Path(retrain(config))
    return frame, config, layout.RunPaths(folder.name, folder)


def test_all_rows_reproduces_the_statsmodels_table(all_rows_run):
    frame, _, run = all_rows_run
    metrics = storage.read_json(run.metrics)
    table, fit = metrics["ols"]["table"], metrics["ols"]["fit"]
    terms = [row["term"] for row in table]
    assert terms[0] == "intercept" and set(terms[1:4]) == {"sqft", "beds", "age"}
    columns = [
        (frame.hood == term.split("=", 1)[1]).to_numpy(float)
        if term.startswith("hood=")
        else frame[term].to_numpy()
        for term in terms[1:]
    ]
    reference = statsmodels_fit(np.column_stack(columns), frame.price.to_numpy())
    assert_table_matches_statsmodels(table, fit, reference)
    assert fit["n"] == len(frame)
    for row in table:  # the known slopes lie within the 99.9% band of the robust errors
        if row["term"] in TRUE_COEFFICIENTS and row["term"] != "intercept":
            assert abs(row["coef"] - TRUE_COEFFICIENTS[row["term"]]) < 3.3 * row["se_hc1"]


def test_all_rows_labels_in_sample_figures_and_judges_by_cross_validation(all_rows_run):
    _, _, run = all_rows_run
    metrics = storage.read_json(run.metrics)
    assert metrics["evaluation"]["basis"] == "cross-validation"
    assert metrics["evaluation"]["test_rows"] == 0
    for name in ("ols", "torch", "tensorflow"):
        assert (
            metrics[name]["test"] is None and "full-sample" in metrics[name]["null_reasons"]["test"]
        )
        assert metrics[name]["in_sample"]["r2"] == pytest.approx(metrics["ols"]["fit"]["r2"])
        assert metrics[name]["cross_validated"]["r2"] < metrics[name]["in_sample"]["r2"]
    for framework in ("torch", "tensorflow"):  # each trainer's coefficients beside the reference
        trained = metrics[framework]["coefficients"]
        for row in metrics["ols"]["table"]:
            assert trained[row["term"]] == pytest.approx(row["coef"], rel=1e-6, abs=1e-6)
        assert metrics["reference_check"][framework]["rmse_rows"] == "training (in-sample)"
    page = run.report.read_text()
    assert "Regression table (least squares)" in page and "HC1 s.e." in page
    assert "In-sample figures are measured on the rows the model was fitted to" in page
    assert "fit and residuals (in-sample rows)" in page


def test_all_rows_run_becomes_the_first_champion_on_its_cross_validated_figures(all_rows_run):
    _, config, run = all_rows_run
    promotion = storage.read_json(run.metrics)["promotion"]
    assert promotion["promoted"], promotion["reason"]
    assert "cross-validation" in promotion["reason"]
    assert registry.read_champion(config.paths.artifacts_dir).run_id == run.run_id
