"""Training: one task for every trainer, submitted once per configured trainer.

The trainer's spec (houseprice/trainers/) names its code; the task imports it inside the
worker process that runs it, so only that process pays for (and holds) torch or TensorFlow.
The task saves the model there too, atomically, so a diverged (raised) fit never leaves a file
behind, and the trainer's stand-alone export (raw columns in, price out; houseprice/exports.py).

Data past memory arrives as DesignFiles (chunk files on disk): the task sums the cost's
statistics in its worker with the trainer's framework, then fits from them. Under Dask the flow
maps trainer_chunk_statistics over the chunk files instead and hands the task the summed
TrainingStatistics (houseprice/trainers/streamed.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import layout, storage
from houseprice.config import TrainerConfig
from houseprice.preprocessing import Preprocessor
from houseprice.trainers import TrainerSpec
from houseprice.trainers.common import Log, TrainingData, TrainResult, check_fit
from houseprice.trainers.design import DesignFiles, GramStatistics, read_design_chunk
from houseprice.trainers.streamed import (
    CHECK_ROWS,
    TrainingStatistics,
    accumulate_statistics,
    check_statistics_fit,
)


def _streamed_functions(spec: TrainerSpec) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The spec's (statistics, train_from_statistics), or an error naming the trainer."""
    if spec.statistics is None or spec.train_from_statistics is None:
        raise ValueError(
            f"trainer {spec.name!r} cannot train from data on disk: its spec names no "
            "statistics and train_from_statistics functions (houseprice/trainers/); raise "
            "compute.stream_above_rows past the data's rows to train it in memory"
        )
    return spec.function("statistics"), spec.function("train_from_statistics")


def _fit(
    spec: TrainerSpec,
    data: TrainingData | DesignFiles | TrainingStatistics,
    settings: TrainerConfig,
    seed: int,
    log: Log,
) -> tuple[TrainResult, np.ndarray]:
    """The checked fit, in memory or from statistics, and the rows to check its saved model on."""
    if isinstance(data, TrainingData):
        result = spec.function("train")(data, settings, seed, log=log)
        check_fit(result, data)
        half = CHECK_ROWS // 2
        return result, np.vstack([data.x_val[:half], data.x_train[:half]])
    statistics, train_from_statistics = _streamed_functions(spec)  # refused before any pass
    if isinstance(data, DesignFiles):
        train, validation = accumulate_statistics(statistics, data, settings, log)
        data = TrainingStatistics(train, validation, data.first_rows(CHECK_ROWS))
    result = train_from_statistics(data.train, data.validation, settings, seed, log=log)
    check_statistics_fit(result, data.train)
    return result, data.check_rows


def _save_numpy_weights(spec: TrainerSpec, rows: np.ndarray, run: layout.RunPaths) -> None:
    """Record the saved model's weights as JSON, checked to score as its framework does on rows.

    Done here, where the framework is loaded already, so that predict and the promotion gate
    score with numpy alone instead of importing the trainer's framework (seconds for torch or TF).
    """
    from houseprice.model import checked_linear_weights

    weights = checked_linear_weights(spec, run.model_file(spec), rows)
    storage.write_json_atomic(run.linear_weights(spec.name), weights.to_dict())


def _log_result(result: TrainResult) -> None:
    get_run_logger().info(
        "train %s: %s on %s (%s), %d epochs in %.2f s, stopped: %s",
        result.framework,
        result.optimizer,
        result.device,
        result.device_name,
        result.epochs,
        result.seconds,
        result.stop_reason,
    )


def _export(path: Path, writer: Callable[[Path], None]) -> None:
    """Write one stand-alone export atomically and log what it cost."""
    started = time.perf_counter()
    storage.write_with_atomic(path, writer)
    get_run_logger().info("export: %s in %.2f s", path.name, time.perf_counter() - started)


# The chunk file's name is the input, not its contents: a cache keyed on it would return the
# statistics of an earlier run's file of the same name.
@task(name="chunk-statistics", task_run_name="statistics-{spec.name}", cache_policy=NO_CACHE)
def trainer_chunk_statistics(
    spec: TrainerSpec, path: str, settings: TrainerConfig
) -> GramStatistics:
    """One design chunk file's Gram statistics, computed with the trainer's framework."""
    x, y = read_design_chunk(path)
    return _streamed_functions(spec)[0](x, y, settings)


# Inputs are large arrays: hashing them for a cache key would cost more than it could save.
# The spec itself is passed (not its name): a plug-in registered in the flow's process is not
# registered in a spawned worker, but its spec pickles and its module imports there.
@task(name="train", task_run_name="train-{spec.name}", cache_policy=NO_CACHE)
def train_model(
    spec: TrainerSpec,
    data: TrainingData | DesignFiles | TrainingStatistics,
    settings: TrainerConfig,
    seed: int,
    run: layout.RunPaths,
    prep: Preprocessor,
) -> TrainResult:
    """Fit one trainer's linear model; save it, its numpy weights and its stand-alone export."""
    logger = get_run_logger()
    logger.info("train %s: loading %s", spec.name, spec.label)
    result, check_rows = _fit(spec, data, settings, seed, logger.info)  # checked before saving
    save = spec.function("save")
    storage.write_with_atomic(run.model_file(spec), lambda path: save(result, path))
    _save_numpy_weights(spec, check_rows, run)
    if spec.export is not None:
        # Here rather than after evaluation: export costs seconds, hidden while others train.
        export = spec.function("export")
        _export(run.trainer_export(spec), lambda path: export(result, prep, path))
        result.export_file = spec.export_file
    _log_result(result)
    return result
