"""Training: one task for every trainer, submitted once per configured trainer.

The trainer's spec (houseprice/trainers.py) names its code; the task imports it inside the
worker process that runs it, so only that process pays for (and holds) torch or TensorFlow.
The task saves the model there too, atomically, so a diverged (raised) fit never leaves a file
behind, and the trainer's stand-alone export (raw columns in, price out; houseprice/exports.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import layout, storage
from houseprice.config import TrainerConfig
from houseprice.preprocessing import Preprocessor
from houseprice.tasks.trainers.common import TrainingData, TrainResult, check_fit
from houseprice.trainers import TrainerSpec

# Rows on which numpy's scoring of a saved model is checked against its framework's.
CHECK_ROWS = 256


def _save_numpy_weights(spec: TrainerSpec, data: TrainingData, run: layout.RunPaths) -> None:
    """Record the saved model's weights as JSON, checked to score as its framework does.

    Done here, where the framework is loaded already, so that predict and the promotion gate
    score with numpy alone instead of importing the trainer's framework (seconds for torch or TF).
    """
    from houseprice.model import checked_linear_weights

    rows = np.vstack([data.x_val[:CHECK_ROWS], data.x_train[:CHECK_ROWS]])
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


# Inputs are large arrays: hashing them for a cache key would cost more than it could save.
# The spec itself is passed (not its name): a plug-in registered in the flow's process is not
# registered in a spawned worker, but its spec pickles and its module imports there.
@task(name="train", task_run_name="train-{spec.name}", cache_policy=NO_CACHE)
def train_model(
    spec: TrainerSpec,
    data: TrainingData,
    settings: TrainerConfig,
    seed: int,
    run: layout.RunPaths,
    prep: Preprocessor,
) -> TrainResult:
    """Fit one trainer's linear model; save it, its numpy weights and its stand-alone export."""
    logger = get_run_logger()
    logger.info("train %s: loading %s", spec.name, spec.label)
    result = spec.function("train")(data, settings, seed, log=logger.info)
    check_fit(result, data)  # before anything is saved
    save = spec.function("save")
    storage.write_with_atomic(run.model_file(spec), lambda path: save(result, path))
    _save_numpy_weights(spec, data, run)
    if spec.export is not None:
        # Here rather than after evaluation: export costs seconds, hidden while others train.
        export = spec.function("export")
        _export(run.trainer_export(spec), lambda path: export(result, prep, path))
        result.export_file = spec.export_file
    _log_result(result)
    return result
