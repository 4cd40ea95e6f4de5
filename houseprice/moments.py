"""Exact, mergeable second moments of the raw design: least squares' sufficient statistics.

Linear least squares needs only Σ w wᵀ over the rows, for w = [scaled design, 1, scaled target].
Every preprocessing step between a raw row and w is linear once its parameters are known:
imputing a missing number with a median, one-hot encoding against a reference level, centring
and scaling, standardising the target. So one pass can gather the moments of the *raw* row

    u = [1, x̊ (numbers less a centre, 0 where missing), m (missing indicators),
         e (one indicator per category level seen), ẙ (target less a centre)]

and any preprocessing fitted afterwards gives Σ w wᵀ = M (Σ u uᵀ) Mᵀ for the matrix M that maps u
to w (`design_statistics`). No second pass over the rows, no approximation.

Chunks combine exactly (`RawMoments.__add__`): category levels merge by name, and a chunk's
moments move to another centre algebraically (x − c₁ = (x − c₂) + (c₂ − c₁) on present cells).
Each chunk centres on its own means, so the sums hold small numbers and a zip code of 50010 ±2
keeps its spread (its raw Σ x² would swamp the variance in float64). Parts (train, validation,
test) and cross-validation folds are RawMoments of their own rows; a fold's complement is the
total less the fold (`__sub__`).

Ground module: numpy and pandas only, no Prefect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from houseprice.preprocessing import Preprocessor, category_strings


@dataclass(frozen=True)
class RawMoments:
    """Σ u uᵀ over some rows (see the module's docstring for u), and what u's entries mean."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]  # per categorical column, the levels seen, sorted
    centres: np.ndarray  # per numeric column, [the price's,] then the target's
    gram: np.ndarray  # (width, width), width = 1 + 2 · numeric + all levels [+ 1] + 1
    # With a log target, the price itself too, just before the target: the leak check needs
    # how closely a column follows the price, not only its log.
    with_price: bool = False

    @classmethod
    def of(
        cls,
        rows: pd.DataFrame,
        numeric: Sequence[str],
        categorical: Sequence[str],
        target: str,
        log_target: bool = False,
    ) -> RawMoments:
        """The moments of rows (the target must be present and, with log_target, positive)."""
        n, p = len(rows), len(numeric)
        x = rows[list(numeric)].to_numpy(dtype="float64").reshape(n, p)
        missing = np.isnan(x)
        price = rows[target].astype("float64").to_numpy()
        y = np.log(price) if log_target else price
        ends = [price, y] if log_target else [y]
        with np.errstate(invalid="ignore", divide="ignore"):
            means = [values.mean() if len(values) else 0.0 for values in ends]
            centres = np.append(_present_means(x, missing), means)
        levels = tuple(tuple(sorted(set(category_strings(rows[c])))) for c in categorical)
        width = 1 + 2 * p + sum(len(seen) for seen in levels) + len(ends)
        # Filled column by column in Fortran order: each column is one contiguous write (a
        # stack of blocks copied the chunk three times over, the costliest part of the fold).
        u = np.empty((n, width), order="F")
        u[:, 0] = 1.0
        np.subtract(x, centres[:p], out=u[:, 1 : 1 + p])
        np.copyto(u[:, 1 : 1 + p], 0.0, where=missing)
        u[:, 1 + p : 1 + 2 * p] = missing
        column = 1 + 2 * p
        for name, seen in zip(categorical, levels, strict=True):
            values = category_strings(rows[name])
            for level in seen:
                u[:, column] = values == level
                column += 1
        for values, centre in zip(ends, means, strict=True):
            u[:, column] = values - centre
            column += 1
        return cls(tuple(numeric), tuple(categorical), levels, centres, u.T @ u, log_target)

    @property
    def rows(self) -> int:
        return round(float(self.gram[0, 0]))

    def missing_counts(self) -> dict[str, int]:
        """Missing cells per numeric column."""
        start = 1 + len(self.numeric)
        return {c: round(float(self.gram[0, start + i])) for i, c in enumerate(self.numeric)}

    def target_mean_std(self) -> tuple[float, float]:
        """The target's mean and standard deviation (ddof 0) over these rows."""
        rows = self.gram[0, 0]
        offset = self.gram[0, -1] / rows
        variance = max(self.gram[-1, -1] / rows - offset**2, 0.0)
        return float(self.centres[-1] + offset), float(np.sqrt(variance))

    def level_counts(self, column: str) -> dict[str, int]:
        """Rows per level of a categorical column (missing values as their own level)."""
        position = self.categorical.index(column)
        start = self._level_start(position)
        levels = self.levels[position]
        return {level: round(float(self.gram[0, start + i])) for i, level in enumerate(levels)}

    def __add__(self, other: RawMoments) -> RawMoments:
        """The moments of both sets of rows: other moved to these centres, levels merged."""
        if _columns(self) != _columns(other):
            raise ValueError("moments of different columns cannot be combined")
        levels = tuple(
            tuple(sorted(set(mine) | set(theirs)))
            for mine, theirs in zip(self.levels, other.levels, strict=True)
        )
        mine = self._aligned(levels)
        theirs = other._recentred(self.centres)._aligned(levels)
        return RawMoments(
            self.numeric, self.categorical, levels, self.centres, mine + theirs, self.with_price
        )

    def __sub__(self, other: RawMoments) -> RawMoments:
        """These rows less other's, which must be among them (a cross-validation complement)."""
        negated = RawMoments(
            other.numeric, other.categorical, other.levels, other.centres, -other.gram,
            other.with_price,
        )  # fmt: skip
        return self + negated

    def _level_start(self, position: int) -> int:
        return 1 + 2 * len(self.numeric) + sum(len(levels) for levels in self.levels[:position])

    def _recentred(self, centres: np.ndarray) -> RawMoments:
        """The same moments around other centres: x̊ gains δ(1 − m), ẙ gains δ."""
        p = len(self.numeric)
        shift = np.eye(len(self.gram))
        delta = self.centres - centres
        for j in range(p):
            shift[1 + j, 0] = delta[j]
            shift[1 + j, 1 + p + j] = -delta[j]
        shift[-1, 0] = delta[-1]
        if self.with_price:
            shift[-2, 0] = delta[-2]
        gram = shift @ self.gram @ shift.T
        return RawMoments(
            self.numeric, self.categorical, self.levels, centres, gram, self.with_price
        )

    def _aligned(self, levels: tuple[tuple[str, ...], ...]) -> np.ndarray:
        """This Gram laid out for a superset of its levels (zeros for the levels it lacks)."""
        p = len(self.numeric)
        index = list(range(1 + 2 * p))
        offset = 1 + 2 * p
        for position, wanted in enumerate(levels):
            start = self._level_start(position)
            seen = {level: start + i for i, level in enumerate(self.levels[position])}
            index += [seen.get(level, -1) for level in wanted]
            offset += len(wanted)
        ends = 2 if self.with_price else 1
        index += list(range(len(self.gram) - ends, len(self.gram)))
        width = offset + ends
        aligned = np.zeros((width, width))
        present = np.array([i >= 0 for i in index])
        source = np.array(index)[present]
        aligned[np.ix_(present, present)] = self.gram[np.ix_(source, source)]
        return aligned

    def encoding_map(self, medians: dict[str, float], levels: dict[str, list[str]]) -> np.ndarray:
        """M with M u = [1, encoded columns (imputed numbers, level indicators), target]."""
        p = len(self.numeric)
        columns = sum(len(levels[c]) for c in self.categorical)
        matrix = np.zeros((2 + p + columns, len(self.gram)))
        matrix[0, 0] = 1.0
        for j, column in enumerate(self.numeric):  # x̃ = c + x̊ + (median − c) m
            matrix[1 + j, 0] = self.centres[j]
            matrix[1 + j, 1 + j] = 1.0
            matrix[1 + j, 1 + p + j] = medians[column] - self.centres[j]
        row = 1 + p
        for position, column in enumerate(self.categorical):
            start = self._level_start(position)
            seen = {level: start + i for i, level in enumerate(self.levels[position])}
            for level in levels[column]:
                if level in seen:  # a level these rows lack has an all-zero indicator here
                    matrix[row, seen[level]] = 1.0
                row += 1
        matrix[-1, 0], matrix[-1, -1] = self.centres[-1], 1.0  # y = c + ẙ
        return matrix

    def encoded_moments(
        self, medians: dict[str, float], levels: dict[str, list[str]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each encoded column's mean and Σ (e − ē)², and Σ (e − ē)(e − ē)ᵀ.

        What scaling and aliasing need. Each column's own sum of squares is taken over the raw
        entries it is made of, so a column whose squares overflow float64 shows as infinite
        alone, instead of spreading NaN (∞ · 0) to the others through the full product.
        """
        full = self.encoding_map(medians, levels)
        with np.errstate(over="ignore", invalid="ignore"):
            mean_row = full @ self.gram[:, 0] / self.gram[0, 0]
            centred = full[1:-1] - np.outer(mean_row[1:-1], np.eye(len(self.gram))[0])
            squares = np.array([_own_square(row, self.gram) for row in centred])
            gram = centred @ self.gram @ centred.T
        return mean_row[1:-1], squares, gram

    def target_cross(
        self, medians: dict[str, float], levels: dict[str, list[str]]
    ) -> tuple[np.ndarray, float]:
        """Σ (e − ē)(y − ȳ) for each encoded column and Σ (y − ȳ)², y the (log) target."""
        return self._centred_cross(len(self.gram) - 1, medians, levels)

    def price_cross(
        self, medians: dict[str, float], levels: dict[str, list[str]]
    ) -> tuple[np.ndarray, float]:
        """Σ (e − ē)(p − p̄) for each encoded column and Σ (p − p̄)², p the price (log target)."""
        if not self.with_price:
            raise ValueError("these moments hold no price column (fit without a log target)")
        return self._centred_cross(len(self.gram) - 2, medians, levels)

    def _centred_cross(
        self, index: int, medians: dict[str, float], levels: dict[str, list[str]]
    ) -> tuple[np.ndarray, float]:
        full = self.encoding_map(medians, levels)
        rows = self.gram[0, 0]
        other = np.zeros(len(self.gram))
        other[index], other[0] = 1.0, -self.gram[0, index] / rows  # the entry less its mean
        with np.errstate(over="ignore", invalid="ignore"):
            means = full[1:-1] @ self.gram[:, 0] / rows
            centred = full[1:-1] - np.outer(means, np.eye(len(other))[0])
            cross = centred @ self.gram @ other
        return cross, float(other @ self.gram @ other)

    def design_statistics(self, prep: Preprocessor) -> tuple[np.ndarray, np.ndarray, float]:
        """Σ z zᵀ, Σ z y and Σ y² of prep's scaled design z = [features..., 1] and scaled target.

        The layout of houseprice/trainers/design.py's GramStatistics: the bias column last.
        """
        encoded = self.encoding_map(prep.medians, prep.levels)
        kept = [name not in prep.dropped_columns for name in prep.encoded_names]
        rows = encoded[1:-1][kept]
        means, scales = np.asarray(prep.means), np.asarray(prep.scales)
        design = (rows - np.outer(means, encoded[0])) / scales[:, None]
        target = (encoded[-1] - prep.target_mean * encoded[0]) / prep.target_scale
        w = np.vstack([design, encoded[0], target])
        moments = w @ self.gram @ w.T
        return moments[:-1, :-1], moments[:-1, -1], float(moments[-1, -1])


def _columns(moments: RawMoments) -> tuple[object, ...]:
    return moments.numeric, moments.categorical, moments.with_price


def _own_square(row: np.ndarray, gram: np.ndarray) -> float:
    """row · gram · row over the entries row uses (its zeros never meet an infinite moment)."""
    used = np.flatnonzero(row)
    return float(row[used] @ gram[np.ix_(used, used)] @ row[used])


def _present_means(x: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Each column's mean over its present cells (0 where it has none)."""
    counts = len(x) - np.count_nonzero(missing, axis=0)
    sums = np.nansum(x, axis=0)
    return np.divide(sums, counts, out=np.zeros(x.shape[1]), where=counts > 0)
