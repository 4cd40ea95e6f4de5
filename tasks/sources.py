"""Reading a source into a table: a CSV/Parquet file, a folder of them, a URL, or a synthetic spec.

Kept free of Prefect so that `houseprice predict` reads its input without Prefect's start-up;
ingest (a Prefect task) and predict both read through here.
"""

from __future__ import annotations

import io
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd

from houseprice import storage
from houseprice.config import BUNDLED_SOURCE

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
