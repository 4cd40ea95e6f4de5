"""Synthetic known-answer data: conditioning, recoverable coefficients, the source string, I/O."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from houseprice import synthetic
from houseprice.synthetic import SyntheticSpec, make_synthetic_data


def _lstsq(data: synthetic.SyntheticData) -> np.ndarray:
    design = np.column_stack([data.x, np.ones(data.x.shape[0])])
    return np.linalg.lstsq(design, data.y, rcond=None)[0]


@pytest.mark.parametrize("cond", [1.0, 30.0, 1000.0, 1e6])
def test_centered_features_have_the_asked_condition_number(cond):
    data = make_synthetic_data(SyntheticSpec(rows=500, features=6, cond=cond, seed=3))
    centered = data.x - data.x.mean(axis=0)
    assert np.linalg.cond(centered) == pytest.approx(cond, rel=1e-6)


def test_features_are_correlated_and_of_different_scales():
    data = make_synthetic_data(SyntheticSpec(rows=2000, features=8, cond=1000, seed=1))
    scales = data.x.std(axis=0)
    correlations = np.corrcoef(data.x.T)[np.triu_indices(8, 1)]
    assert scales.max() / scales.min() > 10
    assert np.abs(correlations).max() > 0.3
    # Scaling removes the spread of scales, not the correlations: cond drops but stays above 1.
    standardized = (data.x - data.x.mean(axis=0)) / scales
    assert 1.5 < np.linalg.cond(standardized) < 1000


def test_lstsq_recovers_the_coefficients_and_intercept_without_noise():
    data = make_synthetic_data(SyntheticSpec(rows=300, features=5, cond=100, noise=0.0))
    solution = _lstsq(data)
    np.testing.assert_allclose(solution[:-1], data.coefficients, rtol=1e-8)
    assert solution[-1] == pytest.approx(data.intercept, rel=1e-8)


def test_lstsq_recovers_the_coefficients_within_the_noise():
    data = make_synthetic_data(SyntheticSpec(rows=20_000, features=5, cond=100, noise=1000.0))
    solution = _lstsq(data)
    # A coefficient's standard error is noise / (sqrt(rows) * feature std); allow 5 of them.
    standard_error = 1000.0 / (np.sqrt(20_000) * data.x.std(axis=0))
    assert np.all(np.abs(solution[:-1] - data.coefficients) < 5 * standard_error)
    residual = data.y - data.x @ solution[:-1] - solution[-1]
    assert residual.std() == pytest.approx(1000.0, rel=0.05)


def test_prices_are_positive_and_centered_on_a_realistic_mean():
    data = make_synthetic_data(SyntheticSpec(rows=50_000, features=20))
    assert data.y.min() > 0
    assert data.y.mean() == pytest.approx(synthetic.MEAN_PRICE, rel=0.01)


def test_same_seed_same_data_and_another_seed_differs():
    first, again, other = (
        make_synthetic_data(SyntheticSpec(rows=50, features=3, seed=seed)) for seed in (4, 4, 5)
    )
    np.testing.assert_array_equal(first.x, again.x)
    np.testing.assert_array_equal(first.y, again.y)
    assert not np.allclose(first.coefficients, other.coefficients)


def test_parse_source_applies_defaults_and_keys():
    assert synthetic.parse_synthetic_source("synthetic:") == SyntheticSpec()
    spec = synthetic.parse_synthetic_source("synthetic:rows=1e6, features=20,cond=50,seed=7")
    assert spec == SyntheticSpec(rows=1_000_000, features=20, cond=50.0, seed=7)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("synthetic:colour=3", "unknown key 'colour'"),
        ("synthetic:rows=many", "rows='many'"),
        ("synthetic:rows=10.5", "rows='10.5'"),
        ("synthetic:rows=5,features=10", "more rows than features"),
        ("synthetic:cond=0.5", "cond >= 1"),
        ("rows=10", "starts with 'synthetic:'"),
    ],
)
def test_parse_source_refuses_bad_specs(source, message):
    with pytest.raises(ValueError, match=message):
        synthetic.parse_synthetic_source(source)


def test_frame_from_source_has_feature_columns_then_price():
    frame = synthetic.synthetic_frame_from_source("synthetic:rows=12,features=3,seed=2")
    assert list(frame.columns) == ["x01", "x02", "x03", "price"]
    assert len(frame) == 12
    data = make_synthetic_data(SyntheticSpec(rows=12, features=3, seed=2))
    np.testing.assert_array_equal(frame["price"].to_numpy(), data.y)


def test_parquet_writer_and_command_line_round_trip(tmp_path):
    data = make_synthetic_data(SyntheticSpec(rows=40, features=3, seed=1))
    written = pd.read_parquet(synthetic.write_synthetic_parquet(data, tmp_path / "a.parquet"))
    np.testing.assert_array_equal(written.drop(columns="price").to_numpy(), data.x)
    synthetic.main(
        ["--rows", "40", "--features", "3", "--seed", "1", "--out", str(tmp_path / "b.parquet")]
    )
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "b.parquet"), written)


def test_generator_imports_and_runs_with_numpy_alone():
    code = (
        "import sys; sys.modules['pandas'] = None; sys.modules['pydantic'] = None\n"
        "from houseprice.synthetic import SyntheticSpec, make_synthetic_data\n"
        "print(make_synthetic_data(SyntheticSpec(rows=20, features=2)).x.shape)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "(20, 2)"
