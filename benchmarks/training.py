"""Time both trainers against numpy.linalg.lstsq on the same known-answer data, in one process.

    python -m benchmarks.training [--rows 1000000 --features 20 --cond 1000]

Each timing covers what that method needs beyond the raw float64 features: lstsq builds its
design matrix (an intercept column appended, i.e. a copy); each trainer z-scores features and
target with the training statistics, as the pipeline does, trains with the flow's default
TrainerConfig, and maps the coefficients back to price units. With --repeats the three methods
run in turn that many times and each figure is the median, so a burst of load on a shared
machine skews one round, not one method. The last line printed is one JSON object; the lines
before it are for a person. The helpers above run_benchmark need numpy only: gpu_check.py uses
them on a GPU box without pydantic.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from houseprice.synthetic import SyntheticSpec, make_synthetic_data
from houseprice.trainers.common import TrainingData, TrainResult

# The pipeline's default split is 70/15/15: validation has 15/70 as many rows as training.
VALIDATION_PER_TRAINING_ROW = 15 / 70


class Timed(NamedTuple):
    """One method's fitted coefficients in price units and its wall time."""

    coefficients: np.ndarray
    intercept: float
    seconds: float


def fit_lstsq(x: np.ndarray, y: np.ndarray) -> Timed:
    """The exact least-squares reference: lstsq on [x, 1] in float64."""
    started = time.perf_counter()
    design = np.column_stack([x, np.ones(x.shape[0])])
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    return Timed(solution[:-1], float(solution[-1]), time.perf_counter() - started)


def fit_trainer(
    train: Callable[..., TrainResult],
    settings: object,
    seed: int,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
) -> tuple[Timed, TrainResult]:
    """Standardize as the pipeline does, train, and map the model back to price units."""
    started = time.perf_counter()
    x_train, x_mean, x_scale = _standardize(x)
    y_mean, y_scale = float(y.mean()), float(y.std())
    x_validation = np.subtract(x_val, x_mean)
    x_validation /= x_scale
    data = TrainingData(x_train, (y - y_mean) / y_scale, x_validation, (y_val - y_mean) / y_scale)
    result = train(data, settings, seed, log=lambda line: print(f"    {line}"))
    del data, x_train, x_validation
    coefficients = result.weights * y_scale / x_scale
    intercept = y_mean + y_scale * result.bias - float(coefficients @ x_mean)
    return Timed(coefficients, intercept, time.perf_counter() - started), result


def _standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z-scored copy of x, column means, column standard deviations), with one new array."""
    mean = x.mean(axis=0)
    centered = np.subtract(x, mean)
    scale = np.sqrt(np.einsum("ij,ij->j", centered, centered) / x.shape[0])
    centered /= scale
    return centered, mean, scale


def training_mse(x: np.ndarray, y: np.ndarray, fit: Timed) -> float:
    """Mean squared error of a fit on the training rows, in price units squared."""
    residual = x @ fit.coefficients
    residual += fit.intercept - y
    return float(residual @ residual) / x.shape[0]


class SplitData(NamedTuple):
    """Raw (unscaled) training and validation rows in price units."""

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def split_rows(rows: int, features: int, cond: float, seed: int) -> SplitData:
    """Known-answer data: `rows` training rows plus the pipeline's share of validation rows."""
    validation_rows = max(1, round(rows * VALIDATION_PER_TRAINING_ROW))
    spec = SyntheticSpec(rows=rows + validation_rows, features=features, cond=cond, seed=seed)
    data = make_synthetic_data(spec)
    return SplitData(data.x[:rows], data.y[:rows], data.x[rows:], data.y[rows:])


def run_benchmark(
    rows: int, features: int, cond: float, seed: int, repeats: int
) -> dict[str, float | int]:
    """Fit lstsq, torch and TensorFlow on one synthetic data set; return the summary figures."""
    from houseprice.config import TrainingConfig
    from houseprice.trainers.tensorflow_trainer import train_tensorflow
    from houseprice.trainers.torch_trainer import train_torch

    split = split_rows(rows, features, cond, seed)
    config = TrainingConfig()
    print(
        f"data: {rows} training + {split.x_val.shape[0]} validation rows x {features} features, "
        f"cond {cond:g} before scaling; default settings {config.torch.model_dump()}"
    )
    trainers = {
        "torch": (train_torch, config.torch),
        "tensorflow": (train_tensorflow, config.tensorflow),
    }
    seconds: dict[str, list[float]] = {name: [] for name in ("lstsq", *trainers)}
    ratios: dict[str, float] = {}
    for round_number in range(1, repeats + 1):
        reference = fit_lstsq(split.x, split.y)
        optimal = training_mse(split.x, split.y, reference)
        seconds["lstsq"].append(reference.seconds)
        print(f"round {round_number}: lstsq {reference.seconds:.3f} s, training mse {optimal:.6g}")
        for name, (train, settings) in trainers.items():
            fit, result = fit_trainer(train, settings, config.seed, *split)
            ratios[name] = training_mse(split.x, split.y, fit) / optimal
            seconds[name].append(fit.seconds)
            error = np.max(np.abs(fit.coefficients - reference.coefficients))
            print(
                f"round {round_number}: {name} {fit.seconds:.3f} s ({result.seconds:.3f} s in the "
                f"trainer), {result.epochs} epochs, {result.stop_reason}, mse ratio "
                f"{ratios[name]:.12f}, max coefficient difference from lstsq {error:.3g}"
            )
    median = {name: float(np.median(values)) for name, values in seconds.items()}
    return {
        "rows": rows,
        "features": features,
        "lstsq_s": round(median["lstsq"], 4),
        "torch_s": round(median["torch"], 4),
        "tensorflow_s": round(median["tensorflow"], 4),
        "torch_time_ratio": round(median["torch"] / median["lstsq"], 3),
        "tensorflow_time_ratio": round(median["tensorflow"] / median["lstsq"], 3),
        "torch_mse_ratio": ratios["torch"],
        "tensorflow_mse_ratio": ratios["tensorflow"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: run the benchmark and print its figures, JSON last."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.training", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="training rows")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--cond", type=float, default=1000.0, help="condition number, unscaled")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1, help="rounds; figures are medians")
    arguments = parser.parse_args(argv)
    figures = run_benchmark(
        arguments.rows, arguments.features, arguments.cond, arguments.seed, arguments.repeats
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
