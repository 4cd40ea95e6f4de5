"""Training from data on disk: sum the cost's statistics chunk by chunk, then fit from them.

A framework supplies two pieces: its `<fw>_chunk_statistics(x, y, settings)` (one chunk's
reductions in its own tensors, on its own device) and the cost MSE + l2·|w|² written from the
statistics, whose gradient its autograd gives. The pass over the chunk files, the optimizers and
the checks are here, so both frameworks fit from statistics by one algorithm, as in memory.

Both pieces run in float64 whatever the trainer's dtype: Zᵀ Z squares the design's condition
number, so float32 statistics would keep about 7 − 2·log10 κ(Z) digits (one digit at κ = 1000),
and the fit works on a (features + 1)² matrix, where float32 saves nothing worth having. A fit
configured with float32 says so in its extras (dtype "float64", dtype_requested "float32").

numpy only, like common.py and design.py: a framework module uses it without Prefect.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from houseprice.trainers.common import (
    ADAM_BETAS,
    ADAM_EPSILON,
    EpochTracker,
    Log,
    TrainingData,
    TrainResult,
    check_fit_summary,
    minimize_conjugate_gradient,
)
from houseprice.trainers.design import DesignFiles, GramStatistics

logger = logging.getLogger(__name__)

# (x, y, settings) -> that chunk's statistics, computed by a framework: a spec's `statistics`.
StatisticsFunction = Callable[[np.ndarray, np.ndarray, Any], GramStatistics]
# (params) -> (cost, gradient) at numpy parameters, from the framework's autograd.
CostAndGradient = Callable[[np.ndarray], tuple[float, np.ndarray]]
# (statistics, l2) -> the cost MSE + l2·|w|² over those rows and its gradient.
CostFromStatistics = Callable[[GramStatistics, float], CostAndGradient]
# Seconds between progress lines of a pass over the chunk files (a pass can take minutes).
PROGRESS_EVERY_S = 5.0
# Design rows kept to check that numpy scores a saved model as its framework does.
CHECK_ROWS = 512


class TrainingStatistics(NamedTuple):
    """What a fit from statistics needs: the summed training and validation statistics, plus a
    few design rows on which the saved model's numpy scoring is checked."""

    train: GramStatistics
    validation: GramStatistics
    check_rows: np.ndarray  # (up to CHECK_ROWS, features)


def gram_from_blocks(
    xtx: np.ndarray, x_sum: np.ndarray, xty: np.ndarray, y_sum: float, yy: float, rows: int
) -> GramStatistics:
    """The statistics of z = [x, 1] from x's reductions (no ones column is ever built)."""
    features = len(x_sum)
    zz = np.empty((features + 1, features + 1))
    zz[:features, :features] = xtx
    zz[:features, features] = zz[features, :features] = x_sum
    zz[features, features] = rows
    return GramStatistics(zz, np.append(xty, y_sum), float(yy), int(rows))


def sum_statistics(parts: Iterable[GramStatistics], features: int) -> GramStatistics:
    """The statistics of all the parts' rows together (of no rows when there are none)."""
    total = GramStatistics.empty(features)
    for part in parts:
        total = total + part
    return total


def combine_statistics(
    design: DesignFiles,
    train_parts: Iterable[GramStatistics],
    validation_parts: Iterable[GramStatistics],
) -> TrainingStatistics:
    """Per-chunk statistics (e.g. mapped over a Dask cluster) summed into one fit's input."""
    train = sum_statistics(train_parts, design.features)
    validation = sum_statistics(validation_parts, design.features)
    _check_rows(design, train, validation)
    return TrainingStatistics(train, validation, design.first_rows(CHECK_ROWS))


def _check_rows(design: DesignFiles, train: GramStatistics, validation: GramStatistics) -> None:
    # A chunk missed or counted twice would fit the wrong rows without any other sign.
    expected = (design.train_rows, design.validation_rows)
    if (train.rows, validation.rows) != expected:
        raise ValueError(
            f"the chunk statistics cover {train.rows} training and {validation.rows} validation "
            f"rows, but the design files hold {expected[0]} and {expected[1]}"
        )


def accumulate_statistics(
    statistics_fn: StatisticsFunction,
    design: DesignFiles,
    settings: Any,
    log: Log | None = None,
) -> tuple[GramStatistics, GramStatistics]:
    """(training, validation) statistics, one chunk file in memory at a time."""
    log = log or logger.info
    started = last_line = time.perf_counter()
    files = len(design.train_files) + len(design.validation_files)
    done = 0

    def each_chunk(chunks: Iterator[tuple[np.ndarray, np.ndarray]]) -> Iterator[GramStatistics]:
        nonlocal done, last_line
        for x, y in chunks:
            yield statistics_fn(x, y, settings)
            done += 1
            now = time.perf_counter()
            if now - last_line >= PROGRESS_EVERY_S and done < files:
                last_line = now
                log(f"statistics: {done}/{files} chunk files in {now - started:.1f} s")

    train = sum_statistics(each_chunk(design.train_chunks()), design.features)
    validation = sum_statistics(each_chunk(design.validation_chunks()), design.features)
    _check_rows(design, train, validation)
    log(
        f"statistics of {train.rows} training and {validation.rows} validation rows from "
        f"{files} chunk files in {time.perf_counter() - started:.2f} s"
    )
    return train, validation


