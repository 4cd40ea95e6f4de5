"""Training tasks: one per framework, same signature, same kind of result.

Each task imports its framework inside the function, so only the worker process that runs it
pays for (and holds) torch or TensorFlow; the flow process imports one only when the promotion
gate loads the champion's saved model. Each task saves its
own model there too, atomically, so a diverged (raised) fit never leaves a file behind, and its
stand-alone export (raw columns in, price out; see houseprice/exports.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import storage
from houseprice.config import TrainerConfig
from houseprice.preprocessing import Preprocessor
from tasks.trainers.common import TrainingData, TrainResult, check_fit


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


# Inputs are large arrays: hashing them for a cache key would cost more than it could save.
@task(name="train-torch", cache_policy=NO_CACHE)
def train_torch_model(
    data: TrainingData,
    settings: TrainerConfig,
    seed: int,
    run: storage.RunPaths,
    prep: Preprocessor,
) -> TrainResult:
    """Fit the PyTorch linear model; save its state_dict and a raw-columns torch.export program."""
    from tasks.trainers import torch_trainer

    result = torch_trainer.train_torch(data, settings, seed, log=get_run_logger().info)
    check_fit(result, data)  # before anything is saved
    storage.write_with_atomic(
        run.torch_model, lambda path: torch_trainer.save_torch_model(result, path)
    )
    # Here rather than after evaluation: export costs seconds, hidden while TensorFlow trains.
    _export(run.torch_export, lambda path: torch_trainer.export_torch_model(result, prep, path))
    _log_result(result)
    return result


@task(name="train-tensorflow", cache_policy=NO_CACHE)
def train_tensorflow_model(
    data: TrainingData,
    settings: TrainerConfig,
    seed: int,
    run: storage.RunPaths,
    prep: Preprocessor,
) -> TrainResult:
    """Fit the TensorFlow/Keras linear model; save it as .keras and as a raw-columns SavedModel."""
    from tasks.trainers import tensorflow_trainer

    result = tensorflow_trainer.train_tensorflow(data, settings, seed, log=get_run_logger().info)
    check_fit(result, data)  # before anything is saved
    storage.write_with_atomic(
        run.keras_model, lambda path: tensorflow_trainer.save_keras_model(result, path)
    )
    _export(
        run.tensorflow_export,
        lambda path: tensorflow_trainer.export_tensorflow_model(result, prep, path),
    )
    _log_result(result)
    return result
