"""Statistics: the regression table against statsmodels, aliased columns, cross-validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from houseprice.config import EvaluationConfig, PromotionConfig, build_config
from houseprice.tasks.evaluate import BASIS_CV, evaluate_models
from houseprice.tasks.features import AliasedFeatureError, build_feature_set, split_data
from houseprice.tasks.promote import decide_promotion, decision_headline
from houseprice.tasks.statistics import find_aliased_columns, regression_table
from tests.conftest import make_houses, small_config
from tests.fakes import exact_results

TRUE_COEFFICIENTS = {"intercept": 30_000.0, "sqft": 95.0, "beds": 4_000.0, "age": -350.0}


def heteroskedastic_houses(rows: int = 300, seed: int = 3) -> pd.DataFrame:
    """Houses with known coefficients whose noise grows with size (heteroskedastic)."""
    rng = np.random.default_rng(seed)
    sqft = rng.uniform(500, 3500, rows)
    beds = rng.integers(1, 6, rows).astype(float)
    age = rng.uniform(0, 80, rows)
    hood = rng.choice(["North", "South", "East"], rows)
    signal = (
        TRUE_COEFFICIENTS["intercept"]
        + TRUE_COEFFICIENTS["sqft"] * sqft
        + TRUE_COEFFICIENTS["beds"] * beds
        + TRUE_COEFFICIENTS["age"] * age
        + pd.Series(hood).map({"North": 0.0, "South": 12_000.0, "East": -6_000.0}).to_numpy()
    )
    price = signal + rng.normal(0, 1, rows) * 8.0 * sqft  # spread proportional to size
    return pd.DataFrame({"sqft": sqft, "beds": beds, "age": age, "hood": hood, "price": price})


def statsmodels_fit(design: np.ndarray, target: np.ndarray):
    return sm.OLS(target, sm.add_constant(design, has_constant="add")).fit()


def assert_table_matches_statsmodels(table, fit, reference, rel=1e-8):
    """Every figure of our table against statsmodels' OLS results."""
    columns = {
        "coef": reference.params,
        "se": reference.bse,
        "se_hc0": reference.HC0_se,
        "se_hc1": reference.HC1_se,
        "t": reference.tvalues,
        "p": reference.pvalues,
        "ci_low": reference.conf_int()[:, 0],
        "ci_high": reference.conf_int()[:, 1],
    }
    for key, expected in columns.items():
        assert [row[key] for row in table] == pytest.approx(np.asarray(expected), rel=rel), key
    assert fit["n"] == reference.nobs
    assert fit["r2"] == pytest.approx(reference.rsquared, rel=rel)
    assert fit["adj_r2"] == pytest.approx(reference.rsquared_adj, rel=rel)
    assert fit["rse"] == pytest.approx(np.sqrt(reference.scale), rel=rel)
    assert fit["f"] == pytest.approx(reference.fvalue, rel=rel)
    assert fit["f_p"] == pytest.approx(reference.f_pvalue, rel=1e-6, abs=1e-300)


def test_regression_table_reproduces_statsmodels_with_robust_errors():
    frame = heteroskedastic_houses()
    design = frame[["sqft", "beds", "age"]].to_numpy()
    ours = regression_table(design, frame.price.to_numpy(), ["sqft", "beds", "age"])
    reference = statsmodels_fit(design, frame.price.to_numpy())
    assert_table_matches_statsmodels(ours.table, ours.fit, reference)
    assert [row["term"] for row in ours.table] == ["intercept", "sqft", "beds", "age"]
    # Heteroskedastic noise: the robust errors differ from the classical ones, as they should.
    assert ours.table[1]["se_hc0"] != pytest.approx(ours.table[1]["se"], rel=0.02)


def test_regression_table_of_a_saturated_fit_has_no_residual_degrees_of_freedom():
    design = np.array([[1.0], [2.0]])
    ours = regression_table(design, np.array([3.0, 5.0]), ["x"])
    assert ours.fit["df_resid"] == 0
    assert np.isnan(ours.table[1]["se"]) and np.isnan(ours.fit["f"])
    assert ours.table[1]["coef"] == pytest.approx(2.0)


