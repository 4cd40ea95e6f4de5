"""Ingest: read the configured source and store an immutable, content-addressed snapshot."""

from __future__ import annotations

import io
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import storage
from houseprice.config import BUNDLED_SOURCE, DataConfig

TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
SYNTHETIC_PREFIX = "synthetic:"
URL_TIMEOUT_S = 60


class SourceError(ValueError):
    """The source cannot be read as a table (missing, empty, wrong format); retrying won't help."""


def resolve_source(source: str) -> str:
    """Turn 'bundled' into the bundled file's path; other sources pass through."""
    return str(storage.BUNDLED_DATA) if source == BUNDLED_SOURCE else source


def read_source(source: str) -> pd.DataFrame:
    """Read a CSV/Parquet file, a folder of them, an http(s) URL, or a synthetic spec."""
    source = resolve_source(source)
    if source.startswith(SYNTHETIC_PREFIX):
        from houseprice.synthetic import synthetic_frame_from_source

        return synthetic_frame_from_source(source)
    if source.startswith(("http://", "https://")):
        return _read_url(source)
    path = Path(source).expanduser()
    if path.is_dir():
        return _read_folder(path)
    if not path.exists():
        raise SourceError(f"source not found: {path}")
    return _read_table_file(path)


def _table_format(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise SourceError(
            f"unsupported file type {suffix or '(none)'!r} for {name}: use .csv or .parquet"
        )
    return TABLE_SUFFIXES[suffix]


def _parse_table(payload: bytes | Path, kind: str, name: str) -> pd.DataFrame:
    """Parse CSV or Parquet content, turning parser errors into SourceError."""
    handle = io.BytesIO(payload) if isinstance(payload, bytes) else payload
    try:
        frame = pd.read_parquet(handle) if kind == "parquet" else pd.read_csv(handle)
    except ValueError as error:  # pandas' and pyarrow's parse errors; OSError stays retryable
        raise SourceError(f"cannot read {name} as {kind}: {error}") from None
    if frame.empty:
        raise SourceError(f"{name} holds no rows")
    return frame


def _read_table_file(path: Path) -> pd.DataFrame:
    return _parse_table(path, _table_format(path.name), str(path))


def _read_folder(folder: Path) -> pd.DataFrame:
    """Concatenate every CSV/Parquet file in the folder, in name order; columns must agree.

    Hidden files (an upload in progress, macOS's ._ files) are skipped.
    """
    files = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in TABLE_SUFFIXES and not p.name.startswith((".", "_"))
    )
    if not files:
        raise SourceError(f"folder {folder} holds no .csv or .parquet files")
    frames = [_read_table_file(path) for path in files]
    first = frames[0]
    for path, frame in zip(files[1:], frames[1:], strict=True):
        if set(frame.columns) != set(first.columns):
            missing, extra = (
                set(first.columns) - set(frame.columns),
                set(frame.columns) - set(first.columns),
            )
            raise SourceError(
                f"{path} does not match {files[0].name}: missing {sorted(missing)}, "
                f"extra {sorted(extra)}"
            )
        for column in first.columns:
            if _is_number(first[column]) != _is_number(frame[column]):
                raise SourceError(
                    f"column {column!r} holds numbers in {files[0].name} but not in {path.name} "
                    f"(e.g. {frame[column].dropna().head(3).tolist()}); fix the file"
                )
    return pd.concat(frames, ignore_index=True)


def _is_number(values: pd.Series) -> bool:
    """Whether a column is numeric (an all-empty column counts as numeric: it holds no text)."""
    if values.isna().all():
        return True
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _read_url(url: str) -> pd.DataFrame:
    """Download a table; HTTP 4xx is permanent, network errors and 5xx are transient."""
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:
            payload = response.read()
    except urllib.error.HTTPError as error:
        if 400 <= error.code < 500:
            raise SourceError(f"cannot download {url}: HTTP {error.code} {error.reason}") from None
        raise
    path_part = urllib.parse.urlparse(url).path
    if Path(path_part).suffix.lower() in TABLE_SUFFIXES:
        kind = _table_format(path_part)
    else:  # no telling suffix: Parquet files start with the magic bytes PAR1
        kind = "parquet" if payload[:4] == b"PAR1" else "csv"
    return _parse_table(payload, kind, url)


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
