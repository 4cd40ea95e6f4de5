"""Cross-validation as folds: repeated k-fold refits of the exact optimum, the same at any chunking.

Every row of the data is held out once per repeat, its fold chosen by a seeded hash of its
content (a row keeps its fold however the table is chunked; duplicated rows share one). In each
fold the whole preprocessing is refitted on the other folds, as a run would, and the exact
least-squares (or ridge) solution predicts the held-out rows in price units. Each repeat's pooled
out-of-fold predictions give RMSE, MAE, R² and MAPE; returned are their means per penalty and
their spread over repeats.

Two passes, whatever the size:
1. `HeldOutFold`: the preprocessor's statistics (tasks/preprocessing_fold.py) of every fold's
   rows. A fold's complement is the total less the fold, so each refit needs no rows: its
   medians, levels, scaling and the Gram of its scaled design follow from the statistics, and
   the fit solves the normal equations of that Gram.
2. `ScoreFold`: each row scored by its fold's refit; the errors' sums pooled per repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from houseprice.config import DataConfig, EvaluationConfig, FeatureConfig, PipelineConfig
from houseprice.folds import fold_frames
from houseprice.medians import MedianWindow
from houseprice.preprocessing import Preprocessor
from houseprice.tasks.features import FeatureSet
from houseprice.tasks.preprocessing_fold import (
    FitStatistics,
    Folder,
    SmearingFold,
    exact_fit,
    exact_medians,
    preprocessor_from,
)
from houseprice.tasks.regression import LinearModel, RegressionMetrics, solve_normal_equations
from houseprice.tasks.split import row_positions

# Rows × repeats the cross-validation may refit on. Each repeat scores every row once more (the
# second pass transforms each row with its fold's preprocessing), so above 3,000 rows fewer
# repeats run (at least one): repeats average out the luck of the fold assignment, which
# matters on small data.
CV_ROW_BUDGET = 30_000


@dataclass(frozen=True)
class FoldAssignment:
    """Each row's fold in each repeat, from a seeded hash of its content."""

    seed: int
    folds: int
    repeats: int

    def __call__(self, rows: pd.DataFrame) -> np.ndarray:
        """(repeats, rows) fold numbers 0..folds-1."""
        return np.vstack(
            [
                np.minimum((row_positions(rows, self._seed(r)) * self.folds), self.folds - 1)
                for r in range(self.repeats)
            ]
        ).astype(int)

    def _seed(self, repeat: int) -> int:
        return (self.seed * 1_000_003 + repeat) % 10**16


@dataclass(frozen=True)
class HeldOutFold:
    """Pass 1: the preprocessor's statistics of each (repeat, fold)'s rows."""

    assignment: FoldAssignment
    data: DataConfig
    log_target: bool
    name: str = "cross-validation"
    columns: tuple[str, ...] | None = None  # the fold hashes whole rows
    threads_help: bool = True

    def per_chunk(self, rows: pd.DataFrame) -> dict[tuple[int, int], FitStatistics]:
        assigned = self.assignment(rows)
        return {
            (repeat, fold): FitStatistics.of(
                rows[assigned[repeat] == fold], self.data, self.log_target
            )
            for repeat in range(self.assignment.repeats)
            for fold in range(self.assignment.folds)
        }

    def combine(self, first, second):
        return {key: first[key] + second[key] for key in first}

    def finish(self, total):
        return total


@dataclass(frozen=True)
class Refit:
    """One (repeat, fold)'s complement: its preprocessing, and its exact fit per penalty."""

    prep: Preprocessor
    models: dict[float, LinearModel]


