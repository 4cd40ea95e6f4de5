"""Scoring a file with a saved model, free of Prefect so that `houseprice predict` starts fast.

The batch-predict flow wraps predict_file in a task (tasks/predict.py); the CLI calls it directly.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from houseprice import storage
from houseprice.champion import choose_scoring_model
from houseprice.errors import SourceError
from houseprice.inputs import FAR_OUTSIDE_Z, InputLimits
from houseprice.model import HousePriceModel
from houseprice.tasks.sources import read_source

logger = logging.getLogger(__name__)
PREDICTION_COLUMN = "prediction"
MODEL_ID_COLUMN = "model_id"


class PredictionSummary(NamedTuple):
    """What a scoring run did."""

    output: Path
    rows: int
    model_id: str
    unseen_categories: dict[str, list[str]]
    imputed: dict[str, int]  # column → cells filled with the training median
    far_outside: dict[str, int]  # column → rows far outside the training data
    model_name: str = ""  # the named model whose champion (or run) scored the rows
    champion: bool = False  # scored by that model's champion, not a run named with --run

    def scored_by(self) -> str:
        """'the champion of model ames (run X/torch)', or 'run X/torch (model ames)'."""
        if self.champion:
            return f"the champion of model {self.model_name} (run {self.model_id})"
        return f"run {self.model_id} (model {self.model_name})"


def score_rows(
    model: HousePriceModel, frame: pd.DataFrame, limits: InputLimits | None = None
) -> pd.DataFrame:
    """The input rows plus a price `prediction` and the `model_id` that made it."""
    return frame.assign(
        **{PREDICTION_COLUMN: model.predict(frame, limits), MODEL_ID_COLUMN: model.model_id}
    )


def predict_file(
    input_path: Path,
    output_path: Path,
    artifacts_dir: Path,
    run_id: str | None = None,
    limits: InputLimits | None = None,
    separator: str = ",",
    model_name: str | None = None,
) -> PredictionSummary:
    """Score a CSV/Parquet file and write the result, as CSV or Parquet by output's extension.

    The rows are scored by run_id's model, else model_name's champion, else the champion whose
    columns the file has (houseprice.champion.choose_scoring_model).
    """
    if Path(output_path).suffix.lower() not in {".csv", ".parquet", ".pq"}:
        raise SourceError(f"output {output_path} must end in .csv or .parquet")
    choice, frame = choose_scoring_model(
        artifacts_dir, lambda: read_source(str(input_path), separator), model_name, run_id
    )
    model = choice.model
    checked = model.check_input(frame, limits)
    scored = score_rows(model, frame, limits)
    storage.write_table_atomic(Path(output_path), scored)
    unseen = model.preprocessor.unseen_categories(frame)
    return PredictionSummary(
        Path(output_path),
        len(scored),
        model.model_id,
        unseen,
        checked.imputed,
        checked.far_outside,
        choice.model_name,
        choice.champion,
    )


def describe_input_notes(summary: PredictionSummary) -> list[str]:
    """One line per kind of help the rows needed: gaps filled, values far outside training."""
    lines = []
    if summary.imputed:
        counts = ", ".join(f"{c} {n}" for c, n in summary.imputed.items())
        lines.append(f"missing values filled with the training median: {counts}")
    if summary.far_outside:
        counts = ", ".join(f"{c} {n}" for c, n in summary.far_outside.items())
        lines.append(
            f"rows with values over {FAR_OUTSIDE_Z:g} standard deviations from training "
            f"(extrapolated prices): {counts}"
        )
    return lines
