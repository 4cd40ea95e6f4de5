"""Training from data on disk: each framework's statistics and fit against the exact answer.

Every test taking `trainer` runs once per framework: the statistics are summed from chunk files
by the framework itself, then the same cost as in memory is minimized from them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest

from houseprice import layout, storage
from houseprice.config import TrainerConfig
from houseprice.model import LinearWeights
from houseprice.tasks import train as train_task
from houseprice.trainers import get_trainer, streamed
from houseprice.trainers.common import TrainingData, TrainingDivergedError, TrainResult
from houseprice.trainers.design import DesignFiles, GramStatistics
from houseprice.trainers.tensorflow_trainer import (
    tensorflow_chunk_statistics,
    train_tensorflow,
    train_tensorflow_from_statistics,
)
from houseprice.trainers.torch_trainer import (
    torch_chunk_statistics,
    train_torch,
    train_torch_from_statistics,
)
from tests.conftest import standardized_data


class Streamed(NamedTuple):
    """One framework's statistics, its fit from them, and its in-memory trainer."""

    name: str
    statistics: Callable[..., GramStatistics]
    fit: Callable[..., TrainResult]
    train_in_memory: Callable[..., TrainResult]


TRAINERS = {
    "torch": Streamed("torch", torch_chunk_statistics, train_torch_from_statistics, train_torch),
    "tensorflow": Streamed(
        "tensorflow",
        tensorflow_chunk_statistics,
        train_tensorflow_from_statistics,
        train_tensorflow,
    ),
}


@pytest.fixture(params=list(TRAINERS))
def trainer(request) -> Streamed:
    """Each framework in turn (test ids 'torch' and 'tensorflow')."""
    return TRAINERS[request.param]


def correlated_data(rows: int = 2000, validation: int = 500, seed: int = 0) -> TrainingData:
    """Standardized rows whose first four columns share one factor (cond of [x, 1] about 100)."""
    rng = np.random.default_rng(seed)
    total = rows + validation
    shared = rng.normal(size=(total, 1))
    x = np.column_stack([shared + 0.02 * rng.normal(size=(total, 4)), rng.normal(size=(total, 2))])
    x = (x - x[:rows].mean(axis=0)) / x[:rows].std(axis=0)
    y = x @ np.array([1.0, -0.5, 0.25, 2.0, -1.0, 0.5]) + 0.5 * rng.normal(size=total)
    y = (y - y[:rows].mean()) / y[:rows].std()
    return TrainingData(x[:rows], y[:rows], x[rows:], y[rows:])


DATA = correlated_data()


def _lstsq(data: TrainingData) -> np.ndarray:
    """The exact optimum [weights..., bias] of the training MSE."""
    design = np.column_stack([data.x_train, np.ones(len(data.y_train))])
    return np.linalg.lstsq(design, data.y_train, rcond=None)[0]


def _params(result: TrainResult) -> np.ndarray:
    return np.append(result.weights, result.bias)


def _relative(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(got - expected) / np.linalg.norm(expected))


def _fit_from_files(
    trainer: Streamed, design: DesignFiles, settings: TrainerConfig, log=None
) -> TrainResult:
    train, validation = streamed.accumulate_statistics(trainer.statistics, design, settings)
    return trainer.fit(train, validation, settings, 0, log)


