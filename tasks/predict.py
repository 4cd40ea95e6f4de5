"""Predict: score rows with the champion (or a named run) and write them with their prices."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import storage
from houseprice.model import HousePriceModel, load_model
from tasks.ingest import SourceError, read_source

logger = logging.getLogger(__name__)
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


@task(name="predict-file", cache_policy=NO_CACHE)
def predict_file_task(
    input_path: Path, output_path: Path, artifacts_dir: Path, run_id: str | None = None
) -> PredictionSummary:
    """Score a file of houses with the champion or a named run."""
    summary = predict_file(input_path, output_path, artifacts_dir, run_id)
    log = get_run_logger()
    log.info("predict: %d rows scored by %s -> %s", summary.rows, summary.model_id, summary.output)
    for column, values in summary.unseen_categories.items():
        log.warning(
            "predict: %s has levels unseen in training, scored as the reference: %s",
            column,
            values[:10],
        )
    return summary