@dataclass(frozen=True)
class ScoreFold:
    """Pass 2: every row scored by its fold's refit; sums of errors per (repeat, penalty)."""

    assignment: FoldAssignment
    refits: dict[tuple[int, int], Refit]
    target: str
    name: str = "cross-validation scores"
    columns: tuple[str, ...] | None = None
    threads_help: bool = True

    def per_chunk(self, rows: pd.DataFrame) -> dict[tuple[int, float], _ErrorSums]:
        assigned = self.assignment(rows)
        actual = rows[self.target].astype("float64").to_numpy()
        sums: dict[tuple[int, float], _ErrorSums] = {}
        for (repeat, fold), refit in self.refits.items():
            held = assigned[repeat] == fold
            x = refit.prep.transform(rows[held])
            for l2, model in refit.models.items():
                predicted = refit.prep.inverse_target(model.predict(x))
                part = _ErrorSums.of(actual[held], predicted)
                key = (repeat, l2)
                sums[key] = sums[key] + part if key in sums else part
        return sums

    def combine(self, first, second):
        return {key: first[key] + second[key] for key in first}

    def finish(self, total):
        return total


@dataclass(frozen=True)
class _ErrorSums:
    """Mergeable sums of out-of-fold errors; the actual values' spread by Chan's update."""

    rows: int
    squared: float  # Σ e²
    absolute: float  # Σ |e|
    relative: float  # Σ |e| / |y|
    mean: float  # of the actual values
    spread: float  # Σ (y − mean)²

    @classmethod
    def of(cls, actual: np.ndarray, predicted: np.ndarray) -> _ErrorSums:
        errors = predicted - actual
        mean = float(actual.mean()) if len(actual) else 0.0
        return cls(
            len(actual),
            float(errors @ errors),
            float(np.abs(errors).sum()),
            float((np.abs(errors) / np.abs(actual)).sum()),
            mean,
            float(((actual - mean) ** 2).sum()),
        )

    def __add__(self, other: _ErrorSums) -> _ErrorSums:
        rows = self.rows + other.rows
        if rows == 0:
            return self
        delta = other.mean - self.mean
        return _ErrorSums(
            rows,
            self.squared + other.squared,
            self.absolute + other.absolute,
            self.relative + other.relative,
            self.mean + delta * other.rows / rows,
            self.spread + other.spread + delta**2 * self.rows * other.rows / rows,
        )

    def metrics(self) -> RegressionMetrics:
        return RegressionMetrics(
            rmse=float(np.sqrt(self.squared / self.rows)),
            mae=self.absolute / self.rows,
            r2=1 - self.squared / self.spread if self.spread > 0 else float("nan"),
            mape=self.relative / self.rows,
        )


