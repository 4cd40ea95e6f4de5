"""A source's kind and column names, read without reading its rows: checks made before a run.

`houseprice retrain` refuses a mistyped column or a source that cannot be read before Prefect
starts (houseprice/preflight.py), so only what is cheap is read here: a CSV's first line, a
Parquet file's footer, a synthetic spec, the first bytes a URL sends. Anything this cannot tell
(a corrupt file, a URL's Parquet) gives None and is left to the run, which reads the whole table
through tasks/sources.py and names the problem there.
"""

from __future__ import annotations

import csv
import io
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from houseprice import storage
from houseprice.chunks import (
    NOT_LOCAL_PREFIXES,
    TABLE_SUFFIXES,
    partition_values,
    path_kind,
    table_files,
    table_format,
)
from houseprice.data_config import BUNDLED_SOURCE, SYNTHETIC_PREFIX
from houseprice.errors import SourceError

# A header longer than this is not a header (a file of one huge line): left to the run.
MAX_HEADER_BYTES = 16 * 2**20
# What a URL may send before the check gives up on it; the run downloads it once, in full.
URL_CHECK_TIMEOUT_S = 10
URL_HEAD_BYTES = 64 * 2**10
ANY_SOURCE = "give a CSV or Parquet file, a folder of them, an http(s) URL or synthetic:..."


@dataclass(frozen=True)
class SourceHeader:
    """The column names of a source, and how messages name it."""

    name: str  # the file as given; for a folder, its first file
    columns: list[str]


def other_separator(header: str, separator: str) -> tuple[str, str, str] | None:
    """The separator a one-column header seems to use instead: (it, its name, how to type it)."""
    for candidate, label, typed in (
        (";", "semicolon", ";"),
        ("\t", "tab", "\\t"),
        ("|", "pipe", "|"),
        (",", "comma", ","),
    ):
        if candidate != separator and candidate in header:
            return candidate, label, typed
    return None


def read_header(source: str, separator: str = ",") -> SourceHeader | None:
    """The source's columns from its header alone; SourceError when it cannot be a table.

    None when the names cannot be known without reading the rows (left to the run).
    """
    if not source.strip():
        raise SourceError(f"the source is empty: {ANY_SOURCE}")
    if source == BUNDLED_SOURCE:
        return _parquet_header(storage.BUNDLED_DATA, "the bundled data")
    if source.startswith(SYNTHETIC_PREFIX):
        return _synthetic_header(source)
    if source.startswith(NOT_LOCAL_PREFIXES):
        return _url_header(source, separator)
    path = Path(source).expanduser()
    kind = path_kind(path)
    if kind == "missing":
        raise SourceError(f"source not found: {path}")
    if kind == "a folder":
        return _folder_header(path, separator)
    if kind != "a file":
        raise SourceError(f"source {path} is {kind}: {ANY_SOURCE}")
    return _file_header(path, source, separator)


def _folder_header(folder: Path, separator: str) -> SourceHeader | None:
    """A folder's first table file's header; each of its table files must be a plain file."""
    try:
        files = table_files(folder)
    except PermissionError:
        raise SourceError(f"cannot list folder {folder}: permission denied") from None
    if not files:
        raise SourceError(f"folder {folder} holds no .csv or .parquet files")
    for path in files:
        if (kind := path_kind(path)) != "a file":
            raise SourceError(f"{path} in source folder {folder} is {kind}, not a file")
    header = _file_header(files[0], str(files[0]), separator)
    keys = list(partition_values(folder, files[0]))  # hive folders' keys become columns
    return header if header is None else SourceHeader(header.name, [*header.columns, *keys])


def _file_header(path: Path, name: str, separator: str) -> SourceHeader | None:
    kind = table_format(path.name)
    if kind is None:
        raise SourceError(
            f"unsupported file type {path.suffix or '(none)'!r} for {name}: use .csv or .parquet"
        )
    if not os.access(path, os.R_OK):
        raise SourceError(f"cannot read {name}: permission denied")
    if kind == "parquet":
        return _parquet_header(path, name)
    if path.suffix.lower() != ".csv":  # compressed (.csv.gz, .bz2, .zst): its first bytes
        import pyarrow as pa

        try:
            with pa.input_stream(str(path), compression="detect") as stream:
                head = stream.read(MAX_HEADER_BYTES)
        except (OSError, ValueError):  # corrupt: the run says so, naming the file
            return None
        return _csv_header(head.split(b"\n", 1)[0], name, separator)
    with open(path, "rb") as handle:
        return _csv_header(handle.readline(MAX_HEADER_BYTES), name, separator)


def _parquet_header(path: Path, name: str) -> SourceHeader | None:
    """The columns in a Parquet footer, less a stored pandas index (read_source drops it)."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (OSError, ValueError):  # corrupt or not Parquet: the run says so, naming the file
        return None
    index = (schema.pandas_metadata or {}).get("index_columns", [])
    stored = {column for column in index if isinstance(column, str)}
    return SourceHeader(name, [column for column in schema.names if column not in stored])


def _csv_header(line: bytes, name: str, separator: str) -> SourceHeader | None:
    """The names in a CSV's first line, as pandas reads them (a byte-order mark dropped)."""
    if not line.strip() or b"\x00" in line:  # empty, binary or UTF-16: the run says which
        return None
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    names = next(csv.reader(io.StringIO(text), delimiter=separator), [])
    if len(names) == 1 and (other := other_separator(names[0], separator)):
        raise SourceError(
            f"{name} looks {other[1]}-delimited (its header is one column, {names[0][:80]!r}): "
            f"pass --separator '{other[2]}'"
        )
    return SourceHeader(name, names)


def _synthetic_header(source: str) -> SourceHeader:
    from houseprice.synthetic import TARGET_COLUMN, feature_names, parse_synthetic_source

    try:
        spec = parse_synthetic_source(source)
    except ValueError as error:
        raise SourceError(f"bad synthetic source: {error}") from None
    return SourceHeader(source, [*feature_names(spec.features), TARGET_COLUMN])


def _url_header(url: str, separator: str) -> SourceHeader | None:
    """Fail fast on a URL that cannot be fetched; a CSV's header from its first bytes.

    Only the first URL_HEAD_BYTES are read, then the connection is closed: the run downloads the
    file once, in full. A Parquet file's names are in its footer, at the end, so they are left to
    the run (a Range request would do, but a server may ignore it and send everything).
    """
    try:
        with urllib.request.urlopen(url, timeout=URL_CHECK_TIMEOUT_S) as response:
            head = response.read(URL_HEAD_BYTES)
    except urllib.error.HTTPError as error:
        raise SourceError(f"cannot download {url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:  # no route, refused, timed out, bad name
        reason = getattr(error, "reason", None) or error
        raise SourceError(f"cannot reach {url}: {reason}") from None
    suffix = Path(urllib.parse.urlparse(url).path).suffix.lower()
    if TABLE_SUFFIXES.get(suffix) == "parquet" or head[:4] == b"PAR1" or b"\n" not in head:
        return None
    return _csv_header(head.split(b"\n", 1)[0] + b"\n", url, separator)
