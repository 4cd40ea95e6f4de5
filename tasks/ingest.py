"""Ingest: read the configured source and store an immutable, content-addressed snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import datasets
from houseprice.chunks import ChunkedTable
from houseprice.columns import (
    FeatureDecision,
    decide_features,
    refuse_spoilt_columns,
    summarize_names,
)
from houseprice.config import DataConfig
from houseprice.errors import SourceError  # noqa: F401  (re-exported for the flow and tests)
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


def resolve_feature_decision(frame: pd.DataFrame, data: DataConfig) -> FeatureDecision:
    """The columns' kinds for this config: the named ones, or every usable one."""
    named = None if not data.feature_columns else list(data.features)
    decision = decide_features(
        frame,
        data.target,
        named,
        list(data.categorical_features) if named is not None else [],
        data.time_column,
        data.max_missing_fraction,
    )
    # The target, and typed numeric features (the user's choice, kept as given), are checked too.
    typed = list(data.numeric_features) if named is not None else []
    refuse_spoilt_columns(frame, [data.target, *typed])
    return decision


def typed_data_config(data: DataConfig, decision: FeatureDecision) -> DataConfig:
    """data with every feature typed: the decision's columns added to the lists already typed."""
    return data.with_typed_columns(
        [*data.numeric_features, *decision.numeric],
        [*data.categorical_features, *decision.categorical],
    )


class IngestResult(NamedTuple):
    """The ingested rows, the snapshot that records them, and the columns with their kinds."""

    frame: pd.DataFrame  # every row; for a streamed source only its first chunk
    snapshot: datasets.Snapshot
    source: str
    data: DataConfig  # the data section with every feature typed
    table: ChunkedTable | None = None  # a streamed source's chunks (flows/streamed.py)


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
    frame = read_source(data.source, data.separator)
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
