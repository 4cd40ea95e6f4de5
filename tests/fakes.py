"""The one builder of fake results and runs: when TrainResult or a run's layout changes, adapt here.

Tests build trainer results without training (`train_result`, `exact_results`) and run folders
without the flow (`completed_run`). Everything is keyword-based below, so a field renamed or
added in TrainResult is one edit in this module, not one per test file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from houseprice import layout, registry, storage
from houseprice.runs import COMPLETED
from houseprice.trainers import default_trainers
from houseprice.trainers.common import TrainResult

# The trainers every fake run and result set covers unless a test names others.
TRAINERS = tuple(default_trainers())


def train_result(
    name: str = "torch", weights: Any = (1.0,), bias: float = 0.0, **fields: Any
) -> TrainResult:
    """A trainer's result as a converged one-epoch CPU fit; fields override any attribute."""
    values: dict[str, Any] = {
        "framework": name,
        "weights": np.asarray(weights, dtype=np.float64),
        "bias": float(bias),
        "train_loss": [1.0],
        "val_loss": [1.0],
        "device": "cpu",
        "device_name": "test CPU",
        "seconds": 0.0,
        "epochs": 1,
        "optimizer": "cg",
        "stop_reason": "converged",
    }
    return TrainResult(**{**values, **fields})


def exact_results(
    features: Any,
    names: Iterable[str] = TRAINERS,
    scales: Mapping[str, float] | None = None,
    **fields: Any,
) -> list[TrainResult]:
    """One result per trainer at the least-squares optimum of features' training rows.

    scales multiplies a trainer's weights, to put it off the optimum by a known factor.
    """
    from houseprice.tasks.evaluate import fit_least_squares  # the reference fit (imports Prefect)

    ols = fit_least_squares(features.training.x_train, features.training.y_train)
    scales = scales or {}
    return [
        train_result(name, ols.weights * scales.get(name, 1.0), ols.bias, **fields)
        for name in names
    ]


def completed_run(
    artifacts: Path,
    run_id: str | None = None,
    *,
    framework: str = "torch",
    metrics: dict[str, Any] | None = None,
    promote: str | None = None,
) -> layout.RunPaths:
    """A completed run with a placeholder model file; champion when promote gives a reason.

    Only what the registry reads is written: run.json and the framework's model file (plus
    metrics.json when given), so a loader that opens the model itself will refuse it.
    """
    run = layout.create_run(artifacts, run_id)
    storage.write_bytes_atomic(registry.model_file(run, framework), b"model")
    if metrics is not None:
        storage.write_json_atomic(run.metrics, metrics)
    storage.write_json_atomic(run.status, {"run_id": run.run_id, "status": COMPLETED})
    if promote is not None:
        registry.promote(artifacts, run.run_id, framework, promote)
    return run


def loadable_run(
    artifacts: Path,
    run_id: str | None = None,
    *,
    columns: tuple[str, ...] = ("sqft",),
    model: str | None = None,
    weight: float = 100.0,
    metrics: dict[str, Any] | None = None,
    promote: str | None = None,
) -> layout.RunPaths:
    """A completed run that loads and scores (price = weight × sum of columns), of a model.

    What load_run_model and promote's checks read: config.yaml naming the model, preprocessing,
    the torch model file (a placeholder), its weights as JSON, and the manifest of all three.
    """
    import yaml

    from houseprice.preprocessing import Preprocessor

    run = completed_run(artifacts, run_id, metrics={"selected_model": "torch", **(metrics or {})})
    data = {"source": "houses.csv", "target": "price", "model": model}
    storage.write_text_atomic(run.config, yaml.safe_dump({"data": data}))
    prep = Preprocessor(
        target="price",
        numeric_features=list(columns),
        categorical_features=[],
        medians=dict.fromkeys(columns, 0.0),
        levels={},
        reference_levels={},
        means=[0.0] * len(columns),
        scales=[1.0] * len(columns),
        log_target=False,
        target_mean=0.0,
        target_scale=1.0,
    )
    storage.write_json_atomic(run.preprocessing, prep.to_dict())
    linear = {"weights": [weight] * len(columns), "bias": 0.0}
    storage.write_json_atomic(run.linear_weights("torch"), linear)
    files = (run.preprocessing, run.model_file("torch"), run.linear_weights("torch"))
    manifest = {str(p.relative_to(run.root)): storage.file_sha256(p) for p in files}
    storage.write_json_atomic(run.model_manifest, manifest)
    if promote is not None:
        registry.promote(artifacts, run.run_id, "torch", promote)
    return run
