"""Streamed features: the preprocessor fitted chunk by chunk equals fit_preprocessor's."""

from __future__ import annotations

import math
import pickle
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from houseprice.config import FeatureConfig
from houseprice.tasks.features import fit_preprocessor
from houseprice.tasks.streamed_features import (
    TEST,
    TRAIN,
    VALIDATION,
    combine_encoded,
    combine_profiles,
    design_chunk,
    encode_chunk,
    finish_preprocessor,
    finish_smearing,
    log_fit,
    profile_chunk,
    smearing_sums,
    start_preprocessor,
)
from tests.conftest import houses_config, small_config, write_houses_folder

NUMERIC = ["sqft", "beds", "baths", "rooms", "year", "epoch", "constant"]
CATEGORICAL = ["hood", "zip"]
DATA = houses_config(numeric_features=NUMERIC, categorical_features=CATEGORICAL)


def awkward_houses(rows: int = 400, seed: int = 5) -> pd.DataFrame:
    """Gaps, an aliased column (rooms = beds + baths), a constant, and large offsets."""
    rng = np.random.default_rng(seed)
    sqft = rng.uniform(500, 3500, rows)
    sqft[rng.random(rows) < 0.1] = np.nan
    beds = rng.integers(1, 6, rows)
    baths = rng.integers(1, 4, rows).astype(float)
    year = 2000 + rng.normal(0, 1, rows)  # offset 2000, spread 1: Σx² − n·mean² loses digits
    hood = rng.choice(np.array(["North", "South", "East", None], dtype=object), rows)
    zips = rng.choice([50010.0, 50011.0, 50012.0, np.nan], rows)  # number-coded, with gaps
    price = 20_000 + 90 * np.nan_to_num(sqft, nan=2000) + 5_000 * beds + rng.normal(0, 3e3, rows)
    return pd.DataFrame(
        {
            "sqft": sqft,
            "beds": beds,
            "baths": baths,
            "rooms": beds + baths,
            "year": year,
            # round-off around a constant (spread 1e-15 of its size): a constant
            "epoch": 1e9 + rng.normal(0, 1e-6, rows),
            "constant": np.full(rows, 7.0),
            "hood": hood,
            "zip": zips,
            "price": price,
        }
    )


def part_labels(rows: int, seed: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).choice([TRAIN, VALIDATION, TEST], rows, p=[0.6, 0.2, 0.2])


def chunks(frame: pd.DataFrame, labels: np.ndarray, count: int):
    """The frame cut into `count` consecutive chunks, each with its labels."""
    for rows in np.array_split(np.arange(len(frame)), count):
        yield frame.iloc[rows], labels[rows].astype(np.int8)


def streamed_preprocessor(frame, labels, count, features, data=DATA, sample_size=50_000):
    """Passes A and B over `count` chunks, as the flow runs them."""
    profile = combine_profiles(
        profile_chunk(chunk, part, data, sample_size)
        for chunk, part in chunks(frame, labels, count)
    )
    prep = start_preprocessor(profile, data, features)
    encoded = combine_encoded(
        encode_chunk(chunk, part, prep).statistics for chunk, part in chunks(frame, labels, count)
    )
    return finish_preprocessor(prep, encoded, features)


@pytest.mark.parametrize("count", [1, 3, 7])
@pytest.mark.parametrize("log_target", [False, True])
def test_streamed_preprocessor_equals_the_one_fitted_on_the_training_rows(count, log_target):
    frame, features = awkward_houses(), FeatureConfig(log_target=log_target)
    labels = part_labels(len(frame))
    reference = fit_preprocessor(frame[labels == TRAIN].reset_index(drop=True), DATA, features)
    streamed = streamed_preprocessor(frame, labels, count, features)
    assert streamed.medians == reference.medians  # exact: the sample holds every row
    assert streamed.levels == reference.levels
    assert streamed.reference_levels == reference.reference_levels
    assert list(streamed.dropped_columns) == ["rooms", "epoch", "constant"]
    assert {k: v.split(" (share")[0] for k, v in streamed.dropped_columns.items()} == {
        k: v.split(" (share")[0] for k, v in reference.dropped_columns.items()
    }
    assert streamed.feature_names == reference.feature_names
    assert streamed.training_ranges == reference.training_ranges
    assert streamed.means == pytest.approx(reference.means, rel=1e-12)
    assert streamed.scales == pytest.approx(reference.scales, rel=1e-12)
    assert streamed.target_mean == pytest.approx(reference.target_mean, rel=1e-12)
    assert streamed.target_scale == pytest.approx(reference.target_scale, rel=1e-12)


