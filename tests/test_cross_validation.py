"""Cross-validation as folds: a brute-force refit per fold agrees, at any chunking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import houseprice.medians
from houseprice.chunks import frame_table
from houseprice.config import EvaluationConfig, FeatureConfig
from houseprice.flows.engine import LocalEngine
from houseprice.folds import fold_frames, frame_pieces
from houseprice.tasks.cross_validation import FoldAssignment, cross_validate_by
from houseprice.tasks.features import fit_preprocessor
from houseprice.tasks.regression import fit_least_squares, regression_metrics
from tests.test_moments import awkward_houses, config

SETTINGS = EvaluationConfig(cv_folds=4, cv_repeats=3, cv_seed=7)
PENALTIES = [0.0, 0.01]


def brute_force(frame: pd.DataFrame, data, features: FeatureConfig) -> dict[float, np.ndarray]:
    """Each repeat: every fold refitted from its complement's rows in memory, as runs fit."""
    assigned = FoldAssignment(SETTINGS.cv_seed, SETTINGS.cv_folds, SETTINGS.cv_repeats)(frame)
    actual = frame[data.target].to_numpy(float)
    runs: dict[float, list] = {l2: [] for l2 in PENALTIES}
    for repeat in assigned:
        predicted = {l2: np.empty(len(frame)) for l2 in PENALTIES}
        for fold in range(SETTINGS.cv_folds):
            held = repeat == fold
            kept = frame[~held]
            prep = fit_preprocessor(kept, data, features)
            x, y = prep.transform(kept), prep.transform_target(kept[data.target])
            for l2 in PENALTIES:
                model = fit_least_squares(x, y, l2)
                predicted[l2][held] = prep.inverse_target(
                    model.predict(prep.transform(frame[held]))
                )
        for l2 in PENALTIES:
            runs[l2].append(regression_metrics(actual, predicted[l2]))
    return {l2: np.mean(runs[l2], axis=0) for l2 in PENALTIES}


@pytest.mark.parametrize("log_target", [False, True])
def test_folded_cross_validation_equals_refitting_each_fold_from_its_rows(log_target):
    frame, data = awkward_houses(), config()
    features = FeatureConfig(log_target=log_target)
    expected = brute_force(frame, data, features)
    folder = lambda stage: fold_frames(stage, frame_pieces(frame, 37))  # noqa: E731
    means, summary = cross_validate_by(folder, len(frame), data, features, PENALTIES, SETTINGS)
    assert summary["folds"] == 4 and summary["repeats"] == 3 and summary["rows"] == len(frame)
    for l2 in PENALTIES:
        np.testing.assert_allclose(np.asarray(means[l2]), expected[l2], rtol=1e-8)


def test_one_chunk_and_many_give_the_same_figures_through_an_engine():
    frame, data = awkward_houses(), config()
    results = []
    for chunk_rows in (1_000, 11):
        table = frame_table(frame, "houses", chunk_rows)
        fold = lambda stage, table=table: LocalEngine(2).fold(stage, table)  # noqa: E731
        results.append(
            cross_validate_by(fold, len(frame), data, FeatureConfig(), PENALTIES, SETTINGS)
        )
    (whole, _), (chunked, _) = results
    for l2 in PENALTIES:
        np.testing.assert_allclose(np.asarray(chunked[l2]), np.asarray(whole[l2]), rtol=1e-9)


def test_past_the_distinct_cap_the_complements_medians_are_exact(monkeypatch):
    monkeypatch.setattr(houseprice.medians, "MAX_DISTINCT", 10)
    frame, data = awkward_houses(), config()
    expected = brute_force(frame, data, FeatureConfig())
    stages = []

    def folder(stage):
        stages.append(stage.name)
        return fold_frames(stage, frame_pieces(frame, 50))

    means, _ = cross_validate_by(folder, len(frame), data, FeatureConfig(), PENALTIES, SETTINGS)
    assert stages == ["cross-validation", "cross-validation medians", "cross-validation scores"]
    np.testing.assert_allclose(np.asarray(means[0.0]), expected[0.0], rtol=1e-8)


def test_fold_assignment_is_seeded_balanced_enough_and_independent_of_chunking():
    frame = awkward_houses(rows=2_000)
    assignment = FoldAssignment(seed=1, folds=5, repeats=3)
    whole = assignment(frame)
    pieces = np.hstack([assignment(piece) for piece in frame_pieces(frame, 333)])
    assert (whole == pieces).all() and (whole == FoldAssignment(1, 5, 3)(frame)).all()
    assert not (whole[0] == whole[1]).all()  # each repeat its own assignment
    sizes = np.bincount(whole[0], minlength=5)
    assert sizes.min() > 0.8 * 400 and sizes.max() < 1.2 * 400
    assert not (FoldAssignment(seed=2, folds=5, repeats=1)(frame)[0] == whole[0]).all()
