"""The train stage's wiring: one training task per configured trainer, each on its own worker.

The workers (flows/workers.py) start when the run starts, so each loads its framework while
ingest and validation run; a training task is routed to the worker started for its trainer.
"""

from __future__ import annotations

from typing import Any

from prefect.context import FlowRunContext

from houseprice.config import PipelineConfig
from houseprice.flows.workers import TrainingWorkers
from houseprice.layout import RunPaths
from houseprice.tasks.features import FeatureSet
from houseprice.tasks.train import train_model
from houseprice.tasks.trainers.common import TrainResult
from houseprice.trainers import TrainerSpec, get_trainer

# The module whose flow a training task arrives with: a worker imports it before the task.
FLOW_MODULE = "houseprice.flows.retrain"


def _training_workers() -> TrainingWorkers | None:
    """This flow run's pool of training workers (None where a caller swapped the runner)."""
    runner = getattr(FlowRunContext.get(), "task_runner", None)
    return runner if isinstance(runner, TrainingWorkers) else None


def release_training_workers() -> None:
    """Let the workers go once nothing else will run in them."""
    if (workers := _training_workers()) is not None:
        workers.release_workers()


def start_training_workers(config: PipelineConfig) -> None:
    """Start a worker per configured trainer now, to load its framework while ingest runs."""
    if (workers := _training_workers()) is not None:
        # The flow's module first: a training task arrives with the flow run's context, which
        # refers to this flow. Then the trainer's module, which imports its framework.
        workers.start_workers(
            {
                name: (FLOW_MODULE, get_trainer(name).train.partition(":")[0])
                for name in config.training.trainers
            }
        )


def worker_for(task_name: str, parameters: dict[str, Any]) -> str:
    """A training task goes to the worker started for its trainer."""
    spec = parameters.get("spec")
    return spec.name if isinstance(spec, TrainerSpec) else task_name


def train_all(
    config: PipelineConfig, features: FeatureSet, run: RunPaths, lineage: dict[str, Any]
) -> list[TrainResult]:
    """Train every configured trainer at once; their results in trainer order, devices noted."""
    trainers = config.training.trainers  # start_training_workers started one worker each
    seed, prep = config.training.seed, features.preprocessor  # exports build prep in
    fits = [
        train_model.submit(get_trainer(name), features.training, settings, seed, run, prep)
        for name, settings in trainers.items()
    ]
    results = [fit.result() for fit in fits]
    lineage["devices"] = {r.framework: f"{r.device} ({r.device_name})" for r in results}
    return results
