"""A third trainer as a plug-in: plain numpy, full-batch conjugate gradient.

Everything a trainer needs is here, plus the one registration call at the bottom; no other file
names it. It supplies only its cost and gradient (written out: numpy has no autograd) to the
conjugate gradient that torch and TensorFlow share, and saves its fit as JSON.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from houseprice.trainers import SavedModel, TrainerSpec, register_trainer
from houseprice.trainers.common import (
    EpochTracker,
    TrainingData,
    TrainResult,
    describe_cpu,
    minimize_conjugate_gradient,
)

NAME = "numpy_cg"


def _cost_and_gradient(
    x: np.ndarray, y: np.ndarray, l2: float
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """MSE + l2 * |w|^2 over params [w..., b] and its gradient."""

    def cost_and_gradient(params: np.ndarray) -> tuple[float, np.ndarray]:
        weights, bias = params[:-1], params[-1]
        residual = x @ weights + bias - y
        gradient = np.append(2 * x.T @ residual / len(y) + 2 * l2 * weights, 2 * residual.mean())
        return float(residual @ residual / len(y) + l2 * weights @ weights), gradient

    return cost_and_gradient


def _mse_at(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], float]:
    return lambda params: float(np.mean((x @ params[:-1] + params[-1] - y) ** 2))


def train_numpy(
    data: TrainingData, settings: Any, seed: int, log: Callable[[str], None] | None = None
) -> TrainResult:
    """Fit y = x @ w + b by conjugate gradient on MSE (+ l2 * |w|^2); cg is all it offers."""
    if settings.optimizer != "cg":
        raise ValueError(f"training.{NAME}.optimizer must be 'cg', not {settings.optimizer!r}")
    started = time.perf_counter()
    tracker = EpochTracker.for_settings(NAME, settings, log or logging.getLogger(__name__).info)
    params, stop_reason, gradients = minimize_conjugate_gradient(
        _cost_and_gradient(data.x_train, data.y_train, settings.l2),
        _mse_at(data.x_val, data.y_val),
        data.x_train.shape[1] + 1,
        settings.l2,
        tracker,
    )
    extras = {"gradient_evaluations": gradients, "dtype": "float64"}
    return tracker.to_result(params, stop_reason, ("cpu", describe_cpu()), started, extras)


def save_numpy_model(result: TrainResult, path: Path) -> None:
    """The fit as JSON; storage makes the write atomic."""
    fit = {"weights": result.weights.tolist(), "bias": result.bias}
    Path(path).write_text(json.dumps(fit))


def read_numpy_model(path: Path) -> SavedModel:
    """A fit saved by save_numpy_model, scored as numpy scores it."""
    fit = json.loads(Path(path).read_text())
    weights, bias = np.asarray(fit["weights"], dtype=np.float64), float(fit["bias"])
    return SavedModel(lambda x: x @ weights + bias, weights, bias)


register_trainer(
    TrainerSpec(
        name=NAME,
        label="numpy CG",
        train=f"{__name__}:train_numpy",
        save=f"{__name__}:save_numpy_model",
        read=f"{__name__}:read_numpy_model",
        model_file="numpy_cg.json",
        devices=("auto", "cpu"),
    )
)
