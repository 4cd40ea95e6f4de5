"""Exact medians from counts: pandas' median, whatever the chunking, past the distinct cap too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import houseprice.medians
from houseprice.medians import BucketCounts, ValueCounts


def counts_in(values: np.ndarray, pieces: int):
    total = None
    for piece in np.array_split(values, pieces):
        one = ValueCounts.of(piece)
        total = one if total is None else total + one
    return total


@pytest.mark.parametrize("pieces", [1, 2, 7, 50])
@pytest.mark.parametrize("rows", [1, 2, 99, 100])
def test_value_counts_give_pandas_median(pieces, rows):
    rng = np.random.default_rng(rows)
    values = rng.integers(-50, 50, rows).astype(float)
    values[rng.random(rows) < 0.1] = np.nan
    counts = counts_in(values, min(pieces, rows))
    expected = pd.Series(values).median()
    if np.isnan(expected):
        assert counts.median() is None
    else:
        assert counts.median() == expected


def test_no_values_have_no_median():
    assert ValueCounts.of(np.array([np.nan, np.nan])).median() is None


@pytest.mark.parametrize("rows", [9_999, 10_000])
def test_past_the_cap_a_window_and_a_second_pass_give_the_exact_median(monkeypatch, rows):
    monkeypatch.setattr(houseprice.medians, "MAX_DISTINCT", 100)
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(1e5, 3e4, rows - 10), -rng.random(10)])
    values[::97] = np.nan
    counts = counts_in(values, 13)
    assert isinstance(counts, BucketCounts) and counts.total == (~np.isnan(values)).sum()
    window = counts.median_window()
    inside = np.concatenate([window.values_between(p) for p in np.array_split(values, 5)])
    assert len(inside) < len(values) / 10  # the second pass keeps a sliver of the rows
    assert window.median(inside) == pd.Series(values).median()


def test_buckets_sort_as_the_floats_do():
    values = np.array([-np.inf, -1e300, -2.5, -1e-300, 0.0, 1e-300, 3.0, 1e300, np.inf])
    buckets = houseprice.medians._bucket(values)
    assert (np.diff(buckets) >= 0).all() and buckets[0] < buckets[-1]
