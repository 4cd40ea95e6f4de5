"""The trainer registry: every trainer the pipeline can run, described by one spec each.

A spec names the trainer (its key under `training` in the config, its results and file names),
how a reader sees it, where its saved model and stand-alone export go, and the devices it can
use. Its code is referenced by "module:function" strings and imported only when called, so this
module (and the config, the loader, the CLI that read it) costs what numpy costs: a trainer's
framework is loaded by the process that trains with it or reads its model, never by the ground.

The built-in trainers live beside it, one module per framework (torch_trainer.py and
tensorflow_trainer.py, their exports in *_export.py) sharing common.py, design.py and
streamed.py. None of them imports Prefect: serving loads models with them, and the training
tasks (tasks/train.py) wrap them.

Adding a trainer is one module plus one `register_trainer(TrainerSpec(...))` call. The module
provides (names are the spec's):
- train(data, settings, seed, log) -> TrainResult (houseprice/trainers/common.py);
- save(result, path): write the fitted model (storage makes the write atomic);
- read(path) -> SavedModel: read it back with its framework, refusing anything else;
- export(result, prep, path) and read_export(path) -> Scorer (raw columns in, prices out), when
  the trainer has a stand-alone export;
- statistics(x, y, settings) -> GramStatistics and train_from_statistics(train, validation,
  settings, seed, log) -> TrainResult, when it can train from data on disk (streamed.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

# Where a trainer may run: what TrainerConfig.device accepts.
ALL_DEVICES = ("auto", "cpu", "cuda", "mps")
# Names the training config section uses for itself (TrainingConfig.seed, .trainers).
RESERVED_NAMES = ("seed", "trainers")


class SavedModel(NamedTuple):
    """A saved linear model read back by its own framework."""

    forward: Callable[[np.ndarray], np.ndarray]  # scaled rows (n, d) -> scaled target (n,)
    weights: np.ndarray  # (d,) float64, as the framework holds them
    bias: float


@dataclass(frozen=True)
class TrainerSpec:
    """One trainer: its names, its files, its devices and its lazily imported code.

    Picklable (strings and tuples only), so a training task in a spawned worker process gets
    the spec itself and needs no registration there.
    """

    name: str  # key under `training`, TrainResult.framework, metrics.json key, file-name stem
    label: str  # how a reader sees it: "PyTorch"
    train: str  # "module:function" references, imported on first call
    save: str
    read: str
    model_file: str  # the saved model, under the run's model/ folder
    export: str | None = None
    read_export: str | None = None
    export_file: str | None = None  # the stand-alone export, under the run's exports/ folder
    # Streamed training (houseprice/trainers/design.py): a chunk's GramStatistics computed with the
    # framework, and a fit from the summed statistics. A trainer without them trains in memory only.
    statistics: str | None = None
    train_from_statistics: str | None = None
    devices: tuple[str, ...] = ("auto", "cpu")
    packages: tuple[str, ...] = ()  # distributions whose versions a run records
    color: str | None = None  # its colour in the report's figures
    default: bool = False  # trains in every run, configured or not (the built-in two)

    def function(self, role: str) -> Callable[..., Any]:
        """The callable behind one of the references (train, save, read, export, read_export)."""
        reference = getattr(self, role)
        if reference is None:
            raise ValueError(f"trainer {self.name!r} has no {role}")
        module, _, attribute = reference.partition(":")
        return getattr(importlib.import_module(module), attribute)


class UnknownTrainerError(KeyError):
    """A trainer name that no spec is registered under."""

    def __str__(self) -> str:
        return str(self.args[0])


_REGISTRY: dict[str, TrainerSpec] = {}


def register_trainer(spec: TrainerSpec) -> TrainerSpec:
    """Add a trainer; registering the same spec again (a module imported twice) is a no-op."""
    known = _REGISTRY.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"a different trainer is already registered as {spec.name!r}")
    if not spec.name.isidentifier() or spec.name in RESERVED_NAMES:
        raise ValueError(
            f"trainer name {spec.name!r} must be an identifier other than {RESERVED_NAMES}"
        )
    unknown = set(spec.devices) - set(ALL_DEVICES)
    if unknown:
        raise ValueError(f"trainer {spec.name!r}: unknown devices {sorted(unknown)}")
    _REGISTRY[spec.name] = spec
    return spec


def get_trainer(name: str) -> TrainerSpec:
    """The spec registered under name; UnknownTrainerError names the registered ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownTrainerError(
            f"unknown trainer {name!r}; registered: {', '.join(_REGISTRY)}"
        ) from None


def trainer_names() -> list[str]:
    """Every registered trainer's name, in registration order (the built-in ones first)."""
    return list(_REGISTRY)


def default_trainers() -> list[str]:
    """The trainers every run trains, whatever the config names."""
    return [name for name, spec in _REGISTRY.items() if spec.default]


def trainers_for_device(device: str) -> list[str]:
    """The registered trainers that can run on device."""
    return [name for name, spec in _REGISTRY.items() if device in spec.devices]


def trainer_label(name: str) -> str:
    """How a reader sees a trainer ('PyTorch'); an unregistered name as it is."""
    spec = _REGISTRY.get(name)
    return spec.label if spec else name


_TORCH = "houseprice.trainers.torch_trainer"
_TORCH_EXPORT = "houseprice.trainers.torch_export"
_TENSORFLOW = "houseprice.trainers.tensorflow_trainer"
_TENSORFLOW_EXPORT = "houseprice.trainers.tensorflow_export"

register_trainer(
    TrainerSpec(
        name="torch",
        label="PyTorch",
        train=f"{_TORCH}:train_torch",
        save=f"{_TORCH}:save_torch_model",
        read=f"{_TORCH}:read_torch_model",
        model_file="torch_state_dict.pt",
        export=f"{_TORCH_EXPORT}:export_torch_model",
        read_export=f"{_TORCH_EXPORT}:torch_export_scorer",
        export_file="torch_program.pt2",
        statistics=f"{_TORCH}:torch_chunk_statistics",
        train_from_statistics=f"{_TORCH}:train_torch_from_statistics",
        devices=ALL_DEVICES,  # MPS (Apple GPUs) is torch's alone
        packages=("torch",),
        color="#d62728",
        default=True,
    )
)
register_trainer(
    TrainerSpec(
        name="tensorflow",
        label="TensorFlow",
        train=f"{_TENSORFLOW}:train_tensorflow",
        save=f"{_TENSORFLOW}:save_keras_model",
        read=f"{_TENSORFLOW}:read_keras_model",
        model_file="tensorflow.keras",
        export=f"{_TENSORFLOW_EXPORT}:export_tensorflow_model",
        read_export=f"{_TENSORFLOW_EXPORT}:tensorflow_export_scorer",
        export_file="tensorflow_savedmodel",  # a SavedModel folder
        statistics=f"{_TENSORFLOW}:tensorflow_chunk_statistics",
        train_from_statistics=f"{_TENSORFLOW}:train_tensorflow_from_statistics",
        devices=("auto", "cpu", "cuda"),
        packages=("tensorflow-cpu", "tensorflow", "keras"),
        color="#1f77b4",
        default=True,
    )
)