def test_without_standardizing_means_and_scales_stay_neutral():
    frame, features = awkward_houses(), FeatureConfig(standardize=False)
    labels = part_labels(len(frame))
    reference = fit_preprocessor(frame[labels == TRAIN].reset_index(drop=True), DATA, features)
    streamed = streamed_preprocessor(frame, labels, 3, features)
    assert (streamed.means, streamed.scales) == (reference.means, reference.scales)
    assert (streamed.target_mean, streamed.target_scale) == (0.0, 1.0)
    assert list(streamed.dropped_columns) == list(reference.dropped_columns)


def test_the_offset_column_would_lose_digits_without_a_centre():
    year = awkward_houses()["year"].to_numpy()
    naive = np.mean(year**2) - np.mean(year) ** 2
    assert abs(naive / np.var(year) - 1) > 1e-12  # so the 1e-12 agreement above is the centre's


@pytest.mark.parametrize("count", [1, 3, 7])
def test_design_blocks_are_the_transformed_training_and_validation_rows(count):
    frame, features = awkward_houses(), FeatureConfig()
    labels = part_labels(len(frame))
    prep = streamed_preprocessor(frame, labels, count, features)
    parts = [design_chunk(chunk, part, prep) for chunk, part in chunks(frame, labels, count)]
    for part, name in ((TRAIN, "train"), (VALIDATION, "validation")):
        rows = frame[labels == part]
        expected = np.column_stack([prep.transform(rows), prep.transform_target(rows["price"])])
        assert np.array_equal(np.vstack([getattr(p, name) for p in parts]), expected)
    test_rows = pd.concat([p.test_rows for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(test_rows, frame[labels == TEST].reset_index(drop=True))
    # And close to the blocks of the preprocessor fitted in memory.
    reference = fit_preprocessor(frame[labels == TRAIN].reset_index(drop=True), DATA, features)
    train = np.vstack([p.train for p in parts])
    assert np.allclose(train[:, :-1], reference.transform(frame[labels == TRAIN]), atol=1e-11)


def test_medians_past_the_sample_are_close_and_do_not_depend_on_the_chunking():
    rows = 20_000
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "area": rng.lognormal(7, 0.5, rows),
            "beds": rng.integers(1, 6, rows),  # few values, each repeated thousands of times
            "price": rng.normal(3e5, 5e4, rows),
        }
    )
    data = houses_config(numeric_features=["area", "beds"], categorical_features=[])
    labels = np.full(rows, TRAIN, dtype=np.int8)
    size = 1_000
    one, seven = (
        combine_profiles(profile_chunk(c, p, data, size) for c, p in chunks(frame, labels, count))
        for count in (1, 7)
    )
    assert not one.exact_medians and len(one.samples["area"].values) == size
    median_one = start_preprocessor(one, data, FeatureConfig()).medians
    assert median_one == start_preprocessor(seven, data, FeatureConfig()).medians
    # The sample median's quantile is within DKW's bound at δ = 1e-6 of the true median's.
    bound = math.sqrt(math.log(2 / 1e-6) / (2 * size))
    quantile = np.mean(frame["area"].to_numpy() <= median_one["area"])
    assert abs(quantile - 0.5) <= bound
    assert median_one["beds"] == frame["beds"].median()


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("sqft", [1e200, -1e200], r"features \['sqft'\] are not finite"),
        ("price", [1e200, -1e200], "target 'price' cannot be scaled"),
    ],
)
def test_an_overflowing_spread_is_refused_by_name(column, values, message):
    frame = awkward_houses()
    frame[column] = np.resize(values, len(frame))
    with pytest.raises(ValueError, match=message):
        streamed_preprocessor(frame, part_labels(len(frame)), 3, FeatureConfig())


def test_a_chunk_whose_scaled_rows_overflow_is_refused_by_name():
    frame, labels = awkward_houses(), part_labels(400)
    prep = streamed_preprocessor(frame, labels, 3, FeatureConfig())
    frame.loc[np.flatnonzero(labels == VALIDATION)[0], "year"] = np.inf
    with pytest.raises(ValueError, match=r"features \['year'\] are not finite"):
        design_chunk(frame, labels, prep)


def test_labels_must_match_the_rows():
    with pytest.raises(ValueError, match="one label per row"):
        profile_chunk(awkward_houses(), np.zeros(3, dtype=np.int8), DATA)


def test_every_pass_and_its_result_pickles_for_a_dask_worker():
    frame, labels = awkward_houses(), part_labels(400)
    profile = profile_chunk(frame, labels, DATA)
    prep = start_preprocessor(pickle.loads(pickle.dumps(profile)), DATA, FeatureConfig())
    encoded = pickle.loads(pickle.dumps(encode_chunk(frame, labels, prep)))
    finished = finish_preprocessor(prep, encoded.statistics, FeatureConfig())
    chunk = pickle.loads(pickle.dumps(design_chunk(frame, labels, finished)))
    assert chunk.train.shape == ((labels == TRAIN).sum(), len(finished.feature_names) + 1)
    for function in (profile_chunk, encode_chunk, design_chunk, combine_encoded):
        assert pickle.loads(pickle.dumps(function)) is function


