"""Scoring a file with a saved model, free of Prefect so that `houseprice predict` starts fast.

The batch-predict flow wraps predict_file in a task (tasks/predict.py); the CLI calls it directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pandas as pd

from houseprice import storage
from houseprice.model import HousePriceModel, load_model
from tasks.sources import SourceError, read_source

PREDICTION_COLUMN = "prediction"
MODEL_ID_COLUMN = "model_id"


class PredictionSummary(NamedTuple):
    """What a scoring run did."""

    output: Path
    rows: int
    model_id: str
    unseen_categories: dict[str, list[str]]


def score_rows(model: HousePriceModel, frame: pd.DataFrame) -> pd.DataFrame:
    """The input rows plus a price `prediction` and the `model_id` that made it."""
    return frame.assign(
        **{PREDICTION_COLUMN: model.predict(frame), MODEL_ID_COLUMN: model.model_id}
    )


def predict_file(
    input_path: Path, output_path: Path, artifacts_dir: Path, run_id: str | None = None
) -> PredictionSummary:
    """Score a CSV/Parquet file and write the result, as CSV or Parquet by output's extension."""
    if Path(output_path).suffix.lower() not in {".csv", ".parquet", ".pq"}:
        raise SourceError(f"output {output_path} must end in .csv or .parquet")
    model = load_model(artifacts_dir, run_id)
    frame = read_source(str(input_path))
    scored = score_rows(model, frame)
    storage.write_table_atomic(Path(output_path), scored)
    unseen = model.preprocessor.unseen_categories(frame)
    return PredictionSummary(Path(output_path), len(scored), model.model_id, unseen)
