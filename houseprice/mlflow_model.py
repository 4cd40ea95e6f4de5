"""The MLflow form of a saved model: `mlflow.pyfunc.load_model(uri).predict(frame)` gives prices.

A thin pyfunc wrapper around HousePriceModel. The MLflow model's artifacts are a copy of the run's
model folder (preprocessing.json, the checksum manifest and the framework's model file), laid out
as a run folder, so it loads through the same checks as `houseprice predict`. Loading it needs
houseprice installed (with mlflow); nothing pickled but this small class is stored.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from houseprice import layout, registry, storage
from houseprice.errors import ModelLoadError
from houseprice.preprocessing import Preprocessor

# The artifact key under which the copy of the run's model folder is stored.
ARTIFACT_KEY = "houseprice_run"


class HousePriceMlflowModel(mlflow.pyfunc.PythonModel):
    """Raw feature columns in, price out: one run's model with its saved preprocessing."""

    def __init__(self, run_id: str, framework: str):
        self.run_id = run_id
        self.framework = framework
        self._model: Any = None

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Load the copied model folder, checking each file against the run's manifest."""
        self._model = load_model_folder(
            Path(context.artifacts[ARTIFACT_KEY]), self.run_id, self.framework
        )

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params=None
    ) -> Any:
        """Predicted prices, one per row, exactly as `houseprice predict` computes them."""
        return self._model.predict(model_input)


def load_model_folder(root: Path, run_id: str, framework: str):
    """A HousePriceModel from a folder laid out like a run folder (model/ and its manifest)."""
    from houseprice.model import HousePriceModel, framework_forward, verify_checksums

    run = layout.RunPaths(run_id, Path(root))
    path = registry.model_file(run, framework)
    verify_checksums(run, [run.preprocessing, path])
    try:
        preprocessor = Preprocessor.from_dict(storage.read_json(run.preprocessing))
    except (ValueError, TypeError) as error:
        raise ModelLoadError(f"cannot read preprocessing {run.preprocessing}: {error}") from None
    forward = framework_forward(framework, path)
    return HousePriceModel(run_id, framework, preprocessor, forward)


def stage_model_folder(run: layout.RunPaths, framework: str, destination: Path) -> Path:
    """Copy what one framework's model needs into destination/model/ (as in a run folder)."""
    staged = layout.RunPaths(run.run_id, Path(destination))
    for source, target in (
        (run.preprocessing, staged.preprocessing),
        (run.model_manifest, staged.model_manifest),
        (registry.model_file(run, framework), registry.model_file(staged, framework)),
    ):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return Path(destination)
