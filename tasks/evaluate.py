"""Evaluate: score each trained model and the exact least-squares reference in price units."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice.config import EvaluationConfig, TrainingConfig
from houseprice.preprocessing import Preprocessor
from tasks.features import FeatureSet
from tasks.trainers.common import TrainResult

REFERENCE = "ols"


class LinearModel(NamedTuple):
    """y = x @ weights + bias in the scaled space; what every model reduces to."""

    weights: np.ndarray
    bias: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predict in the scaled target space."""
        return x @ self.weights + self.bias


class RegressionMetrics(NamedTuple):
    """Errors in price units; mape is a fraction (0.1 = 10%)."""

    rmse: float
    mae: float
    r2: float
    mape: float


@dataclass
class ModelEvaluation:
    """One model's scores, coefficients and test predictions."""

    name: str
    model: LinearModel
    test: RegressionMetrics
    validation: RegressionMetrics
    train_mse_scaled: float  # the cost the trainers minimize; the optimum is the reference's
    coefficients: dict[str, float] | None  # original units; None when the target is transformed
    test_predictions: np.ndarray  # price units


@dataclass
class Evaluation:
    """All models' evaluations plus how they compare with each other and with the reference."""

    models: dict[str, ModelEvaluation]
    y_test: np.ndarray
    agreement: dict[str, float]
    reference_check: dict[str, dict[str, Any]]

    def metrics_payload(self) -> dict[str, Any]:
        """The metrics.json body: per model test/validation metrics and coefficients."""
        payload: dict[str, Any] = {
            name: {
                "test": evaluation.test._asdict(),
                "validation": evaluation.validation._asdict(),
                "train_mse_scaled": evaluation.train_mse_scaled,
                "coefficients": evaluation.coefficients,
            }
            for name, evaluation in self.models.items()
        }
        payload["agreement"] = self.agreement
        payload["reference_check"] = self.reference_check
        return payload


def fit_least_squares(x: np.ndarray, y: np.ndarray, l2: float = 0.0) -> LinearModel:
    """The exact minimizer of MSE + l2 * |w|^2 (bias unpenalized), by numpy's SVD least squares.

    The ridge penalty is written as extra rows sqrt(n * l2) * I with target 0, so the same
    lstsq call gives the trainers' exact optimum whatever their l2 setting.
    """
    design = np.hstack([x, np.ones((len(x), 1))])
    target = y
    if l2 > 0:
        penalty = np.hstack([np.sqrt(len(x) * l2) * np.eye(x.shape[1]), np.zeros((x.shape[1], 1))])
        design, target = np.vstack([design, penalty]), np.concatenate([y, np.zeros(x.shape[1])])
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return LinearModel(solution[:-1], float(solution[-1]))


def _ratio(value: float, reference: float) -> float:
    """value / reference, with 0/0 = 1 (both exact) instead of a ZeroDivisionError."""
    if reference == 0:
        return 1.0 if value == 0 else float("inf")
    return value / reference


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> RegressionMetrics:
    """RMSE, MAE, R² and MAPE of predictions against actual values."""
    errors = predicted - actual
    total = np.sum((actual - actual.mean()) ** 2)
    return RegressionMetrics(
        rmse=float(np.sqrt(np.mean(errors**2))),
        mae=float(np.mean(np.abs(errors))),
        r2=float(1 - np.sum(errors**2) / total) if total > 0 else float("nan"),
        mape=float(np.mean(np.abs(errors) / np.abs(actual))),
    )


def coefficients_in_original_units(
    model: LinearModel, preprocessor: Preprocessor
) -> dict[str, float] | None:
    """Price change per unit of each raw feature, plus the intercept (None for a log target)."""
    if preprocessor.log_target:
        return None
    scales, means = np.asarray(preprocessor.scales), np.asarray(preprocessor.means)
    # y = t_mean + t_scale * (sum_j w_j (x_j - m_j) / s_j + b)
    slopes = preprocessor.target_scale * model.weights / scales
    intercept = preprocessor.target_mean + preprocessor.target_scale * model.bias - slopes @ means
    coefficients = dict(zip(preprocessor.feature_names, slopes.tolist(), strict=True))
    return {**coefficients, "intercept": float(intercept)}


