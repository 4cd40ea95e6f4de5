"""The train stage's wiring: one training task per configured trainer, each on its own worker.

The workers (flows/workers.py) start when the run starts, so each loads its framework while
ingest and validation run; a training task is routed to the worker started for its trainer.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from prefect.context import FlowRunContext

from houseprice.config import PipelineConfig, TrainerConfig
from houseprice.flows.engine import map_chunks, on_dask, warm_dask_workers
from houseprice.flows.workers import TrainingWorkers
from houseprice.layout import RunPaths
from houseprice.tasks.features import FeatureSet
from houseprice.tasks.train import train_model, trainer_chunk_statistics
from houseprice.trainers import TrainerSpec, get_trainer
from houseprice.trainers.common import TrainingData, TrainResult
from houseprice.trainers.design import DesignFiles, GramStatistics
from houseprice.trainers.streamed import TrainingStatistics, combine_statistics

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


# What a Dask worker imports at the start of a run: validation's GX (the streamed stages map it)
# and each trainer's module, which imports its framework.
DASK_WARM_MODULES = ("houseprice.flows.streamed", "great_expectations")


def start_training_workers(config: PipelineConfig) -> None:
    """Start a worker per configured trainer now, to load its framework while ingest runs.

    On the Dask engine, the cluster's workers import the trainers' frameworks instead.
    """
    trainer_modules = [
        get_trainer(name).train.partition(":")[0] for name in config.training.trainers
    ]
    if on_dask():
        warm_dask_workers([FLOW_MODULE, *DASK_WARM_MODULES, *trainer_modules])
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


def file_statistics(path: str, spec: TrainerSpec, settings: TrainerConfig) -> GramStatistics:
    """One design chunk file's statistics, computed with the trainer's framework (a map item)."""
    return trainer_chunk_statistics.fn(spec, path, settings)


def _training_input(
    spec: TrainerSpec, settings: TrainerConfig, features: FeatureSet
) -> TrainingData | DesignFiles | TrainingStatistics:
    """What a training task gets: arrays, or design file names its worker reads; on Dask, the
    cost's statistics, each file's computed by a task on the cluster and summed here."""
    if not (features.on_disk and on_dask()):
        return features.training
    design = features.training
    statistics = partial(file_statistics, spec=spec, settings=settings)
    files = [*design.train_files, *design.validation_files]
    parts = map_chunks(statistics, files, f"statistics-{spec.name}")
    split = len(design.train_files)
    return combine_statistics(design, parts[:split], parts[split:])


def train_all(
    config: PipelineConfig, features: FeatureSet, run: RunPaths, lineage: dict[str, Any]
) -> list[TrainResult]:
    """Train every configured trainer at once; their results in trainer order, devices noted."""
    trainers = config.training.trainers  # start_training_workers started one worker each
    seed, prep = config.training.seed, features.preprocessor  # exports build prep in
    fits = [
        train_model.submit(
            spec, _training_input(spec, settings, features), settings, seed, run, prep
        )
        for spec, settings in ((get_trainer(name), settings) for name, settings in trainers.items())
    ]
    results = [fit.result() for fit in fits]
    lineage["devices"] = {r.framework: f"{r.device} ({r.device_name})" for r in results}
    return results
