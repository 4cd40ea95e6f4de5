"""Reading a source into a table: a CSV/Parquet file, a folder of them, a URL, or a synthetic spec.

Kept free of Prefect so that `houseprice predict` reads its input without Prefect's start-up;
ingest (a Prefect task) and predict both read through here. Cells in MISSING_VALUES read as
missing whatever the format; duplicate or empty header names are refused.
"""

from __future__ import annotations

import csv
import io
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa

from houseprice import storage
from houseprice.chunks import (
    TABLE_SUFFIXES,
    checked_frame,
    column_set_problem,
    list_folder,
    parquet_rows,
    partition_values,
    path_problem,
    plan_chunks,
    read_chunk,
    read_parquet_frame,
    source_errors,
    table_format,
)
from houseprice.columns import (
    MISSING_VALUES,
    PLAIN,
    header_problems,
    is_number_column,
    normalize_missing,
    numbers_in_notation,
    parse_numbers,
)
from houseprice.config import BUNDLED_SOURCE
from houseprice.errors import SourceError, TransientSourceError
from houseprice.headers import other_separator

SYNTHETIC_PREFIX = "synthetic:"
URL_TIMEOUT_S = 60
Notation = tuple[str | None, str]  # (thousands separator or None, decimal mark)
log = logging.getLogger(__name__)


def resolve_source(source: str) -> str:
    """Turn 'bundled' into the bundled file's path; other sources pass through."""
    return str(storage.BUNDLED_DATA) if source == BUNDLED_SOURCE else source


def source_problem(source: str) -> str | None:
    """Why a local source cannot be read (missing, a FIFO, empty name), checked before a run."""
    if not source.strip():
        return "the source is empty: pass --source FILE, a folder, a URL or synthetic:..."
    source = resolve_source(source)
    if source.startswith((SYNTHETIC_PREFIX, "http://", "https://")):
        return None
    return path_problem(Path(source).expanduser())


def read_source(source: str, separator: str = ",", notation: Notation = PLAIN) -> pd.DataFrame:
    """Read a CSV/Parquet file, a folder of them, an http(s) URL, or a synthetic spec.

    Cells in MISSING_VALUES read as missing whatever the format, and duplicate or empty header
    names are refused. Text columns of numbers in the declared notation ('1,656') are numbers.
    """
    source = resolve_source(source)
    if source.startswith(SYNTHETIC_PREFIX):
        from houseprice.synthetic import synthetic_frame_from_source

        return synthetic_frame_from_source(source)
    if source.startswith(("http://", "https://")):
        return _read_url(source, separator, notation)
    path = Path(source).expanduser()
    if path.is_dir():
        return _read_folder(path, separator, notation)
    if problem := source_problem(source):
        raise SourceError(problem)
    return _read_table_file(path, separator, notation)


def _table_format(name: str) -> str:
    kind = table_format(name)
    if kind is None:
        suffix = Path(name).suffix.lower()
        raise SourceError(
            f"unsupported file type {suffix or '(none)'!r} for {name}: use .csv (also "
            ".csv.gz, .csv.bz2, .csv.zst) or .parquet"
        )
    return kind


def _parse_table(
    payload: bytes | Path, kind: str, name: str, separator: str = ",", notation: Notation = PLAIN
) -> pd.DataFrame:
    """Parse CSV or Parquet content, turning parser errors into SourceError naming the source."""
    handle = io.BytesIO(payload) if isinstance(payload, bytes) else payload
    with source_errors(name, kind):
        if kind == "parquet":
            frame = read_parquet_frame(handle)
        else:
            frame = _read_csv(handle, name, separator, notation)
    frame = checked_frame(frame, name)
    if kind == "parquet" and notation != PLAIN:  # text numbers in a declared notation
        frame = numbers_in_notation(frame, notation, plain_too=False)
    return frame


def _read_csv(
    handle: io.BytesIO | Path, name: str, separator: str, notation: Notation = PLAIN
) -> pd.DataFrame:
    """Read CSV with the explicit missing-value list; header names are checked as written."""
    options = _csv_options(handle, name, separator)
    if notation != PLAIN:  # read as text: pandas would take '1.656' for 1.656, not 1656
        options["dtype"] = str
    frame = pd.read_csv(handle, **options)
    _refuse_short_rows(frame, handle, name, separator)
    if notation != PLAIN:
        return numbers_in_notation(normalize_missing(frame), notation)
    return _numbers_as_numbers(frame)


def _csv_options(handle: io.BytesIO | Path, name: str, separator: str) -> dict[str, object]:
    """pandas' options for a CSV, once its start is checked: UTF-8 text, a usable header."""
    head = handle.getvalue()[:4096] if isinstance(handle, io.BytesIO) else _head(handle)
    if b"\x00" in head:  # binary, or UTF-16 text: either way not what a CSV reader can use
        raise SourceError(
            f"cannot read {name} as csv: it is not UTF-8 text (binary data or UTF-16); "
            "save it as UTF-8 CSV"
        )
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
    if len(names) == 1 and (other := other_separator(str(names[0]), separator)):
        raise SourceError(
            f"{name} looks {other[1]}-delimited (its header is one column, {names[0][:80]!r}): "
            f"pass --separator '{other[2]}'"
        )
    return {"sep": separator, "keep_default_na": False, "na_values": list(MISSING_VALUES)}


