"""Evaluate: metrics, coefficients in price units, and the least-squares reference check."""

import numpy as np
import pytest

from houseprice.config import EvaluationConfig
from houseprice.tasks.evaluate import (
    LinearModel,
    compare_predictions,
    evaluate_models,
    fit_least_squares,
    regression_metrics,
)
from houseprice.tasks.features import build_feature_set
from tests.conftest import make_houses, small_config
from tests.fakes import train_result


def _result(framework: str, model: LinearModel):
    return train_result(framework, model.weights, model.bias)


def test_regression_metrics_by_hand():
    actual = np.array([100.0, 200.0, 300.0])
    metrics = regression_metrics(actual, np.array([110.0, 190.0, 300.0]))
    assert metrics.rmse == pytest.approx(np.sqrt(200 / 3))
    assert metrics.mae == pytest.approx(20 / 3)
    assert metrics.r2 == pytest.approx(1 - 200 / 20000)
    assert metrics.mape == pytest.approx((0.1 + 0.05) / 3)


def test_least_squares_recovers_an_exact_line():
    x = np.arange(10.0).reshape(-1, 1)
    model = fit_least_squares(x, 3 * x[:, 0] - 2)
    assert model.weights[0] == pytest.approx(3)
    assert model.bias == pytest.approx(-2)


def test_coefficients_are_in_price_units(tmp_path):
    features = build_feature_set(make_houses(rows=300), small_config(tmp_path))
    ols = fit_least_squares(features.training.x_train, features.training.y_train)
    evaluation = evaluate_models(features, [_result("torch", ols)], EvaluationConfig())
    coefficients = evaluation.models["torch"].coefficients
    # make_houses: price = 20000 + 95*area + 300*(year-1950) + hood premium + noise(sd 2000)
    assert coefficients["area"] == pytest.approx(95, rel=0.02)
    assert coefficients["year"] == pytest.approx(300, rel=0.05)
    # Levels are relative to the most frequent training level, the reference.
    premium = {"North": 0.0, "South": 15000.0, "East": -8000.0}
    reference = features.preprocessor.reference_levels["hood"]
    for level in set(premium) - {reference}:
        expected = premium[level] - premium[reference]
        assert coefficients[f"hood={level}"] == pytest.approx(expected, abs=1000)
    expected_intercept = 20000 + premium[reference] - 300 * 1950
    assert coefficients["intercept"] == pytest.approx(expected_intercept, abs=15000)
    assert evaluation.models["torch"].test.r2 > 0.95


def test_reference_check_flags_a_model_off_the_optimum(tmp_path):
    features = build_feature_set(make_houses(rows=300), small_config(tmp_path))
    ols = fit_least_squares(features.training.x_train, features.training.y_train)
    worse = LinearModel(ols.weights * 0.8, ols.bias)
    evaluation = evaluate_models(
        features, [_result("torch", ols), _result("tensorflow", worse)], EvaluationConfig()
    )
    assert evaluation.reference_check["torch"]["within_tolerance"]
    assert evaluation.reference_check["torch"]["train_mse_ratio"] == pytest.approx(1)
    assert not evaluation.reference_check["tensorflow"]["within_tolerance"]
    (pair,) = evaluation.agreements  # two trainers: one pair
    assert (pair.first, pair.second) == ("torch", "tensorflow") and pair.max_abs_diff > 0
    payload = evaluation.metrics_payload()
    assert set(payload["ols"]["test"]) == {"rmse", "mae", "r2", "mape"}


def test_log_target_reports_log_scale_coefficients_equal_to_a_direct_log_fit(tmp_path):
    config = small_config(tmp_path, features={"log_target": True})
    features = build_feature_set(make_houses(rows=60), config)
    evaluation = evaluate_models(features, [], EvaluationConfig())
    coefficients = evaluation.models["ols"].coefficients
    train = features.split.train
    design = np.column_stack(
        [np.ones(len(train)), train.area, train.year, train.hood == "East", train.hood == "South"]
    ).astype(float)
    direct, *_ = np.linalg.lstsq(design, np.log(train.price.to_numpy()), rcond=None)
    names = ["intercept", "area", "year", "hood=East", "hood=South"]
    assert [coefficients[name] for name in names] == pytest.approx(direct, rel=1e-8)
    assert "semi-elasticities" in evaluation.coefficient_units
    assert evaluation.metrics_payload()["ols"]["coefficients"] == coefficients


def test_compare_predictions():
    agreement = compare_predictions(np.array([100.0, 200.0]), np.array([101.0, 199.0]))
    assert agreement == {"max_abs_diff": 1.0, "rms_diff": 1.0, "relative_rms_diff": 1 / 150}


def test_a_ridge_trainer_is_checked_against_the_exact_ridge_optimum(tmp_path):
    features = build_feature_set(make_houses(rows=300), small_config(tmp_path))
    x, y = features.training.x_train, features.training.y_train
    ridge = fit_least_squares(x, y, l2=0.5)
    # The ridge optimum zeroes the gradient of MSE + l2 |w|^2 (bias unpenalized).
    residual = x @ ridge.weights + ridge.bias - y
    gradient = 2 * x.T @ residual / len(x) + 2 * 0.5 * ridge.weights
    np.testing.assert_allclose(gradient, 0, atol=1e-10)
    ols = fit_least_squares(x, y)
    results = [_result("torch", ridge), _result("tensorflow", ols)]
    evaluation = evaluate_models(
        features, results, EvaluationConfig(), {"torch": 0.5, "tensorflow": 0.5}
    )
    assert evaluation.reference_check["torch"]["within_tolerance"]
    assert evaluation.reference_check["torch"]["reference"] == "ridge l2=0.5"
    assert not evaluation.reference_check["tensorflow"]["within_tolerance"]


def test_a_constant_target_does_not_divide_by_zero(tmp_path):
    frame = make_houses(rows=60).assign(price=200000.0)
    features = build_feature_set(frame, small_config(tmp_path))
    ols = fit_least_squares(features.training.x_train, features.training.y_train)
    evaluation = evaluate_models(features, [_result("torch", ols)], EvaluationConfig())
    assert evaluation.reference_check["torch"]["test_rmse_ratio"] == 1.0


def test_a_one_row_part_is_written_as_strict_json_saying_why_r2_is_null(tmp_path):
    from houseprice import storage
    from tests.conftest import strict_json_problems

    split = {"test_fraction": 0.05, "validation_fraction": 0.05}
    features = build_feature_set(make_houses(rows=20), small_config(tmp_path, split=split))
    assert len(features.split.test) == 1
    ols = fit_least_squares(features.training.x_train, features.training.y_train)
    evaluation = evaluate_models(features, [_result("torch", ols)], EvaluationConfig())
    storage.write_json_atomic(tmp_path / "metrics.json", evaluation.metrics_payload())
    assert strict_json_problems(tmp_path) == []
    written = storage.read_json(tmp_path / "metrics.json")
    assert written["ols"]["test"]["r2"] is None
    assert "1 row(s) scored all have the same price" in written["ols"]["test"]["null_reasons"]["r2"]
