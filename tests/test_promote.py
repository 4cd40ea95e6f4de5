"""Promotion gate and champion registry: promote on evidence only, atomically, losing nothing."""

import numpy as np
import pytest

from houseprice import registry
from houseprice.champion import ChampionRun
from houseprice.config import DriftConfig, EvaluationConfig, PromotionConfig
from houseprice.model import HousePriceModel, LinearWeights
from houseprice.tasks.drift import DriftReport
from houseprice.tasks.evaluate import evaluate_models, fit_least_squares
from houseprice.tasks.features import build_feature_set
from houseprice.tasks.promote import (
    ChampionScore,
    block_on_drift,
    decide_promotion,
    paired_bootstrap_rmse_change,
    score_champion,
    select_run_model,
)
from tests.conftest import make_houses, small_config
from tests.fakes import exact_results, loadable_run


def _evaluation(tmp_path, scale_tf: float = 1.0, shuffle: bool = False):
    frame = make_houses(rows=400, seed=1)
    if shuffle:
        frame["price"] = np.random.default_rng(0).permutation(frame["price"].to_numpy())
    features = build_feature_set(frame, small_config(tmp_path))
    results = exact_results(features, ("torch", "tensorflow"), {"tensorflow": scale_tf})
    return evaluate_models(features, results, EvaluationConfig())


def test_run_model_is_the_lowest_validation_rmse_at_the_optimum(tmp_path):
    evaluation = _evaluation(tmp_path, scale_tf=0.5)
    assert select_run_model(evaluation) == "torch"  # tensorflow is off the optimum
    evaluation.reference_check["torch"]["within_tolerance"] = False
    assert select_run_model(evaluation) is None


def test_first_run_promotes_when_absolute_limits_pass(tmp_path):
    decision = decide_promotion(_evaluation(tmp_path), None, PromotionConfig())
    assert decision.promoted and decision.framework == "torch"
    assert "first champion" in decision.reason


def test_shuffled_labels_fail_the_absolute_limits(tmp_path):
    decision = decide_promotion(_evaluation(tmp_path, shuffle=True), None, PromotionConfig())
    assert not decision.promoted
    assert (
        "R² " in decision.reason
        and "below the minimum (promotion.min_test_r2 = 0.5)" in decision.reason
    )


def test_an_identical_challenger_is_not_promoted(tmp_path):
    evaluation = _evaluation(tmp_path)
    same = evaluation.models["torch"].test_predictions.copy()
    decision = decide_promotion(evaluation, ChampionScore("old-run", same), PromotionConfig())
    assert not decision.promoted
    assert "no evidence" in decision.reason
    assert decision.figures["comparison"]["ci_high"] == pytest.approx(0)


def test_a_clearly_better_challenger_is_promoted_and_a_worse_one_is_not(tmp_path):
    evaluation = _evaluation(tmp_path)
    challenger = evaluation.models["torch"].test_predictions
    worse_champion = challenger + (challenger - evaluation.y_test) * 0.5 + 3000
    better = decide_promotion(evaluation, ChampionScore("old", worse_champion), PromotionConfig())
    assert better.promoted and "beats champion old" in better.reason
    better_champion = evaluation.y_test + (challenger - evaluation.y_test) * 0.5
    worse = decide_promotion(evaluation, ChampionScore("old", better_champion), PromotionConfig())
    assert not worse.promoted
    tolerant = decide_promotion(
        evaluation,
        ChampionScore("old", challenger * 1.0),
        PromotionConfig(max_relative_rmse_change=0.01),
    )
    assert tolerant.promoted  # the user accepted "up to 1% worse"


def test_broken_champion_is_replaced_but_an_incompatible_one_is_not(tmp_path):
    evaluation = _evaluation(tmp_path)
    broken = ChampionScore("old", None, "checksum mismatch", broken=True)
    decision = decide_promotion(evaluation, broken, PromotionConfig())
    assert decision.promoted and "no longer loads" in decision.reason
    other_data = ChampionScore("old", None, "input lacks the model's columns: ['sqft']")
    decision = decide_promotion(evaluation, other_data, PromotionConfig())
    assert not decision.promoted and "promote by hand" in decision.reason