def test_the_statistics_are_numpys_and_a_cg_fit_from_them_is_lstsqs_and_in_memorys(
    trainer, tmp_path
):
    assert np.linalg.cond(np.column_stack([DATA.x_train, np.ones(2000)])) > 80
    design = streamed.write_design_files(tmp_path, DATA, chunk_rows=700)
    train, validation = streamed.accumulate_statistics(trainer.statistics, design, TrainerConfig())
    expected = GramStatistics.of(DATA.x_train, DATA.y_train)
    np.testing.assert_allclose(train.zz, expected.zz, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(train.zy, expected.zy, rtol=1e-12, atol=1e-9)
    assert (train.yy, train.rows, validation.rows) == (pytest.approx(expected.yy), 2000, 500)
    lines: list[str] = []
    result = trainer.fit(train, validation, TrainerConfig(), 0, lines.append)
    optimum = _lstsq(DATA)
    assert _relative(_params(result), optimum) < 1e-9
    in_memory = trainer.train_in_memory(DATA, TrainerConfig(), 0)
    assert _relative(_params(result), _params(in_memory)) < 1e-9
    assert (result.framework, result.stop_reason) == (trainer.name, "converged")
    assert result.extras["gradient_evaluations"] == result.epochs + 1
    assert result.extras["statistics_rows"] == 2000 and result.extras["dtype"] == "float64"
    assert result.train_loss[-1] == pytest.approx(
        np.mean((result.predict(DATA.x_train) - DATA.y_train) ** 2)
    )
    assert result.val_loss[-1] == pytest.approx(
        np.mean((result.predict(DATA.x_val) - DATA.y_val) ** 2)
    )
    assert f"{trainer.name} cg stopped (converged)" in lines[-1]


def test_the_coefficients_do_not_depend_on_the_chunk_size(trainer, tmp_path):
    fits = {
        chunk: _params(
            _fit_from_files(
                trainer,
                streamed.write_design_files(tmp_path / str(chunk), DATA, chunk),
                TrainerConfig(),
            )
        )
        for chunk in (2000, 286)  # one chunk; seven
    }
    assert _relative(fits[286], fits[2000]) < 1e-9
    # Chunks of one row, on fewer rows (a file each is slow, not hard).
    small = correlated_data(rows=120, validation=10, seed=3)
    one, single_rows = (
        _params(
            _fit_from_files(
                trainer, streamed.write_design_files(tmp_path / f"s{c}", small, c), TrainerConfig()
            )
        )
        for c in (120, 1)
    )
    assert _relative(single_rows, one) < 1e-9
    assert _relative(one, _lstsq(small)) < 1e-9


def test_ridge_from_statistics_matches_the_ridge_optimum(trainer, tmp_path):
    l2 = 0.5
    design = streamed.write_design_files(tmp_path, DATA, chunk_rows=500)
    result = _fit_from_files(trainer, design, TrainerConfig(l2=l2))
    # Cost = mean(r^2) + l2 |w|^2 on centered columns: (X'X/n + l2 I) w = X'y/n, bias = mean(y).
    x, y = DATA.x_train - DATA.x_train.mean(axis=0), DATA.y_train
    ridge = np.linalg.solve(x.T @ x / len(y) + l2 * np.eye(6), x.T @ (y - y.mean()) / len(y))
    assert _relative(result.weights, ridge) < 1e-9
    assert result.bias == pytest.approx(y.mean() - DATA.x_train.mean(axis=0) @ ridge, abs=1e-9)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_full_batch_steps_converge_near_the_optimum_and_say_they_are_full_batch(trainer, optimizer):
    # Conditioning as in the in-memory Adam/SGD test: Adam spirals slowly into collinear valleys.
    data = standardized_data(cond=10.0)
    train = GramStatistics.of(data.x_train, data.y_train)
    validation = GramStatistics.of(data.x_val, data.y_val)
    lines: list[str] = []
    settings = TrainerConfig(optimizer=optimizer, max_epochs=400)
    result = trainer.fit(train, validation, settings, 0, lines.append)
    optimum = _lstsq(data)
    assert result.stop_reason == "converged" and result.epochs < 400
    assert result.train_loss[-1] / train.mse(optimum) < 1 + 1e-9
    assert _relative(_params(result), optimum) < 1e-4
    assert result.extras["batch"] == "full"
    assert result.extras["gradient_evaluations"] == result.epochs + 1
    assert any("one epoch = one full gradient" in line for line in lines)


def test_no_validation_rows_gives_nan_validation_losses(trainer):
    train = GramStatistics.of(DATA.x_train, DATA.y_train)
    result = trainer.fit(train, GramStatistics.empty(6), TrainerConfig(), 0, None)
    assert np.isnan(result.val_loss).all() and result.stop_reason == "converged"
    assert _relative(_params(result), _lstsq(DATA)) < 1e-9


def test_a_diverging_learning_rate_raises_naming_the_setting(trainer):
    train = GramStatistics.of(DATA.x_train, DATA.y_train)
    settings = TrainerConfig(optimizer="sgd", learning_rate=1e3)
    with pytest.raises(TrainingDivergedError, match=rf"training\.{trainer.name}\.learning_rate"):
        trainer.fit(train, GramStatistics.empty(6), settings, 0, None)


def test_float32_is_fitted_in_float64_and_says_so(trainer):
    train = GramStatistics.of(DATA.x_train, DATA.y_train)
    result = trainer.fit(train, GramStatistics.empty(6), TrainerConfig(dtype="float32"), 0, None)
    assert (result.extras["dtype"], result.extras["dtype_requested"]) == ("float64", "float32")
    assert _relative(_params(result), _lstsq(DATA)) < 1e-9


def test_a_missing_chunk_is_refused(tmp_path):
    design = streamed.write_design_files(tmp_path, DATA, chunk_rows=700)
    short = design._replace(train_files=design.train_files[1:])
    with pytest.raises(ValueError, match=r"cover 1300 training .* hold 2000"):
        streamed.accumulate_statistics(torch_chunk_statistics, short, TrainerConfig())


def test_a_long_pass_logs_progress(tmp_path, monkeypatch):
    design = streamed.write_design_files(tmp_path, DATA, chunk_rows=500)  # 4 + 1 files
    monkeypatch.setattr(streamed, "PROGRESS_EVERY_S", 0.0)
    lines: list[str] = []
    streamed.accumulate_statistics(torch_chunk_statistics, design, TrainerConfig(), lines.append)
    assert [line.split(" in ")[0] for line in lines[:4]] == [
        f"statistics: {done}/5 chunk files" for done in range(1, 5)
    ]
    assert lines[-1].startswith("statistics of 2000 training and 500 validation rows")


# ---------------------------------------------------------------------------------------------
# The training task on data on disk.


@pytest.fixture
def quiet_task(monkeypatch):
    """The task's logger outside a Prefect run."""
    monkeypatch.setattr(train_task, "get_run_logger", lambda: logging.getLogger(__name__))


def test_a_trainer_without_statistics_functions_is_refused_by_name(tmp_path, quiet_task):
    spec = dataclasses.replace(
        get_trainer("torch"), name="plain", statistics=None, train_from_statistics=None
    )
    design = streamed.write_design_files(tmp_path, DATA, chunk_rows=700)
    run = layout.RunPaths("test-run", tmp_path / "run")
    with pytest.raises(ValueError, match="trainer 'plain' cannot train from data on disk"):
        train_task.train_model.fn(spec, design, TrainerConfig(), 0, run, None)
    with pytest.raises(ValueError, match="trainer 'plain' cannot train from data on disk"):
        train_task.trainer_chunk_statistics.fn(spec, design.train_files[0], TrainerConfig())
    assert not run.model_file(spec).exists()


def test_train_model_on_design_files_saves_weights_that_score_as_the_framework(
    trainer, tmp_path, quiet_task
):
    spec = dataclasses.replace(get_trainer(trainer.name), export=None)  # exports: test_exports
    design = streamed.write_design_files(tmp_path / "design", DATA, chunk_rows=700)
    run = layout.RunPaths("test-run", tmp_path / "run")
    result = train_task.train_model.fn(spec, design, TrainerConfig(), 0, run, None)
    assert _relative(_params(result), _lstsq(DATA)) < 1e-9
    saved = spec.function("read")(run.model_file(spec))
    weights = LinearWeights.from_dict(storage.read_json(run.linear_weights(spec.name)), 6)
    rows = np.vstack([DATA.x_val[:50], DATA.x_train[:50]])
    np.testing.assert_allclose(weights.forward(rows), saved.forward(rows), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(saved.forward(rows), result.predict(rows), rtol=1e-9, atol=1e-9)


def test_train_model_fits_the_same_from_statistics_mapped_over_chunks(tmp_path, quiet_task):
    spec = dataclasses.replace(get_trainer("torch"), export=None)
    design = streamed.write_design_files(tmp_path / "design", DATA, chunk_rows=700)
    settings = TrainerConfig()

    def mapped(files: tuple[str, ...]) -> list[GramStatistics]:
        return [train_task.trainer_chunk_statistics.fn(spec, path, settings) for path in files]

    statistics = streamed.combine_statistics(
        design, mapped(design.train_files), mapped(design.validation_files)
    )
    assert statistics.check_rows.shape == (streamed.CHECK_ROWS, 6)
    run = layout.RunPaths("test-run", tmp_path / "run")
    result = train_task.train_model.fn(spec, statistics, settings, 0, run, None)
    assert _relative(_params(result), _lstsq(DATA)) < 1e-9
    assert run.linear_weights("torch").is_file()
