"""The streamed least-squares reference (TSQR) and evaluation with the training rows on disk.

Each streamed figure is computed a second way, in memory, and the two must agree: the TSQR fit
against lstsq, the table against regression_table, the metrics against regression_metrics, and
evaluate_streamed against evaluate_models on the same rows.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest

from houseprice.config import EvaluationConfig
from houseprice.tasks.evaluate import evaluate_models, reference_regression_table
from houseprice.tasks.features import FeatureSet, build_feature_set
from houseprice.tasks.promote import select_run_model
from houseprice.tasks.regression import fit_least_squares, regression_metrics
from houseprice.tasks.reporting.view import _plotted_rows
from houseprice.tasks.statistics import RegressionTable
from houseprice.tasks.streamed_evaluation import evaluate_streamed, score_file
from houseprice.tasks.streamed_reference import (
    MetricsAccumulator,
    chunk_r,
    combine_r,
    least_squares_from_r,
    r_of_file,
    sandwich_meat_chunk,
    streamed_least_squares,
    streamed_r,
    streamed_regression_table,
)
from houseprice.trainers.design import DesignFiles, GramStatistics
from tests.conftest import make_houses, small_config
from tests.fakes import train_result


def _correlated(rows: int = 400, features: int = 4, seed: int = 0):
    """A standardized design whose columns are correlated (about 0.9), and a noisy target."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=(rows, 1))
    x = 3 * common + rng.normal(size=(rows, features))
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    y = x @ np.linspace(1.0, -0.5, features) + 0.3 + rng.normal(0, 0.5, rows)
    return x, y


def _design(tmp_path, x, y, chunks: int, x_val=None, y_val=None, val_chunks: int = 2):
    """DesignFiles of x, y (and a validation part) cut into chunk files, as the features stage."""

    def write(part: str, xs, ys, count: int) -> tuple[str, ...]:
        paths = []
        for i, block in enumerate(np.array_split(np.column_stack([xs, ys]), count)):
            path = tmp_path / f"{part}-{i:04d}.npy"
            np.save(path, block)
            paths.append(str(path))
        return tuple(paths)

    validation = () if x_val is None else write("validation", x_val, y_val, val_chunks)
    return DesignFiles(
        write("train", x, y, chunks),
        validation,
        len(y),
        0 if y_val is None else len(y_val),
        x.shape[1],
    )


def _params(model) -> np.ndarray:
    return np.append(model.weights, model.bias)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("chunks", [1, 3, 20])
def test_tsqr_equals_lstsq_whatever_the_number_of_chunks(tmp_path, chunks):
    x, y = _correlated()
    design = _design(tmp_path, x, y, chunks)
    streamed = streamed_least_squares(design.train_chunks())
    assert _relative(_params(streamed), _params(fit_least_squares(x, y))) < 1e-10


def test_combine_r_gives_the_same_r_in_any_grouping(tmp_path):
    x, y = _correlated()
    design = _design(tmp_path, x, y, 20)
    rs = [r_of_file(path) for path in design.train_files]
    flat = combine_r(rs)
    sequential = functools.reduce(lambda a, b: combine_r([a, b]), rs)
    backwards = functools.reduce(lambda a, b: combine_r([b, a]), rs[::-1])
    tree = rs
    while len(tree) > 1:  # pairwise, as a reduction over a cluster would merge them
        tree = [combine_r(tree[i : i + 2]) for i in range(0, len(tree), 2)]
    whole = chunk_r(x, y)
    for other in (sequential, backwards, tree[0], whole):
        assert _relative(other, flat) < 1e-13
    assert np.allclose(np.tril(flat, -1), 0) and (np.diag(flat) >= 0).all()


def test_an_aliased_column_gets_the_same_minimum_norm_solution_as_lstsq(tmp_path):
    x, y = _correlated()
    x = np.column_stack([x, x[:, 1]])  # the features stage drops these; the reference copes
    streamed = streamed_least_squares(_design(tmp_path, x, y, 3).train_chunks())
    assert _relative(_params(streamed), _params(fit_least_squares(x, y))) < 1e-10


def test_a_chunk_with_fewer_rows_than_columns_still_gives_a_square_r():
    x, y = _correlated(rows=2)
    assert chunk_r(x, y).shape == (6, 6)
    assert chunk_r(x[:0], y[:0]).shape == (6, 6)


@pytest.mark.parametrize("l2", [0.01, 0.5])
def test_the_ridge_optimum_from_r_equals_fit_least_squares(tmp_path, l2):
    x, y = _correlated()
    r, rows = streamed_r(_design(tmp_path, x, y, 3).train_chunks())
    ridge = least_squares_from_r(r, l2, rows)
    assert _relative(_params(ridge), _params(fit_least_squares(x, y, l2))) < 1e-10
    with pytest.raises(ValueError, match="number of rows"):
        least_squares_from_r(r, l2)


