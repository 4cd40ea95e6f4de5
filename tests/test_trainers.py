"""The contract both trainers share, checked for each against the exact answer and each other.

Every test taking `trainer` runs once per framework: train_torch and train_tensorflow take the
same arguments and return the same TrainResult, so one test states the contract for both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
import tensorflow as tf
import torch

from houseprice.config import TrainerConfig
from houseprice.trainers.common import (
    DeviceUnavailableError,
    TrainingData,
    TrainingDivergedError,
    TrainResult,
)
from houseprice.trainers.tensorflow_trainer import train_tensorflow
from houseprice.trainers.torch_trainer import train_torch
from tests.conftest import standardized_data


class Trainer(NamedTuple):
    """One framework's trainer, plus the few things the contract leaves to the framework."""

    name: str  # TrainResult.framework, and the middle of the setting paths in error messages
    train: Callable[..., TrainResult]
    cpu_device: str  # TrainResult.device when the fit ran on the CPU
    has_gpu: Callable[[], bool]


TRAINERS = {
    "torch": Trainer("torch", train_torch, "cpu", torch.cuda.is_available),
    "tensorflow": Trainer(
        "tensorflow",
        train_tensorflow,
        "/CPU:0",
        lambda: bool(tf.config.list_physical_devices("GPU")),
    ),
}


@pytest.fixture(params=list(TRAINERS))
def trainer(request) -> Trainer:
    """Each framework's trainer in turn (test ids 'torch' and 'tensorflow')."""
    return TRAINERS[request.param]


def _lstsq(data: TrainingData) -> np.ndarray:
    """The exact optimum [weights..., bias] of the training MSE."""
    design = np.column_stack([data.x_train, np.ones(len(data.y_train))])
    return np.linalg.lstsq(design, data.y_train, rcond=None)[0]


def _mse_ratio(result: TrainResult, data: TrainingData) -> float:
    """The model's training MSE over the optimal one (1.0 at the optimum)."""
    optimum = _lstsq(data)
    best = np.mean((data.x_train @ optimum[:-1] + optimum[-1] - data.y_train) ** 2)
    return float(np.mean((result.predict(data.x_train) - data.y_train) ** 2) / best)


def test_cg_reaches_lstsq_and_the_known_coefficients(trainer):
    data = standardized_data()
    lines: list[str] = []
    result = trainer.train(data, TrainerConfig(), 0, lines.append)
    optimum = _lstsq(data)
    np.testing.assert_allclose(result.weights, optimum[:-1], atol=1e-9)
    assert result.bias == pytest.approx(optimum[-1], abs=1e-9)
    assert (result.framework, result.stop_reason) == (trainer.name, "converged")
    assert result.epochs <= 2 * (data.x_train.shape[1] + 1) + 2  # CG: about one epoch per unknown
    assert result.extras["gradient_evaluations"] == result.epochs + 1  # one each, plus at zero
    assert result.train_loss[-1] == pytest.approx(
        np.mean((result.predict(data.x_train) - data.y_train) ** 2)
    )
    assert f"{trainer.name} cg stopped (converged)" in lines[-1] and len(lines) <= 12


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_minibatch_optimizers_approach_lstsq(trainer, optimizer):
    data = standardized_data(cond=10.0)
    settings = TrainerConfig(optimizer=optimizer, batch_size=256, max_epochs=60)
    result = trainer.train(data, settings, seed=0)
    assert _mse_ratio(result, data) < 1.002
    np.testing.assert_allclose(result.weights, _lstsq(data)[:-1], atol=0.03)
    assert result.extras["learning_rate"] == {"adam": 0.01, "sgd": 0.05}[optimizer]


def test_cg_on_badly_conditioned_data_matches_lstsq(trainer):
    # Nearly collinear columns: the standardized design's condition number is about 2,500.
    rng = np.random.default_rng(1)
    common = rng.normal(size=(2500, 1))
    x = np.column_stack([common + 1e-3 * rng.normal(size=(2500, 6)), rng.normal(size=(2500, 2))])
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    y = x @ rng.normal(size=8) + 0.1 * rng.normal(size=2500)
    y = (y - y.mean()) / y.std()
    data = TrainingData(x[:2000], y[:2000], x[2000:], y[2000:])
    assert np.linalg.cond(np.column_stack([data.x_train, np.ones(2000)])) > 1000
    result = trainer.train(data, TrainerConfig(), seed=0)
    optimum = _lstsq(data)
    assert _mse_ratio(result, data) == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(result.weights, optimum[:-1], atol=1e-4 * np.abs(optimum).max())


def test_l2_penalty_matches_the_ridge_solution(trainer):
    data = standardized_data()
    l2 = 0.5
    result = trainer.train(data, TrainerConfig(l2=l2), seed=0)
    # Cost = mean(r^2) + l2 |w|^2 on centered columns: (X'X/n + l2 I) w = X'y/n, bias = mean(y).
    x, y = data.x_train - data.x_train.mean(axis=0), data.y_train
    ridge = np.linalg.solve(
        x.T @ x / len(y) + l2 * np.eye(x.shape[1]), x.T @ (y - y.mean()) / len(y)
    )
    np.testing.assert_allclose(result.weights, ridge, atol=1e-8)
    assert np.linalg.norm(result.weights) < np.linalg.norm(_lstsq(data)[:-1])


def test_float32_stays_close_to_lstsq(trainer):
    data = standardized_data()
    result = trainer.train(data, TrainerConfig(dtype="float32"), seed=0)
    assert result.extras["dtype"] == "float32"
    assert _mse_ratio(result, data) < 1 + 1e-5


