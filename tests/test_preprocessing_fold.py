"""The preprocessor fitted as a fold: the same in one chunk and in many, from frames or a table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import houseprice.medians
from houseprice.chunks import frame_table
from houseprice.config import FeatureConfig
from houseprice.flows.engine import LocalEngine
from houseprice.folds import fold_frames, frame_pieces
from houseprice.tasks.features import fit_preprocessor
from houseprice.tasks.preprocessing_fold import fit_preprocessor_by
from tests.test_moments import awkward_houses, config


def assert_same_preprocessor(got, want, rtol: float = 1e-10) -> None:
    assert got.medians == want.medians
    assert (got.levels, got.reference_levels) == (want.levels, want.reference_levels)
    assert got.dropped_columns == want.dropped_columns
    np.testing.assert_allclose(got.means, want.means, rtol=rtol)
    np.testing.assert_allclose(got.scales, want.scales, rtol=rtol)
    assert got.target_mean == pytest.approx(want.target_mean, rel=rtol)
    assert got.target_scale == pytest.approx(want.target_scale, rel=rtol)


def reference_fit(frame: pd.DataFrame, data, features: FeatureConfig):
    """The fit as written before the fold, from the whole frame's encoded design."""
    prep = fit_preprocessor(frame, data, features)
    encoded = prep.encode(frame)
    assert np.allclose(encoded.mean(axis=0), prep.means, rtol=1e-12)
    return prep


@pytest.mark.parametrize("rows_per_chunk", [7, 50, 1_000])
@pytest.mark.parametrize("log_target", [False, True])
def test_chunked_fit_equals_the_whole_frames(rows_per_chunk, log_target):
    frame, data = awkward_houses(), config()
    features = FeatureConfig(log_target=log_target)
    whole = reference_fit(frame, data, features)
    pieces = frame_pieces(frame, rows_per_chunk)
    chunked = fit_preprocessor_by(lambda fold: fold_frames(fold, pieces), data, features)
    assert_same_preprocessor(chunked, whole)
    assert whole.medians["area"] == frame["area"].median()


def test_an_engine_fits_a_table_as_frames_are_fitted():
    frame, data = awkward_houses(), config()
    table = frame_table(frame, "houses", 33)
    fitted = fit_preprocessor_by(
        lambda fold: LocalEngine(threads=2).fold(fold, table), data, FeatureConfig()
    )
    assert_same_preprocessor(fitted, fit_preprocessor(frame, data, FeatureConfig()))


def test_only_the_selected_rows_are_fitted():
    frame, data = awkward_houses(), config()
    north = lambda rows: (rows["hood"] == "North").to_numpy()  # noqa: E731
    pieces = frame_pieces(frame, 40)
    fitted = fit_preprocessor_by(lambda f: fold_frames(f, pieces), data, FeatureConfig(), north)
    expected = fit_preprocessor(frame[frame["hood"] == "North"], data, FeatureConfig())
    assert_same_preprocessor(fitted, expected)


def test_past_the_distinct_cap_a_second_pass_finds_the_exact_median(monkeypatch):
    monkeypatch.setattr(houseprice.medians, "MAX_DISTINCT", 20)
    frame, data = awkward_houses(), config()
    passes = []

    def fold(stage):
        passes.append(stage.name)
        return fold_frames(stage, frame_pieces(frame, 30))

    fitted = fit_preprocessor_by(fold, data, FeatureConfig())
    assert passes == ["fit-preprocessor", "medians"]  # area has > 20 distinct values
    assert fitted.medians["area"] == frame["area"].median()
    assert fitted.medians["zip"] == frame["zip"].median()  # 5 values: exact from the counts


def test_a_zip_code_of_large_mean_and_small_spread_is_scaled_not_dropped():
    frame, data = awkward_houses(), config()
    fitted = fit_preprocessor(frame, data, FeatureConfig())
    position = fitted.feature_names.index("zip")  # the constant test is relative to its size
    assert fitted.scales[position] == pytest.approx(frame["zip"].std(ddof=0), rel=1e-9)


@pytest.mark.parametrize("chunk_rows", [7, 1_000])
def test_the_design_fold_writes_the_whole_frames_scaled_parts(tmp_path, chunk_rows):
    from houseprice import layout
    from houseprice.config import SplitConfig
    from houseprice.tasks.features import DesignFold, design_block
    from houseprice.tasks.split import part_cuts, split_data

    frame, data = awkward_houses(), config()
    prep = fit_preprocessor(frame, data, FeatureConfig())
    split = SplitConfig()
    run = layout.RunPaths("design", tmp_path / str(chunk_rows))
    fold = DesignFold(prep, split.seed, part_cuts(split, len(frame)), run)
    designed = LocalEngine(threads=2).fold(fold, frame_table(frame, "houses", chunk_rows))
    parts = split_data(frame, split)
    written = np.vstack([np.load(path) for path in designed.train_files])
    np.testing.assert_array_equal(written, design_block(parts.train, prep))
    assert (designed.train_rows, designed.validation_rows) == (
        len(parts.train),
        len(parts.validation),
    )
    pd.testing.assert_frame_equal(designed.test_rows, parts.test)


@pytest.mark.parametrize("estimate", ["median", "mean"])
def test_the_smearing_factor_is_the_same_in_one_chunk_and_many(estimate):
    frame, data = awkward_houses(), config()
    features = FeatureConfig(log_target=True, log_target_estimate=estimate)
    whole = fit_preprocessor(frame, data, features)
    pieces = frame_pieces(frame, 13)
    chunked = fit_preprocessor_by(lambda fold: fold_frames(fold, pieces), data, features)
    assert whole.smearing_factor > 1.0 and whole.log_target_estimate == estimate
    assert chunked.smearing_factor == pytest.approx(whole.smearing_factor, rel=1e-12)
    assert chunked.training_ranges == whole.training_ranges
    assert whole.training_ranges["area"] == [frame["area"].min(), frame["area"].max()]


@pytest.mark.parametrize("log_target", [False, True])
def test_a_copy_of_the_price_is_refused_as_a_leak_in_chunks(log_target):
    from houseprice.tasks.statistics import TargetLeakError

    frame, data = awkward_houses(), config()
    frame["price_copy"] = frame["price"] * 1.0001
    data = data.model_copy(update={"numeric_features": [*data.numeric_features, "price_copy"]})
    pieces = frame_pieces(frame, 17)
    with pytest.raises(TargetLeakError, match="price_copy"):
        fit_preprocessor_by(
            lambda fold: fold_frames(fold, pieces), data, FeatureConfig(log_target=log_target)
        )
