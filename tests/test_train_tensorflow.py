"""TensorFlow trainer against the exact least-squares answer and against the torch trainer."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from houseprice.config import TrainerConfig
from tasks.trainers.common import DeviceUnavailableError, TrainingData, TrainingDivergedError
from tasks.trainers.tensorflow_trainer import train_tensorflow
from tasks.trainers.torch_trainer import train_torch

# Shared with the torch tests; they would live in conftest.py.
from tests.test_train_torch import lstsq, mse_ratio, standardized_data


def test_cg_reaches_lstsq():
    data = standardized_data()
    result = train_tensorflow(data, TrainerConfig(), seed=0)
    optimum = lstsq(data)
    np.testing.assert_allclose(result.weights, optimum[:-1], atol=1e-9)
    assert result.bias == pytest.approx(optimum[-1], abs=1e-9)
    assert (result.framework, result.stop_reason) == ("tensorflow", "converged")
    assert result.train_loss[-1] == pytest.approx(
        np.mean((result.predict(data.x_train) - data.y_train) ** 2)
    )


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_minibatch_optimizers_approach_lstsq(optimizer):
    data = standardized_data(cond=10.0)
    settings = TrainerConfig(optimizer=optimizer, batch_size=256, max_epochs=60)
    result = train_tensorflow(data, settings, seed=0)
    assert mse_ratio(result, data) < 1.002
    np.testing.assert_allclose(result.weights, lstsq(data)[:-1], atol=0.03)


def test_cg_on_badly_conditioned_data_matches_lstsq():
    rng = np.random.default_rng(1)
    common = rng.normal(size=(2500, 1))
    x = np.column_stack([common + 1e-3 * rng.normal(size=(2500, 6)), rng.normal(size=(2500, 2))])
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    y = x @ rng.normal(size=8) + 0.1 * rng.normal(size=2500)
    y = (y - y.mean()) / y.std()
    data = TrainingData(x[:2000], y[:2000], x[2000:], y[2000:])
    result = train_tensorflow(data, TrainerConfig(), seed=0)
    optimum = lstsq(data)
    assert mse_ratio(result, data) == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(result.weights, optimum[:-1], atol=1e-4 * np.abs(optimum).max())


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
    torch_fit, tf_fit = (train(data, settings, seed=3) for train in (train_torch, train_tensorflow))
    # Same batches (numpy draws the order) and the same update formulas: only round-off differs.
    np.testing.assert_allclose(tf_fit.weights, torch_fit.weights, atol=atol)
    assert tf_fit.bias == pytest.approx(torch_fit.bias, abs=atol)
    assert tf_fit.val_loss[-1] == pytest.approx(torch_fit.val_loss[-1], rel=atol)


def test_huge_learning_rate_raises_naming_the_setting():
    with pytest.raises(TrainingDivergedError, match=r"training\.tensorflow\.learning_rate"):
        train_tensorflow(
            standardized_data(), TrainerConfig(optimizer="sgd", learning_rate=1e3), seed=0
        )


def test_same_seed_gives_the_same_weights_and_the_seed_matters():
    data = standardized_data()
    settings = TrainerConfig(optimizer="adam", batch_size=32, max_epochs=3)
    first, again, other = (train_tensorflow(data, settings, seed=seed) for seed in (7, 7, 8))
    np.testing.assert_array_equal(first.weights, again.weights)
    assert not np.allclose(first.weights, other.weights, rtol=0, atol=1e-12)


def test_early_stopping_restores_the_best_weights():
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
    result = train_tensorflow(data, settings, seed=0)
    assert result.stop_reason == "early_stopping"
    best_val = min(result.val_loss)
    assert best_val < result.val_loss[-1]
    assert np.mean((result.predict(x_val) - data.y_val) ** 2) == pytest.approx(best_val, rel=1e-9)


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="this machine has a GPU")
def test_cuda_when_unavailable_is_a_clear_error():
    with pytest.raises(DeviceUnavailableError, match=r"training\.tensorflow\.device is 'cuda'"):
        train_tensorflow(standardized_data(), TrainerConfig(device="cuda"), seed=0)


def test_mps_is_refused_for_tensorflow():
    with pytest.raises(DeviceUnavailableError, match="torch only"):
        train_tensorflow(standardized_data(), TrainerConfig(device="mps"), seed=0)


def test_records_the_device_and_a_summary_line():
    lines: list[str] = []
    result = train_tensorflow(standardized_data(), TrainerConfig(), 0, lines.append)
    assert result.device == "/CPU:0" and result.device_name
    assert result.extras["gradient_evaluations"] == result.epochs + 1
    assert "tensorflow cg stopped (converged)" in lines[-1] and len(lines) <= 12
