"""Split and features: deterministic split, train-only fitting, safe encoding, JSON round trip."""

import json

import numpy as np
import pandas as pd
import pytest

from houseprice.config import FeatureConfig, SplitConfig
from houseprice.preprocessing import Preprocessor
from houseprice.tasks.features import build_feature_set, fit_preprocessor, split_data
from houseprice.tasks.statistics import TargetLeakError
from tests.conftest import make_houses, small_config


def test_split_is_deterministic_complete_and_disjoint(houses):
    first = split_data(houses, SplitConfig(seed=3))
    again = split_data(houses, SplitConfig(seed=3))
    for part, same in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(part, same)
    prices = [set(part["price"]) for part in first]
    assert set.union(*prices) == set(houses["price"])
    assert sum(len(p) for p in prices) == len(houses)
    assert all(len(part) > 0 for part in first)


def test_rows_keep_their_part_when_the_data_grows():
    grown = make_houses(rows=2000, seed=5)
    before = split_data(grown.iloc[:1000], SplitConfig(seed=3))
    after = split_data(grown, SplitConfig(seed=3))
    assert set(before.test["price"]) <= set(after.test["price"])
    assert set(before.train["price"]) <= set(after.train["price"])
    assert len(after.test) == pytest.approx(0.15 * 2000, rel=0.2)


def test_tiny_data_still_gets_every_part():
    tiny = make_houses(rows=5)
    assert all(len(part) >= 1 for part in split_data(tiny, SplitConfig(seed=0)))


def test_split_depends_on_content_not_row_order(houses):
    shuffled = houses.sample(frac=1, random_state=1)
    original = split_data(houses, SplitConfig(seed=3))
    reordered = split_data(shuffled, SplitConfig(seed=3))
    assert set(original.test["price"]) == set(reordered.test["price"])
    other_seed = split_data(houses, SplitConfig(seed=4))
    assert set(original.test["price"]) != set(other_seed.test["price"])


def test_split_refuses_too_few_rows(houses):
    with pytest.raises(ValueError, match="at least 3 rows"):
        split_data(houses.iloc[:2], SplitConfig())


def test_scaler_is_fitted_on_training_rows_only(tmp_path, houses):
    config = small_config(tmp_path)
    features = build_feature_set(houses, config)
    train_area = features.split.train["area"]
    assert features.preprocessor.means[0] == pytest.approx(train_area.mean())
    assert features.training.x_train[:, 0].mean() == pytest.approx(0, abs=1e-12)
    assert features.training.x_train[:, 0].std() == pytest.approx(1)
    assert features.x_test.shape == (len(features.split.test), features.training.x_train.shape[1])


def test_unseen_and_missing_values_do_not_crash(tmp_path, houses):
    config = small_config(tmp_path)
    preprocessor = fit_preprocessor(houses, config.data, config.features)
    odd = houses.iloc[:2].copy()
    odd.loc[odd.index[0], "hood"] = "Atlantis"
    odd.loc[odd.index[1], "area"] = np.nan
    matrix = preprocessor.transform(odd)
    assert np.isfinite(matrix).all()
    reference_row = houses[houses["hood"] == preprocessor.reference_levels["hood"]].iloc[[0]]
    atlantis = preprocessor.encode(odd)[0, 2:]
    assert (atlantis == preprocessor.encode(reference_row)[0, 2:]).all()
    assert preprocessor.unseen_categories(odd) == {"hood": ["Atlantis"]}
    assert preprocessor.encode(odd)[1, 0] == pytest.approx(houses["area"].median())


def test_one_hot_drops_the_most_frequent_level(tmp_path):
    frame = make_houses(rows=10)  # North appears 4 times, South and East 3 times each
    config = small_config(tmp_path)
    preprocessor = fit_preprocessor(frame, config.data, config.features)
    assert preprocessor.reference_levels == {"hood": "North"}
    assert preprocessor.feature_names == ["area", "year", "hood=East", "hood=South"]


def test_log_target_round_trips(tmp_path, houses):
    config = small_config(tmp_path)
    logged = fit_preprocessor(houses, config.data, FeatureConfig(log_target=True))
    scaled = logged.transform_target(houses["price"])
    assert scaled.mean() == pytest.approx(0, abs=1e-12)
    np.testing.assert_allclose(logged.inverse_target(scaled), houses["price"], rtol=1e-12)


def test_preprocessor_survives_json(tmp_path, houses):
    config = small_config(tmp_path)
    preprocessor = fit_preprocessor(houses, config.data, config.features)
    reloaded = Preprocessor.from_dict(json.loads(json.dumps(preprocessor.to_dict())))
    np.testing.assert_array_equal(reloaded.transform(houses), preprocessor.transform(houses))
    with pytest.raises(ValueError, match="unsupported preprocessing format"):
        Preprocessor.from_dict({**preprocessor.to_dict(), "format": 99})


