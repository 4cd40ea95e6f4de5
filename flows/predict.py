"""The batch-predict flow: score a file of houses with the champion (or a named run)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from houseprice.tasks.predict import predict_file_task


@flow(name="batch-predict")
def batch_predict(
    input_path: str,
    output_path: str,
    artifacts_dir: str = "artifacts",
    run_id: str | None = None,
    model: str | None = None,
) -> str:
    """Score input_path and write the rows with a `prediction` column to output_path."""
    # input_path stays a string: it may be a URL, which Path would mangle.
    summary = predict_file_task(input_path, Path(output_path), Path(artifacts_dir), run_id, model)
    return str(summary.output)