def minimize_from_statistics(
    cost_from_statistics: CostFromStatistics,
    train: GramStatistics,
    validation: GramStatistics,
    settings: Any,
    tracker: EpochTracker,
) -> tuple[np.ndarray, str, dict[str, float | int | str]]:
    """Minimize the cost from statistics: CG as in memory, Adam/SGD one full gradient an epoch.

    Returns (params, stop_reason, extras). The early-stopping yardstick is the validation
    statistics' MSE, NaN over no validation rows as in a full-sample fit.
    """
    if train.rows == 0:
        raise ValueError(f"{tracker.framework}: the statistics hold no training rows to fit")
    cost = cost_from_statistics(train, settings.l2)
    validation_cost = cost_from_statistics(validation, 0.0) if validation.rows else None

    def validation_mse(params: np.ndarray) -> float:
        return float("nan") if validation_cost is None else validation_cost(params)[0]

    if settings.dtype != "float64":  # why: the module docstring
        tracker.log(
            f"{tracker.framework}: {settings.dtype} asked, fitting from statistics in float64"
        )
    size = train.features + 1
    if settings.optimizer == "cg":
        params, stop, gradients = minimize_conjugate_gradient(
            cost, validation_mse, size, settings.l2, tracker
        )
    else:
        tracker.log(
            f"{tracker.framework} {settings.optimizer}: full-batch steps from the statistics, "
            "one epoch = one full gradient (mini-batches would need the rows, left on disk)"
        )
        tracker.full_batch = True
        params, stop, gradients = _minimize_full_batch(
            cost, validation_mse, size, settings.l2, tracker
        )
    extras: dict[str, float | int | str] = {
        "gradient_evaluations": gradients,
        "dtype": "float64",
        "statistics_rows": train.rows,
        "threads": settings.threads,
    }
    if settings.optimizer != "cg":
        extras["batch"] = "full"
    if settings.dtype != "float64":
        extras["dtype_requested"] = settings.dtype
    return params, stop, extras


def _minimize_full_batch(
    cost: CostAndGradient,
    validation_mse: Callable[[np.ndarray], float],
    size: int,
    l2: float,
    tracker: EpochTracker,
) -> tuple[np.ndarray, str, int]:
    """Full-batch Adam (torch.optim.Adam's update, as in memory) or SGD; one gradient an epoch.

    The gradient at the new parameters both records the epoch and takes the next step.
    """
    params = np.zeros(size)
    value, gradient = cost(params)
    tracker.start(value)
    first, second = np.zeros(size), np.zeros(size)
    beta1, beta2 = ADAM_BETAS
    rate = tracker.learning_rate
    step = 0
    while True:
        step += 1
        if tracker.optimizer == "adam":
            first = beta1 * first + (1 - beta1) * gradient
            second = beta2 * second + (1 - beta2) * gradient * gradient
            denominator = np.sqrt(second / (1 - beta2**step)) + ADAM_EPSILON
            params = params - rate / (1 - beta1**step) * first / denominator
        else:
            params = params - rate * gradient
        value, gradient = cost(params)
        penalty = l2 * float(params[:-1] @ params[:-1])
        stop = tracker.record(params, value - penalty, validation_mse(params), value)
        if stop is not None:
            return tracker.final_params(params, stop), stop, step + 1


def check_statistics_fit(result: TrainResult, train: GramStatistics) -> None:
    """check_fit for a fit from statistics: finiteness and the target's spread from them."""
    finite = bool(np.isfinite(train.zz).all() and np.isfinite(train.zy).all())
    finite = finite and math.isfinite(train.yy)
    rows = max(train.rows, 1)
    variance = train.yy / rows - (train.zy[-1] / rows) ** 2 if finite else float("nan")
    check_fit_summary(result, finite, math.sqrt(max(variance, 0.0)), train.rows)


def write_design_files(folder: Path, data: TrainingData, chunk_rows: int) -> DesignFiles:
    """Write data as design chunk files of chunk_rows rows (tests and benchmarks; the features
    stage writes the pipeline's own)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def write(part: str, x: np.ndarray, y: np.ndarray) -> tuple[str, ...]:
        paths = []
        for index, start in enumerate(range(0, len(y), chunk_rows)):
            path = folder / f"{part}-{index:05d}.npy"
            end = start + chunk_rows
            np.save(path, np.column_stack([x[start:end], y[start:end]]), allow_pickle=False)
            paths.append(str(path))
        return tuple(paths)

    return DesignFiles(
        train_files=write("train", data.x_train, data.y_train),
        validation_files=write("validation", data.x_val, data.y_val),
        train_rows=len(data.y_train),
        validation_rows=len(data.y_val),
        features=data.x_train.shape[1],
    )
