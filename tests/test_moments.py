"""Raw moments: the scaled design's statistics from one pass, as the design's own, any chunking."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from houseprice.config import FeatureConfig
from houseprice.folds import frame_pieces
from houseprice.moments import RawMoments
from houseprice.tasks.features import fit_preprocessor
from tests.conftest import houses_config, make_houses


def awkward_houses(rows: int = 240, seed: int = 4) -> pd.DataFrame:
    """Houses with missing numbers and levels, a zip code of large mean and small spread."""
    frame = make_houses(rows=rows, seed=seed)
    rng = np.random.default_rng(seed)
    frame.loc[rng.choice(rows, 20, replace=False), "area"] = np.nan
    frame.loc[rng.choice(rows, 15, replace=False), "hood"] = None
    frame["zip"] = 50010.0 + rng.integers(0, 5, rows)
    return frame


def config(**changes):
    numeric = ["area", "year", "zip"]
    return houses_config(numeric_features=numeric, **changes)


def moments_of(frame: pd.DataFrame, data, pieces: int, log_target: bool = False) -> RawMoments:
    parts = frame_pieces(frame, -(-len(frame) // pieces))
    total = None
    for part in parts:
        one = RawMoments.of(
            part, data.numeric_features, data.categorical_features, data.target, log_target
        )
        total = one if total is None else total + one
    return total


def design_of(frame: pd.DataFrame, prep) -> tuple[np.ndarray, np.ndarray]:
    x = prep.transform(frame)
    return np.hstack([x, np.ones((len(x), 1))]), prep.transform_target(frame[prep.target])


@pytest.mark.parametrize("pieces", [1, 3, 17])
@pytest.mark.parametrize("log_target", [False, True])
def test_design_statistics_equal_the_scaled_designs_own(pieces, log_target):
    frame, data = awkward_houses(), config()
    prep = fit_preprocessor(frame, data, FeatureConfig(log_target=log_target))
    z, y = design_of(frame, prep)
    zz, zy, yy = moments_of(frame, data, pieces, log_target).design_statistics(prep)
    np.testing.assert_allclose(zz, z.T @ z, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(zy, z.T @ y, rtol=1e-10, atol=1e-8)
    assert yy == pytest.approx(float(y @ y), rel=1e-10)


@pytest.mark.parametrize("pieces", [1, 5])
def test_encoded_moments_give_the_means_and_the_centred_gram(pieces):
    frame, data = awkward_houses(), config()
    prep = fit_preprocessor(frame, data, FeatureConfig())
    # Every encoded column, none left out (the aliasing check may drop zip: its own bug).
    encoded = dataclasses.replace(prep, dropped_columns={}).encode(frame)
    means, squares, centred = moments_of(frame, data, pieces).encoded_moments(
        prep.medians, prep.levels
    )
    np.testing.assert_allclose(means, encoded.mean(axis=0), rtol=1e-12)
    deviations = encoded - encoded.mean(axis=0)
    np.testing.assert_allclose(centred, deviations.T @ deviations, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(squares, np.diag(centred), rtol=1e-12)
    zip_variance = centred[2, 2] / len(frame)
    assert zip_variance == pytest.approx(frame["zip"].var(ddof=0), rel=1e-9)  # 50010 ± 2 kept


def test_counts_come_from_the_moments():
    frame, data = awkward_houses(), config()
    moments = moments_of(frame, data, 4)
    assert moments.rows == len(frame)
    assert moments.missing_counts() == {"area": 20, "year": 0, "zip": 0}
    counts = moments.level_counts("hood")
    assert counts["<missing>"] == 15 and sum(counts.values()) == len(frame)


def test_a_fold_complement_is_the_total_less_the_fold():
    frame, data = awkward_houses(), config()
    parts = frame_pieces(frame, 80)
    each = [RawMoments.of(p, data.numeric_features, ["hood"], "price") for p in parts]
    total = each[0] + each[1] + each[2]
    complement = total - each[1]
    expected = each[0] + each[2]
    prep = fit_preprocessor(frame, data, FeatureConfig())
    for got, want in zip(
        complement.design_statistics(prep), expected.design_statistics(prep), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-7)


def test_levels_unseen_in_some_chunks_merge_by_name():
    frame, data = awkward_houses(), config()
    frame = frame.sort_values("hood", na_position="first").reset_index(drop=True)
    prep = fit_preprocessor(frame, data, FeatureConfig())
    z, _ = design_of(frame, prep)
    zz, _, _ = moments_of(frame, data, 6).design_statistics(prep)  # most chunks see one level
    np.testing.assert_allclose(zz, z.T @ z, rtol=1e-10, atol=1e-8)


def test_moments_of_other_columns_refuse_to_combine():
    frame = awkward_houses()
    one = RawMoments.of(frame, ["area"], [], "price")
    other = RawMoments.of(frame, ["year"], [], "price")
    with pytest.raises(ValueError, match="different columns"):
        one + other
