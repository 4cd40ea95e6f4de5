"""Evaluate with the training rows on disk: the same Evaluation as evaluate_models, streamed.

In memory, exactly as evaluate_models does it: the test part (capped by split.max_held_out_rows,
so it fits), every model's test predictions and metrics, its coefficients, the check of each
trainer against the exact optimum of its cost, and the trainers' agreement on the test rows.

Streamed from the chunk files (DesignFiles), one chunk in memory at a time:
- pass 1, training chunks: the R of a QR of [x, 1, y] (streamed_reference.chunk_r, combined by
  combine_r): the least-squares reference and each ridge optimum, independent of the trainers'
  normal-equation statistics;
- pass 2, training then validation chunks: for every model at once, validation and in-sample
  metrics (MetricsAccumulator) and the scaled training MSE; on the training chunks also the
  reference's sandwich meat, for the regression table's robust standard errors.

Not kept: per-row training targets and predictions (Evaluation.y_train and every
ModelEvaluation.train_predictions are None; Evaluation.training_rows says how many there were).
Cross-validation is not run: at this scale the test part is large enough to judge by. The
per-file functions (r_of_file, score_file) are top-level and return small results, merged with
combine_r and +; evaluate_streamed runs them through map_files: a loop in this process, or the
flow's map_chunks, which makes them tasks on a Dask cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from houseprice.config import EvaluationConfig
from houseprice.preprocessing import Preprocessor
from houseprice.tasks.evaluation import (
    REFERENCE,
    Evaluation,
    compare_models,
    models_to_score,
    score_model,
)
from houseprice.tasks.regression import LinearModel, coefficient_units
from houseprice.tasks.streamed_reference import (
    MetricsAccumulator,
    combine_r,
    least_squares_from_r,
    r_of_file,
    sandwich_meat_chunk,
    streamed_regression_table,
)
from houseprice.trainers.common import TrainResult
from houseprice.trainers.design import DesignFiles, read_design_chunk


@dataclass(frozen=True)
class ChunkScores:
    """Every model's sums over some rows, and the reference's sandwich meat; merged by +."""

    metrics: tuple[MetricsAccumulator, ...]  # per model, price units
    scaled_sse: np.ndarray  # per model: Σ (prediction − y)² in the scaled space
    meat: np.ndarray | None = None  # Σ e² z zᵀ of the reference (training chunks only)

    def __add__(self, other: ChunkScores) -> ChunkScores:
        meats = [m for m in (self.meat, other.meat) if m is not None]
        return ChunkScores(
            tuple(a + b for a, b in zip(self.metrics, other.metrics, strict=True)),
            self.scaled_sse + other.scaled_sse,
            sum(meats[1:], meats[0]) if meats else None,
        )

    @property
    def rows(self) -> int:
        """Rows summed (the same for every model)."""
        return self.metrics[0].rows if self.metrics else 0


def score_chunk(
    x: np.ndarray,
    y: np.ndarray,
    models: Sequence[LinearModel],
    prep: Preprocessor,
    reference: LinearModel | None = None,
) -> ChunkScores:
    """One chunk's sums for every model (one matrix product), and reference's meat if given."""
    weights = np.column_stack([model.weights for model in models])
    scaled = x @ weights.reshape(x.shape[1], len(models)) + [model.bias for model in models]
    actual, predicted = prep.inverse_target(y), prep.inverse_target(scaled)
    metrics = tuple(MetricsAccumulator.of(actual, predicted[:, i]) for i in range(len(models)))
    sse = np.einsum("ij,ij->j", scaled - y[:, None], scaled - y[:, None])
    meat = None
    if reference is not None:
        meat = sandwich_meat_chunk(x, y, np.append(reference.weights, reference.bias))
    return ChunkScores(metrics, sse, meat)


def score_file(
    path: str | Path,
    models: Sequence[LinearModel],
    prep: Preprocessor,
    reference: LinearModel | None = None,
) -> ChunkScores:
    """score_chunk of one design chunk file (what a cluster worker maps over the files)."""
    x, y = read_design_chunk(path)
    return score_chunk(x, y, models, prep, reference)


# map_files(function, files, name) -> [function(file) for file in files], in order: a plain loop,
# or (the flow's map_chunks) tasks over a Dask cluster.
MapFiles = Callable[[Callable[[str], Any], Sequence[str], str], list[Any]]


def map_in_process(function: Callable[[str], Any], files: Sequence[str], name: str) -> list[Any]:
    """The default MapFiles: each file in turn, in this process."""
    return [function(path) for path in files]


def evaluate_streamed(
    design: DesignFiles,
    x_test: np.ndarray,
    y_test: np.ndarray,
    prep: Preprocessor,
    results: list[TrainResult],
    settings: EvaluationConfig,
    penalties: dict[str, float] | None = None,
    map_files: MapFiles = map_in_process,
) -> Evaluation:
    """evaluate_models for training rows on disk: the reference by TSQR, two passes in all.

    x_test is the scaled test design, y_test the test prices; penalties: framework → l2.
    map_files runs the per-file passes (each file's R, then its scores).
    """
    if not len(y_test):
        raise ValueError(
            "evaluating with the training rows on disk needs test rows: trainers are compared "
            "on them, since per-row training predictions are not kept"
        )
    penalties = penalties or {}
    if not design.train_files:
        raise ValueError("no training rows to fit the reference on")
    r, rows = combine_r(map_files(r_of_file, design.train_files, "reference-qr")), design.train_rows
    fits = models_to_score(results, penalties, lambda l2: least_squares_from_r(r, l2, rows))
    models = list(fits.values())
    score_train = partial(score_file, models=models, prep=prep, reference=fits[REFERENCE])
    train = _total(map_files(score_train, design.train_files, "score-train"))
    score_validation = partial(score_file, models=models, prep=prep)
    validation = _total(map_files(score_validation, design.validation_files, "score-validation"))
    scored = {
        name: score_model(
            name,
            model,
            prep,
            x_test,
            y_test,
            validation=validation.metrics[i].result() if validation else None,
            in_sample=train.metrics[i].result(),
            train_mse_scaled=float(train.scaled_sse[i] / rows),
        )
        for i, (name, model) in enumerate(fits.items())
    }
    compared = compare_models(scored, results, penalties, settings, has_test_rows=True)
    return Evaluation(
        compared.models,
        y_test,
        compared.agreements,
        compared.reference_check,
        y_train=None,
        regression=streamed_regression_table(r, train.meat, rows, prep),
        coefficient_units=coefficient_units(prep),
        dropped_columns=dict(prep.dropped_columns),
        training_rows=rows,
    )


def _total(scores: Iterable[ChunkScores]) -> ChunkScores | None:
    """The sum of the chunks' scores; None over no chunks."""
    total = None
    for score in scores:
        total = score if total is None else total + score
    return total
