"""The preprocessor, fitted as a fold: one pass over the training rows, the same at any chunking.

Each chunk gives the raw moments of its training rows (houseprice/moments.py) and the exact
value counts of its numeric columns (houseprice/medians.py). From their total come the medians,
the one-hot levels (ordered by count), the encoded columns' means and spreads, the aliased
columns and the target's standardisation, all without holding the rows. A second pass happens
only for a numeric column with more than 200,000 distinct values: it collects the few values
in the median's range.

`fit_preprocessor_by(fold, ...)` takes whatever folds the chunks: an engine over a run's table,
or `fold_frames` over frames in memory, so a small frame and 50M rows are fitted by one code
path. Which rows count as training rows is the fold's `select` (all of them by default; the
features stage passes the split's labels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from houseprice.config import DataConfig, FeatureConfig
from houseprice.folds import Fold
from houseprice.medians import BucketCounts, MedianWindow, ValueCounts
from houseprice.moments import RawMoments
from houseprice.preprocessing import (
    Preprocessor,
    numeric_ranges,
    order_levels,
    refuse_non_finite,
    safe_scale,
)
from houseprice.tasks.regression import LinearModel, solve_normal_equations
from houseprice.tasks.statistics import (
    aliased_columns_from_gram,
    refuse_target_leaks,
    target_leaks,
)

Folder = Callable[[Fold[Any, Any]], Any]  # folds a stage over the chunks; returns its result
RowSelector = Callable[[pd.DataFrame], np.ndarray]  # a chunk's rows → a boolean mask


@dataclass(frozen=True)
class FitStatistics:
    """What fitting needs from the training rows: their raw moments and numeric value counts."""

    moments: RawMoments
    counts: dict[str, ValueCounts | BucketCounts]
    ranges: dict[str, tuple[float, float]]  # each numeric column's least and greatest value

    def __add__(self, other: FitStatistics) -> FitStatistics:
        counts = {column: self.counts[column] + other.counts[column] for column in self.counts}
        ranges = {
            column: (min(low, other.ranges[column][0]), max(high, other.ranges[column][1]))
            for column, (low, high) in self.ranges.items()
        }
        return FitStatistics(self.moments + other.moments, counts, ranges)

    def __sub__(self, other: FitStatistics) -> FitStatistics:
        """These rows less other's, which must be among them (a cross-validation complement).

        The ranges stay these rows': extremes cannot be taken back, and a complement's
        preprocessing (a refit inside cross-validation) is never saved to guard predictions.
        """
        counts = {column: self.counts[column] - other.counts[column] for column in self.counts}
        return FitStatistics(self.moments - other.moments, counts, self.ranges)

    @classmethod
    def of(
        cls,
        rows: pd.DataFrame,
        data: DataConfig,
        log_target: bool,
    ) -> FitStatistics:
        """The statistics of some rows for data's typed columns."""
        numeric, categorical = tuple(data.numeric_features), tuple(data.categorical_features)
        return cls.from_columns(rows, data.target, numeric, categorical, log_target)

    @classmethod
    def from_columns(
        cls,
        rows: pd.DataFrame,
        target: str,
        numeric: tuple[str, ...],
        categorical: tuple[str, ...],
        log_target: bool,
    ) -> FitStatistics:
        """The statistics of some rows for these columns."""
        moments = RawMoments.of(rows, numeric, categorical, target, log_target)
        values = {column: _numbers(rows[column]) for column in numeric}
        counts = {column: ValueCounts.of(found) for column, found in values.items()}
        return cls(moments, counts, {c: _extremes(found) for c, found in values.items()})


@dataclass(frozen=True)
class FitStatisticsFold:
    """The training rows' FitStatistics, chunk by chunk."""

    target: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    log_target: bool
    select: RowSelector | None = None  # None: every row is a training row
    name: str = "fit-preprocessor"
    threads_help: bool = True

    @property
    def columns(self) -> tuple[str, ...] | None:
        # A selector may read every column (the split hashes whole rows).
        if self.select is not None:
            return None
        return tuple(dict.fromkeys((self.target, *self.numeric, *self.categorical)))

    def per_chunk(self, rows: pd.DataFrame) -> FitStatistics:
        if self.select is not None:
            rows = rows[self.select(rows)]
        return FitStatistics.from_columns(
            rows, self.target, self.numeric, self.categorical, self.log_target
        )

    def combine(self, first: FitStatistics, second: FitStatistics) -> FitStatistics:
        return first + second

    def finish(self, total: FitStatistics) -> FitStatistics:
        return total


