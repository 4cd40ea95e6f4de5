"""The chunk, the one unit of data every stage works on, and reading tables as chunks.

A run's data is a ChunkedTable: a sequence of chunks, each read where it is worked on.
- A Parquet file or folder is planned as runs of whole row groups (Chunk): small to describe (a
  path and group numbers), so a worker gets an address, never rows.
- Rows already in memory (a CSV, a URL, a dataset version, a window) are one chunk, or slices of
  chunk_rows rows (FrameChunk), which carry their rows with them.
`read_rows` reads either, indexed by the rows' positions in the whole table, for the folds of
houseprice/folds.py. Every table read goes through the same checks (checked_frame) whether read
whole (tasks/sources.py) or in chunks here, so the concatenated chunks equal what read_source
returns for the same files.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from houseprice.columns import header_problems, normalize_missing
from houseprice.errors import SourceError

TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# CSV files compressed this way are read (pyarrow decompresses them by their suffix).
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".zst")
NOT_LOCAL_PREFIXES = ("synthetic:", "http://", "https://")
BUNDLED_NAME = "bundled"  # config.BUNDLED_SOURCE: small, always read whole


@dataclass(frozen=True)
class Chunk:
    """Whole row groups of one Parquet file: what one worker reads at a time."""

    index: int  # position in the dataset, 0 first
    path: str  # absolute
    row_groups: tuple[int, ...]
    rows: int
    start: int = 0  # the position of its first row in the whole table


@dataclass(frozen=True, eq=False)
class FrameChunk:
    """Rows already in memory, carried with their address: a small table's one chunk."""

    index: int
    frame: pd.DataFrame  # indexed 0..rows-1; read_rows gives it the table's positions
    start: int

    @property
    def rows(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class ChunkedTable:
    """A source planned as chunks, in read_source's order, and its shape.

    files is empty for rows held in memory (frame_table).
    """

    source: str  # as configured
    files: tuple[str, ...]
    chunks: tuple[Chunk | FrameChunk, ...]
    rows: int
    columns: tuple[str, ...]


def frame_table(frame: pd.DataFrame, source: str, chunk_rows: int) -> ChunkedTable:
    """Rows in memory as a table of chunks of at most chunk_rows rows (one for a small frame)."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    frame = frame.reset_index(drop=True)
    chunks = tuple(
        FrameChunk(index, frame.iloc[start : start + chunk_rows].reset_index(drop=True), start)
        for index, start in enumerate(range(0, max(len(frame), 1), chunk_rows))
    )
    columns = tuple(str(column) for column in frame.columns)
    return ChunkedTable(source, (), chunks, len(frame), columns)


def read_rows(chunk: Chunk | FrameChunk, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A chunk's rows (only the listed columns it has), indexed by their place in the table."""
    if isinstance(chunk, FrameChunk):
        frame = chunk.frame
        if columns is not None:
            frame = frame[[column for column in columns if column in frame.columns]]
        frame = frame.copy(deep=False)
    else:
        frame = read_chunk(chunk, columns)
    frame.index = pd.RangeIndex(chunk.start, chunk.start + len(frame))
    return frame


def table_format(name: str) -> str | None:
    """'csv' or 'parquet' for a table file's name (.csv, .csv.gz, .parquet, ...), else None."""
    suffixes = [suffix.lower() for suffix in Path(name).suffixes]
    if suffixes and suffixes[-1] in TABLE_SUFFIXES:
        return TABLE_SUFFIXES[suffixes[-1]]
    if len(suffixes) > 1 and suffixes[-1] in COMPRESSED_SUFFIXES and suffixes[-2] == ".csv":
        return "csv"
    return None


def _hidden(path: Path) -> bool:
    return path.name.startswith((".", "_"))


def is_partition_folder(path: Path) -> bool:
    """A hive-style partition folder: 'key=value' (year=2008)."""
    key, equals, _ = path.name.partition("=")
    return path.is_dir() and bool(equals) and bool(key.strip())


@dataclass(frozen=True)
class FolderListing:
    """A folder's table files (partition folders included), and the entries no reader takes."""

    files: tuple[Path, ...]
    skipped: tuple[str, ...]  # relative names of other files and folders


def list_folder(folder: Path) -> FolderListing:
    """Every table file of a folder and its key=value subfolders, in path order; the rest named.

    Hidden files (an upload in progress, macOS's ._ files) are neither read nor named.
    """
    files: list[Path] = []
    skipped: list[str] = []
    pending = [Path(folder)]
    while pending:
        for path in sorted(pending.pop().iterdir()):
            if _hidden(path):
                continue
            if is_partition_folder(path):
                pending.append(path)
            elif table_format(path.name):  # a folder named like a table is refused when read
                files.append(path)
            else:
                skipped.append(path.relative_to(folder).as_posix() + ("/" if path.is_dir() else ""))
    order = sorted(files, key=lambda p: p.relative_to(folder).as_posix())
    return FolderListing(tuple(order), tuple(sorted(skipped)))


def table_files(folder: Path) -> list[Path]:
    """A folder's CSV/Parquet files (partition folders included) in path order, as read.

    A FIFO or a link loop among them is refused here, before anything opens it.
    """
    files = list(list_folder(folder).files)
    for path in files:
        if problem := path_problem(path):
            raise SourceError(problem)
    return files


def partition_values(folder: Path, path: Path) -> dict[str, str]:
    """The key=value pairs of the partition folders between folder and one of its files."""
    parts = path.relative_to(folder).parent.parts
    return dict(part.partition("=")[::2] for part in parts)


def path_kind(path: Path) -> str:
    """What a path is, in words: 'a file', 'a folder', 'missing', 'a FIFO (named pipe)', ..."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symlink loop (a loop of symbolic links)"
        if error.errno in {errno.ENOENT, errno.ENOTDIR}:
            return "a broken symlink" if os.path.islink(path) else "missing"
        return f"unreadable ({(error.strerror or str(error)).lower()})"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"  # reading one waits for a writer, maybe forever
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def path_problem(path: Path) -> str | None:
    """Why a source path cannot be read as a file or folder: missing, a link loop, a FIFO.

    Checked before opening: a FIFO blocks the reader until something writes to it (forever, in
    a nightly run), and a link loop fails the same way on every retry.
    """
    kind = path_kind(path)
    if kind == "missing":
        return f"source not found: {path}"
    if kind in {"a file", "a folder"}:
        return None
    if kind.startswith("a symlink loop"):
        return f"source {path} is {kind}: point it at a real file"
    return f"source {path} is {kind}, not a regular file: save the data to a CSV or Parquet file"


def checked_frame(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """A freshly read table with missing-value cells as missing; no rows or a bad header refused."""
    if frame.empty:
        raise SourceError(f"{name} holds no rows")
    if problem := header_problems(list(frame.columns)):
        raise SourceError(f"{name}: {problem}; give every column a distinct name")
    if nested := _nested_columns(frame):
        raise SourceError(
            f"{name}: columns {nested[:5]} hold lists or records, not one value per cell; "
            "flatten them into columns of their own"
        )
    return normalize_missing(frame)


def _nested_columns(frame: pd.DataFrame) -> list[str]:
    """Columns whose cells are lists, arrays or dicts (Parquet list and struct columns)."""
    nested = []
    for column, values in frame.items():
        if values.dtype != object:  # numbers, text and dates hold one value per cell
            continue
        sample = values.dropna().head(20)
        if any(isinstance(cell, list | tuple | dict | np.ndarray) for cell in sample):
            nested.append(str(column))
    return nested


def frame_from_arrow(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as pandas, as pd.read_parquet converts it (pyarrow ≥ 25, default dtypes)."""
    return table.to_pandas()


def read_parquet_frame(handle: io.BytesIO | Path) -> pd.DataFrame:
    """A whole Parquet file or payload as pandas, unchecked (see checked_frame)."""
    return frame_from_arrow(pq.read_table(handle, use_pandas_metadata=True))


@contextlib.contextmanager
def source_errors(name: str, kind: str) -> Iterator[None]:
    """Turn a parser's errors into SourceError naming the source; disk and network errors pass."""
    try:
        yield
    except SourceError:
        raise
    except UnicodeDecodeError as error:
        raise SourceError(
            f"cannot read {name} as {kind}: it is not UTF-8 text ({error.reason} at byte "
            f"{error.start}); save it as UTF-8"
        ) from None
    except ValueError as error:  # pandas' and pyarrow's parse errors
        raise SourceError(f"cannot read {name} as {kind}: {_first_line(error)}") from None
    except OSError as error:
        if error.errno is not None:  # the disk or network, not the content: may pass on retry
            raise
        # pyarrow reports corrupt content as an OSError without an errno: retrying won't help.
        raise SourceError(
            f"cannot read {name} as {kind}, the file is corrupt: {_first_line(error)}"
        ) from None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def column_set_problem(
    reference: str, reference_columns: Sequence[str], name: str, columns: Sequence[str]
) -> str | None:
    """Why a folder's file cannot be stacked under its first file (other columns), or None."""
    missing = set(reference_columns) - set(columns)
    extra = set(columns) - set(reference_columns)
    if not (missing or extra):
        return None
    return f"{name} does not match {reference}: missing {sorted(missing)}, extra {sorted(extra)}"


def _local_parquet_files(source: str) -> list[Path] | None:
    """The Parquet files a source names, or None when it is not (only) local Parquet."""
    if source == BUNDLED_NAME or source.startswith(NOT_LOCAL_PREFIXES) or not source.strip():
        return None
    path = Path(source).expanduser()
    if path.is_dir():
        files = table_files(path)
    elif path.is_file():
        files = [path]
    else:
        return None
    # Partition folders add columns that no single file holds: such a folder is read whole.
    nested = path.is_dir() and any(p.parent != path for p in files)
    if not files or nested or any(table_format(p.name) != "parquet" for p in files):
        return None
    return [p.resolve() for p in files]


def parquet_rows(source: str) -> int | None:
    """Rows of a local Parquet file or folder from its metadata alone; None for anything else.

    Cheap enough to call before every run: only each file's footer is read. An unreadable
    file also gives None, so that reading it whole reports the problem.
    """
    files = _local_parquet_files(source)
    if files is None:
        return None
    try:
        return sum(pq.read_metadata(path).num_rows for path in files)
    except (OSError, ValueError):
        return None


def _data_columns(schema: pa.Schema) -> list[str]:
    """The schema's columns less a stored pandas index (read_source does not return it)."""
    index = (schema.pandas_metadata or {}).get("index_columns", [])
    stored = {name for name in index if isinstance(name, str)}
    return [name for name in schema.names if name not in stored]


def _is_number_type(kind: pa.DataType) -> bool:
    # An all-null column counts as numeric, as read_source counts an all-empty one.
    types = pa.types
    return (
        types.is_integer(kind)
        or types.is_floating(kind)
        or types.is_decimal(kind)
        or (types.is_null(kind))
    )


def _group_chunks(path: Path, metadata: pq.FileMetaData, chunk_rows: int) -> list[list[int]]:
    """Consecutive row groups packed up to chunk_rows; a bigger group stands alone."""
    groups: list[list[int]] = []
    current: list[int] = []
    rows = 0
    for group in range(metadata.num_row_groups):
        size = metadata.row_group(group).num_rows
        if size == 0:
            continue
        if current and rows + size > chunk_rows:
            groups.append(current)
            current, rows = [], 0
        current.append(group)
        rows += size
    if current:
        groups.append(current)
    return groups


def plan_chunks(source: str, chunk_rows: int) -> ChunkedTable:
    """Plan a local Parquet file or folder as chunks of about chunk_rows rows (metadata only).

    Files must have the same columns, each holding numbers in every file or in none, as
    read_source requires of a folder.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    files = _local_parquet_files(source)
    if files is None:
        raise SourceError(
            f"cannot read {source!r} in chunks: only a local Parquet file or a folder holding "
            "only Parquet files can be streamed"
        )
    chunks: list[Chunk] = []
    columns: list[str] = []
    start = 0
    kinds: dict[str, bool | None] = {}
    for path in files:
        with source_errors(str(path), "parquet"):
            metadata = pq.read_metadata(path)
            schema = pq.read_schema(path)
        if metadata.num_rows == 0:
            raise SourceError(f"{path} holds no rows")
        names = _data_columns(schema)
        if not columns:
            if problem := header_problems(list(names)):
                raise SourceError(f"{path}: {problem}; give every column a distinct name")
            columns = names
        elif problem := column_set_problem(files[0].name, columns, str(path), names):
            raise SourceError(problem)
        _check_kinds(kinds, schema, names, files[0].name, path)
        for groups in _group_chunks(path, metadata, chunk_rows):
            rows = sum(metadata.row_group(g).num_rows for g in groups)
            chunks.append(Chunk(len(chunks), str(path), tuple(groups), rows, start))
            start += rows
    total = sum(chunk.rows for chunk in chunks)
    return ChunkedTable(source, tuple(map(str, files)), tuple(chunks), total, tuple(columns))


def _check_kinds(
    kinds: dict[str, bool | None], schema: pa.Schema, names: list[str], first: str, path: Path
) -> None:
    """Refuse a column that holds numbers in one file and text in another (kinds: so far)."""
    for name in names:
        kind = schema.field(name).type
        number = None if pa.types.is_null(kind) else _is_number_type(kind)
        seen = kinds.get(name)
        if seen is None:
            kinds[name] = number
        elif number is not None and number != seen:
            raise SourceError(
                f"column {name!r} holds numbers in {first} but not in {path.name} "
                f"(as {kind} there); fix the file"
            )


def read_chunk(chunk: Chunk, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """One chunk's rows (only the listed columns), checked as read_source checks a file."""
    with source_errors(chunk.path, "parquet"):
        table = pq.ParquetFile(chunk.path).read_row_groups(
            list(chunk.row_groups),
            columns=None if columns is None else list(columns),
            use_pandas_metadata=True,
        )
        frame = frame_from_arrow(table)
    # A stored index belongs to the file, not the dataset: the chunks count from 0 like a folder.
    return checked_frame(frame.reset_index(drop=True), chunk.path)


def read_chunked(table: ChunkedTable, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Every chunk of a planned table in one frame (for tables that fit in memory)."""
    wanted = table.columns if columns is None else columns
    frames = [read_chunk(chunk, wanted) for chunk in table.chunks]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def read_head(table: ChunkedTable, rows: int) -> pd.DataFrame:
    """At most rows rows from the table's first chunks (only the chunks needed are read)."""
    frames, count = [], 0
    for chunk in table.chunks:
        if count >= rows:
            break
        frames.append(read_chunk(chunk, table.columns))
        count += chunk.rows
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return frame.head(rows)
