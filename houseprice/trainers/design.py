"""Training data that stays on disk: the design in chunk files, and the cost's statistics.

Past the size that fits in memory (ComputeConfig.stream_above_rows), the features stage writes the
scaled design of the training and validation rows as one .npy file per chunk, and workers get the
file names (DesignFiles), never the arrays. A trainer then reads the chunks once and accumulates
the mean-squared-error cost's sufficient statistics (GramStatistics) in its own framework; the
cost and its gradient at any parameters follow exactly from them, so every later epoch costs
O(features²) instead of a pass over the rows.

The price of the one pass is conditioning: the statistics hold Zᵀ Z, whose condition number is
the square of the design's. The design is standardized (columns centred, unit spread), so for
house data κ(Z) is typically below 10³, and float64 keeps about 16 − 2·log10 κ(Z) ≥ 10 digits:
the least-squares reference (a streamed QR, which never forms Zᵀ Z) checks every fit, and a fit
that lost digits to conditioning fails that check rather than passing silently.

numpy only, like common.py: a framework module uses these types without Prefect.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np


@dataclass
class GramStatistics:
    """Sufficient statistics of the MSE cost over some rows, with z = [x, 1] (bias last).

    MSE(θ) = (θᵀ zz θ − 2 θᵀ zy + yy) / rows for θ = [weights..., bias].
    """

    zz: np.ndarray  # (features + 1, features + 1): Σ z zᵀ
    zy: np.ndarray  # (features + 1,): Σ z y
    yy: float  # Σ y²
    rows: int

    @classmethod
    def empty(cls, features: int) -> GramStatistics:
        """Statistics of no rows (the identity of +)."""
        return cls(np.zeros((features + 1, features + 1)), np.zeros(features + 1), 0.0, 0)

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray) -> GramStatistics:
        """The statistics of rows x (rows, features) and targets y (rows,), in numpy."""
        z = np.hstack([x, np.ones((len(x), 1))])
        return cls(z.T @ z, z.T @ y, float(y @ y), len(y))

    def __add__(self, other: GramStatistics) -> GramStatistics:
        return GramStatistics(
            self.zz + other.zz, self.zy + other.zy, self.yy + other.yy, self.rows + other.rows
        )

    @property
    def features(self) -> int:
        """Design columns, the bias excluded."""
        return len(self.zy) - 1

    def mse(self, params: np.ndarray) -> float:
        """The mean squared error at params = [weights..., bias]; NaN over no rows."""
        if self.rows == 0:
            return float("nan")
        return float((params @ self.zz @ params - 2 * params @ self.zy + self.yy) / self.rows)


class DesignFiles(NamedTuple):
    """The scaled design of the training and validation rows, on disk, one .npy per chunk.

    Each file holds a (rows, features + 1) float64 array: the scaled design columns, then the
    scaled target. Files are read whole (np.load, not memory-mapped: a mapped file's pages would
    count in the resident memory of every process that reads it).
    """

    train_files: tuple[str, ...]
    validation_files: tuple[str, ...]
    train_rows: int
    validation_rows: int
    features: int  # design columns (the target column excluded)

    def train_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(x, y) of each training chunk, one at a time."""
        return _read_chunks(self.train_files)

    def validation_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(x, y) of each validation chunk, one at a time."""
        return _read_chunks(self.validation_files)

    def first_rows(self, rows: int) -> np.ndarray:
        """Up to `rows` design rows from the first chunks (validation first), for spot checks."""
        taken: list[np.ndarray] = []
        for x, _ in itertools.chain(self.validation_chunks(), self.train_chunks()):
            taken.append(x[: rows - sum(len(t) for t in taken)])
            if sum(len(t) for t in taken) >= rows:
                break
        return np.vstack(taken) if taken else np.empty((0, self.features))


def read_design_chunk(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one chunk file: every column but the last, and the last."""
    block = np.load(path, allow_pickle=False)
    return block[:, :-1], block[:, -1]


def _read_chunks(files: tuple[str, ...]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for path in files:
        yield read_design_chunk(path)