def test_drift_blocks_promotion_and_the_reason_names_each_drifted_feature(tmp_path):
    promoted = decide_promotion(_evaluation(tmp_path), None, PromotionConfig())
    drift = DriftReport(True, 0.25, "", scores={"area": 0.31, "year": 0.02, "hood": 0.84})
    blocked = block_on_drift(promoted, drift, DriftConfig())
    assert promoted.promoted and not blocked.promoted
    assert blocked.reason.startswith(
        "drift blocks promotion: hood (PSI 0.840), area (PSI 0.310) above max_psi 0.25"
    )
    assert "year" not in blocked.reason and promoted.reason in blocked.reason
    assert blocked.framework == promoted.framework


def test_drift_below_the_threshold_or_not_blocking_leaves_the_decision(tmp_path):
    promoted = decide_promotion(_evaluation(tmp_path), None, PromotionConfig())
    drift = DriftReport(True, 0.25, "", scores={"area": 0.31})
    assert block_on_drift(promoted, drift, DriftConfig(block_promotion=False)) == promoted
    # The threshold is the one the drift check measured with (drift.max_psi in the flow).
    below = DriftReport(True, 0.5, "", scores={"area": 0.31})
    assert block_on_drift(promoted, below, DriftConfig(max_psi=0.5)) == promoted
    assert block_on_drift(promoted, None, DriftConfig()) == promoted


def _in_memory_champion(tmp_path, scale: float = 1.0) -> ChampionRun:
    """A champion held in memory (preprocessing and numpy weights): the least-squares fit."""
    features = build_feature_set(make_houses(rows=400, seed=1), small_config(tmp_path))
    ols = fit_least_squares(features.training.x_train, features.training.y_train)
    forward = LinearWeights(ols.weights * scale, ols.bias).forward
    model = HousePriceModel("old", "torch", features.preprocessor, forward)
    record = registry.Champion("old", "torch", "runs/old/torch_model.pt", "then", "test")
    return ChampionRun(record, None, model, "no run folder in this test")


def test_the_gate_scores_the_loaded_champion_without_files(tmp_path):
    evaluation = _evaluation(tmp_path)
    test_rows = build_feature_set(make_houses(rows=400, seed=1), small_config(tmp_path)).split.test
    same = score_champion(_in_memory_champion(tmp_path), test_rows)
    challenger = evaluation.models["torch"].test_predictions
    np.testing.assert_allclose(same.predictions, challenger, rtol=1e-9)
    assert not decide_promotion(evaluation, same, PromotionConfig()).promoted
    worse = score_champion(_in_memory_champion(tmp_path, scale=0.5), test_rows)
    decision = decide_promotion(evaluation, worse, PromotionConfig())
    assert decision.promoted and "beats champion old" in decision.reason
    assert score_champion(None, test_rows) is None


def test_a_champion_that_does_not_load_is_broken_and_one_that_cannot_score_is_not(tmp_path):
    test_rows = make_houses(rows=20)
    unloadable = _in_memory_champion(tmp_path)
    unloadable = ChampionRun(unloadable.record, None, None, "no run", "checksum mismatch")
    assert score_champion(unloadable, test_rows) == ChampionScore(
        "old", None, "checksum mismatch", broken=True
    )
    other_columns = score_champion(_in_memory_champion(tmp_path), test_rows.drop(columns="area"))
    assert other_columns.predictions is None and not other_columns.broken
    assert "area" in other_columns.problem