def _evaluate_model(name: str, model: LinearModel, features: FeatureSet) -> ModelEvaluation:
    """Score one linear model on the validation and test parts in price units."""
    prep, training = features.preprocessor, features.training
    y_val = prep.inverse_target(training.y_val)
    test_predictions = prep.inverse_target(model.predict(features.x_test))
    return ModelEvaluation(
        name=name,
        model=model,
        test=regression_metrics(features.y_test, test_predictions),
        validation=regression_metrics(y_val, prep.inverse_target(model.predict(training.x_val))),
        train_mse_scaled=float(np.mean((model.predict(training.x_train) - training.y_train) ** 2)),
        coefficients=coefficients_in_original_units(model, prep),
        test_predictions=test_predictions,
    )


def compare_predictions(first: np.ndarray, second: np.ndarray) -> dict[str, float]:
    """How closely two models' predictions agree, in price units and relative to the mean price."""
    differences = first - second
    rms = float(np.sqrt(np.mean(differences**2)))
    return {
        "max_abs_diff": float(np.max(np.abs(differences))),
        "rms_diff": rms,
        "relative_rms_diff": rms / float(np.mean(np.abs(first))),
    }


def evaluate_models(
    features: FeatureSet,
    results: list[TrainResult],
    settings: EvaluationConfig,
    penalties: dict[str, float] | None = None,
) -> Evaluation:
    """Score the trained models and the least-squares reference, and check each against its optimum.

    The optimum of a trainer with a ridge penalty (penalties: framework → l2) is the exact
    ridge solution with that penalty, not plain least squares.
    """
    training, penalties = features.training, penalties or {}
    ols = fit_least_squares(training.x_train, training.y_train)
    models = {REFERENCE: _evaluate_model(REFERENCE, ols, features)}
    for result in results:
        models[result.framework] = _evaluate_model(
            result.framework, LinearModel(result.weights, result.bias), features
        )
    reference_check = {}
    for result in results:
        l2 = penalties.get(result.framework, 0.0)
        optimum = models[REFERENCE]
        if l2 > 0:
            ridge = fit_least_squares(training.x_train, training.y_train, l2)
            optimum = _evaluate_model(f"ridge l2={l2:g}", ridge, features)
        reference_check[result.framework] = _check_against(
            models[result.framework], optimum, settings
        )
    trained = [models[result.framework] for result in results]
    agreement = (
        compare_predictions(trained[0].test_predictions, trained[1].test_predictions)
        if len(trained) == 2
        else {}
    )
    return Evaluation(models, features.y_test, agreement, reference_check)


def _check_against(
    model: ModelEvaluation, optimum: ModelEvaluation, settings: EvaluationConfig
) -> dict[str, Any]:
    """How far a trained model is from the exact optimum of the cost it minimized."""
    rmse_ratio = _ratio(model.test.rmse, optimum.test.rmse)
    return {
        "reference": optimum.name,
        "test_rmse_ratio": rmse_ratio,
        "train_mse_ratio": _ratio(model.train_mse_scaled, optimum.train_mse_scaled),
        "max_weight_diff_scaled": float(np.max(np.abs(model.model.weights - optimum.model.weights)))
        if len(model.model.weights)
        else 0.0,
        "within_tolerance": bool(abs(rmse_ratio - 1) <= settings.reference_tolerance),
        "tolerance": settings.reference_tolerance,
    }


@task(name="evaluate-models", cache_policy=NO_CACHE)
def evaluate(
    features: FeatureSet,
    results: list[TrainResult],
    settings: EvaluationConfig,
    training: TrainingConfig,
) -> Evaluation:
    """Score torch, TensorFlow and the least-squares reference on the test part."""
    logger = get_run_logger()
    penalties = {"torch": training.torch.l2, "tensorflow": training.tensorflow.l2}
    evaluation = evaluate_models(features, results, settings, penalties)
    for name, model in evaluation.models.items():
        logger.info(
            "evaluate: %-10s test RMSE %.2f  MAE %.2f  R2 %.4f  MAPE %.2f%%",
            name,
            model.test.rmse,
            model.test.mae,
            model.test.r2,
            100 * model.test.mape,
        )
    for name, check in evaluation.reference_check.items():
        if not check["within_tolerance"]:
            logger.warning(
                "evaluate: %s test RMSE is %.4f%% off its exact optimum, %s (tolerance %.4f%%)",
                name,
                100 * abs(check["test_rmse_ratio"] - 1),
                check["reference"],
                100 * check["tolerance"],
            )
    return evaluation