def _streamed_table(tmp_path, features: FeatureSet, chunks: int = 4) -> RegressionTable:
    training = features.training
    design = _design(tmp_path, training.x_train, training.y_train, chunks)
    r, rows = streamed_r(design.train_chunks())
    coef = _params(least_squares_from_r(r))
    meat = sum(sandwich_meat_chunk(x, y, coef) for x, y in design.train_chunks())
    return streamed_regression_table(r, meat, rows, features.preprocessor)


def _assert_same_table(streamed: RegressionTable, direct: RegressionTable, rtol: float) -> None:
    assert [row["term"] for row in streamed.table] == [row["term"] for row in direct.table]
    for ours, theirs in zip(streamed.table, direct.table, strict=True):
        for key in theirs.keys() - {"term"}:
            assert ours[key] == pytest.approx(theirs[key], rel=rtol, abs=1e-300), key
    for key, value in direct.fit.items():
        assert streamed.fit[key] == pytest.approx(value, rel=rtol), key


@pytest.mark.parametrize("log_target", [False, True])
def test_the_streamed_regression_table_equals_regression_table_on_the_raw_rows(
    tmp_path, log_target
):
    config = small_config(tmp_path, features={"log_target": log_target})
    features = build_feature_set(make_houses(rows=300), config)
    direct = reference_regression_table(features)
    _assert_same_table(_streamed_table(tmp_path, features), direct, rtol=1e-9)


def test_the_streamed_table_agrees_with_statsmodels(tmp_path):
    sm = pytest.importorskip("statsmodels.api")
    features = build_feature_set(make_houses(rows=300), small_config(tmp_path))
    prep, train = features.preprocessor, features.split.train
    fit = sm.OLS(train.price.to_numpy(), sm.add_constant(prep.encode(train))).fit()
    table = _streamed_table(tmp_path, features).table
    np.testing.assert_allclose([row["coef"] for row in table], fit.params, rtol=1e-9)
    np.testing.assert_allclose([row["se"] for row in table], fit.bse, rtol=1e-9)
    np.testing.assert_allclose([row["se_hc1"] for row in table], fit.HC1_se, rtol=1e-9)


def test_merged_metrics_equal_regression_metrics_on_all_the_rows():
    rng = np.random.default_rng(1)
    # A large mean and a small spread: R² from Σa² − (Σa)²/n would lose most of its digits.
    actual = 1e6 + rng.normal(0, 50, 1000)
    predicted = actual + rng.normal(0, 10, 1000)
    cuts = [0, 7, 300, 301, 650, 1000]
    parts = [
        MetricsAccumulator.of(actual[a:b], predicted[a:b]) for a, b in itertools.pairwise(cuts)
    ]
    expected = regression_metrics(actual, predicted)
    for merged in (sum(parts, MetricsAccumulator()), functools.reduce(lambda a, b: b + a, parts)):
        np.testing.assert_allclose(merged.result(), expected, rtol=1e-12)
    assert MetricsAccumulator().result() is None
    constant = MetricsAccumulator.of(np.full(3, 5.0), np.full(3, 4.0)) + MetricsAccumulator.of(
        np.full(2, 5.0), np.full(2, 6.0)
    )
    assert math.isnan(constant.result().r2) and constant.result().rmse == 1.0


def _evaluations(tmp_path, penalties):
    features = build_feature_set(make_houses(rows=400), small_config(tmp_path))
    training = features.training
    ols = fit_least_squares(training.x_train, training.y_train)
    ridge = fit_least_squares(training.x_train, training.y_train, 0.5)
    results = [
        train_result("torch", ols.weights, ols.bias),
        train_result("tensorflow", ridge.weights * 1.01, ridge.bias),
        train_result("jax", ols.weights * 0.9, ols.bias + 0.01),
    ]
    settings = EvaluationConfig(min_test_rows=1)  # no cross-validation: not run at scale
    in_memory = evaluate_models(features, results, settings, penalties)
    design = _design(
        tmp_path, training.x_train, training.y_train, 5, training.x_val, training.y_val, 3
    )
    prep = features.preprocessor
    streamed = evaluate_streamed(
        design, features.x_test, features.y_test, prep, results, settings, penalties
    )
    return in_memory, streamed


