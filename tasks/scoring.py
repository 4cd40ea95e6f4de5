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
from houseprice.inputs import FAR_OUTSIDE_Z, InputLimits, InputReport
from houseprice.model import HousePriceModel
from houseprice.tasks.sources import read_source

logger = logging.getLogger(__name__)
PREDICTION_COLUMN = "prediction"
MODEL_ID_COLUMN = "model_id"
# Per row, the columns outside the training range (inputs.RANGE_MARGIN), '' when none.
OUT_OF_RANGE_COLUMN = "out_of_range"


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
    out_of_range: int | None = None  # rows outside the training range; None: model has no ranges
    log_target: bool = False  # the model fits log(price): its prices estimate ...
    estimate: str = "mean"  # ... the median or the mean price (features.log_target_estimate)
    smearing_factor: float = 1.0  # Duan's, from the training rows (log target)

    def scored_by(self) -> str:
        """'the champion of model ames (run X/torch)', or 'run X/torch (model ames)'."""
        if self.champion:
            return f"the champion of model {self.model_name} (run {self.model_id})"
        return f"run {self.model_id} (model {self.model_name})"


def score_rows(
    model: HousePriceModel,
    frame: pd.DataFrame,
    limits: InputLimits | None = None,
    checked: InputReport | None = None,
) -> pd.DataFrame:
    """The input rows plus a price `prediction`, the `model_id` that made it, and `out_of_range`.

    `out_of_range` lists each row's columns outside the training range; a model saved before
    training ranges were kept cannot tell, and its rows get no such column. checked: the
    frame's model.check_input report, when the caller has it already.
    """
    flags = (checked or model.check_input(frame, limits)).out_of_range
    scored = frame.assign(
        **{PREDICTION_COLUMN: model.predict(frame, limits), MODEL_ID_COLUMN: model.model_id}
    )
    return scored if flags is None else scored.assign(**{OUT_OF_RANGE_COLUMN: flags.to_numpy()})


def predict_file(
    input_path: str | Path,
    output_path: Path,
    artifacts_dir: Path,
    run_id: str | None = None,
    limits: InputLimits | None = None,
    separator: str = ",",
    model_name: str | None = None,
) -> PredictionSummary:
    """Score a CSV/Parquet file or URL; write the result, as CSV or Parquet by output's extension.

    input_path is read as retrain reads its source (tasks/sources.py): a path, or an http(s) URL.
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
    scored = score_rows(model, frame, limits, checked)
    storage.write_table_atomic(Path(output_path), scored)
    unseen = model.preprocessor.unseen_categories(frame)
    flags = checked.out_of_range
    return PredictionSummary(
        Path(output_path),
        len(scored),
        model.model_id,
        unseen,
        checked.imputed,
        checked.far_outside,
        choice.model_name,
        choice.champion,
        None if flags is None else int((flags != "").sum()),
        model.preprocessor.log_target,
        model.preprocessor.estimate,
        model.preprocessor.smearing_factor,
    )


def describe_estimate(summary: PredictionSummary) -> str | None:
    """With a log target, whether the prices estimate the median or the mean price."""
    if not summary.log_target:
        return None
    if summary.estimate == "mean":
        return (
            "prices estimate the mean price: exp of the predicted log price times Duan's "
            f"smearing factor {summary.smearing_factor:.4f} from the training rows"
        )
    return "prices estimate the median price (exp of the predicted log price); the mean is " + (
        f"{summary.smearing_factor:.4f} times it (features.log_target_estimate: mean)"
        if summary.smearing_factor != 1.0
        else "higher (retrain with features.log_target_estimate: mean to predict it)"
    )


def describe_summary(summary: PredictionSummary) -> str:
    """The summary line: rows, model, output, and how many rows were outside the training range."""
    line = f"{summary.rows} rows scored by {summary.scored_by()} -> {summary.output}"
    if summary.out_of_range is None:
        return line
    return (
        f"{line}; {summary.out_of_range} outside the training range (column {OUT_OF_RANGE_COLUMN})"
    )


def describe_input_notes(summary: PredictionSummary) -> list[str]:
    """One line per kind of help the rows needed: gaps filled, values far outside training."""
    lines = []
    if summary.out_of_range is None:
        lines.append(
            "this model was saved before training ranges were kept: rows are not checked "
            "against them (retrain to get the check)"
        )
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
