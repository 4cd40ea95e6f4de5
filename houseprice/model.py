"""Load a saved model (the champion or a named run) and predict prices with it.

    from houseprice.model import load_model
    model = load_model("artifacts")          # the champion
    prices = model.predict(frame)            # numpy array, price units

Loading is safe: every file is checked against the checksums recorded when the run finished,
and a run's model is scored by numpy from its checked weights JSON; older runs are read by
their trainer's own reader (torch with weights_only=True, Keras in safe mode), so nothing
pickled ever executes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from houseprice import layout, registry, storage
from houseprice.columns import normalize_missing
from houseprice.errors import InputSchemaError, ModelLoadError
from houseprice.inputs import InputLimits, InputReport, check_prices, check_scoring_input
from houseprice.preprocessing import Preprocessor
from houseprice.trainers import SavedModel, TrainerSpec, get_trainer

__all__ = ["HousePriceModel", "InputLimits", "InputSchemaError", "load_model", "load_run_model"]


def verify_checksums(run: layout.RunPaths, paths: list[Path]) -> None:
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


Forward = Callable[[np.ndarray], np.ndarray]  # scaled design matrix (rows, d) → scaled target


@dataclass(frozen=True)
class LinearWeights:
    """A saved linear model's parameters, so numpy can score it without its framework."""

    weights: np.ndarray  # (d,) float64
    bias: float

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Scaled target for scaled rows: x @ weights + bias."""
        return x @ self.weights + self.bias

    def to_dict(self) -> dict[str, object]:
        """Plain JSON; json writes floats with repr, so they read back bit for bit."""
        return {"weights": [float(w) for w in self.weights], "bias": float(self.bias)}

    @classmethod
    def from_dict(cls, values: dict[str, object], features: int) -> LinearWeights:
        """Read to_dict's output for a model of `features` inputs; ValueError if it is not one."""
        weights = np.asarray(values["weights"], dtype=np.float64)
        bias = float(values["bias"])  # type: ignore[arg-type]
        if weights.shape != (features,) or not np.isfinite([*weights, bias]).all():
            raise ValueError(f"expected {features} finite weights and a bias")
        return cls(weights, bias)


def _read_saved(trainer: str | TrainerSpec, path: Path) -> SavedModel:
    """A saved model read back by its trainer's own framework (imports it)."""
    spec = trainer if isinstance(trainer, TrainerSpec) else get_trainer(trainer)
    return spec.function("read")(path)


def framework_forward(trainer: str | TrainerSpec, path: Path) -> Forward:
    """Score with the saved model through its framework (imports torch, TensorFlow, ...)."""
    return _read_saved(trainer, path).forward


def checked_linear_weights(trainer: str | TrainerSpec, path: Path, x: np.ndarray) -> LinearWeights:
    """The saved model's weights, after checking numpy scores x as its framework does.

    Run where the framework is loaded anyway (the training worker), so that loading the model
    later needs numpy only. Raises ModelLoadError if the two disagree beyond round-off.
    """
    saved = _read_saved(trainer, path)
    weights = LinearWeights(np.array(saved.weights, dtype=np.float64), float(saved.bias))
    expected, got = saved.forward(x), weights.forward(x)
    if not np.allclose(got, expected, rtol=1e-9, atol=1e-9):
        worst = float(np.max(np.abs(got - expected)))
        name = trainer.name if isinstance(trainer, TrainerSpec) else trainer
        raise ModelLoadError(
            f"numpy scores {path} differently from {name} (by up to {worst:.3g}); "
            "its weights were not saved for numpy scoring"
        )
    return weights


def _linear_forward(run: layout.RunPaths, framework: str, features: int) -> Forward:
    """numpy scoring from the run's weights JSON (checked against the manifest by the caller)."""
    path = run.linear_weights(framework)
    try:
        return LinearWeights.from_dict(storage.read_json(path), features).forward
    except (KeyError, TypeError, ValueError) as error:
        raise ModelLoadError(f"cannot read model weights {path}: {error}") from None


@dataclass
class HousePriceModel:
    """A saved model with its preprocessing: raw rows in, prices out."""

    run_id: str
    framework: str
    preprocessor: Preprocessor
    forward: Forward

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
    # Runs that recorded their weights as JSON are scored by numpy (no framework import, ~0.1 s
    # instead of 2-5 s); older runs by their framework. The framework file is verified either way:
    # it is the model, the JSON a checked copy of its parameters.
    numpy_ready = run.linear_weights(framework).exists()
    verify_checksums(
        run, [run.preprocessing, path] + ([run.linear_weights(framework)] if numpy_ready else [])
    )
    try:
        preprocessor = Preprocessor.from_dict(storage.read_json(run.preprocessing))
    except (ValueError, TypeError) as error:
        raise ModelLoadError(f"cannot read preprocessing {run.preprocessing}: {error}") from None
    if numpy_ready:
        forward = _linear_forward(run, framework, len(preprocessor.feature_names))
    else:
        forward = framework_forward(framework, path)
    return HousePriceModel(run_id, framework, preprocessor, forward)


def load_model(
    artifacts_dir: Path | str = "artifacts", run_id: str | None = None, model: str | None = None
) -> HousePriceModel:
    """Load a model's champion (the only one when model is None), or a named run's model."""
    if run_id is not None:
        return load_run_model(Path(artifacts_dir), registry.check_user_run_id(run_id))
    champion = registry.read_champion(Path(artifacts_dir), model)
    if champion is None:
        raise registry.RegistryError(registry.no_champion_message(Path(artifacts_dir), model))
    return load_run_model(Path(artifacts_dir), champion.run_id, champion.framework)
