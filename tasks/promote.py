"""Promotion gate: the challenger replaces the champion only on evidence.

The rule, in order:
1. A run's challenger is its trainer with the lowest validation RMSE among those whose test
   RMSE is within the evaluation tolerance of the least-squares optimum (ties go to the first
   trainer in registration order: torch).
2. It must clear the absolute limits (PromotionConfig: minimum R², maximum RMSE / MAPE), on
   the figures the run is judged by: its test part when that has at least
   evaluation.min_test_rows rows, else repeated k-fold cross-validation (always in a
   full-sample fit).
3. With no champion yet (or one that can no longer be loaded or score today's data), that is
   enough.
4. Otherwise both score the same current test rows, each with its own saved preprocessing,
   and a paired bootstrap gives a confidence interval for the relative RMSE change. The
   challenger wins only if the interval's upper end is below max_relative_rmse_change
   (default 0: better beyond noise), so a rerun on the same data never promotes. A
   full-sample fit has no held-out rows to compare on, so it never replaces a champion by
   itself: promote it by hand.
5. Whatever the above says, a major drift (PSI above DriftConfig.max_psi in any feature) stops
   promotion while DriftConfig.block_promotion is on: a person looks at the data first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import registry
from houseprice.champion import ChampionRun
from houseprice.config import DriftConfig, PromotionConfig
from houseprice.errors import InputSchemaError, ModelLoadError
from houseprice.tasks.drift import DriftReport
from houseprice.tasks.evaluate import (
    BASIS_CV,
    REFERENCE,
    Evaluation,
    RegressionMetrics,
    regression_metrics,
)

# Resampled row indices held at once (~80 MB): bounds memory however large the test set.
BOOTSTRAP_CHUNK_ELEMENTS = 10_000_000


@dataclass
class PromotionDecision:
    """Whether the run's model becomes the champion, why, and the numbers behind it."""

    promoted: bool
    reason: str
    framework: str | None  # the run's challenger
    champion_run_id: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for metrics.json, the report and the history."""
        return asdict(self)


def select_run_model(evaluation: Evaluation) -> str | None:
    """The run's best trainer: lowest validation RMSE among those matching the optimum."""
    candidates = [
        name
        for name, check in evaluation.reference_check.items()
        if check["within_tolerance"] and name != REFERENCE
    ]
    if not candidates:
        return None
    order = list(evaluation.reference_check)  # trainer order: ties go to the first trainer
    return min(candidates, key=lambda n: (_choice_rmse(evaluation, n), order.index(n)))


def _choice_rmse(evaluation: Evaluation, name: str) -> float:
    """The RMSE a trainer is chosen by: validation, else (no validation rows) in-sample."""
    model = evaluation.models[name]
    metrics = model.validation or model.in_sample
    return metrics.rmse if metrics is not None else float("inf")


def use_anyway(run_id: str | None) -> str:
    """What to do with a run that was not promoted; every refusal by a limit ends with it."""
    run = run_id or "<run id>"
    return (
        f"to use this run anyway, score with `houseprice predict --run {run}` or make it the "
        f"champion with `houseprice promote {run}`"
    )


def absolute_limit_failures(
    metrics: RegressionMetrics, settings: PromotionConfig, basis: str = "test"
) -> list[str]:
    """Each absolute limit the metrics break, as a sentence naming the setting to change."""
    label = "cross-validated" if basis == BASIS_CV else "test"
    failures = []
    if settings.min_test_r2 is not None and not metrics.r2 >= settings.min_test_r2:
        failures.append(
            f"{label} R² {metrics.r2:.4f} is below the minimum "
            f"(promotion.min_test_r2 = {settings.min_test_r2})"
        )
    if settings.max_test_rmse is not None and not metrics.rmse <= settings.max_test_rmse:
        failures.append(
            f"{label} RMSE {metrics.rmse:,.2f} is above the maximum "
            f"(promotion.max_test_rmse = {settings.max_test_rmse:,})"
        )
    if settings.max_test_mape is not None and not metrics.mape <= settings.max_test_mape:
        failures.append(
            f"{label} MAPE {metrics.mape:.4f} is above the maximum "
            f"(promotion.max_test_mape = {settings.max_test_mape})"
        )
    return failures