def test_statistics_around_different_centres_are_not_added():
    frame, labels = awkward_houses(), part_labels(400)
    prep = start_preprocessor(profile_chunk(frame, labels, DATA), DATA, FeatureConfig())
    moved = replace(prep, medians={**prep.medians, "sqft": prep.medians["sqft"] + 1})
    with pytest.raises(ValueError, match="different centres"):
        combine_encoded([encode_chunk(frame, labels, p).statistics for p in (prep, moved)])


@pytest.mark.parametrize("count", [1, 4])
def test_the_streamed_smearing_factor_is_the_one_fitted_on_the_training_rows(count):
    frame = awkward_houses()
    features = FeatureConfig(log_target=True, log_target_estimate="mean")
    labels = part_labels(len(frame))
    reference = fit_preprocessor(frame[labels == TRAIN].reset_index(drop=True), DATA, features)
    prep = start_preprocessor(
        combine_profiles(profile_chunk(c, p, DATA) for c, p in chunks(frame, labels, count)),
        DATA,
        features,
    )
    encoded = [encode_chunk(c, p, prep) for c, p in chunks(frame, labels, count)]
    finished = finish_preprocessor(prep, combine_encoded(e.statistics for e in encoded), features)
    fit = log_fit(finished, combine_encoded(e.statistics for e in encoded))
    smeared = finish_smearing(finished, sum(smearing_sums(e.train, fit) for e in encoded))
    assert smeared.log_target_estimate == "mean"
    assert smeared.smearing_factor == pytest.approx(reference.smearing_factor, rel=1e-9)
    assert smeared.smearing_factor > 1.0  # residuals spread: the mean is above the median


def test_the_streamed_stage_smears_and_refuses_leaks_as_the_in_memory_one(
    tmp_path, prefect_harness
):
    from prefect import flow

    from houseprice import layout
    from houseprice.chunks import plan_chunks
    from houseprice.flows.streamed import build_streamed_features
    from houseprice.tasks.features import build_feature_set
    from houseprice.tasks.statistics import TargetLeakError

    folder = write_houses_folder(tmp_path / "houses", rows=3_000, files=3, row_group=500)
    features = {"log_target": True, "log_target_estimate": "mean"}
    config = small_config(tmp_path, data={"source": str(folder)}, features=features)
    run = layout.create_run(config.paths.artifacts_dir)

    @flow
    def features_both_ways(table, frame, config):
        return build_streamed_features(table, config, run, True), build_feature_set(frame, config)

    table = plan_chunks(str(folder), 1_000)
    streamed, memory = features_both_ways(table, pd.read_parquet(folder), config)
    assert streamed.preprocessor.smearing_factor > 1.0
    assert streamed.preprocessor.smearing_factor == pytest.approx(
        memory.preprocessor.smearing_factor, rel=1e-9
    )
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    for part in sorted(folder.glob("*.parquet")):
        frame = pd.read_parquet(part)
        frame.assign(price_copy=frame.price).to_parquet(leaky / part.name, row_group_size=500)
    named = config.data.model_copy(update={"numeric_features": ["area", "year", "price_copy"]})
    with pytest.raises(TargetLeakError, match=r"'price_copy' \(R² 1\.0+\) explain the target"):
        features_both_ways(
            plan_chunks(str(leaky), 1_000), None, config.model_copy(update={"data": named})
        )


def test_zip_codes_months_and_epoch_seconds_reach_the_chunked_design():
    from tests.test_statistics import large_mean_small_spread_columns

    columns = large_mean_small_spread_columns()
    frame = pd.DataFrame(columns).assign(price=lambda f: 1_000 * (f.zip - 50_000) + f.epoch / 1e4)
    data = houses_config(numeric_features=list(columns), categorical_features=[])
    labels = np.full(len(frame), TRAIN, dtype=np.int8)
    streamed = streamed_preprocessor(frame, labels, 4, FeatureConfig(), data)
    assert streamed.feature_names == ["zip", "yyyymm", "epoch"]
    assert list(streamed.dropped_columns) == ["constant", "noise"]


@pytest.mark.parametrize("leak", ["price_copy", "near_price"])
def test_the_chunked_path_refuses_a_leak_from_the_same_sums(leak):
    from houseprice.tasks.statistics import TargetLeakError
    from tests.test_features import with_leaks

    frame = with_leaks()
    data = houses_config(numeric_features=["area", "year", leak])
    labels = np.full(len(frame), TRAIN, dtype=np.int8)
    with pytest.raises(TargetLeakError, match=rf"'{leak}'"):
        streamed_preprocessor(frame, labels, 3, FeatureConfig(), data)
