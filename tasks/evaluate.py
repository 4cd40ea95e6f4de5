"""Evaluate: score each trained model and the exact least-squares reference in price units.

evaluate scores with every part in memory; evaluate_on_disk, with the training rows in design
chunk files (streamed_evaluation.py), builds the same Evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice.config import EvaluationConfig, TrainingConfig
from houseprice.preprocessing import Preprocessor
from houseprice.tasks.cross_validation import cross_validate
from houseprice.tasks.evaluation import (
    BASIS_CV,
    BASIS_TEST,
    REFERENCE,
    Agreement,
    Comparison,
    Evaluation,
    ModelEvaluation,
    compare_models,
    models_to_score,
    pairwise_agreement,
    part_metrics,
    score_model,
)
from houseprice.tasks.features import FeatureSet
from houseprice.tasks.regression import (
    LinearModel,
    RegressionMetrics,
    coefficient_units,
    coefficients_in_original_units,
    compare_predictions,
    fit_least_squares,
    regression_metrics,
)
from houseprice.tasks.statistics import RegressionTable, regression_table
from houseprice.tasks.streamed_evaluation import MapFiles, evaluate_streamed, map_in_process
from houseprice.trainers.common import TrainResult
from houseprice.trainers.design import DesignFiles

# Re-exported: the report, plots, record and promote stages import the results from here.
__all__ = [
    "BASIS_CV",
    "BASIS_TEST",
    "REFERENCE",
    "Agreement",
    "Comparison",
    "Evaluation",
    "LinearModel",
    "ModelEvaluation",
    "RegressionMetrics",
    "coefficients_in_original_units",
    "compare_predictions",
    "evaluate",
    "evaluate_models",
    "evaluate_on_disk",
    "fit_least_squares",
    "pairwise_agreement",
    "reference_regression_table",
    "regression_metrics",
]


def _evaluate_model(name: str, model: LinearModel, features: FeatureSet) -> ModelEvaluation:
    """Score one linear model on every part in price units (the training rows: in-sample)."""
    prep, training = features.preprocessor, features.training
    y_val = prep.inverse_target(training.y_val)
    y_train = prep.inverse_target(training.y_train)
    train_predictions = prep.inverse_target(model.predict(training.x_train))
    return score_model(
        name,
        model,
        prep,
        features.x_test,
        features.y_test,
        validation=part_metrics(y_val, prep.inverse_target(model.predict(training.x_val))),
        train_mse_scaled=float(np.mean((model.predict(training.x_train) - training.y_train) ** 2)),
        in_sample=part_metrics(y_train, train_predictions),
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
    prep = features.preprocessor
    fits = models_to_score(
        results, penalties, lambda l2: fit_least_squares(training.x_train, training.y_train, l2)
    )
    scored = {name: _evaluate_model(name, model, features) for name, model in fits.items()}
    compared = compare_models(scored, results, penalties, settings, len(features.y_test) > 0)
    evaluation = Evaluation(
        compared.models,
        features.y_test,
        compared.agreements,
        compared.reference_check,
        y_train=prep.inverse_target(training.y_train),
        regression=reference_regression_table(features),
        coefficient_units=coefficient_units(prep),
        dropped_columns=dict(prep.dropped_columns),
    )
    if len(features.y_test) < settings.min_test_rows:
        validator = partial(cross_validate, features, settings=settings)
        add_cross_validation(evaluation, results, penalties, validator)
    return evaluation


CrossValidator = Callable[[list[float]], tuple[dict[float, RegressionMetrics], dict[str, Any]]]


def add_cross_validation(
    evaluation: Evaluation,
    results: list[TrainResult],
    penalties: dict[str, float],
    cross_validator: CrossValidator,
) -> None:
    """Judge each model by cross-validation: a trainer by its cost's exact optimum (docs/models.md).

    A trainer is used only when it matches that optimum within reference_tolerance on the full
    fit (select_run_model), so refitting the exact optimum per fold stands for refitting the
    trainer per fold, at the cost of one least-squares solve instead of a framework fit.
    cross_validator(penalties) runs the folds, over rows in memory or a run's chunks.
    """
    l2_of = {REFERENCE: 0.0} | {r.framework: penalties.get(r.framework, 0.0) for r in results}
    means, summary = cross_validator(sorted(set(l2_of.values())))
    for name, l2 in l2_of.items():
        evaluation.models[name].cross_validated = means[l2]
    evaluation.basis = BASIS_CV
    evaluation.cross_validation = {**summary, "penalty_per_model": l2_of}


@task(name="evaluate-models", cache_policy=NO_CACHE)
def evaluate(
    features: FeatureSet,
    results: list[TrainResult],
    settings: EvaluationConfig,
    training: TrainingConfig,
) -> Evaluation:
    """Score every trained model and the least-squares reference on the test part."""
    penalties = {name: settings.l2 for name, settings in training.trainers.items()}
    evaluation = evaluate_models(features, results, settings, penalties)
    _log_evaluation(evaluation, settings)
    return evaluation


@task(name="evaluate-models-on-disk", cache_policy=NO_CACHE)
def evaluate_on_disk(
    design: DesignFiles,
    x_test: np.ndarray,
    y_test: np.ndarray,
    prep: Preprocessor,
    results: list[TrainResult],
    settings: EvaluationConfig,
    training: TrainingConfig,
    map_files: MapFiles = map_in_process,
) -> Evaluation:
    """Score every trained model and the streamed least-squares reference, training rows on disk."""
    penalties = {name: settings.l2 for name, settings in training.trainers.items()}
    evaluation = evaluate_streamed(
        design, x_test, y_test, prep, results, settings, penalties, map_files
    )
    get_run_logger().info(
        "evaluate: %d training rows on disk in %d chunk files: reference by streamed QR",
        design.train_rows,
        len(design.train_files),
    )
    _log_evaluation(evaluation, settings)
    return evaluation


def _log_evaluation(evaluation: Evaluation, settings: EvaluationConfig) -> None:
    """One line per model, and a warning per trainer off its exact optimum."""
    logger = get_run_logger()
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
