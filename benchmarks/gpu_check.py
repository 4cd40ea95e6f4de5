"""Check the torch trainer (and TensorFlow's, where installed) on a GPU against lstsq.

    python -m benchmarks.gpu_check [--device cuda|cpu] [--rows 1000000] [--features 20]

Each framework is checked twice: in memory, and streamed (the scaled rows written as design
chunk files of --chunk-rows rows, their Gram statistics summed on the device by the framework,
then the fit from the statistics; houseprice/trainers/streamed.py).

Runs with numpy and torch alone (no Prefect, pydantic, pandas or TensorFlow needed), so it can
be copied onto a bare GPU box. Prints one JSON summary as its last line and exits 0 when every
fit ran on the asked device and reached the least-squares optimum, 1 when a fit is off, and 2
when the device is missing.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.training import SplitData, fit_lstsq, fit_trainer, split_rows, training_mse
from houseprice.trainers import streamed
from houseprice.trainers.common import DeviceUnavailableError, TrainingData, TrainResult

# lstsq's optimum is exact; a converged fit in float64 matches it to about 1e-12, so 1e-4 only
# fails a fit that did not converge or ran in a lossy dtype.
MAX_MSE_RATIO = 1.0001


@dataclass(frozen=True)
class CheckSettings:
    """The trainer settings, spelled out: the pipeline's pydantic config is not installed here."""

    optimizer: str = "cg"
    learning_rate: float | None = None
    max_epochs: int = 200
    batch_size: int = 1024
    l2: float = 0.0
    tolerance: float = 1e-12
    early_stopping_patience: int | None = None
    device: str = "cuda"
    threads: int = 1
    dtype: str = "float64"


# Each framework's in-memory trainer, chunk statistics and fit from statistics, by module.
FRAMEWORKS = {
    "torch": (
        "houseprice.trainers.torch_trainer",
        ("train_torch", "torch_chunk_statistics", "train_torch_from_statistics"),
    ),
    "tensorflow": (
        "houseprice.trainers.tensorflow_trainer",
        (
            "train_tensorflow",
            "tensorflow_chunk_statistics",
            "train_tensorflow_from_statistics",
        ),
    ),
}


def check_framework(
    name: str, settings: CheckSettings, split: SplitData, repeats: int, chunk_rows: int | None
) -> dict:
    """Fit one framework `repeats` times (the first pays for GPU start-up) and summarize.

    With chunk_rows, each fit streams: design chunk files, statistics, the fit from them.
    """
    module, functions = FRAMEWORKS[name]
    train, statistics_fn, fit_fn = (
        getattr(importlib.import_module(module), function) for function in functions
    )
    timings: dict[str, float] = {}
    if chunk_rows is not None:
        train = _train_from_disk(statistics_fn, fit_fn, chunk_rows, timings)
    reference = fit_lstsq(split.x, split.y)
    optimal = training_mse(split.x, split.y, reference)
    seconds, ratio, result = [], float("nan"), None
    for _ in range(repeats):
        fit, result = fit_trainer(train, settings, 0, *split)
        seconds.append(round(fit.seconds, 4))
        ratio = training_mse(split.x, split.y, fit) / optimal
    summary = {
        "device": result.device,
        "device_name": result.device_name,
        "seconds": seconds,
        "lstsq_s": round(reference.seconds, 4),
        "time_ratio": round(min(seconds) / reference.seconds, 3),
        "mse_ratio": ratio,
        "epochs": result.epochs,
        "stop_reason": result.stop_reason,
        "dtype": result.extras.get("dtype"),
    }
    return summary | {key: round(value, 4) for key, value in timings.items()}


def _train_from_disk(
    statistics_fn: Callable[..., Any],
    fit_fn: Callable[..., TrainResult],
    chunk_rows: int,
    timings: dict[str, float],
) -> Callable[..., TrainResult]:
    """A train(data, settings, seed, log) that streams through chunk files in a temporary folder;
    it records the last fit's seconds for writing, statistics and fitting in timings."""

    def train(data: TrainingData, settings: Any, seed: int, log: Any = None) -> TrainResult:
        with tempfile.TemporaryDirectory(prefix="gpu-check-design-") as folder:
            started = time.perf_counter()
            design = streamed.write_design_files(folder, data, chunk_rows)
            written = time.perf_counter()
            train_part, validation = streamed.accumulate_statistics(
                statistics_fn, design, settings, log
            )
            summed = time.perf_counter()
            result = fit_fn(train_part, validation, settings, seed, log)
        timings["write_s"], timings["statistics_s"] = written - started, summed - written
        timings["fit_s"] = result.seconds
        return result

    return train


def run_check(
    device: str,
    dtype: str,
    rows: int,
    features: int,
    cond: float,
    repeats: int,
    chunk_rows: int = 250_000,
) -> dict[str, Any]:
    """Fit each installed framework on `device`, in memory and streamed; each says if it passed."""
    split = split_rows(rows, features, cond, seed=0)
    settings = CheckSettings(device=device, dtype=dtype)
    summary: dict[str, Any] = {"rows": rows, "features": features, "cond": cond}
    summary["chunk_rows"] = chunk_rows
    for name in FRAMEWORKS:
        if importlib.util.find_spec(name) is None:
            summary[name] = summary[f"{name}_streamed"] = "not installed"
            continue
        summary[name] = check_framework(name, settings, split, repeats, None)
        summary[f"{name}_streamed"] = check_framework(name, settings, split, repeats, chunk_rows)
    fits = [fit for fit in summary.values() if isinstance(fit, dict)]
    on_device = [("cpu" in fit["device"].lower()) == (device == "cpu") for fit in fits]
    summary["ok"] = all(on_device) and all(fit["mse_ratio"] <= MAX_MSE_RATIO for fit in fits)
    return summary


def main(argv: list[str] | None = None) -> int:
    """Command line: run the check, print the JSON summary, return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--cond", type=float, default=1000.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--chunk-rows", type=int, default=250_000, help="rows per chunk file")
    arguments = parser.parse_args(argv)
    try:
        summary = run_check(
            arguments.device,
            arguments.dtype,
            arguments.rows,
            arguments.features,
            arguments.cond,
            arguments.repeats,
            arguments.chunk_rows,
        )
    except DeviceUnavailableError as error:
        print(json.dumps({"ok": False, "error": str(error)}))
        return 2
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