def test_number_coded_categories_match_with_and_without_gaps(tmp_path):
    frame = make_houses(rows=30).assign(hood=[50010, 50011, 50012] * 10)
    config = small_config(tmp_path)
    preprocessor = fit_preprocessor(frame, config.data, config.features)
    with_gap = frame.head(3).astype({"hood": "float64"})
    with_gap.loc[0, "hood"] = np.nan  # the column now reads as floats: 50011.0, ...
    assert preprocessor.unseen_categories(with_gap) == {"hood": ["<missing>"]}
    np.testing.assert_array_equal(
        preprocessor.encode(with_gap)[1:], preprocessor.encode(frame.head(3))[1:]
    )


def test_split_ignores_dtype_changes_from_a_merge():
    frame = make_houses(rows=400, seed=3)
    as_floats = frame.astype({"year": "float64"})  # what appending a row with a gap does
    original = split_data(frame, SplitConfig(seed=3))
    widened = split_data(as_floats, SplitConfig(seed=3))
    assert set(original.test["price"]) == set(widened.test["price"])


def with_leaks(rows: int = 120) -> pd.DataFrame:
    """make_houses plus a copy of the price and the price × 1.0001 plus a little noise."""
    houses = make_houses(rows=rows, seed=8)
    noise = np.random.default_rng(9).normal(0, 50, rows)
    return houses.assign(price_copy=houses.price, near_price=houses.price * 1.0001 + noise)


@pytest.mark.parametrize("leak", ["price_copy", "near_price"])
def test_a_feature_that_nearly_equals_the_target_is_refused_as_a_leak_by_name(tmp_path, leak):
    config = small_config(tmp_path, data={"numeric_features": ["area", "year", leak]})
    with pytest.raises(
        TargetLeakError, match=rf"'{leak}' \(R² [01]\.\d+\) explain the target 'price'"
    ):
        build_feature_set(with_leaks(), config)


def test_with_a_log_target_the_log_of_the_price_is_the_leak(tmp_path):
    frame = make_houses(rows=120, seed=8).assign(log_price=lambda f: np.log(f.price))
    config = small_config(
        tmp_path, data={"numeric_features": ["area", "log_price"]}, features={"log_target": True}
    )
    with pytest.raises(TargetLeakError, match=r"'log_price'.*target 'price' \(fitted as its log\)"):
        build_feature_set(frame, config)
    # A copy of the price is a leak too, though its R² with the log price is below the limit.
    copy = small_config(
        tmp_path, data={"numeric_features": ["area", "price_copy"]}, features={"log_target": True}
    )
    with pytest.raises(TargetLeakError, match=r"'price_copy'"):
        build_feature_set(frame.assign(price_copy=frame.price * 1.0001), copy)
    # A strong but real feature is no leak: area alone explains most, not all, of the price.
    build_feature_set(frame, small_config(tmp_path, features={"log_target": True}))


def skewed_houses(rows: int = 300, seed: int = 10) -> pd.DataFrame:
    """Prices log-linear in area with skewed (exponential) log errors: median and mean differ."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(600, 3000, rows)
    year = rng.integers(1950, 2020, rows)
    log_price = 11 + 0.0004 * area + rng.exponential(0.3, rows)
    return pd.DataFrame({"area": area, "year": year, "hood": "North", "price": np.exp(log_price)})


def test_a_log_target_estimates_the_median_unless_the_mean_is_asked_for_with_duans_factor(
    tmp_path,
):
    houses = skewed_houses()
    data = small_config(tmp_path).data
    median = fit_preprocessor(houses, data, FeatureConfig(log_target=True))
    mean = fit_preprocessor(
        houses, data, FeatureConfig(log_target=True, log_target_estimate="mean")
    )
    # Duan's factor computed a second way: residuals of numpy's polynomial least squares.
    design = np.column_stack([houses.area, houses.year, np.ones(len(houses))])
    fitted = design @ np.linalg.lstsq(design, np.log(houses.price), rcond=None)[0]
    duan = np.mean(np.exp(np.log(houses.price) - fitted))
    assert median.smearing_factor == pytest.approx(duan, rel=1e-10)
    assert (median.estimate, mean.estimate) == ("median", "mean")
    scaled = median.transform_target(houses.price)
    np.testing.assert_allclose(median.inverse_target(scaled), houses.price, rtol=1e-12)
    np.testing.assert_allclose(mean.inverse_target(scaled), duan * houses.price, rtol=1e-12)
    # On the training rows, the mean estimates average out near the average price; the median
    # estimates fall short of it by about the factor.
    log_fitted = median.transform_target(np.exp(fitted))
    means, medians = mean.inverse_target(log_fitted), median.inverse_target(log_fitted)
    assert means.mean() == pytest.approx(houses.price.mean(), rel=0.01)
    assert medians.mean() < houses.price.mean() / (1 + (duan - 1) / 2)


def test_the_mean_estimate_is_refused_without_a_log_target():
    with pytest.raises(ValueError, match=r"applies only with features\.log_target"):
        FeatureConfig(log_target_estimate="mean")
