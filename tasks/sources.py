"""Reading a source into a table: a CSV/Parquet file, a folder of them, a URL, or a synthetic spec.

Kept free of Prefect so that `houseprice predict` reads its input without Prefect's start-up;
ingest (a Prefect task) and predict both read through here. Cells in MISSING_VALUES read as
missing whatever the format; duplicate or empty header names are refused.
"""

from __future__ import annotations

import io
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd

from houseprice import storage
from houseprice.chunks import (
    TABLE_SUFFIXES,
    checked_frame,
    column_set_problem,
    path_problem,
    read_parquet_frame,
    source_errors,
    table_files,
)
from houseprice.columns import (
    MISSING_VALUES,
    header_problems,
    is_number_column,
    normalize_missing,
)
from houseprice.config import BUNDLED_SOURCE
from houseprice.errors import SourceError, TransientSourceError

SYNTHETIC_PREFIX = "synthetic:"
URL_TIMEOUT_S = 60


def resolve_source(source: str) -> str:
    """Turn 'bundled' into the bundled file's path; other sources pass through."""
    return str(storage.BUNDLED_DATA) if source == BUNDLED_SOURCE else source


def source_problem(source: str) -> str | None:
    """Why a local source cannot be read (missing, empty name), checked before a run starts."""
    if not source.strip():
        return "the source is empty: pass --source FILE, a folder, a URL or synthetic:..."
    source = resolve_source(source)
    if source.startswith((SYNTHETIC_PREFIX, "http://", "https://")):
        return None
    return path_problem(Path(source).expanduser())


def read_source(source: str, separator: str = ",") -> pd.DataFrame:
    """Read a CSV/Parquet file, a folder of them, an http(s) URL, or a synthetic spec.

    Cells in MISSING_VALUES read as missing whatever the format, and duplicate or empty header
    names are refused.
    """
    source = resolve_source(source)
    if source.startswith(SYNTHETIC_PREFIX):
        from houseprice.synthetic import synthetic_frame_from_source

        return synthetic_frame_from_source(source)
    if source.startswith(("http://", "https://")):
        return _read_url(source, separator)
    path = Path(source).expanduser()
    if path.is_dir():
        return _read_folder(path, separator)
    if problem := source_problem(source):
        raise SourceError(problem)
    return _read_table_file(path, separator)


