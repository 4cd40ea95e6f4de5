"""Validate: every chunk of the data checked against its expectation suite, before training.

The stage is a fold (houseprice/folds.py): Great Expectations runs on each chunk
(tasks/gx_engine.py) and the chunks' results combine under GX's own rules (tasks/gx_merge.py)
into the result GX would give on the whole data. A small table is one chunk; 50M rows are
fifty, folded by whichever engine the run has. What the data is expected to look like is built
in tasks/suites.py: the bundled Ames data has a curated suite (data/ames_suite.json), and every
source also gets the checks its DataConfig implies, so overriding the features on bundled data
is still checked. A failure stops the run, naming each failed expectation, its column and
sample bad values (tasks/expectation_failures.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger

from houseprice import layout, storage
from houseprice.chunks import ChunkedTable
from houseprice.config import BUNDLED_SOURCE, DataConfig
from houseprice.folds import Engine, fold_frames
from houseprice.tasks.expectation_failures import DataValidationError, ValidationReport
from houseprice.tasks.gx_merge import (
    combine_chunk_results,
    refuse_unmergeable,
    report_merged,
    validate_chunk,
)
from houseprice.tasks.suites import build_expectation_suite

__all__ = ["DataValidationError", "ValidationFold", "ValidationReport"]


@dataclass(frozen=True)
class ValidationFold:
    """GX's suite on each chunk; partials are GX's trimmed results, combined by its rules."""

    suite: dict[str, Any]
    name: str = "validate"
    columns: tuple[str, ...] | None = None  # every column: the suite checks the table's set
    threads_help: bool = False  # GX is Python-bound

    def per_chunk(self, rows: pd.DataFrame) -> dict[str, Any]:
        return validate_chunk(rows, self.suite)

    def combine(self, first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
        return combine_chunk_results(first, second, self.suite)

    def finish(self, total: dict[str, Any]) -> dict[str, Any]:
        return total  # report_merged turns it into the report, with the run's Data Docs


def run_validation(
    frame: pd.DataFrame,
    suite: dict[str, Any],
    docs_dir: Path | None = None,
    docs_static: Path | None = None,
) -> ValidationReport:
    """Validate one frame (one chunk) against a GX suite dict; Data Docs into docs_dir if given.

    The docs work offline; their styles and scripts go to docs_static (shared by every run;
    default: a folder beside docs_dir).
    """
    refuse_unmergeable(suite)
    total = fold_frames(ValidationFold(suite), [frame])
    return report_merged(total, suite, docs_dir, docs_static)


def validate_table(
    table: ChunkedTable,
    data: DataConfig,
    run: layout.RunPaths,
    engine: Engine,
    learned: dict[str, Any] | None = None,
) -> ValidationReport:
    """Check every chunk against the data's suite; write the run's report; stop if it fails.

    A plain function, not a task: under the Dask engine each chunk becomes a task of the flow
    run, which a task's own submissions would not.
    """
    suite = validation_suite(data, learned)
    refuse_unmergeable(suite)  # before any chunk is read
    announce_validation(table.rows, len(table.columns), suite)
    total = engine.fold(ValidationFold(suite), table)
    return conclude_validation(
        report_merged(total, suite, run.data_docs, run.data_docs_static), run
    )


def validation_suite(data: DataConfig, learned: dict[str, Any] | None) -> dict[str, Any]:
    """The suite a run's data must pass: learned (landing mode), bundled, plus the config's."""
    # Landing mode passes the suite learned from its first version; bundled data has its own.
    base = learned
    if base is None and data.source == BUNDLED_SOURCE:
        base = storage.read_json(storage.BUNDLED_SUITE)
    return build_expectation_suite(data, base)


def announce_validation(rows: int, columns: int, suite: dict[str, Any]) -> None:
    """Log what is about to be checked: GX's import alone takes seconds, a wide suite minutes."""
    get_run_logger().info(
        "validate: loading Great Expectations, checking %d rows x %d columns against %d "
        "expectations, then writing Data Docs",
        rows,
        columns,
        len(suite["expectations"]),
    )


def conclude_validation(report: ValidationReport, run: layout.RunPaths) -> ValidationReport:
    """Write the run's validation JSON and log the verdict; raise DataValidationError on failure."""
    storage.write_json_atomic(run.validation, report.to_dict())
    # A wide suite's docs show only its groups with a failure; the JSON has every result.
    omitted = (
        f" (only column groups with a failure; every result is in {run.validation.name})"
        if report.docs_omitted
        else ""
    )
    get_run_logger().info("%s; Data Docs: %s%s", report.summary(), report.docs_index, omitted)
    if not report.success:
        raise DataValidationError(report)
    return report