def cross_validate_by(
    fold: Folder,
    rows: int,
    data: DataConfig,
    features: FeatureConfig,
    penalties: list[float],
    settings: EvaluationConfig,
) -> tuple[dict[float, RegressionMetrics], dict[str, Any]]:
    """Repeated k-fold cross-validation of the exact optimum of each cost (ridge penalty l2)
    over whatever `fold` folds (every row of the data; see the module's docstring)."""
    folds = min(settings.cv_folds, rows)
    repeats = min(settings.cv_repeats, max(1, CV_ROW_BUDGET // max(rows, 1)))
    assignment = FoldAssignment(settings.cv_seed, folds, repeats)
    held = fold(HeldOutFold(assignment, data, features.log_target))
    total = _total(held, folds)
    complements = {key: total - statistics for key, statistics in held.items()}
    medians = _complement_medians(fold, assignment, complements)
    refits = {}
    for key, complement in complements.items():
        prep = preprocessor_from(complement.moments, medians[key], data, features)
        zz, zy, _ = complement.moments.design_statistics(prep)
        refits[key] = Refit(prep, {l2: solve_normal_equations(zz, zy, l2) for l2 in penalties})
    if features.log_target:  # each refit's smearing factor, as a run's fit has its own
        _add_smearing(fold, assignment, refits, complements, features)
    sums = fold(ScoreFold(assignment, refits, data.target))
    runs = {l2: [sums[(r, l2)].metrics() for r in range(repeats)] for l2 in penalties}
    means = {l2: RegressionMetrics(*np.mean(runs[l2], axis=0).tolist()) for l2 in penalties}
    spread = {
        f"l2={l2:g}": RegressionMetrics(*np.std(runs[l2], axis=0).tolist())._asdict()
        for l2 in penalties
    }
    summary = {"folds": folds, "repeats": repeats, "rows": rows, "seed": settings.cv_seed}
    return means, {**summary, "spread_over_repeats": spread}


def cross_validate(
    features: FeatureSet, penalties: list[float], settings: EvaluationConfig
) -> tuple[dict[float, RegressionMetrics], dict[str, Any]]:
    """cross_validate_by over a FeatureSet's rows in memory (all its parts), as one chunk."""
    rows = pd.concat(list(features.split), ignore_index=True)
    prep, config = features.preprocessor, features.config or PipelineConfig()
    data = config.data.model_copy(
        update={
            "target": prep.target,
            "numeric_features": list(prep.numeric_features),
            "categorical_features": list(prep.categorical_features),
            "features": [],
        }
    )
    config = config.features.model_copy(update={"log_target": prep.log_target})
    return cross_validate_by(
        lambda stage: fold_frames(stage, [rows]), len(rows), data, config, penalties, settings
    )


def _add_smearing(
    fold: Folder,
    assignment: FoldAssignment,
    refits: dict[tuple[int, int], Refit],
    complements: dict[tuple[int, int], FitStatistics],
    features: FeatureConfig,
) -> None:
    """Set each refit's Duan factor, from its exact fit over its complement's rows."""
    fits = {key: (r.prep, exact_fit(complements[key].moments, r.prep)) for key, r in refits.items()}
    factors = fold(SmearingFold(fits, _Outside(assignment)))
    for key, refit in refits.items():
        refit.prep.log_target_estimate = features.log_target_estimate
        refit.prep.smearing_factor = factors[key]


@dataclass(frozen=True)
class _Outside:
    """Each (repeat, fold)'s complement among a chunk's rows."""

    assignment: FoldAssignment

    def __call__(self, rows: pd.DataFrame) -> dict[tuple[int, int], np.ndarray]:
        assigned = self.assignment(rows)
        return {
            (repeat, fold): assigned[repeat] != fold
            for repeat in range(self.assignment.repeats)
            for fold in range(self.assignment.folds)
        }


def _complement_medians(
    fold: Folder, assignment: FoldAssignment, complements: dict[tuple[int, int], FitStatistics]
) -> dict[tuple[int, int], dict[str, float]]:
    """Each complement's medians: from its counts, or (past the cap) by one pass for them all."""
    medians, windows = {}, {}
    for key, complement in complements.items():
        medians[key] = exact_medians(complement.counts)
        for column, counts in complement.counts.items():
            if column not in medians[key]:
                windows[(key, column)] = counts.median_window()
    if windows:
        for (key, column), median in fold(OutsideMedianFold(assignment, windows)).items():
            medians[key][column] = median
    return medians


@dataclass(frozen=True)
class OutsideMedianFold:
    """The median pass of complements past the distinct-value cap: values in their windows."""

    assignment: FoldAssignment
    windows: dict[tuple[tuple[int, int], str], MedianWindow]
    name: str = "cross-validation medians"
    columns: tuple[str, ...] | None = None
    threads_help: bool = True

    def per_chunk(self, rows: pd.DataFrame) -> dict[Any, np.ndarray]:
        assigned = self.assignment(rows)
        found = {}
        for ((repeat, fold), column), window in self.windows.items():
            outside = rows.loc[assigned[repeat] != fold, column].astype("float64").to_numpy()
            found[((repeat, fold), column)] = window.values_between(outside)
        return found

    def combine(self, first, second):
        return {key: np.concatenate([first[key], second[key]]) for key in first}

    def finish(self, total) -> dict[Any, float]:
        return {key: window.median(total[key]) for key, window in self.windows.items()}


def _total(held: dict[tuple[int, int], FitStatistics], folds: int) -> FitStatistics:
    """Every row's statistics: the sum of one repeat's folds."""
    total = held[(0, 0)]
    for fold in range(1, folds):
        total = total + held[(0, fold)]
    return total
