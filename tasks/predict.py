"""Predict: score rows with the champion (or a named run) and write them with their prices."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice.tasks.scoring import (  # noqa: F401  (re-exported for callers of the predict stage)
    MODEL_ID_COLUMN,
    PREDICTION_COLUMN,
    PredictionSummary,
    describe_estimate,
    describe_input_notes,
    describe_summary,
    predict_file,
    score_rows,
)


@task(name="predict-file", cache_policy=NO_CACHE)
def predict_file_task(
    input_path: str | Path,
    output_path: Path,
    artifacts_dir: Path,
    run_id: str | None = None,
    model: str | None = None,
) -> PredictionSummary:
    """Score a file of houses with a model's champion or a named run."""
    summary = predict_file(input_path, output_path, artifacts_dir, run_id, model_name=model)
    log = get_run_logger()
    log.info("predict: %s", describe_summary(summary))
    if estimate := describe_estimate(summary):
        log.info("predict: %s", estimate)
    for column, values in summary.unseen_categories.items():
        log.warning(
            "predict: %s has levels unseen in training, scored as the reference: %s",
            column,
            values[:10],
        )
    for line in describe_input_notes(summary):
        log.warning("predict: %s", line)
    return summary