def paired_bootstrap_rmse_change(
    actual: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    samples: int,
    confidence: float,
    seed: int,
) -> dict[str, float]:
    """Relative RMSE change (challenger vs champion) with a paired percentile bootstrap interval.

    Both models are scored on the same resampled rows each time, so the interval reflects the
    difference between them, not the noise both share.
    """
    challenger_sq = (challenger - actual) ** 2
    champion_sq = (champion - actual) ** 2
    rng = np.random.default_rng(seed)
    chunk = max(1, BOOTSTRAP_CHUNK_ELEMENTS // len(actual))
    changes = []
    for start in range(0, samples, chunk):
        rows = rng.integers(0, len(actual), size=(min(chunk, samples - start), len(actual)))
        challenger_rmse = np.sqrt(challenger_sq[rows].mean(axis=1))
        champion_rmse = np.sqrt(champion_sq[rows].mean(axis=1))
        changes.append(challenger_rmse / champion_rmse - 1)
    spread = np.concatenate(changes)
    tail = (1 - confidence) / 2
    champion_rmse_all = float(np.sqrt(champion_sq.mean()))
    return {
        "challenger_rmse": float(np.sqrt(challenger_sq.mean())),
        "champion_rmse": champion_rmse_all,
        "relative_change": float(np.sqrt(challenger_sq.mean()) / champion_rmse_all - 1),
        "ci_low": float(np.quantile(spread, tail)),
        "ci_high": float(np.quantile(spread, 1 - tail)),
        "confidence": confidence,
        "samples": samples,
    }


class ChampionScore(NamedTuple):
    """The champion's predictions on the current test rows, or why it has none."""

    run_id: str
    predictions: np.ndarray | None
    problem: str | None = None
    # True when its files no longer load (truncated, tampered, missing): production has no
    # working model, so a challenger that clears the absolute limits may replace it. False
    # when it loads but cannot score today's columns: a different experiment, not a successor.
    broken: bool = False


def decide_promotion(
    evaluation: Evaluation,
    champion: ChampionScore | None,
    settings: PromotionConfig,
    run_id: str | None = None,
) -> PromotionDecision:
    """Apply the promotion rule (module docstring) to one run's evaluation (run run_id)."""
    framework = select_run_model(evaluation)
    champion_run_id = champion.run_id if champion else None
    if framework is None:
        reason = (
            "neither trainer reached the least-squares optimum within "
            "evaluation.reference_tolerance (see reference_check in metrics.json): use "
            "optimizer 'cg', or raise training.<framework>.max_epochs"
        )
        return PromotionDecision(False, reason, None, champion_run_id)
    challenger = evaluation.models[framework]
    judged = evaluation.judged(framework)
    figures: dict[str, Any] = {"basis": evaluation.basis}
    if challenger.test is not None:
        figures["challenger_test"] = challenger.test._asdict()
    if challenger.cross_validated is not None:
        figures["challenger_cross_validated"] = challenger.cross_validated._asdict()
    failures = absolute_limit_failures(judged, settings, evaluation.basis)
    if failures:
        fix = "change the limit named" if len(failures) == 1 else "change the limits named"
        reason = f"{'; '.join(failures)}; {fix}, or {use_anyway(run_id)}"
        return PromotionDecision(False, reason, framework, champion_run_id, figures)
    passes = f"passes the absolute limits ({_basis_text(evaluation)})"
    if champion is None:
        return PromotionDecision(True, f"first champion: {passes}", framework, None, figures)
    if champion.predictions is None:
        if champion.broken:
            reason = f"champion {champion.run_id} no longer loads ({champion.problem})"
            return PromotionDecision(True, reason, framework, champion.run_id, figures)
        reason = (
            f"champion {champion.run_id} cannot score this run's data ({champion.problem}), so "
            f"they cannot be compared; promote by hand if this model should replace it"
        )
        return PromotionDecision(False, reason, framework, champion.run_id, figures)
    if len(evaluation.y_test) == 0:
        reason = (
            f"{passes}, but a full-sample fit holds out no rows to compare it with champion "
            f"{champion.run_id} on; {use_anyway(run_id)}"
        )
        return PromotionDecision(False, reason, framework, champion.run_id, figures)
    champion_predictions = champion.predictions
    comparison = paired_bootstrap_rmse_change(
        evaluation.y_test,
        challenger.test_predictions,
        champion_predictions,
        settings.bootstrap_samples,
        settings.confidence,
        settings.seed,
    )
    figures["comparison"] = comparison
    figures["champion_test"] = regression_metrics(evaluation.y_test, champion_predictions)._asdict()
    low, high = comparison["ci_low"], comparison["ci_high"]
    interval = (
        f"RMSE change {comparison['relative_change']:+.2%} "
        f"({settings.confidence:.0%} CI {low:+.2%} .. {high:+.2%})"
    )
    threshold = settings.max_relative_rmse_change
    if comparison["ci_high"] < threshold:
        reason = f"beats champion {champion_run_id}: {interval}, upper end below {threshold:+.2%}"
        return PromotionDecision(True, reason, framework, champion_run_id, figures)
    reason = (
        f"no evidence it beats champion {champion_run_id}: {interval} on "
        f"{len(evaluation.y_test)} test rows, upper end not below {threshold:+.2%} "
        f"(promotion.max_relative_rmse_change); {use_anyway(run_id)}"
    )
    return PromotionDecision(False, reason, framework, champion_run_id, figures)


def _basis_text(evaluation: Evaluation) -> str:
    """What the figures were measured on, in a few words."""
    if evaluation.basis != BASIS_CV:
        return f"on {len(evaluation.y_test)} test rows"
    cv = evaluation.cross_validation or {}
    return f"{cv.get('folds')}-fold cross-validation × {cv.get('repeats')} on {cv.get('rows')} rows"


def decision_headline(decision: PromotionDecision) -> str:
    """'PROMOTE', 'keep champion <id>' or 'no champion' — never 'keep' when there is none."""
    if decision.promoted:
        return "PROMOTE"
    if decision.champion_run_id:
        return f"keep champion {decision.champion_run_id}"
    return "no champion made"


def drift_block_reason(drift: DriftReport | None, settings: DriftConfig) -> str | None:
    """Why drift stops promotion, naming each drifted feature and its PSI; None if it does not."""
    if drift is None or not settings.block_promotion or not drift.drifted:
        return None
    listed = ", ".join(f"{feature} (PSI {drift.scores[feature]:.3f})" for feature in drift.drifted)
    return (
        f"drift blocks promotion: {listed} above max_psi {drift.threshold} (look at the new "
        "data; drift.block_promotion: false or a higher drift.max_psi lets such runs through)"
    )


def block_on_drift(
    decision: PromotionDecision, drift: DriftReport | None, settings: DriftConfig
) -> PromotionDecision:
    """The decision, turned into a refusal when drift blocks promotion."""
    blocked = drift_block_reason(drift, settings)
    if blocked is None:
        return decision
    reason = f"{blocked}; without drift: {decision.reason}"
    return replace(decision, promoted=False, reason=reason)


def score_champion(champion: ChampionRun | None, test_rows: pd.DataFrame) -> ChampionScore | None:
    """The champion's predictions on test_rows, or why it cannot make them; None without one."""
    if champion is None:
        return None
    if champion.model is None:  # loaded even with no rows to score: a broken one is replaced
        return ChampionScore(champion.run_id, None, champion.model_problem, broken=True)
    try:
        predictions = champion.model.predict(test_rows) if len(test_rows) else np.empty(0)
        return ChampionScore(champion.run_id, predictions)
    except InputSchemaError as error:
        return ChampionScore(champion.run_id, None, str(error), broken=False)
    except (ModelLoadError, registry.RegistryError) as error:
        return ChampionScore(champion.run_id, None, str(error), broken=True)


@task(name="gate-promotion", cache_policy=NO_CACHE)
def gate_promotion(
    evaluation: Evaluation,
    test_rows: pd.DataFrame,
    champion: ChampionRun | None,
    settings: PromotionConfig,
    drift: DriftReport | None = None,
    drift_settings: DriftConfig | None = None,
    run_id: str | None = None,
) -> PromotionDecision:
    """Decide whether this run's best model should replace the champion."""
    scored = score_champion(champion, test_rows)
    if scored and scored.problem:
        get_run_logger().warning(
            "promotion: champion %s cannot be compared: %s", scored.run_id, scored.problem
        )
    decision = decide_promotion(evaluation, scored, settings, run_id)
    decision = block_on_drift(decision, drift, drift_settings or DriftConfig())
    get_run_logger().info(
        "promotion: %s (%s): %s", decision_headline(decision), decision.framework, decision.reason
    )
    return decision
