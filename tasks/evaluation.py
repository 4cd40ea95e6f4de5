"""The evaluation's results, and the comparisons every way of scoring the models shares.

evaluate.py scores the models with every part in memory; streamed_evaluation.py with the
training rows on disk. Both build the same Evaluation from these pieces: score_model (the test
part, which is always in memory), models_to_score (the reference, the trainers, each ridge
optimum) and compare_models (each trainer against its optimum, and every pair of trainers).
Pure numpy, no Prefect.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from houseprice.config import EvaluationConfig
from houseprice.preprocessing import Preprocessor
from houseprice.tasks.regression import (
    LinearModel,
    RegressionMetrics,
    coefficients_in_original_units,
    compare_predictions,
    ratio,
    regression_metrics,
)
from houseprice.tasks.statistics import RegressionTable
from houseprice.trainers.common import TrainResult

REFERENCE = "ols"
# What judges a model (its error estimate and the promotion gate's absolute limits).
BASIS_TEST = "test"
BASIS_CV = "cross-validation"


@dataclass
class ModelEvaluation:
    """One model's scores, coefficients and predictions (price units)."""

    name: str
    model: LinearModel
    test: RegressionMetrics | None  # None: no test rows (a full-sample fit)
    validation: RegressionMetrics | None  # None: no validation rows
    train_mse_scaled: float  # the cost the trainers minimize; the optimum is the reference's
    coefficients: dict[str, float]  # per raw feature unit, in the fitted target's units
    test_predictions: np.ndarray
    in_sample: RegressionMetrics | None = None  # on the training rows: optimistic by design
    train_predictions: np.ndarray | None = None  # None: the training rows stayed on disk
    cross_validated: RegressionMetrics | None = None  # mean over the repeats, when run


class Agreement(NamedTuple):
    """How closely two trainers' predictions agree, in price units, on the rows named."""

    first: str  # trainer names, in trainer order
    second: str
    max_abs_diff: float
    rms_diff: float
    relative_rms_diff: float  # rms_diff relative to the mean absolute prediction of first
    rows: str  # "test", or "training (in-sample)" in a full-sample fit


@dataclass
class Evaluation:
    """All models' evaluations plus how they compare with each other and with the reference."""

    models: dict[str, ModelEvaluation]  # the reference first, then each trainer, in order
    y_test: np.ndarray
    agreements: list[Agreement]  # every pair of trainers: none with fewer than two
    reference_check: dict[str, dict[str, Any]]  # per trainer, in trainer order
    y_train: np.ndarray | None = None  # price units; None: the training rows stayed on disk
    basis: str = BASIS_TEST  # what judges the models: the test part or cross-validation
    cross_validation: dict[str, Any] | None = None  # folds, repeats, rows, spread per model
    regression: RegressionTable | None = None  # the reference's table, in fitted units
    coefficient_units: str = ""
    dropped_columns: dict[str, str] | None = None  # aliased design columns and why
    training_rows: int | None = None  # how many, when y_train is not kept (rows on disk)

    def judged(self, name: str) -> RegressionMetrics | None:
        """The figures a model is judged by: cross-validated, or on the test part."""
        model = self.models[name]
        return model.cross_validated if self.basis == BASIS_CV else model.test

    def metrics_payload(self) -> dict[str, Any]:
        """The metrics.json body: per model metrics and coefficients, the regression table."""
        test_rows = len(self.y_test)
        train_rows = len(self.y_train) if self.y_train is not None else self.training_rows or 0
        payload: dict[str, Any] = {
            name: {
                "test": _metrics_dict(evaluation.test, test_rows),
                "validation": _metrics_dict(evaluation.validation, None),
                "in_sample": _metrics_dict(evaluation.in_sample, train_rows),
                "cross_validated": evaluation.cross_validated
                and evaluation.cross_validated._asdict(),
                "train_mse_scaled": evaluation.train_mse_scaled,
                "coefficients": evaluation.coefficients,
                "coefficient_units": self.coefficient_units,
                "null_reasons": _missing_part_reasons(evaluation),
            }
            for name, evaluation in self.models.items()
        }
        if self.regression is not None:
            payload[REFERENCE]["table"] = self.regression.table
            payload[REFERENCE]["fit"] = self.regression.fit
        payload[REFERENCE]["dropped_columns"] = self.dropped_columns or {}
        payload["evaluation"] = {
            "basis": self.basis,
            "test_rows": test_rows,
            "training_rows": train_rows,
            "cross_validation": self.cross_validation,
        }
        # Keyed "first-second" (trainer names are identifiers, so "-" cannot be part of one).
        payload["agreement"] = {f"{a.first}-{a.second}": a._asdict() for a in self.agreements}
        payload["reference_check"] = self.reference_check
        return payload


def _metrics_dict(metrics: RegressionMetrics | None, rows: int | None) -> dict[str, Any] | None:
    """Metrics as a dict; an undefined R² (prices all equal, or one row) says why it is null."""
    if metrics is None:
        return None
    values: dict[str, Any] = metrics._asdict()
    if not np.isfinite(metrics.r2):
        scored = "the row(s) scored" if rows is None else f"the {rows} row(s) scored"
        values["null_reasons"] = {
            "r2": f"undefined: {scored} all have the same price (no variance)"
        }
    return values