@pytest.mark.parametrize(
    ("optimizer", "dtype", "atol"),
    [
        ("cg", "float64", 1e-9),
        ("adam", "float64", 1e-9),
        ("sgd", "float64", 1e-9),
        ("cg", "float32", 1e-4),
    ],
)
def test_torch_and_tensorflow_agree(optimizer, dtype, atol):
    data = standardized_data()
    settings = TrainerConfig(optimizer=optimizer, batch_size=128, max_epochs=5, dtype=dtype)
    torch_fit, tf_fit = (
        TRAINERS[name].train(data, settings, seed=3) for name in ("torch", "tensorflow")
    )
    # Same batches (numpy draws the order) and the same update formulas: only round-off differs.
    np.testing.assert_allclose(tf_fit.weights, torch_fit.weights, atol=atol)
    assert tf_fit.bias == pytest.approx(torch_fit.bias, abs=atol)
    assert tf_fit.val_loss[-1] == pytest.approx(torch_fit.val_loss[-1], rel=atol)


def test_huge_learning_rate_raises_naming_the_setting(trainer):
    setting = rf"training\.{trainer.name}\.learning_rate \(now 1000\)"
    with pytest.raises(TrainingDivergedError, match=setting):
        trainer.train(
            standardized_data(), TrainerConfig(optimizer="sgd", learning_rate=1e3), seed=0
        )


def test_nan_in_the_data_is_refused_before_training(trainer):
    data = standardized_data()
    data.x_train[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        trainer.train(data, TrainerConfig(), seed=0)


def test_same_seed_gives_the_same_weights_and_the_seed_matters(trainer):
    data = standardized_data()
    settings = TrainerConfig(optimizer="adam", batch_size=32, max_epochs=3)
    first, again, other = (trainer.train(data, settings, seed=seed) for seed in (7, 7, 8))
    np.testing.assert_array_equal(first.weights, again.weights)
    assert first.bias == again.bias
    assert not np.allclose(first.weights, other.weights, rtol=0, atol=1e-12)


def test_early_stopping_restores_the_best_weights(trainer):
    # Validation follows half the training slope: its loss falls, then rises past the midpoint.
    rng = np.random.default_rng(2)
    x, x_val = rng.normal(size=(2000, 3)), rng.normal(size=(500, 3))
    slope = np.array([1.0, -2.0, 0.5])
    data = TrainingData(x, x @ slope, x_val, x_val @ slope / 2)
    settings = TrainerConfig(
        optimizer="sgd",
        learning_rate=0.002,
        batch_size=100,
        max_epochs=100,
        early_stopping_patience=3,
    )
    result = trainer.train(data, settings, seed=0)
    assert result.stop_reason == "early_stopping"
    assert result.epochs == result.extras["best_epoch"] + 3 < 100
    best_val = min(result.val_loss)
    assert best_val < result.val_loss[-1]
    assert np.mean((result.predict(x_val) - data.y_val) ** 2) == pytest.approx(best_val, rel=1e-9)


def test_max_epochs_stops_an_unfinished_fit(trainer):
    result = trainer.train(standardized_data(), TrainerConfig(max_epochs=2), seed=0)
    assert (result.stop_reason, result.epochs, len(result.val_loss)) == ("max_epochs", 2, 2)


def test_cuda_when_unavailable_is_a_clear_error(trainer):
    if trainer.has_gpu():
        pytest.skip(f"{trainer.name} sees a GPU on this machine")
    with pytest.raises(
        DeviceUnavailableError, match=rf"training\.{trainer.name}\.device is 'cuda'"
    ):
        trainer.train(standardized_data(), TrainerConfig(device="cuda"), seed=0)


def test_records_device_threads_and_logs_about_ten_lines(trainer):
    lines: list[str] = []
    # device="cpu": with "auto" this would train on a GPU wherever there is one.
    settings = TrainerConfig(optimizer="sgd", learning_rate=1e-3, max_epochs=40, device="cpu")
    result = trainer.train(standardized_data(), settings, 0, lines.append)
    assert result.device == trainer.cpu_device and result.device_name
    assert result.extras["threads"] == settings.threads
    progress = [line for line in lines if line.startswith(f"{trainer.name} sgd ")]
    # The one other line allowed: TensorFlow fixes its thread pools when it first starts, so
    # after an earlier test (or fit) set another count it says the setting waits for a new process.
    assert all("keeps its thread pools" in line for line in lines if line not in progress)
    assert result.epochs == 40 and 2 <= len(progress) <= 12
    assert f"{trainer.name} sgd stopped (max_epochs) after 40 epochs" in lines[-1]


def test_a_long_fit_logs_an_epoch_line_every_two_seconds_and_a_short_one_once(monkeypatch):
    from houseprice.trainers import common

    clock = iter([0.0, 0.5, 1.0, 2.1, 2.5, 4.2, 4.3])  # seconds at each epoch's end
    monkeypatch.setattr(common.time, "perf_counter", lambda: next(clock))
    lines: list[str] = []
    settings = TrainerConfig(optimizer="adam", max_epochs=7, tolerance=0.0)
    tracker = common.EpochTracker.for_settings("torch", settings, lines.append)
    tracker.start(1.0)
    for _ in range(7):
        tracker.record(np.zeros(2), 0.5, 0.5)
    assert [line.split(":")[0] for line in lines] == [
        "torch adam epoch 1/7",
        "torch adam epoch 4/7",
        "torch adam epoch 6/7",
    ]