def test_aliased_columns_are_the_later_ones_and_say_what_explains_them():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    design = np.column_stack([a, b, 2 * a - b, np.full(50, 7.0), rng.normal(size=50)])
    aliased = find_aliased_columns(design, ["a", "b", "a2b", "seven", "c"])
    assert list(aliased) == ["a2b", "seven"]
    assert "a linear combination of a, b" in aliased["a2b"]
    assert "intercept" in aliased["seven"]


def test_near_collinear_columns_are_aliased_but_merely_correlated_ones_are_kept():
    rng = np.random.default_rng(1)
    a = rng.normal(size=200)
    near = a + 1e-7 * rng.normal(size=200)
    correlated = a + 0.01 * rng.normal(size=200)
    assert list(find_aliased_columns(np.column_stack([a, near]), ["a", "near"])) == ["near"]
    assert find_aliased_columns(np.column_stack([a, correlated]), ["a", "close"]) == {}


def nested_houses(rows: int = 120, seed: int = 4) -> pd.DataFrame:
    """Zip codes nested in cities: each zip lies in exactly one city."""
    rng = np.random.default_rng(seed)
    zips = np.array(["z1", "z2", "z3", "z4", "z5", "z6"])[np.arange(rows) % 6]
    city = pd.Series(zips).map(
        {"z1": "Ames", "z2": "Ames", "z3": "Boone", "z4": "Boone", "z5": "Nevada", "z6": "Nevada"}
    )
    sqft = rng.uniform(600, 3000, rows)
    price = 20_000 + 100 * sqft + rng.normal(0, 5_000, rows)
    return pd.DataFrame({"sqft": sqft, "city": city, "zip": zips, "price": price})


def test_nested_categories_drop_the_redundant_indicators_and_keep_a_unique_fit(tmp_path):
    config = small_config(
        tmp_path,
        data={"numeric_features": ["sqft"], "categorical_features": ["city", "zip"]},
        split={"validation_fraction": 0, "test_fraction": 0},
    )
    features = build_feature_set(nested_houses(), config)
    dropped = features.preprocessor.dropped_columns
    assert dropped and all(name.startswith("zip=") for name in dropped)  # city came first
    assert all("city=" in why or "zip=" in why for why in dropped.values())
    evaluation = evaluate_models(features, [], EvaluationConfig())
    terms = [row["term"] for row in evaluation.regression.table]
    assert not set(dropped) & set(terms)
    assert all(np.isfinite(row["se"]) for row in evaluation.regression.table)
    assert evaluation.metrics_payload()["ols"]["dropped_columns"] == dropped


def test_a_listed_feature_explained_entirely_by_others_is_refused_by_name(tmp_path):
    config = small_config(
        tmp_path, data={"numeric_features": ["sqft"], "categorical_features": ["zip", "city"]}
    )
    with pytest.raises(AliasedFeatureError, match=r"\['city'\].*remove them"):
        build_feature_set(nested_houses(), config)
    # Chosen automatically (all-columns mode), it is left out instead.
    features = build_feature_set(nested_houses(), config, features_listed=False)
    assert all(name.startswith("city=") for name in features.preprocessor.dropped_columns)


def test_full_sample_split_keeps_every_row_for_training():
    config = build_config({"split": {"validation_fraction": 0, "test_fraction": 0}})
    parts = split_data(make_houses(rows=30), config.split)
    assert (len(parts.train), len(parts.validation), len(parts.test)) == (30, 0, 0)


@pytest.mark.parametrize(
    ("split", "training", "message"),
    [
        ({"validation_fraction": 0, "test_fraction": 0.2}, {}, "both be 0"),
        (
            {"validation_fraction": 0, "test_fraction": 0},
            {"torch": {"early_stopping_patience": 5}},
            "early_stopping_patience needs validation rows",
        ),
    ],
)
def test_half_a_full_sample_split_or_early_stopping_without_rows_is_refused(
    split, training, message
):
    from houseprice.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        build_config({"split": split, "training": training})


