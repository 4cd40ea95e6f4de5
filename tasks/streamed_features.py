"""Streamed features: the preprocessor fitted from chunks, never from the training rows whole.

Three passes over the chunks; each is a per-chunk function of (one chunk, small arguments) that
returns a small result, and a combiner, so a loop (local engine) or a Dask map runs them alike:

A. profile_chunk, combine_profiles → start_preprocessor: category counts and numeric medians.
B. encode_chunk, combine_encoded → finish_preprocessor: the aliased columns, means, spreads and
   the target's standardization, from the encoded design's sums and Gram; the chunk's training
   and validation rows encoded (the flow keeps them as scratch files), its test rows raw.
B'. With a log target, smearing_sums over the encoded training blocks (log_fit from B's sums,
   finish_smearing): Duan's smearing factor, which the mean estimate of the price needs.
C. scale_encoded: an encoded block scaled once the preprocessor is finished, without reading or
   encoding the chunk again. design_chunk is B and C on one chunk.

Pass A lives in streamed_profile.py (with the medians' error bound); its names are importable
from here too, so the flow imports one module.

Centring. Pass B sums x − c and (x − c)(x − c)ᵀ around fixed centres c (the medians, 0 for the
indicators, the target's sample median), so a column like years near 2000 with spread 1 keeps
its digits: Σx² − n·mean² would cancel about seven of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import reduce
from typing import NamedTuple

import numpy as np
import pandas as pd

from houseprice.config import FeatureConfig
from houseprice.preprocessing import (
    Preprocessor,
    numeric_ranges,
    refuse_non_finite,
    safe_scale,
)
from houseprice.tasks.statistics import (
    aliased_columns_from_gram,
    refuse_target_leaks,
    target_leaks,
)
from houseprice.tasks.streamed_profile import (
    MEDIAN_SAMPLE_SIZE,
    TEST,
    TRAIN,
    VALIDATION,
    ChunkProfile,
    ValueSample,
    checked_labels,
    combine_profiles,
    profile_chunk,
    start_preprocessor,
)

__all__ = [
    "MEDIAN_SAMPLE_SIZE",
    "TEST",
    "TRAIN",
    "VALIDATION",
    "ChunkProfile",
    "DesignChunk",
    "EncodedChunk",
    "EncodedStatistics",
    "LogFit",
    "ValueSample",
    "combine_encoded",
    "combine_profiles",
    "design_chunk",
    "encode_chunk",
    "finish_preprocessor",
    "finish_smearing",
    "log_fit",
    "profile_chunk",
    "scale_encoded",
    "smearing_sums",
    "start_preprocessor",
]


@dataclass
class EncodedStatistics:
    """Pass B's result: sums of the training rows' encoded design and target around centres."""

    rows: int
    centre: np.ndarray  # (columns,) c: the medians, 0 for the indicators
    sums: np.ndarray  # (columns,) Σ (x − c)
    gram: np.ndarray  # (columns, columns) Σ (x − c)(x − c)ᵀ
    target_centre: float
    target_sum: float  # Σ (y − target_centre), y the (log) target
    target_squares: float  # Σ (y − target_centre)²
    cross: np.ndarray  # (columns,) Σ (x − c)(y − target_centre), for the leak check
    # With a log target, the price's own sums around exp(target_centre), for the leak check: a
    # copy of the price correlates with its log far below the limit on skewed prices. Zeros
    # without a log target.
    price_sums: np.ndarray  # (2,) Σ (p − pc), Σ (p − pc)²
    price_cross: np.ndarray  # (columns,) Σ (x − c)(p − pc)
    low: np.ndarray  # (columns,) each encoded column's minimum (+inf without rows)
    high: np.ndarray  # (columns,) and maximum (−inf without rows)

    def __add__(self, other: EncodedStatistics) -> EncodedStatistics:
        if not (
            np.array_equal(self.centre, other.centre) and self.target_centre == other.target_centre
        ):
            raise ValueError("encoded statistics around different centres cannot be added")
        return replace(
            self,
            rows=self.rows + other.rows,
            sums=self.sums + other.sums,
            gram=self.gram + other.gram,
            target_sum=self.target_sum + other.target_sum,
            target_squares=self.target_squares + other.target_squares,
            cross=self.cross + other.cross,
            price_sums=self.price_sums + other.price_sums,
            price_cross=self.price_cross + other.price_cross,
            low=np.minimum(self.low, other.low),
            high=np.maximum(self.high, other.high),
        )


class DesignChunk(NamedTuple):
    """Pass C's result: a chunk's scaled blocks, each row [scaled design..., scaled target]."""

    train: np.ndarray  # (train rows, features + 1) float64
    validation: np.ndarray  # (validation rows, features + 1) float64
    test_rows: pd.DataFrame  # the chunk's TEST rows, raw, index reset


class EncodedChunk(NamedTuple):
    """Pass B's result for one chunk: its training rows' statistics, and its rows encoded.

    train and validation are [encoded design..., (log) target] before scaling, every encoded
    column kept: pass C scales them once the preprocessor is finished, so a chunk is read and
    encoded once for both passes.
    """

    statistics: EncodedStatistics
    train: np.ndarray  # (train rows, encoded columns + 1) float64
    validation: np.ndarray  # (validation rows, encoded columns + 1) float64
    test_rows: pd.DataFrame  # the chunk's TEST rows, raw, index reset


def encode_chunk(frame: pd.DataFrame, labels: np.ndarray, prep: Preprocessor) -> EncodedChunk:
    """Pass B on one chunk: the training rows' centred sums and Gram, and every part encoded."""
    if prep.dropped_columns or prep.means:
        raise ValueError("pass B needs start_preprocessor's preprocessor, not a finished one")
    labels = checked_labels(frame, labels)
    blocks = []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for part in (TRAIN, VALIDATION):
            rows = frame[labels == part]
            blocks.append(
                np.column_stack([prep.encode(rows), _target_values(rows[prep.target], prep)])
            )
        centre = _centre(prep)
        shifted = blocks[0][:, :-1] - centre
        target = blocks[0][:, -1] - prep.target_mean
        price = np.zeros(len(target))
        if prep.log_target:
            price = np.exp(blocks[0][:, -1]) - np.exp(prep.target_mean)
        statistics = EncodedStatistics(
            rows=len(shifted),
            centre=centre,
            sums=shifted.sum(axis=0),
            gram=shifted.T @ shifted,
            target_centre=prep.target_mean,
            target_sum=float(target.sum()),
            target_squares=float(target @ target),
            cross=shifted.T @ target,
            price_sums=np.array([price.sum(), price @ price]),
            price_cross=shifted.T @ price,
            low=blocks[0][:, :-1].min(axis=0, initial=np.inf),
            high=blocks[0][:, :-1].max(axis=0, initial=-np.inf),
        )
    test_rows = frame[labels == TEST].reset_index(drop=True)
    return EncodedChunk(statistics, blocks[0], blocks[1], test_rows)


