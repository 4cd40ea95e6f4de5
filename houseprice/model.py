"""Load a saved model (the champion or a named run) and predict prices with it.

    from houseprice.model import load_model
    model = load_model("artifacts")          # the champion
    prices = model.predict(frame)            # numpy array, price units

Loading is safe: every file is checked against the checksums recorded when the run finished,
torch loads with weights_only=True and Keras in safe mode, so nothing pickled ever executes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from houseprice import registry, storage
from houseprice.columns import normalize_missing
from houseprice.errors import InputSchemaError, ModelLoadError
from houseprice.inputs import InputLimits, InputReport, check_prices, check_scoring_input
from houseprice.preprocessing import Preprocessor

__all__ = ["HousePriceModel", "InputLimits", "InputSchemaError", "load_model", "load_run_model"]


def verify_checksums(run: storage.RunPaths, paths: list[Path]) -> None:
    """Refuse files that differ from what the run recorded (truncated or tampered with)."""
    try:
        recorded = storage.read_json(run.model_manifest)
    except (OSError, ValueError):
        raise ModelLoadError(
            f"run {run.run_id} has no readable model manifest; it did not finish"
        ) from None
    for path in paths:
        name = str(path.relative_to(run.root))
        if name not in recorded:
            raise ModelLoadError(f"{path} is not listed in the run's model manifest")
        if not path.exists():
            raise ModelLoadError(f"model file {path} is missing")
        if storage.file_sha256(path) != recorded[name]:
            raise ModelLoadError(
                f"model file {path} does not match the checksum recorded when run {run.run_id} "
                "finished: it was truncated or modified. Retrain, or promote another run."
            )


def _torch_forward(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    from tasks.trainers.torch_trainer import load_torch_model

    module = load_torch_model(path)
    dtype = module.weight.dtype

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(x).to(dtype)).numpy()[:, 0].astype("float64")

    return forward


def _keras_forward(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    from tasks.trainers.tensorflow_trainer import load_keras_model

    model = load_keras_model(path)
    return lambda x: np.asarray(model(x, training=False), dtype="float64")[:, 0]


@dataclass
class HousePriceModel:
    """A saved model with its preprocessing: raw rows in, prices out."""

    run_id: str
    framework: str
    preprocessor: Preprocessor
    forward: Callable[[np.ndarray], np.ndarray]  # scaled design matrix → scaled target

    @property
    def model_id(self) -> str:
        """Which model made a prediction: '<run_id>/<framework>'."""
        return f"{self.run_id}/{self.framework}"

    def check_input(self, frame: pd.DataFrame, limits: InputLimits | None = None) -> InputReport:
        """Raise InputSchemaError naming each unusable column; report filled gaps per column."""
        return check_scoring_input(self.preprocessor, normalize_missing(frame), limits)

    def predict(self, frame: pd.DataFrame, limits: InputLimits | None = None) -> np.ndarray:
        """Predicted prices for each row of frame (unseen categories score as the reference).

        Refuses inputs that are missing, not numbers, infinite or beyond the limits, and never
        returns a non-finite or absurd price (houseprice/inputs.py).
        """
        frame = normalize_missing(frame)
        check_scoring_input(self.preprocessor, frame, limits)
        numeric = {
            c: pd.to_numeric(frame[c], errors="coerce") for c in self.preprocessor.numeric_features
        }
        design = self.preprocessor.transform(frame.assign(**numeric))
        prices = self.preprocessor.inverse_target(self.forward(design))
        check_prices(prices, limits)
        return prices


def load_run_model(
    artifacts_dir: Path, run_id: str, framework: str | None = None
) -> HousePriceModel:
    """Load one framework's model from a completed run (its selected model by default)."""
    run = registry.require_completed(artifacts_dir, run_id)
    framework = framework or storage.read_json(run.metrics).get("selected_model")
    if framework is None:
        raise registry.RegistryError(
            f"run {run_id} selected no model (neither trainer matched least squares); "
            "see its report.html"
        )
    path = registry.model_file(run, framework)
    verify_checksums(run, [run.preprocessing, path])
    try:
        preprocessor = Preprocessor.from_dict(storage.read_json(run.preprocessing))
    except (ValueError, TypeError) as error:
        raise ModelLoadError(f"cannot read preprocessing {run.preprocessing}: {error}") from None
    forward = _torch_forward(path) if framework == "torch" else _keras_forward(path)
    return HousePriceModel(run_id, framework, preprocessor, forward)


def load_model(
    artifacts_dir: Path | str = "artifacts", run_id: str | None = None
) -> HousePriceModel:
    """Load the champion, or a named run's selected model."""
    if run_id is not None:
        return load_run_model(Path(artifacts_dir), registry.check_user_run_id(run_id))
    champion = registry.read_champion(Path(artifacts_dir))
    if champion is None:
        raise registry.RegistryError(registry.no_champion_message(Path(artifacts_dir)))
    return load_run_model(Path(artifacts_dir), champion.run_id, champion.framework)