def read_source_chunks(source: str, rows: int, separator: str = ",") -> Iterator[pd.DataFrame]:
    """The source's rows in frames of about `rows` rows, for work that needs no whole table.

    A local Parquet file or folder is read by row groups, a local (uncompressed) CSV file by
    pandas' chunked reader, each chunk checked as read_source checks a whole file; anything
    else (a URL, a synthetic spec, compressed CSV, a folder holding CSV) is read whole, as one
    chunk. Each frame is indexed by its rows' positions in the source. Not checked in chunks:
    rows shorter than the header, whose gaps then count as missing cells.
    """
    resolved = resolve_source(source)
    path = Path(resolved).expanduser()
    if parquet_rows(resolved) is not None:
        frames = (read_chunk(chunk) for chunk in plan_chunks(resolved, rows).chunks)
    elif path.is_file() and path.suffix.lower() == ".csv" and not source_problem(resolved):
        frames = _csv_chunks(path, separator, rows)
    else:
        frames = iter([read_source(source, separator)])
    start = 0
    for frame in frames:
        frame.index = pd.RangeIndex(start, start + len(frame))
        start += len(frame)
        yield frame


def _csv_chunks(path: Path, separator: str, rows: int) -> Iterator[pd.DataFrame]:
    name = str(path)
    with source_errors(name, "csv"):
        options = _csv_options(path, name, separator)
        for part in pd.read_csv(path, chunksize=rows, **options):
            yield _numbers_as_numbers(checked_frame(part.reset_index(drop=True), name))


def _refuse_short_rows(
    frame: pd.DataFrame, handle: io.BytesIO | Path, name: str, separator: str
) -> None:
    """Refuse rows with fewer fields than the header: pandas pads them with empty cells.

    Only a file whose last column has gaps can hold such rows, so others are not read twice.
    """
    if frame.empty or not frame.iloc[:, -1].isna().any():
        return
    raw = handle.getvalue() if isinstance(handle, io.BytesIO) else Path(handle).read_bytes()
    reader = csv.reader(io.StringIO(raw.decode("utf-8", errors="replace")), delimiter=separator)
    width = len(next(reader, []))
    short = [reader.line_num for row in reader if row and len(row) < width]
    if short:
        lines = ", ".join(map(str, short[:5])) + (", …" if len(short) > 5 else "")
        raise SourceError(
            f"{name}: {len(short):,} rows have fewer fields than the header's {width} (lines "
            f"{lines}); an empty value still needs its separator: fix those rows"
        )


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


def _read_table_file(path: Path, separator: str = ",", notation: Notation = PLAIN) -> pd.DataFrame:
    kind = _table_format(path.name)
    payload: bytes | Path = path
    if kind == "csv" and path.suffix.lower() != ".csv":  # compressed: .csv.gz, .bz2, .zst
        with (
            source_errors(str(path), "compressed csv"),
            pa.input_stream(str(path), compression="detect") as stream,
        ):
            payload = stream.read()
    return _parse_table(payload, kind, str(path), separator, notation)


def _read_folder(folder: Path, separator: str = ",", notation: Notation = PLAIN) -> pd.DataFrame:
    """Concatenate every CSV/Parquet file in the folder, in path order; columns must agree.

    Files under key=value folders (hive partitions) are read, their keys becoming columns.
    Hidden files (an upload in progress, macOS's ._ files) are skipped; other files and
    folders are named in one warning.
    """
    listing = list_folder(folder)
    files = list(listing.files)
    if listing.skipped:
        log.warning(
            "%s: %d entries are not tables and were not read: %s",
            folder,
            len(listing.skipped),
            ", ".join(listing.skipped[:10]) + (", …" if len(listing.skipped) > 10 else ""),
        )
    if not files:
        raise SourceError(f"folder {folder} holds no .csv or .parquet files")
    for path in files:  # a FIFO would block the read; a folder may be named like a table
        if problem := path_problem(path):
            raise SourceError(problem)
        if not path.is_file():
            raise SourceError(f"{path} in source folder {folder} is a folder, not a file")
    frames = [_read_table_file(path, separator, notation) for path in files]
    frames = _with_partition_columns(folder, files, frames)
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


def _with_partition_columns(
    folder: Path, files: list[Path], frames: list[pd.DataFrame]
) -> list[pd.DataFrame]:
    """Each file's rows with its key=value folders as columns (numbers where every value is)."""
    values = [partition_values(folder, path) for path in files]
    keys = list(dict.fromkeys(key for found in values for key in found))
    for key in keys:
        if missing := [p.name for p, found in zip(files, values, strict=True) if key not in found]:
            raise SourceError(f"{folder}: files {missing[:5]} are outside the {key}=… folders")
        if clash := next((p for p, f in zip(files, frames, strict=True) if key in f.columns), None):
            raise SourceError(f"{clash}: column {key!r} is also a partition folder's key")
    typed = {}
    for key in keys:
        texts = pd.Series([found[key] for found in values], dtype="str")
        numbers = parse_numbers(texts)
        typed[key] = numbers.tolist() if numbers.notna().all() else texts.tolist()
    return [
        frame.assign(**{key: typed[key][index] for key in keys})
        for index, frame in enumerate(frames)
    ]


def _is_number(values: pd.Series) -> bool:
    """Whether a column is numeric (an all-empty column counts as numeric: it holds no text)."""
    return bool(values.isna().all()) or is_number_column(values)


def _read_url(url: str, separator: str = ",", notation: Notation = PLAIN) -> pd.DataFrame:
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
    return _parse_table(payload, kind, url, separator, notation)
