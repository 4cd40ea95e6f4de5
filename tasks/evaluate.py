"""Evaluate: score each trained model and the exact least-squares reference in price units."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice.config import EvaluationConfig, TrainingConfig
from houseprice.tasks.cross_validation import cross_validate
from houseprice.tasks.features import FeatureSet
from houseprice.tasks.regression import (
    LinearModel,
    RegressionMetrics,
    coefficient_units,
    coefficients_in_original_units,
    compare_predictions,
    fit_least_squares,
    ratio,
    regression_metrics,
)
from houseprice.tasks.statistics import RegressionTable, regression_table
from houseprice.tasks.trainers.common import TrainResult

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
    train_predictions: np.ndarray | None = None
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
    y_train: np.ndarray | None = None  # price units
    basis: str = BASIS_TEST  # what judges the models: the test part or cross-validation
    cross_validation: dict[str, Any] | None = None  # folds, repeats, rows, spread per model
    regression: RegressionTable | None = None  # the reference's table, in fitted units
    coefficient_units: str = ""
    dropped_columns: dict[str, str] | None = None  # aliased design columns and why

    def judged(self, name: str) -> RegressionMetrics | None:
        """The figures a model is judged by: cross-validated, or on the test part."""
        model = self.models[name]
        return model.cross_validated if self.basis == BASIS_CV else model.test

    def metrics_payload(self) -> dict[str, Any]:
        """The metrics.json body: per model metrics and coefficients, the regression table."""
        test_rows, train_rows = (
            len(self.y_test),
            len(self.y_train) if self.y_train is not None else 0,
        )
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


def _part_metrics(actual: np.ndarray, predicted: np.ndarray) -> RegressionMetrics | None:
    """Metrics of a part, or None when the part has no rows."""
    return regression_metrics(actual, predicted) if len(actual) else None


def _evaluate_model(name: str, model: LinearModel, features: FeatureSet) -> ModelEvaluation:
    """Score one linear model on every part in price units (the training rows: in-sample)."""
    prep, training = features.preprocessor, features.training
    y_val = prep.inverse_target(training.y_val)
    y_train = prep.inverse_target(training.y_train)
    test_predictions = prep.inverse_target(model.predict(features.x_test))
    train_predictions = prep.inverse_target(model.predict(training.x_train))
    return ModelEvaluation(
        name=name,
        model=model,
        test=_part_metrics(features.y_test, test_predictions),
        validation=_part_metrics(y_val, prep.inverse_target(model.predict(training.x_val))),
        train_mse_scaled=float(np.mean((model.predict(training.x_train) - training.y_train) ** 2)),
        coefficients=coefficients_in_original_units(model, prep),
        test_predictions=test_predictions,
        in_sample=_part_metrics(y_train, train_predictions),
        train_predictions=train_predictions,
    )


def reference_regression_table(features: FeatureSet) -> RegressionTable:
    """The least-squares table on the raw (unscaled) training design, in the fitted units."""
    prep, train = features.preprocessor, features.split.train
    target = train[prep.target].astype("float64").to_numpy()
    target = np.log(target) if prep.log_target else target
    return regression_table(prep.encode(train), target, prep.feature_names)


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
    prep = features.preprocessor
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
    agreements = pairwise_agreement(trained, has_test_rows=len(features.y_test) > 0)
    evaluation = Evaluation(
        models,
        features.y_test,
        agreements,
        reference_check,
        y_train=prep.inverse_target(training.y_train),
        regression=reference_regression_table(features),
        coefficient_units=coefficient_units(prep),
        dropped_columns=dict(prep.dropped_columns),
    )
    if len(features.y_test) < settings.min_test_rows:
        _add_cross_validation(evaluation, features, results, penalties, settings)
    return evaluation


def _add_cross_validation(
    evaluation: Evaluation,
    features: FeatureSet,
    results: list[TrainResult],
    penalties: dict[str, float],
    settings: EvaluationConfig,
) -> None:
    """Judge every model by cross-validation: a trainer by its cost's exact optimum (see README).

    A trainer is used only when it matches that optimum within reference_tolerance on the full
    fit (select_run_model), so refitting the exact optimum per fold stands for refitting the
    trainer per fold, at the cost of one least-squares solve instead of a framework fit.
    """
    l2_of = {REFERENCE: 0.0} | {r.framework: penalties.get(r.framework, 0.0) for r in results}
    means, summary = cross_validate(features, sorted(set(l2_of.values())), settings)
    for name, l2 in l2_of.items():
        evaluation.models[name].cross_validated = means[l2]
    evaluation.basis = BASIS_CV
    evaluation.cross_validation = {**summary, "penalty_per_model": l2_of}


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


@task(name="evaluate-models", cache_policy=NO_CACHE)
def evaluate(
    features: FeatureSet,
    results: list[TrainResult],
    settings: EvaluationConfig,
    training: TrainingConfig,
) -> Evaluation:
    """Score every trained model and the least-squares reference on the test part."""
    logger = get_run_logger()
    penalties = {name: settings.l2 for name, settings in training.trainers.items()}
    evaluation = evaluate_models(features, results, settings, penalties)
    if evaluation.basis == BASIS_CV:
        cv = evaluation.cross_validation or {}
        logger.info(
            "evaluate: %d test rows (fewer than evaluation.min_test_rows %d): judged by "
            "%d-fold cross-validation repeated %d times on all %d rows",
            len(evaluation.y_test),
            settings.min_test_rows,
            cv.get("folds", 0),
            cv.get("repeats", 0),
            cv.get("rows", 0),
        )
    for name, model in evaluation.models.items():  # one line per model; the report has more
        parts = [
            f"{label} RMSE {metrics.rmse:.2f} R2 {metrics.r2:.4f}"
            for label, metrics in (
                ("test", model.test),
                ("cross-validated", model.cross_validated),
                ("in-sample", model.in_sample),
            )
            if metrics is not None
        ]
        logger.info("evaluate: %-10s %s", name, "; ".join(parts))
    for name, check in evaluation.reference_check.items():
        if not check["within_tolerance"]:
            logger.warning(
                "evaluate: %s RMSE (%s rows) is %.4f%% off its exact optimum, %s "
                "(tolerance %.4f%%)",
                name,
                check["rmse_rows"],
                100 * abs(check["rmse_ratio"] - 1),
                check["reference"],
                100 * check["tolerance"],
            )
    return evaluation
