"""Ingest: read the configured source and store an immutable, content-addressed snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import datasets
from houseprice.chunks import ChunkedTable, frame_table
from houseprice.columns import (
    ColumnJudgment,
    FeatureDecision,
    TableProfile,
    combine_profiles,
    decide_features,
    finish_profile,
    profile_columns,
    refuse_spoilt_columns,
    summarize_names,
)
from houseprice.config import DataConfig
from houseprice.errors import SourceError
from houseprice.failures import is_transient
from houseprice.tasks.sources import (  # noqa: F401  (re-exported: the ingest stage reads through these)
    read_source,
    resolve_source,
    source_problem,
)


def is_transient_error(error: BaseException) -> bool:
    """Whether a read failure may go away on retry: a timeout or reset, not a refusal or a path."""
    return is_transient(error)


def resolve_feature_kinds(
    frame: pd.DataFrame, data: DataConfig, skipped: dict[str, str] | None = None
) -> DataConfig:
    """Give every untyped feature a kind read off the data, so later stages see only typed lists.

    houseprice/columns.py decides: numbers are numeric, anything else categorical; with no
    feature named, every column but the target, except those its rules leave out (listed with
    the reason in `skipped` when given). A listed column that the data lacks stays in the numeric
    list, so validation reports it as missing.
    """
    decision = resolve_feature_decision(frame, data)
    if skipped is not None:
        skipped.update({column: why for column, (_, why) in decision.left_out.items()})
    return typed_data_config(data, decision)


def resolve_feature_decision(
    frame: pd.DataFrame, data: DataConfig, judgments: dict[str, ColumnJudgment] | None = None
) -> FeatureDecision:
    """The columns' kinds for this config: the named ones, or every usable one.

    judgments: the columns' profile over every row (ColumnProfileFold), when frame holds only
    some of them.
    """
    named = None if not data.feature_columns else list(data.features)
    decision = decide_features(
        frame,
        data.target,
        named,
        list(data.categorical_features) if named is not None else [],
        data.time_column,
        data.max_missing_fraction,
        data.notation,
        judgments,
    )
    # The target, and typed numeric features (the user's choice, kept as given), are checked too.
    typed = list(data.numeric_features) if named is not None else []
    refuse_spoilt_columns(frame, [data.target, *typed], notation=data.notation, judgments=judgments)
    if problem := repeated_rows_problem(frame):
        raise SourceError(problem)
    return decision


# Fewer distinct rows than this share of all rows: an export that repeated a few rows (a join
# gone wrong), not sales. Train, validation and test parts would hold the same rows, and the test
# R² is undefined (nan) once the test prices are all one value.
MIN_DISTINCT_ROW_SHARE = 0.05


def repeated_rows_problem(frame: pd.DataFrame) -> str | None:
    """Why the rows are too few distinct ones to learn from, or None."""
    distinct = len(frame) - int(frame.duplicated().sum())
    if len(frame) and distinct < MIN_DISTINCT_ROW_SHARE * len(frame):
        return (
            f"the data holds {distinct:,} distinct rows in {len(frame):,} (fewer than "
            f"{MIN_DISTINCT_ROW_SHARE:.0%}): the same rows repeated, not sales; check the export"
        )
    return None


def typed_data_config(data: DataConfig, decision: FeatureDecision) -> DataConfig:
    """data with every feature typed: the decision's columns added to the lists already typed."""
    return data.with_typed_columns(
        [*data.numeric_features, *decision.numeric],
        [*data.categorical_features, *decision.categorical],
    )


@dataclass(frozen=True)
class ColumnProfileFold:
    """Every column's typing profile (houseprice/columns.py) over every row, chunk by chunk."""

    notation: tuple[str | None, str]
    name: str = "profile"
    columns: tuple[str, ...] | None = None
    threads_help: bool = False  # pandas string parsing holds the GIL

    def per_chunk(self, rows: pd.DataFrame) -> TableProfile:
        return profile_columns(rows, None, self.notation)

    def combine(self, first: TableProfile, second: TableProfile) -> TableProfile:
        return combine_profiles(first, second)

    def finish(self, total: TableProfile) -> dict[str, ColumnJudgment]:
        return finish_profile(total)


class IngestResult(NamedTuple):
    """The ingested rows as chunks, the snapshot that records them, the columns with kinds."""

    frame: pd.DataFrame  # every row; for a Parquet source read in place, only its first chunk
    snapshot: datasets.Snapshot
    source: str
    data: DataConfig  # the data section with every feature typed
    # The rows every folded stage reads: a Parquet source's row groups where they lie, or the
    # rows held in memory (frame_table). None only until the flow has planned it.
    table: ChunkedTable | None = None

    def with_table(self, chunk_rows: int) -> IngestResult:
        """This result with its rows planned as chunks (those in memory, when not planned)."""
        if self.table is not None:
            return self
        return self._replace(table=frame_table(self.frame, self.source, chunk_rows))


def retry_transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry only errors that may be transient."""
    return is_transient_error(state.result(raise_on_failure=False))


@task(
    name="ingest-data",
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,  # the source may change under the same name; always read it
)
def ingest_data(data: DataConfig, data_dir: Path) -> IngestResult:
    """Read the source and type its columns; the snapshot is stored once the data is valid."""
    frame = read_source(data.source, data.separator, data.notation)
    snapshot = datasets.plan_snapshot(frame, data_dir)
    log = get_run_logger()
    log.info(
        "ingest: %d rows x %d columns from %s (snapshot %s once validated)",
        snapshot.rows,
        snapshot.columns,
        data.source,
        snapshot.content_hash[:12],
    )
    decision = resolve_feature_decision(frame, data)
    for line in decision.left_out_summary():  # one line per rule, however wide the file
        log.warning("ingest: columns left out as %s", line)
    if decision.left_out:
        log.info("ingest: name a left-out column with --features to use it anyway")
    resolved = typed_data_config(data, decision)
    if resolved != data:
        log.info(
            "ingest: numeric features %s; categorical features %s",
            summarize_names(resolved.numeric_features),
            summarize_names(resolved.categorical_features),
        )
    return IngestResult(frame, snapshot, resolve_source(data.source), resolved)


@task(name="store-snapshot", cache_policy=NO_CACHE)
def store_snapshot(frame: pd.DataFrame, data_dir: Path) -> datasets.Snapshot:
    """Keep the validated rows as data/snapshots/<sha256>.parquet (once per content)."""
    snapshot = datasets.store_snapshot(frame, data_dir)
    get_run_logger().info("snapshot %s stored: %s", snapshot.content_hash[:12], snapshot.path)
    return snapshot