def textbook_houses(rows: int = 90, seed: int = 11) -> pd.DataFrame:
    """A textbook-sized sale table: the model explains about two thirds of the variance."""
    rng = np.random.default_rng(seed)
    sqft = rng.uniform(800, 3000, rows)
    lot = rng.uniform(2_000, 15_000, rows)
    price = 50_000 + 60 * sqft + 2 * lot + rng.normal(0, 27_000, rows)
    return pd.DataFrame({"sqft": sqft, "lot": lot, "price": price})


def test_a_textbook_sized_dataset_with_a_sound_model_gets_a_champion_by_default(tmp_path):
    config = small_config(
        tmp_path, data={"numeric_features": ["sqft", "lot"], "categorical_features": []}
    )
    features = build_feature_set(textbook_houses(), config)
    assert len(features.split.test) < 200
    evaluation = evaluate_models(features, exact_results(features), EvaluationConfig())
    assert evaluation.basis == BASIS_CV
    assert evaluation.cross_validation["rows"] == 90
    assert evaluation.models["ols"].test.r2 < 0.5  # its 9 test rows alone would have refused it
    decision = decide_promotion(evaluation, None, PromotionConfig())
    assert decision.promoted, decision.reason
    assert "cross-validation" in decision.reason
    assert decision_headline(decision) == "PROMOTE"


def test_a_refusal_without_a_champion_names_the_limit_and_run_and_never_keeps_a_champion(tmp_path):
    frame = textbook_houses()
    frame["price"] = np.random.default_rng(0).permutation(frame["price"].to_numpy())
    config = small_config(
        tmp_path, data={"numeric_features": ["sqft", "lot"], "categorical_features": []}
    )
    features = build_feature_set(frame, config)
    evaluation = evaluate_models(features, exact_results(features), EvaluationConfig())
    decision = decide_promotion(evaluation, None, PromotionConfig())
    assert not decision.promoted
    assert "cross-validated R²" in decision.reason
    assert "promotion.min_test_r2" in decision.reason and "--run" in decision.reason
    assert decision_headline(decision) == "no champion made"


def large_mean_small_spread_columns(rows: int = 240, seed: int = 12) -> dict[str, np.ndarray]:
    """Columns that vary a little around a large level, a constant, and noise around one."""
    rng = np.random.default_rng(seed)
    return {
        "zip": rng.integers(50010, 50015, rows).astype(float),  # variance/mean² about 1e-9
        "yyyymm": rng.integers(200801, 200813, rows).astype(float),
        "epoch": 1.2e9 + rng.uniform(-1e6, 1e6, rows),
        "constant": np.full(rows, 7.0),
        # round-off around a constant: 0.1 * 3 and 0.3 differ in the last bit
        "noise": np.where(rng.random(rows) < 0.5, 0.1 * 3, 0.3) * 1e5,
    }


def test_a_large_level_with_a_small_spread_varies_but_a_constant_and_its_round_off_do_not():
    columns = large_mean_small_spread_columns()
    aliased = find_aliased_columns(np.column_stack(list(columns.values())), list(columns))
    assert list(aliased) == ["constant", "noise"]
    assert all("constant in the training rows" in why for why in aliased.values())


def test_zip_codes_months_and_epoch_seconds_reach_the_design(tmp_path):
    columns = large_mean_small_spread_columns()
    frame = pd.DataFrame(columns).assign(
        price=lambda f: 1_000 * (f.zip - 50_000) + 30 * (f.yyyymm - 200_800) + f.epoch / 1e4
    )
    names = list(columns)
    config = small_config(
        tmp_path,
        data={"numeric_features": names, "categorical_features": []},
        split={"validation_fraction": 0, "test_fraction": 0},
    )
    features = build_feature_set(frame, config, features_listed=False)
    assert list(features.preprocessor.dropped_columns) == ["constant", "noise"]
    assert features.preprocessor.feature_names == ["zip", "yyyymm", "epoch"]