def _missing_part_reasons(evaluation: ModelEvaluation) -> dict[str, str]:
    """Why a part's metrics are null: the part has no rows, or cross-validation did not run."""
    reasons = {}
    if evaluation.test is None:
        reasons["test"] = "no test rows (a full-sample fit): see in_sample and cross_validated"
    if evaluation.validation is None:
        reasons["validation"] = "no validation rows (a full-sample fit)"
    if evaluation.cross_validated is None:
        reasons["cross_validated"] = "not run: the test part is large enough to judge by"
    return reasons


def part_metrics(actual: np.ndarray, predicted: np.ndarray) -> RegressionMetrics | None:
    """Metrics of a part, or None when the part has no rows."""
    return regression_metrics(actual, predicted) if len(actual) else None


def score_model(
    name: str,
    model: LinearModel,
    prep: Preprocessor,
    x_test: np.ndarray,
    y_test: np.ndarray,
    **parts: Any,
) -> ModelEvaluation:
    """One model's evaluation: scored on the test part here, its other parts as given."""
    test_predictions = prep.inverse_target(model.predict(x_test))
    return ModelEvaluation(
        name=name,
        model=model,
        test=part_metrics(y_test, test_predictions),
        coefficients=coefficients_in_original_units(model, prep),
        test_predictions=test_predictions,
        **parts,
    )


def optimum_name(l2: float) -> str:
    """The name of the exact optimum of the cost with ridge penalty l2 (0: the reference)."""
    return f"ridge l2={l2:g}" if l2 > 0 else REFERENCE


def models_to_score(
    results: list[TrainResult],
    penalties: dict[str, float],
    fit: Callable[[float], LinearModel],
) -> dict[str, LinearModel]:
    """The reference, each trainer's model, and the optimum of each ridge penalty in use.

    fit(l2) is the exact optimum of MSE + l2 |w|² on the training rows, however computed.
    """
    models = {REFERENCE: fit(0.0)}
    models |= {result.framework: LinearModel(result.weights, result.bias) for result in results}
    for l2 in sorted({penalties.get(result.framework, 0.0) for result in results}):
        if l2 > 0:
            models[optimum_name(l2)] = fit(l2)
    return models


class Comparison(NamedTuple):
    """The evaluations kept (reference, then trainers), each trainer's check, every pair."""

    models: dict[str, ModelEvaluation]
    reference_check: dict[str, dict[str, Any]]
    agreements: list[Agreement]


def compare_models(
    scored: dict[str, ModelEvaluation],
    results: list[TrainResult],
    penalties: dict[str, float],
    settings: EvaluationConfig,
    has_test_rows: bool,
) -> Comparison:
    """Check each trainer against the exact optimum of its cost, and each pair of trainers."""
    reference_check = {
        result.framework: _check_against(
            scored[result.framework],
            scored[optimum_name(penalties.get(result.framework, 0.0))],
            settings,
        )
        for result in results
    }
    trained = [scored[result.framework] for result in results]
    models = {REFERENCE: scored[REFERENCE]} | {model.name: model for model in trained}
    return Comparison(models, reference_check, pairwise_agreement(trained, has_test_rows))


def pairwise_agreement(trained: list[ModelEvaluation], has_test_rows: bool) -> list[Agreement]:
    """How closely each pair of trainers agrees, on the test rows or else in-sample."""
    rows = "test" if has_test_rows else "training (in-sample)"

    def predictions(model: ModelEvaluation) -> np.ndarray:
        return model.test_predictions if has_test_rows else model.train_predictions

    return [
        Agreement(
            first.name,
            second.name,
            **compare_predictions(predictions(first), predictions(second)),
            rows=rows,
        )
        for first, second in itertools.combinations(trained, 2)
    ]


def _check_against(
    model: ModelEvaluation, optimum: ModelEvaluation, settings: EvaluationConfig
) -> dict[str, Any]:
    """How far a trained model is from the exact optimum of the cost it minimized.

    On the test rows, or, in a full-sample fit without any, on the training rows.
    """
    if model.test is not None and optimum.test is not None:
        rmse_ratio, rows = ratio(model.test.rmse, optimum.test.rmse), "test"
    else:
        rmse_ratio = ratio(model.in_sample.rmse, optimum.in_sample.rmse)
        rows = "training (in-sample)"
    return {
        "reference": optimum.name,
        "rmse_ratio": rmse_ratio,
        "rmse_rows": rows,
        "test_rmse_ratio": rmse_ratio if rows == "test" else None,
        "train_mse_ratio": ratio(model.train_mse_scaled, optimum.train_mse_scaled),
        "max_weight_diff_scaled": float(np.max(np.abs(model.model.weights - optimum.model.weights)))
        if len(model.model.weights)
        else 0.0,
        "within_tolerance": bool(abs(rmse_ratio - 1) <= settings.reference_tolerance),
        "tolerance": settings.reference_tolerance,
    }
