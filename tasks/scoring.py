"""Scoring a file with a saved model, free of Prefect so that `houseprice predict` starts fast.

The batch-predict flow wraps predict_file in a task (tasks/predict.py); the CLI calls it directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from houseprice import storage
from houseprice.champion import choose_scoring_model
from houseprice.errors import InputSchemaError, SourceError
from houseprice.inputs import (
    FAR_OUTSIDE_Z,
    InputLimits,
    InputReport,
    refuse_too_many_imputed,
)
from houseprice.model import HousePriceModel
from houseprice.tasks.sources import read_source_chunks

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

    input_path is read as retrain reads its source (tasks/sources.py): a path, or an http(s) URL,
    in chunks of PREDICT_CHUNK_ROWS rows where it can be (a local Parquet or CSV file), so memory
    does not grow with the input. The rows are scored by run_id's model, else model_name's
    champion, else the champion whose columns the file has (choose_scoring_model). Nothing is
    written unless every chunk scores: the output appears whole, or not at all.
    """
    output_path = Path(output_path)
    if output_path.suffix.lower() not in {".csv", ".parquet", ".pq"}:
        raise SourceError(f"output {output_path} must end in .csv or .parquet")
    limits = limits or InputLimits()
    # A generator: nothing is read until the model is chosen, so a bad run id or champion
    # record is refused before the input (its columns choose between champions, when asked).
    chunks = read_source_chunks(str(input_path), PREDICT_CHUNK_ROWS, separator)
    read: list[pd.DataFrame] = []

    def first_chunk() -> pd.DataFrame:
        if not read:
            read.append(next(chunks))
        return read[0]

    choice, _ = choose_scoring_model(artifacts_dir, first_chunk, model_name, run_id)
    model = choice.model
    first = first_chunk()
    totals = _Totals()
    # The share of missing cells a column may have is judged on the whole input, not per chunk.
    per_chunk = dataclasses.replace(limits, max_imputed_fraction=1.0)

    def write(path: Path) -> None:
        with storage.TableWriter(path) as writer:
            for frame in itertools.chain([first], chunks):
                with _naming_rows(frame, totals.rows):
                    checked = model.check_input(frame, per_chunk)
                    writer.write(score_rows(model, frame, per_chunk, checked))
                totals.add(checked, model.preprocessor.unseen_categories(frame))
        refuse_too_many_imputed(totals.imputed, totals.rows, limits)  # before it is published

    storage.write_with_atomic(output_path, write)
    return PredictionSummary(
        output_path,
        totals.rows,
        model.model_id,
        {column: sorted(levels) for column, levels in totals.unseen.items()},
        totals.imputed,
        totals.far_outside,
        choice.model_name,
        choice.champion,
        totals.out_of_range,
        model.preprocessor.log_target,
        model.preprocessor.estimate,
        model.preprocessor.smearing_factor,
    )


# Rows scored at a time: a chunk and its scored copy stay well under a gigabyte at 100 columns.
PREDICT_CHUNK_ROWS = 200_000


@dataclass
class _Totals:
    """What scoring did to every chunk so far, summed."""

    rows: int = 0
    imputed: dict[str, int] = dataclasses.field(default_factory=dict)
    far_outside: dict[str, int] = dataclasses.field(default_factory=dict)
    unseen: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    out_of_range: int | None = None  # None: the model keeps no training ranges

    def add(self, checked: InputReport, unseen: dict[str, list[str]]) -> None:
        self.rows += checked.rows
        for total, part in (
            (self.imputed, checked.imputed),
            (self.far_outside, checked.far_outside),
        ):
            for column, count in part.items():
                total[column] = total.get(column, 0) + count
        for column, levels in unseen.items():
            self.unseen.setdefault(column, set()).update(levels)
        if (flags := checked.out_of_range) is not None:
            self.out_of_range = (self.out_of_range or 0) + int((flags != "").sum())


@contextlib.contextmanager
def _naming_rows(frame: pd.DataFrame, start: int) -> Iterator[None]:
    """A refusal inside a later chunk says which of the input's rows it is about."""
    try:
        yield
    except InputSchemaError as error:
        if start == 0:
            raise
        stop = start + len(frame)
        raise type(error)(f"in rows {start + 1:,}-{stop:,} of the input: {error}") from error


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