def _assert_close(ours: dict, theirs: dict) -> None:
    """Equal keys, numbers within 1e-9 relative, everything else (names, flags) equal."""
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        if isinstance(value, float):
            assert ours[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        else:
            assert ours[key] == value, key


def test_evaluate_streamed_equals_evaluate_models_on_the_same_rows(tmp_path):
    penalties = {"torch": 0.0, "tensorflow": 0.5, "jax": 0.0}
    in_memory, streamed = _evaluations(tmp_path, penalties)
    assert list(streamed.models) == list(in_memory.models) == ["ols", "torch", "tensorflow", "jax"]
    for name, expected in in_memory.models.items():
        model = streamed.models[name]
        assert _relative(_params(model.model), _params(expected.model)) < 1e-9
        for part in ("test", "validation", "in_sample"):
            np.testing.assert_allclose(getattr(model, part), getattr(expected, part), rtol=1e-9)
        assert model.train_mse_scaled == pytest.approx(expected.train_mse_scaled, rel=1e-9)
        assert model.coefficients == pytest.approx(expected.coefficients, rel=1e-9)
        np.testing.assert_allclose(model.test_predictions, expected.test_predictions, rtol=1e-9)
        assert model.train_predictions is None
    assert streamed.reference_check.keys() == in_memory.reference_check.keys()
    for name, check in in_memory.reference_check.items():
        _assert_close(streamed.reference_check[name], check)
    assert streamed.reference_check["tensorflow"]["reference"] == "ridge l2=0.5"
    assert streamed.reference_check["torch"]["within_tolerance"]
    assert not streamed.reference_check["jax"]["within_tolerance"]
    for ours, theirs in zip(streamed.agreements, in_memory.agreements, strict=True):
        _assert_close(ours._asdict(), theirs._asdict())
    _assert_same_table(streamed.regression, in_memory.regression, rtol=1e-9)
    assert streamed.y_train is None and streamed.training_rows == len(in_memory.y_train)


def test_the_streamed_payload_counts_the_training_rows_it_did_not_keep(tmp_path):
    in_memory, streamed = _evaluations(tmp_path, {})
    ours, theirs = streamed.metrics_payload(), in_memory.metrics_payload()
    assert ours["evaluation"] == theirs["evaluation"]
    assert ours["ols"]["in_sample"] == pytest.approx(theirs["ols"]["in_sample"], rel=1e-9)


def test_the_stages_that_read_training_predictions_cope_without_them(tmp_path):
    _, streamed = _evaluations(tmp_path, {"tensorflow": 0.5})
    actual, predicted, basis = _plotted_rows(streamed, "torch")  # the test rows, as always
    assert basis == "test" and len(actual) == len(predicted) == len(streamed.y_test)
    assert select_run_model(streamed) == "torch"  # chosen by validation RMSE
    assert streamed.metrics_payload()["evaluation"]["training_rows"] == streamed.training_rows


def test_evaluate_streamed_refuses_a_run_without_test_rows(tmp_path):
    x, y = _correlated()
    features = build_feature_set(make_houses(rows=60), small_config(tmp_path))
    with pytest.raises(ValueError, match="needs test rows"):
        evaluate_streamed(
            _design(tmp_path, x, y, 2),
            np.empty((0, 4)),
            np.empty(0),
            features.preprocessor,
            [],
            EvaluationConfig(),
        )


def test_a_chunk_file_is_scored_like_its_rows(tmp_path):
    x, y = _correlated()
    features = build_feature_set(make_houses(rows=60), small_config(tmp_path))
    design = _design(tmp_path, x, y, 1)
    model = fit_least_squares(x, y)
    scores = score_file(design.train_files[0], [model], features.preprocessor, model)
    prep = features.preprocessor
    expected = regression_metrics(prep.inverse_target(y), prep.inverse_target(model.predict(x)))
    np.testing.assert_allclose(scores.metrics[0].result(), expected, rtol=1e-12)
    assert scores.meat.shape == (5, 5) and scores.rows == len(y)


def test_tsqr_keeps_the_digits_the_normal_equations_lose_on_an_ill_conditioned_design():
    # Two columns correlated 1 − 1e-7: κ(Z) is about 4e3, so the normal equations (Zᵀ Z,
    # κ² ≈ 2e7) keep about 9 digits of the solution and the QR about 12. This is why the
    # reference is a streamed QR and not GramStatistics: it would lose the same digits as the
    # trainers that minimize from those statistics, and could not catch them.
    rng = np.random.default_rng(3)
    rows, rho = 5000, 1 - 1e-7
    first = rng.normal(size=rows)
    second = rho * first + math.sqrt(1 - rho**2) * rng.normal(size=rows)
    x = np.column_stack([first, second, rng.normal(size=rows)])
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    y = x @ np.array([1.0, -1.0, 0.5]) + 0.2 + rng.normal(0, 1e-4, rows)
    exact = _params(fit_least_squares(x, y))
    chunks = np.array_split(np.arange(rows), 7)
    tsqr = _params(streamed_least_squares((x[i], y[i]) for i in chunks))
    gram = functools.reduce(lambda a, b: a + b, (GramStatistics.of(x[i], y[i]) for i in chunks))
    normal = np.linalg.solve(gram.zz, gram.zy)
    tsqr_error, normal_error = _relative(tsqr, exact), _relative(normal, exact)
    assert tsqr_error < 1e-10
    assert tsqr_error < normal_error / 100