def _table_format(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise SourceError(
            f"unsupported file type {suffix or '(none)'!r} for {name}: use .csv or .parquet"
        )
    return TABLE_SUFFIXES[suffix]


def _parse_table(payload: bytes | Path, kind: str, name: str, separator: str = ",") -> pd.DataFrame:
    """Parse CSV or Parquet content, turning parser errors into SourceError naming the source."""
    handle = io.BytesIO(payload) if isinstance(payload, bytes) else payload
    with source_errors(name, kind):
        parquet = kind == "parquet"
        frame = read_parquet_frame(handle) if parquet else _read_csv(handle, name, separator)
    return checked_frame(frame, name)


def _read_csv(handle: io.BytesIO | Path, name: str, separator: str) -> pd.DataFrame:
    """Read CSV with the explicit missing-value list; header names are checked as written."""
    head = handle.getvalue()[:4096] if isinstance(handle, io.BytesIO) else _head(handle)
    if b"\x00" in head:  # binary, or UTF-16 text: either way not what a CSV reader can use
        raise SourceError(
            f"cannot read {name} as csv: it is not UTF-8 text (binary data or UTF-16); "
            "save it as UTF-8 CSV"
        )
    options = {"sep": separator, "keep_default_na": False, "na_values": list(MISSING_VALUES)}
    # pandas renames a repeated header 'x' to 'x.1' and an empty one to 'Unnamed: 2', so the
    # header is read raw first.
    header = pd.read_csv(
        handle, header=None, nrows=1, dtype=str, sep=separator, keep_default_na=False
    )
    if isinstance(handle, io.BytesIO):
        handle.seek(0)
    names = header.iloc[0].tolist() if len(header) else []
    if problem := header_problems(names):
        raise SourceError(f"{name}: {problem}; give every column a distinct name")
    if len(names) == 1 and (other := _other_separator(str(names[0]), separator)):
        raise SourceError(
            f"{name} looks {other[1]}-delimited (its header is one column, {names[0][:80]!r}): "
            f"pass --separator '{other[2]}'"
        )
    return _numbers_as_numbers(pd.read_csv(handle, **options))


def _numbers_as_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """CSV text columns whose every cell is a number (spaces or missing tokens aside) as numbers.

    pandas infers this itself unless a cell is padded (' n/a '); CSV carries no types to keep.
    """
    frame = normalize_missing(frame)
    changed = {}
    for column, values in frame.items():
        if is_number_column(values) or not pd.api.types.is_string_dtype(values):
            continue
        present = values.dropna().astype(str).str.strip()
        if pd.to_numeric(present.head(20), errors="coerce").isna().any():
            continue  # cheap look first: a wide file has thousands of text columns
        parsed = pd.to_numeric(present, errors="coerce")
        if len(present) and parsed.notna().all():
            changed[column] = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
    return frame.assign(**changed) if changed else frame


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(4096)


def _other_separator(header: str, separator: str) -> tuple[str, str, str] | None:
    # (separator, its name, how to type it on the command line)
    for candidate, label, typed in (
        (";", "semicolon", ";"),
        ("\t", "tab", "\\t"),
        ("|", "pipe", "|"),
        (",", "comma", ","),
    ):
        if candidate != separator and candidate in header:
            return candidate, label, typed
    return None


def _read_table_file(path: Path, separator: str = ",") -> pd.DataFrame:
    return _parse_table(path, _table_format(path.name), str(path), separator)


def _read_folder(folder: Path, separator: str = ",") -> pd.DataFrame:
    """Concatenate every CSV/Parquet file in the folder, in name order; columns must agree.

    Hidden files (an upload in progress, macOS's ._ files) are skipped.
    """
    files = table_files(folder)
    if not files:
        raise SourceError(f"folder {folder} holds no .csv or .parquet files")
    frames = [_read_table_file(path, separator) for path in files]
    first = frames[0]
    for path, frame in zip(files[1:], frames[1:], strict=True):
        if problem := column_set_problem(files[0].name, first.columns, str(path), frame.columns):
            raise SourceError(problem)
        for column in first.columns:
            if _is_number(first[column]) != _is_number(frame[column]):
                raise SourceError(
                    f"column {column!r} holds numbers in {files[0].name} but not in {path.name} "
                    f"(e.g. {frame[column].dropna().head(3).tolist()}); fix the file"
                )
    return pd.concat(frames, ignore_index=True)


def _is_number(values: pd.Series) -> bool:
    """Whether a column is numeric (an all-empty column counts as numeric: it holds no text)."""
    return bool(values.isna().all()) or is_number_column(values)


def _read_url(url: str, separator: str = ",") -> pd.DataFrame:
    """Download a table; HTTP 4xx is permanent, network errors and 5xx are transient."""
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:
            payload = response.read()
    except urllib.error.HTTPError as error:
        if 400 <= error.code < 500:
            raise SourceError(f"cannot download {url}: HTTP {error.code} {error.reason}") from None
        raise TransientSourceError(
            f"cannot download {url}: HTTP {error.code} {error.reason}"
        ) from error
    except (urllib.error.URLError, OSError) as error:  # no route, refused, timed out
        reason = getattr(error, "reason", None) or error
        raise TransientSourceError(f"cannot download {url}: {reason}") from error
    path_part = urllib.parse.urlparse(url).path
    if Path(path_part).suffix.lower() in TABLE_SUFFIXES:
        kind = _table_format(path_part)
    else:  # no telling suffix: Parquet files start with the magic bytes PAR1
        kind = "parquet" if payload[:4] == b"PAR1" else "csv"
    return _parse_table(payload, kind, url, separator)
