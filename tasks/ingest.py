"""Ingest: read the configured source and store an immutable, content-addressed snapshot."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import storage
from houseprice.config import DataConfig
from tasks.sources import (
    SourceError,
    read_source,
    resolve_source,
)


def is_transient_error(error: BaseException) -> bool:
    """Whether a read failure may go away on retry (network trouble, I/O hiccups)."""
    if isinstance(error, SourceError | FileNotFoundError | PermissionError | IsADirectoryError):
        return False
    return isinstance(error, OSError | TimeoutError | urllib.error.URLError)


# With every column taken as a feature, a text column with more levels than this share of the
# rows (and more than the floor) is an identifier or free text, not a category worth a weight.
MAX_LEVEL_SHARE = 0.1
MIN_LEVELS_TO_SKIP = 50


def unusable_auto_feature(values: pd.Series, time_column: str | None) -> str | None:
    """Why a column should not become a feature when no feature was named, or None if usable."""
    if values.name == time_column:
        return "it is the time column"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "dates are not linear features (set data.time_column to window on it)"
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    text = values.dropna().astype(str)
    sample = text.head(200)
    if len(sample) and not sample.str.fullmatch(r"[+-]?\d+(\.\d*)?").all():  # plain numbers
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
        if parsed.notna().mean() >= 0.9:
            return "its values are dates (set data.time_column to window on it)"
    levels = text.nunique()
    if levels > max(MIN_LEVELS_TO_SKIP, MAX_LEVEL_SHARE * len(values)):
        return f"{levels} distinct values look like identifiers or free text"
    return None


# A text column whose values are numbers this often is a numeric column with a few bad cells.
MOSTLY_NUMERIC = 0.9


def _refuse_mostly_numeric_text(values: pd.Series) -> None:
    """Raise SourceError for a numeric column spoilt by a few text cells ('n/a', '1,200').

    Read as text, it would silently become a category with one level per distinct number.
    """
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return
    present = values.dropna()
    parsed = pd.to_numeric(present, errors="coerce")
    if len(present) and MOSTLY_NUMERIC <= parsed.notna().mean() < 1:
        bad = present[parsed.isna()]
        raise SourceError(
            f"column {values.name!r} holds numbers except in {len(bad)} rows, e.g. "
            f"{bad.unique()[:5].tolist()}: fix those cells (or list the column with "
            "--categorical if it really is a category)"
        )


def resolve_feature_kinds(
    frame: pd.DataFrame, data: DataConfig, skipped: dict[str, str] | None = None
) -> DataConfig:
    """Give every untyped feature a kind read off the data, so later stages see only typed lists.

    Numeric dtypes (bool excluded) become numeric features, anything else categorical. With no
    feature named at all, every column except the target is used, except dates and identifier-
    like text (listed with the reason in `skipped` when given). A listed column that the data
    lacks stays in the numeric list, so validation reports it as missing.
    """
    untyped = list(data.features)
    if not data.feature_columns:
        for column in frame.columns:
            reason = (
                None
                if column == data.target
                else unusable_auto_feature(frame[column], data.time_column)
            )
            if column != data.target and reason is None:
                untyped.append(column)
            elif reason is not None and skipped is not None:
                skipped[column] = reason
    numeric, categorical = list(data.numeric_features), list(data.categorical_features)
    for column in untyped:
        if column in frame.columns:
            _refuse_mostly_numeric_text(frame[column])
        is_categorical = column in frame.columns and (
            pd.api.types.is_bool_dtype(frame[column])
            or not pd.api.types.is_numeric_dtype(frame[column])
        )
        (categorical if is_categorical else numeric).append(column)
    resolved = {"numeric_features": numeric, "categorical_features": categorical, "features": []}
    return DataConfig.model_validate({**data.model_dump(), **resolved})  # re-run the checks


class IngestResult(NamedTuple):
    """The ingested rows, the snapshot that records them, and the columns with their kinds."""

    frame: pd.DataFrame
    snapshot: storage.Snapshot
    source: str
    data: DataConfig  # the data section with every feature typed


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
    """Read the source and store its immutable snapshot under data/snapshots/."""
    frame = read_source(data.source)
    snapshot = storage.store_snapshot(frame, data_dir)
    get_run_logger().info(
        "ingest: %d rows x %d columns from %s -> snapshot %s",
        snapshot.rows,
        snapshot.columns,
        data.source,
        snapshot.content_hash[:12],
    )
    skipped: dict[str, str] = {}
    resolved = resolve_feature_kinds(frame, data, skipped)
    for column, reason in skipped.items():
        get_run_logger().warning("ingest: not using column %r as a feature: %s", column, reason)
    if resolved != data:
        get_run_logger().info(
            "ingest: numeric features %s, categorical features %s",
            resolved.numeric_features,
            resolved.categorical_features,
        )
    return IngestResult(frame, snapshot, resolve_source(data.source), resolved)