@dataclass(frozen=True)
class MedianRangeFold:
    """The second pass, for columns past the distinct-value cap: the values in each window."""

    windows: dict[str, MedianWindow]
    select: RowSelector | None = None
    name: str = "medians"
    threads_help: bool = True

    @property
    def columns(self) -> tuple[str, ...] | None:
        return None if self.select is not None else tuple(self.windows)

    def per_chunk(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        if self.select is not None:
            rows = rows[self.select(rows)]
        return {c: w.values_between(_numbers(rows[c])) for c, w in self.windows.items()}

    def combine(self, first: dict[str, np.ndarray], second: dict[str, np.ndarray]):
        return {column: np.concatenate([first[column], second[column]]) for column in first}

    def finish(self, total: dict[str, np.ndarray]) -> dict[str, float]:
        return {column: window.median(total[column]) for column, window in self.windows.items()}


def fit_from_statistics(
    statistics: FitStatistics,
    fold: Folder,
    data: DataConfig,
    features: FeatureConfig,
    select: RowSelector | None = None,
) -> Preprocessor:
    """The preprocessor of the rows statistics describe; fold finds medians past the cap."""
    if statistics.moments.rows == 0:
        raise ValueError("no training rows to fit the preprocessor on")
    medians = exact_medians(statistics.counts)
    windows = {c: n.median_window() for c, n in statistics.counts.items() if c not in medians}
    if windows:
        medians |= fold(MedianRangeFold(windows, select))
    prep = preprocessor_from(statistics.moments, medians, data, features, statistics.ranges)
    if features.log_target:  # from the exact fit, which every selected model matches
        fits = {None: (prep, exact_fit(statistics.moments, prep))}
        prep.log_target_estimate = features.log_target_estimate
        prep.smearing_factor = fold(SmearingFold(fits, _Everywhere(select)))[None]
    return prep


def exact_fit(moments: RawMoments, prep: Preprocessor) -> LinearModel:
    """The exact least-squares fit of prep's scaled design, from the rows' moments."""
    zz, zy, _ = moments.design_statistics(prep)
    return solve_normal_equations(zz, zy)


@dataclass(frozen=True)
class SmearingFold:
    """Duan's smearing factor of each fit: mean exp(residual) over the rows it was fitted on.

    fits: key → (preprocessor, exact fit); rows_of(chunk) gives each key's rows of a chunk.
    """

    fits: dict[Any, tuple[Preprocessor, LinearModel]]
    rows_of: Callable[[pd.DataFrame], dict[Any, np.ndarray]]
    name: str = "smearing"
    columns: tuple[str, ...] | None = None
    threads_help: bool = True

    def per_chunk(self, rows: pd.DataFrame) -> dict[Any, tuple[float, int]]:
        masks = self.rows_of(rows)
        sums = {}
        for key, (prep, model) in self.fits.items():
            fitted = rows[masks[key]]
            scaled = prep.transform_target(fitted[prep.target]) - model.predict(
                prep.transform(fitted)
            )
            sums[key] = (float(np.exp(scaled * prep.target_scale).sum()), len(fitted))
        return sums

    def combine(self, first, second):
        return {k: (first[k][0] + second[k][0], first[k][1] + second[k][1]) for k in first}

    def finish(self, total) -> dict[Any, float]:
        return {key: exp_sum / rows for key, (exp_sum, rows) in total.items()}


@dataclass(frozen=True)
class _Everywhere:
    """One fit's rows: the selected ones (every row without a selector)."""

    select: RowSelector | None

    def __call__(self, rows: pd.DataFrame) -> dict[None, np.ndarray]:
        if self.select is None:
            return {None: np.ones(len(rows), dtype=bool)}
        return {None: self.select(rows)}


def fit_preprocessor_by(
    fold: Folder,
    data: DataConfig,
    features: FeatureConfig,
    select: RowSelector | None = None,
) -> Preprocessor:
    """The preprocessor fitted on the training rows of whatever `fold` folds over."""
    statistics = fold(
        FitStatisticsFold(
            data.target,
            tuple(data.numeric_features),
            tuple(data.categorical_features),
            features.log_target,
            select,
        )
    )
    return fit_from_statistics(statistics, fold, data, features, select)


def preprocessor_from(
    moments: RawMoments,
    medians: dict[str, float],
    data: DataConfig,
    features: FeatureConfig,
    ranges: dict[str, tuple[float, float]] | None = None,
) -> Preprocessor:
    """Levels, scaling, aliasing and the target's standardisation from the training moments."""
    levels, reference_levels = {}, {}
    for column in data.categorical_features:
        # Levels with rows only: a cross-validation complement lists its folds' levels too.
        counts = {level: n for level, n in moments.level_counts(column).items() if n > 0}
        reference_levels[column], levels[column] = order_levels(counts)
    rows = moments.rows
    target_mean, target_std = moments.target_mean_std()
    preprocessor = Preprocessor(
        target=data.target,
        numeric_features=list(data.numeric_features),
        categorical_features=list(data.categorical_features),
        medians=medians,
        levels=levels,
        reference_levels=reference_levels,
        means=[],
        scales=[],
        log_target=features.log_target,
        target_mean=target_mean if features.standardize else 0.0,
        target_scale=safe_scale(target_std) if features.standardize else 1.0,
    )
    names = preprocessor.encoded_names
    means, squares, centred = moments.encoded_moments(medians, levels)
    variances = np.maximum(squares, 0.0) / rows
    # A spread past float64 (1e200 squared) must be named as such before the aliasing check
    # below reads the overflowed column as a constant.
    with np.errstate(over="ignore", invalid="ignore"):
        refuse_non_finite(names, ~np.isfinite(means + np.sqrt(variances)))
        magnitude = np.diag(centred) + rows * means**2  # Σ x², as the aliasing check takes it
    # Aliased columns have no identifiable coefficient: leave them out of the design, so every
    # fit (and every coefficient reported) is unique rather than one of many equally good ones.
    preprocessor.dropped_columns = aliased_columns_from_gram(centred, magnitude, names)
    kept = np.array([name not in preprocessor.dropped_columns for name in names], dtype=bool)
    refuse_leaks(preprocessor, moments, medians, squares, kept)
    if ranges is not None:  # a cross-validation refit guards no predictions
        preprocessor.training_ranges = numeric_ranges(
            list(data.numeric_features), *_imputed_extremes(ranges, medians, data)
        )
    width = int(kept.sum())
    if features.standardize:
        preprocessor.means = means[kept].tolist()
        preprocessor.scales = [safe_scale(s) for s in np.sqrt(variances[kept])]
    else:
        preprocessor.means, preprocessor.scales = [0.0] * width, [1.0] * width
    return preprocessor


def refuse_leaks(
    prep: Preprocessor,
    moments: RawMoments,
    medians: dict[str, float],
    squares: np.ndarray,
    kept: np.ndarray,
) -> None:
    """Refuse design columns that (nearly) equal the target, or the price under a log target."""
    names = [name for name, keep in zip(prep.encoded_names, kept, strict=True) if keep]
    crosses = [moments.target_cross(medians, prep.levels)]
    if prep.log_target:  # a copy of the price follows log(price) with R² of only about 0.97
        crosses.append(moments.price_cross(medians, prep.levels))
    leaks: dict[str, float] = {}
    for cross, target_squares in crosses:
        leaks |= target_leaks(squares[kept], cross[kept], target_squares, names)
    refuse_target_leaks(leaks, prep.target, prep.log_target, moments.rows)


def _imputed_extremes(
    ranges: dict[str, tuple[float, float]] | None, medians: dict[str, float], data: DataConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Each numeric column's least and greatest value once imputed (its median where missing)."""
    ranges = ranges or {}
    low, high = [], []
    for column in data.numeric_features:
        least, greatest = ranges.get(column, (np.inf, -np.inf))
        low.append(min(least, medians[column]) if np.isfinite(least) else medians[column])
        high.append(max(greatest, medians[column]) if np.isfinite(greatest) else medians[column])
    return np.asarray(low), np.asarray(high)


def exact_medians(counts: dict[str, ValueCounts | BucketCounts]) -> dict[str, float]:
    """Each column's exact median from its value counts (0 with no value); windowed ones left."""
    medians = {}
    for column, values in counts.items():
        if isinstance(values, ValueCounts):
            median = values.median()
            medians[column] = 0.0 if median is None else median
    return medians


def _extremes(values: np.ndarray) -> tuple[float, float]:
    """The least and greatest present value (+inf and -inf with none)."""
    present = values[~np.isnan(values)]
    if not len(present):
        return np.inf, -np.inf
    return float(present.min()), float(present.max())


def _numbers(values: pd.Series) -> np.ndarray:
    return values.astype("float64").to_numpy()
