"""A trainer whose first fit in a Dask worker kills that worker's process, for the engine tests.

It is the numpy CG plug-in (tests/numpy_trainer.py) under another name: the fit that survives
must be the same model. The marker file (path in MARKER_ENV, inherited by the cluster's worker
processes) holds the killed process id, so the kill happens once per test.
"""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

from houseprice.trainers import TrainerSpec, register_trainer
from houseprice.trainers.common import TrainingData, TrainResult
from tests import numpy_trainer

NAME = "numpy_killed_once"
MARKER_ENV = "HOUSEPRICE_TEST_KILL_MARKER"


def in_dask_worker() -> bool:
    """Whether this code runs in a Dask worker (never kill the test process itself)."""
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


def train_killed_once(data: TrainingData, settings: Any, seed: int, log: Any = None) -> TrainResult:
    """Kill this worker process the first time; else numpy CG, this process's id noted."""
    marker = os.environ.get(MARKER_ENV)
    if marker and not Path(marker).exists() and in_dask_worker():
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)  # mid-task, as an out-of-memory kill would
    result = numpy_trainer.train_numpy(data, settings, seed, log)
    return replace(result, framework=NAME, extras={**result.extras, "pid": os.getpid()})


register_trainer(
    TrainerSpec(
        name=NAME,
        label="numpy CG (killed once)",
        train=f"{__name__}:train_killed_once",
        save=f"{numpy_trainer.__name__}:save_numpy_model",
        read=f"{numpy_trainer.__name__}:read_numpy_model",
        model_file=f"{NAME}.json",
        devices=("auto", "cpu"),
    )
)
