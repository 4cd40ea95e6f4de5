"""The least-squares reference over training rows on disk: a streamed QR (TSQR), never Zᵀ Z.

The trainers minimize the MSE from the normal-equation statistics (GramStatistics: Zᵀ Z), whose
condition number is the square of the design's. The reference must not share that weakness, or a
fit that lost digits to conditioning would agree with a reference that lost the same digits. So
each chunk of rows [x, 1, y] is reduced to the R of its QR ((features + 2)² numbers, orthogonal
transformations only), the chunks' Rs are stacked and reduced again (in any grouping: a tree on a
cluster or a loop), and the solution is a triangular solve on the final R: it keeps about
16 − log10 κ(Z) digits where the normal equations keep 16 − 2·log10 κ(Z).

From the same R come the regression table in raw (unscaled) units (the scaling is affine and
known) and, with a second pass accumulating the sandwich's meat per chunk, its robust standard
errors; MetricsAccumulator gives RMSE, MAE, R² and MAPE of rows seen chunk by chunk. Every per-chunk
function is top-level and returns a small result, so it maps over a Dask cluster as well.

numpy/scipy only, no Prefect.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import linalg

from houseprice.preprocessing import Preprocessor
from houseprice.tasks.regression import LinearModel, RegressionMetrics
from houseprice.tasks.statistics import RegressionTable, table_of_estimates
from houseprice.trainers.design import read_design_chunk


def _upper_r(block: np.ndarray) -> np.ndarray:
    """The square R of block's QR, its diagonal made non-negative (so R is unique)."""
    width = block.shape[1]
    r = np.zeros((width, width))
    if len(block):
        top = np.linalg.qr(block, mode="r")
        r[: len(top)] = top
    # QR fixes R only up to the sign of each row; a sign convention makes combine_r's result
    # the same (to rounding) whichever way the chunks were grouped.
    signs = np.where(np.diag(r) < 0, -1.0, 1.0)
    return r * signs[:, None]