def test_bootstrap_interval_brackets_the_point_estimate():
    rng = np.random.default_rng(0)
    actual = rng.normal(0, 1, 500)
    first, second = actual + rng.normal(0, 1, 500), actual + rng.normal(0, 1.1, 500)
    figures = paired_bootstrap_rmse_change(actual, first, second, 1000, 0.95, seed=0)
    assert figures["ci_low"] < figures["relative_change"] < figures["ci_high"]
    again = paired_bootstrap_rmse_change(actual, first, second, 1000, 0.95, seed=0)
    assert again == figures  # seeded: the same data gives the same decision


def _decided_run(artifacts, run_id, promoted, champion_run_id=None):
    promotion = {
        "promoted": promoted,
        "framework": "torch",
        "reason": "beats it",
        "champion_run_id": champion_run_id,
    }
    return loadable_run(artifacts, run_id, metrics={"promotion": promotion})


def test_a_promotion_cut_short_by_a_crash_is_finished_by_the_next_run(tmp_path):
    from prefect.logging import disable_run_logger

    from houseprice.tasks.champion import finish_interrupted_promotion

    _decided_run(tmp_path, "run-1", promoted=True)  # completed, then killed before promoting
    assert registry.interrupted_promotion(tmp_path)[0] == "run-1"
    with disable_run_logger():
        finish_interrupted_promotion.fn(tmp_path)
    assert registry.read_champion(tmp_path).run_id == "run-1"
    assert registry.read_history(tmp_path)[-1]["event"] == "recovered"
    assert registry.interrupted_promotion(tmp_path) is None  # done once, not again


def test_manual_promotion_waits_for_a_running_retrain(tmp_path, capsys):
    from houseprice.cli import main
    from houseprice.locking import retrain_lock

    run_id = "20260101T000000Z-abc123"  # the CLI takes run ids in their own format only
    loadable_run(tmp_path, run_id)
    argv = ["promote", run_id, "--artifacts-dir", str(tmp_path), "--wait", "0"]
    with retrain_lock(tmp_path / "data", tmp_path, 0, print):
        assert main(argv) == 1
    assert "another retrain holds" in capsys.readouterr().err
    assert main(argv) == 0
    assert registry.read_champion(tmp_path).run_id == run_id


def test_predict_without_a_champion_after_a_refused_run_names_the_limit_and_run(tmp_path):
    from houseprice.model import load_model

    with pytest.raises(registry.RegistryError, match="run `houseprice retrain` first"):
        load_model(tmp_path)
    evaluation = _evaluation(tmp_path, shuffle=True)
    refused = decide_promotion(evaluation, None, PromotionConfig(), run_id="run-7")
    registry.append_history(tmp_path, {"event": "decision", "run_id": "run-7", **refused.to_dict()})
    with pytest.raises(registry.RegistryError) as raised:
        load_model(tmp_path)
    message = str(raised.value)
    assert "the latest run, run-7, was not promoted" in message
    assert "promotion.min_test_r2" in message and "houseprice predict --run run-7" in message
    assert message.count("--run") == 1
    drifted = {"event": "decision", "run_id": "run-8", "promoted": False, "reason": "drift"}
    registry.append_history(tmp_path, drifted)
    with pytest.raises(registry.RegistryError, match=r"drift; .*houseprice predict --run run-8"):
        load_model(tmp_path)


def test_a_full_sample_run_never_replaces_a_champion_by_itself(tmp_path):
    from houseprice.tasks.evaluate import evaluate_models

    frame = make_houses(rows=400, seed=1)
    config = small_config(tmp_path, split={"validation_fraction": 0, "test_fraction": 0})
    features = build_feature_set(frame, config)
    [result] = exact_results(features, ["torch"], val_loss=[np.nan])
    evaluation = evaluate_models(features, [result], EvaluationConfig())
    assert evaluation.basis == "cross-validation"
    assert decide_promotion(evaluation, None, PromotionConfig()).promoted
    decision = decide_promotion(evaluation, ChampionScore("old", np.empty(0)), PromotionConfig())
    assert not decision.promoted
    assert "holds out no rows to compare it with champion old" in decision.reason
    assert "houseprice promote" in decision.reason
