"""PyTorch trainer against the exact least-squares answer, plus its failure paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from houseprice.config import TrainerConfig
from houseprice.synthetic import SyntheticSpec, make_synthetic_data
from tasks.trainers.common import DeviceUnavailableError, TrainingData, TrainingDivergedError
from tasks.trainers.torch_trainer import train_torch


def standardized_data(rows=3000, features=5, cond=30.0, noise=20_000.0, seed=0) -> TrainingData:
    """Synthetic data split 80/20 and z-scored with training statistics, as the pipeline does."""
    data = make_synthetic_data(SyntheticSpec(rows, features, cond, noise, seed))
    cut = rows * 4 // 5
    mean, scale = data.x[:cut].mean(axis=0), data.x[:cut].std(axis=0)
    y_mean, y_scale = data.y[:cut].mean(), data.y[:cut].std()
    x, y = (data.x - mean) / scale, (data.y - y_mean) / y_scale
    return TrainingData(x[:cut], y[:cut], x[cut:], y[cut:])


def lstsq(data: TrainingData) -> np.ndarray:
    """The exact optimum [weights..., bias] of the training MSE."""
    design = np.column_stack([data.x_train, np.ones(len(data.y_train))])
    return np.linalg.lstsq(design, data.y_train, rcond=None)[0]


def mse_ratio(result, data: TrainingData) -> float:
    """The model's training MSE over the optimal one (1.0 at the optimum)."""
    optimum = lstsq(data)
    best = np.mean((data.x_train @ optimum[:-1] + optimum[-1] - data.y_train) ** 2)
    return float(np.mean((result.predict(data.x_train) - data.y_train) ** 2) / best)


def test_cg_reaches_lstsq_and_the_known_coefficients():
    data = standardized_data()
    result = train_torch(data, TrainerConfig(), seed=0)
    optimum = lstsq(data)
    np.testing.assert_allclose(result.weights, optimum[:-1], atol=1e-9)
    assert result.bias == pytest.approx(optimum[-1], abs=1e-9)
    assert result.stop_reason == "converged"
    assert result.epochs <= 2 * (data.x_train.shape[1] + 1) + 2  # CG: about one epoch per unknown
    assert result.train_loss[-1] == pytest.approx(
        np.mean((result.predict(data.x_train) - data.y_train) ** 2)
    )


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_minibatch_optimizers_approach_lstsq(optimizer):
    data = standardized_data(cond=10.0)
    settings = TrainerConfig(optimizer=optimizer, batch_size=256, max_epochs=60)
    result = train_torch(data, settings, seed=0)
    assert mse_ratio(result, data) < 1.002
    np.testing.assert_allclose(result.weights, lstsq(data)[:-1], atol=0.03)
    assert result.extras["learning_rate"] == {"adam": 0.01, "sgd": 0.05}[optimizer]


def test_cg_on_badly_conditioned_data_matches_lstsq():
    # Nearly collinear columns: the standardized design's condition number is about 2,500.
    rng = np.random.default_rng(1)
    common = rng.normal(size=(2500, 1))
    x = np.column_stack([common + 1e-3 * rng.normal(size=(2500, 6)), rng.normal(size=(2500, 2))])
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    y = x @ rng.normal(size=8) + 0.1 * rng.normal(size=2500)
    y = (y - y.mean()) / y.std()
    data = TrainingData(x[:2000], y[:2000], x[2000:], y[2000:])
    assert np.linalg.cond(np.column_stack([data.x_train, np.ones(2000)])) > 1000
    result = train_torch(data, TrainerConfig(), seed=0)
    optimum = lstsq(data)
    assert mse_ratio(result, data) == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(result.weights, optimum[:-1], atol=1e-4 * np.abs(optimum).max())


def test_l2_penalty_matches_the_ridge_solution():
    data = standardized_data()
    l2 = 0.5
    result = train_torch(data, TrainerConfig(l2=l2), seed=0)
    # Cost = mean(r^2) + l2 |w|^2 on centered columns: (X'X/n + l2 I) w = X'y/n, bias = mean(y).
    x, y = data.x_train - data.x_train.mean(axis=0), data.y_train
    ridge = np.linalg.solve(
        x.T @ x / len(y) + l2 * np.eye(x.shape[1]), x.T @ (y - y.mean()) / len(y)
    )
    np.testing.assert_allclose(result.weights, ridge, atol=1e-8)
    assert np.linalg.norm(result.weights) < np.linalg.norm(lstsq(data)[:-1])


def test_float32_stays_close_to_lstsq():
    data = standardized_data()
    result = train_torch(data, TrainerConfig(dtype="float32"), seed=0)
    assert result.extras["dtype"] == "float32"
    assert mse_ratio(result, data) < 1 + 1e-5


def test_huge_learning_rate_raises_naming_the_setting():
    with pytest.raises(TrainingDivergedError, match=r"training\.torch\.learning_rate \(now 1000\)"):
        train_torch(standardized_data(), TrainerConfig(optimizer="sgd", learning_rate=1e3), seed=0)


def test_nan_in_the_data_is_refused_before_training():
    data = standardized_data()
    data.x_train[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        train_torch(data, TrainerConfig(), seed=0)


def test_same_seed_gives_the_same_weights_and_the_seed_matters():
    data = standardized_data()
    settings = TrainerConfig(optimizer="adam", batch_size=32, max_epochs=3)
    first, again, other = (train_torch(data, settings, seed=seed) for seed in (7, 7, 8))
    np.testing.assert_array_equal(first.weights, again.weights)
    assert first.bias == again.bias
    assert not np.allclose(first.weights, other.weights, rtol=0, atol=1e-12)


def test_early_stopping_restores_the_best_weights():
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
    result = train_torch(data, settings, seed=0)
    assert result.stop_reason == "early_stopping"
    assert result.epochs == result.extras["best_epoch"] + 3 < 100
    best_val = min(result.val_loss)
    assert best_val < result.val_loss[-1]
    assert np.mean((result.predict(x_val) - data.y_val) ** 2) == pytest.approx(best_val, rel=1e-9)


def test_max_epochs_stops_an_unfinished_fit():
    result = train_torch(standardized_data(), TrainerConfig(max_epochs=2), seed=0)
    assert (result.stop_reason, result.epochs, len(result.val_loss)) == ("max_epochs", 2, 2)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_when_unavailable_is_a_clear_error():
    with pytest.raises(DeviceUnavailableError, match=r"training\.torch\.device is 'cuda'"):
        train_torch(standardized_data(), TrainerConfig(device="cuda"), seed=0)


def test_records_device_threads_and_logs_about_ten_lines():
    lines: list[str] = []
    threads_before = torch.get_num_threads()
    result = train_torch(
        standardized_data(),
        TrainerConfig(optimizer="sgd", learning_rate=1e-3, max_epochs=40),
        0,
        lines.append,
    )
    assert torch.get_num_threads() == threads_before  # the cap is undone after the fit
    assert result.device == "cpu" and result.device_name
    assert result.epochs == 40 and 2 <= len(lines) <= 12
    assert "stopped (max_epochs) after 40 epochs" in lines[-1]