def chunk_r(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """R of the QR of one chunk's [x, 1, y]: (features + 2)², bias column second to last."""
    return _upper_r(np.column_stack([x, np.ones(len(x)), y]))


def combine_r(rs: Sequence[np.ndarray]) -> np.ndarray:
    """R of the stacked Rs, which is R of all their rows: associative, so any grouping will do."""
    return _upper_r(np.vstack(list(rs)))


def r_of_file(path: str | Path) -> np.ndarray:
    """chunk_r of one design chunk file (what a cluster worker maps over the files)."""
    return chunk_r(*read_design_chunk(path))


def least_squares_from_r(r: np.ndarray, l2: float = 0.0, rows: int | None = None) -> LinearModel:
    """The minimizer of MSE + l2 * |w|² (bias unpenalized) from R of [x, 1, y].

    As fit_least_squares does, the ridge penalty is extra rows sqrt(rows * l2) * I (target 0,
    bias column 0) stacked under R and reduced again; rows (the training rows) is then needed.
    """
    features = r.shape[1] - 2
    if l2 > 0:
        if rows is None:
            raise ValueError("a ridge solution from R needs the number of rows it was fitted on")
        penalty = np.zeros((features, features + 2))
        penalty[:, :features] = np.sqrt(rows * l2) * np.eye(features)
        r = combine_r([r, penalty])
    solution = _solve_upper(r[: features + 1, : features + 1], r[: features + 1, -1])
    return LinearModel(solution[:-1], float(solution[-1]))


def _solve_upper(r11: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """r11 θ = rhs by back substitution; a singular r11 (aliased columns) gets the min-norm θ."""
    diagonal = np.abs(np.diag(r11))
    if len(diagonal) and diagonal.min() > diagonal.max() * len(diagonal) * np.finfo(float).eps:
        return linalg.solve_triangular(r11, rhs)
    # The same minimum-norm solution lstsq gives on the whole design: Z = Q R keeps the norm.
    solution, *_ = np.linalg.lstsq(r11, rhs, rcond=None)
    return solution


def streamed_r(chunks: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, int]:
    """R of every chunk's [x, 1, y] and how many rows, holding one chunk and one R at a time."""
    r, rows = None, 0
    for x, y in chunks:
        r = chunk_r(x, y) if r is None else combine_r([r, chunk_r(x, y)])
        rows += len(y)
    if r is None or rows == 0:
        raise ValueError("no rows to fit")
    return r, rows


def streamed_least_squares(
    chunks: Iterable[tuple[np.ndarray, np.ndarray]], l2: float = 0.0
) -> LinearModel:
    """The exact least-squares (or ridge) fit of chunks of (x, y), one chunk in memory at a time."""
    r, rows = streamed_r(chunks)
    return least_squares_from_r(r, l2, rows)


def sandwich_meat_chunk(x: np.ndarray, y: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Σ e² z zᵀ over one chunk, z = [x, 1] and e = y − z·coef (coef = [weights..., bias])."""
    z = np.column_stack([x, np.ones(len(x))])
    weighted = z * (y - z @ coef)[:, None]
    return weighted.T @ weighted


def streamed_regression_table(
    r: np.ndarray,
    meat: np.ndarray,
    rows: int,
    prep: Preprocessor,
    confidence: float = 0.95,
) -> RegressionTable:
    """regression_table on the raw (unscaled) training design, from the scaled rows' R and meat.

    r: R of every chunk's [x, 1, y] (scaled); meat: Σ sandwich_meat_chunk at the least-squares
    coefficients of r; rows: how many rows. The raw design is [1, D] with D = x·s + m and the
    raw target t = ts·y + tm, an invertible affine map of the scaled fit: raw coefficients are
    L θ_t (θ_t the coefficients of t on [x, 1]), and every covariance is L (·) Lᵀ.
    """
    k = r.shape[1] - 1
    r11, rho = r[:k, :k], abs(r[k, k])
    scale, shift = prep.target_scale, prep.target_mean
    theta = least_squares_from_r(r)
    theta_t = scale * np.append(theta.weights, theta.bias)
    theta_t[-1] += shift
    transform = _raw_transform(np.asarray(prep.means), np.asarray(prep.scales))
    coef = transform @ theta_t
    # Covariances in the scaled parameters through R⁻¹, so Zᵀ Z is never formed or inverted.
    g = transform @ linalg.solve_triangular(r11, np.eye(k))  # L R⁻¹: bread = g gᵀ
    # R⁻ᵀ meat R⁻¹ = Qᵀ diag(e²) Q, the meat regression_table forms, in the basis of R.
    h = linalg.solve_triangular(r11, linalg.solve_triangular(r11, meat, trans="T").T, trans="T")
    rss = (scale * rho) ** 2
    # TSS: the norm of y after projecting out the intercept alone, from the R of [1, y]'s rows.
    tss = (scale * np.linalg.qr(r[:, k - 1 :], mode="r")[1, 1]) ** 2
    df = rows - k
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma2 = rss / df if df > 0 else float("nan")
        hc0 = scale * np.sqrt(np.einsum("ij,jk,ik->i", g, h, g))
        se = np.sqrt(np.einsum("ij,ij->i", g, g) * sigma2)
    terms = ["intercept", *prep.feature_names]
    return table_of_estimates(coef, se, hc0, rows, rss, tss, terms, confidence)


def _raw_transform(means: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """L: coefficients on [x, 1] (scaled design, bias last) → on [1, D] (raw, intercept first)."""
    k = len(means) + 1
    transform = np.zeros((k, k))
    transform[0, -1] = 1.0
    transform[0, :-1] = -means / scales
    transform[1:, :-1] = np.diag(1.0 / scales)
    return transform


@dataclass(frozen=True)
class MetricsAccumulator:
    """RMSE, MAE, R² and MAPE of rows seen a chunk at a time; chunks merge by +, in any order.

    R²'s total sum of squares is merged as Chan et al. merge variances (each chunk's own mean
    and centred sum, then the between-chunk term), never as Σa² − (Σa)²/n, which cancels.
    """

    rows: int = 0
    squared: float = 0.0  # Σ e², e = predicted − actual
    absolute: float = 0.0  # Σ |e|
    relative: float = 0.0  # Σ |e| / |actual|
    mean: float = 0.0  # of actual
    centred: float = 0.0  # Σ (actual − mean)²

    @classmethod
    def of(cls, actual: np.ndarray, predicted: np.ndarray) -> MetricsAccumulator:
        """The sums of one chunk."""
        if not len(actual):
            return cls()
        errors = np.abs(predicted - actual)
        mean = float(actual.mean())
        return cls(
            rows=len(actual),
            squared=float(errors @ errors),
            absolute=float(errors.sum()),
            relative=float(np.sum(errors / np.abs(actual))),
            mean=mean,
            centred=float(np.sum((actual - mean) ** 2)),
        )

    def __add__(self, other: MetricsAccumulator) -> MetricsAccumulator:
        if not other.rows or not self.rows:
            return self if other.rows == 0 else other
        rows = self.rows + other.rows
        delta = other.mean - self.mean
        return MetricsAccumulator(
            rows=rows,
            squared=self.squared + other.squared,
            absolute=self.absolute + other.absolute,
            relative=self.relative + other.relative,
            mean=self.mean + delta * other.rows / rows,
            centred=self.centred + other.centred + delta**2 * self.rows * other.rows / rows,
        )

    def result(self) -> RegressionMetrics | None:
        """regression_metrics of every row added, or None when there were none."""
        if not self.rows:
            return None
        return RegressionMetrics(
            rmse=math.sqrt(self.squared / self.rows),
            mae=self.absolute / self.rows,
            r2=1 - self.squared / self.centred if self.centred > 0 else float("nan"),
            mape=self.relative / self.rows,
        )
