"""Linear models and their figures: the exact least-squares fit, error metrics, coefficients.

Pure numpy: every model the pipeline trains reduces to y = x @ weights + bias in the scaled
space, so one set of functions scores and compares them all.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from houseprice.preprocessing import Preprocessor


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


def solve_normal_equations(zz: np.ndarray, zy: np.ndarray, l2: float = 0.0) -> LinearModel:
    """The minimiser of MSE + l2·|w|² (bias, the last column, unpenalised) from Σ zzᵀ and Σ zy."""
    rows = zz[-1, -1]  # Σ 1 · 1: the bias column is all ones
    penalty = np.diag(np.append(np.full(len(zz) - 1, rows * l2), 0.0))
    solution, *_ = np.linalg.lstsq(zz + penalty, zy, rcond=None)
    return LinearModel(solution[:-1], float(solution[-1]))


def ratio(value: float, reference: float) -> float:
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
) -> dict[str, float]:
    """Target change per unit of each raw feature, plus the intercept.

    In price units, or in log-price units for a log target (log(price) is the same affine map
    of the raw features, so the same conversion applies; only the units differ).
    """
    scales, means = np.asarray(preprocessor.scales), np.asarray(preprocessor.means)
    # y = t_mean + t_scale * (sum_j w_j (x_j - m_j) / s_j + b)
    slopes = preprocessor.target_scale * model.weights / scales
    intercept = preprocessor.target_mean + preprocessor.target_scale * model.bias - slopes @ means
    coefficients = dict(zip(preprocessor.feature_names, slopes.tolist(), strict=True))
    return {**coefficients, "intercept": float(intercept)}


def coefficient_units(preprocessor: Preprocessor) -> str:
    """How to read the coefficients, in one sentence."""
    target = preprocessor.target
    if not preprocessor.log_target:
        return (
            f"{target} per unit of each feature; an indicator [column=level] is the difference "
            "from that column's reference level"
        )
    return (
        f"log({target}) per unit of each feature (semi-elasticities): b means about 100·b % "
        f"more {target} per unit (exactly 100·(exp(b) − 1) %), and for an indicator that much "
        f"above the reference level; for a feature that is itself a logarithm, b is an "
        f"elasticity (% change in {target} per 1% change in the feature)"
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