def combine_encoded(stats: Iterable[EncodedStatistics]) -> EncodedStatistics:
    """The statistics of all the chunks: their sum."""
    return reduce(lambda first, second: first + second, stats)


def finish_preprocessor(
    prep: Preprocessor, encoded: EncodedStatistics, features: FeatureConfig
) -> Preprocessor:
    """Dropped columns, means, scales and the target's scaling, as fit_preprocessor sets them."""
    rows, names = encoded.rows, prep.encoded_names
    if rows == 0:
        raise ValueError("no training rows to fit the preprocessor on")
    with np.errstate(over="ignore", invalid="ignore"):
        offset = encoded.sums / rows
        centred_gram = encoded.gram - rows * np.outer(offset, offset)
        means = encoded.centre + offset
        spreads = np.sqrt(np.maximum(np.diag(centred_gram), 0.0) / rows)
        # An overflowed spread must be named as such before the aliasing check reads the column
        # as a constant, as in fit_preprocessor.
        refuse_non_finite(names, ~np.isfinite(means + spreads))
        centre = encoded.centre
        magnitude = np.diag(encoded.gram) + 2 * centre * encoded.sums + rows * centre**2
        target_offset = np.float64(encoded.target_sum) / rows  # numpy floats overflow to inf
        target_mean = encoded.target_centre + target_offset
        target_std = np.sqrt(np.maximum(encoded.target_squares / rows - target_offset**2, 0.0))
    dropped = aliased_columns_from_gram(centred_gram, magnitude, names)
    keep = np.array([name not in dropped for name in names], dtype=bool)
    width = int(keep.sum())
    with np.errstate(over="ignore", invalid="ignore"):
        cross = encoded.cross - offset * encoded.target_sum  # Σ (x − x̄)(y − ȳ)
        target_squares = encoded.target_squares - encoded.target_sum * target_offset
        price_cross = encoded.price_cross - offset * encoded.price_sums[0]
        price_squares = encoded.price_sums[1] - encoded.price_sums[0] ** 2 / rows
    kept = [name for name in names if name not in dropped]
    squares = np.diag(centred_gram)[keep]
    leaks = target_leaks(squares, cross[keep], float(target_squares), kept)
    if prep.log_target:
        leaks |= target_leaks(squares, price_cross[keep], float(price_squares), kept)
    refuse_target_leaks(leaks, prep.target, prep.log_target, rows)
    # Σy² past float64 leaves the spread NaN, which safe_scale would read as a constant.
    if features.standardize and not (np.isfinite(target_mean) and np.isfinite(target_std)):
        raise ValueError(
            f"target {prep.target!r} cannot be scaled (mean {target_mean:g}, spread "
            f"{target_std:g}): its values are too large; check them for unit errors"
        )
    return replace(
        prep,
        dropped_columns=dropped,
        means=means[keep].tolist() if features.standardize else [0.0] * width,
        scales=[safe_scale(s) for s in spreads[keep]] if features.standardize else [1.0] * width,
        target_mean=float(target_mean) if features.standardize else 0.0,
        target_scale=safe_scale(target_std) if features.standardize else 1.0,
        log_target_estimate=features.log_target_estimate if prep.log_target else "median",
        training_ranges=numeric_ranges(prep.numeric_features, encoded.low, encoded.high),
    )


