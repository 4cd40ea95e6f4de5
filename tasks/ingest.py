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
from houseprice.columns import (
    MISSING_VALUES,
    FeatureDecision,
    decide_features,
    header_problems,
    is_number_column,
    normalize_missing,
    refuse_spoilt_columns,
    summarize_names,
)
from houseprice.config import BUNDLED_SOURCE, DataConfig
from houseprice.errors import SourceError, TransientSourceError

TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
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
    path = Path(source).expanduser()
    if not path.exists():
        return f"source not found: {path}"
    return None


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
    try:
        parquet = kind == "parquet"
        frame = pd.read_parquet(handle) if parquet else _read_csv(handle, name, separator)
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
    if frame.empty:
        raise SourceError(f"{name} holds no rows")
    if problem := header_problems(list(frame.columns)):
        raise SourceError(f"{name}: {problem}; give every column a distinct name")
    return normalize_missing(frame)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


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
    files = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in TABLE_SUFFIXES and not p.name.startswith((".", "_"))
    )
    if not files:
        raise SourceError(f"folder {folder} holds no .csv or .parquet files")
    frames = [_read_table_file(path, separator) for path in files]
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


def is_transient_error(error: BaseException) -> bool:
    """Whether a read failure may go away on retry (network trouble, I/O hiccups)."""
    if isinstance(error, SourceError | FileNotFoundError | PermissionError | IsADirectoryError):
        return False
    return isinstance(error, OSError | TimeoutError | urllib.error.URLError)


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
    resolved = {
        "numeric_features": [*data.numeric_features, *decision.numeric],
        "categorical_features": [*data.categorical_features, *decision.categorical],
        "features": [],
    }
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
    """Read the source and type its columns; the snapshot is stored once the data is valid."""
    frame = read_source(data.source, data.separator)
    snapshot = storage.plan_snapshot(frame, data_dir)
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
def store_snapshot(frame: pd.DataFrame, data_dir: Path) -> storage.Snapshot:
    """Keep the validated rows as data/snapshots/<sha256>.parquet (once per content)."""
    snapshot = storage.store_snapshot(frame, data_dir)
    get_run_logger().info("snapshot %s stored: %s", snapshot.content_hash[:12], snapshot.path)
    return snapshot