class LogFit(NamedTuple):
    """The exact least-squares fit of the log target, from pass B's sums, for the smearing pass."""

    keep: np.ndarray  # (encoded columns,) bool: the design's columns
    means: np.ndarray  # (design columns,) their training means
    coef: np.ndarray  # (design columns,) slopes on them
    target_mean: float


def log_fit(prep: Preprocessor, encoded: EncodedStatistics) -> LogFit:
    """Least squares from the centred Gram and cross-products (columns standardized to solve)."""
    rows = encoded.rows
    offset = encoded.sums / rows
    keep = np.array([name not in prep.dropped_columns for name in prep.encoded_names], dtype=bool)
    gram = (encoded.gram - rows * np.outer(offset, offset))[np.ix_(keep, keep)]
    cross = (encoded.cross - offset * encoded.target_sum)[keep]
    spread = np.sqrt(np.diag(gram))
    coef = np.zeros(len(spread))
    if len(spread):  # lstsq refuses a design without columns
        coef = np.linalg.lstsq(gram / np.outer(spread, spread), cross / spread, rcond=None)[0]
    target_mean = encoded.target_centre + encoded.target_sum / rows
    return LogFit(keep, (encoded.centre + offset)[keep], coef / spread, float(target_mean))


def smearing_sums(block: np.ndarray, fit: LogFit) -> np.ndarray:
    """The smearing pass on one encoded training block: [rows, Σ exp(residual)]."""
    fitted = fit.target_mean + (block[:, :-1][:, fit.keep] - fit.means) @ fit.coef
    return np.array([len(block), float(np.exp(block[:, -1] - fitted).sum())])


def finish_smearing(prep: Preprocessor, sums: np.ndarray) -> Preprocessor:
    """prep with Duan's smearing factor from the summed smearing_sums of every training block."""
    return replace(prep, smearing_factor=float(sums[1] / sums[0]))


def scale_encoded(block: np.ndarray, prep: Preprocessor) -> np.ndarray:
    """Pass C on one encoded block: [scaled design..., scaled target], as prep.transform makes it.

    Refuses (naming them) columns or targets that are not finite after scaling.
    """
    keep = [name not in prep.dropped_columns for name in prep.encoded_names]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        design = (block[:, :-1][:, keep] - np.asarray(prep.means)) / np.asarray(prep.scales)
        target = (block[:, -1] - prep.target_mean) / prep.target_scale
    refuse_non_finite(prep.feature_names, ~np.isfinite(design).all(axis=0))
    if not np.isfinite(target).all():
        raise ValueError(
            f"target {prep.target!r} is not finite after scaling in "
            f"{int((~np.isfinite(target)).sum())} rows; check its values"
        )
    return np.column_stack([design, target])


def design_chunk(frame: pd.DataFrame, labels: np.ndarray, prep: Preprocessor) -> DesignChunk:
    """Passes B and C on one chunk, with prep finished: its scaled blocks and raw test rows."""
    unfinished = replace(prep, dropped_columns={}, means=[])
    encoded = encode_chunk(frame, labels, unfinished)
    train, validation = (scale_encoded(b, prep) for b in (encoded.train, encoded.validation))
    # The test rows are transformed later, in memory; their overflow is refused here too,
    # as check_finite_features refuses it for every part.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        bad = ~np.isfinite(prep.transform(encoded.test_rows)).all(axis=0)
    refuse_non_finite(prep.feature_names, bad)
    return DesignChunk(train, validation, encoded.test_rows)


def _centre(prep: Preprocessor) -> np.ndarray:
    """Pass B's fixed centre per encoded column: the median, or 0 for an indicator."""
    centre = np.zeros(len(prep.encoded_names))
    centre[: len(prep.numeric_features)] = [prep.medians[c] for c in prep.numeric_features]
    return np.where(np.isfinite(centre), centre, 0.0)


def _target_values(target: pd.Series, prep: Preprocessor) -> np.ndarray:
    values = target.astype("float64").to_numpy()
    return np.log(values) if prep.log_target else values
