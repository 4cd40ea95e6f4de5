"""How files are written and read: atomic writes, JSON that stays finite, and file moves.

Where files live is said elsewhere: houseprice/layout.py for run folders under artifacts/, and
houseprice/datasets.py for snapshots and dataset versions under data/. Both write through here.

Every write is atomic: the bytes go to a temporary file in the destination folder, which is then
renamed over the final name, so a crash (even SIGKILL) never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
_UMASK = os.umask(0)
os.umask(_UMASK)  # reading the umask means setting it; put it straight back
BUNDLED_DATA = REPO_ROOT / "data" / "ames.parquet"
BUNDLED_SUITE = REPO_ROOT / "data" / "ames_suite.json"


@contextlib.contextmanager
def atomic_path(destination: Path) -> Iterator[Path]:
    """Yield a temporary path beside destination; renamed into place if the block succeeds."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    os.close(fd)
    temporary_path = Path(temporary)
    temporary_path.chmod(0o666 & ~_UMASK)  # mkstemp makes files owner-only; publish normally
    try:
        yield temporary_path
        with open(temporary_path, "rb") as written:  # flush to disk before the rename publishes it
            os.fsync(written.fileno())
        os.replace(temporary_path, destination)
    except OSError as error:
        _raise_naming(error, destination)
    finally:
        temporary_path.unlink(missing_ok=True)


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def _raise_naming(error: OSError, destination: Path) -> NoReturn:
    """Raise error, or for a full disk (whose write errors name no file) one naming destination.

    Never `raise error from error`: an exception that is its own cause cannot be serialized
    (Prefect's Failed state of a task on a Dask worker then fails to reach the flow).
    """
    if error.errno in DISK_FULL_ERRNOS and not error.filename:
        raise OSError(error.errno, error.strerror, str(destination)) from error
    raise error


def is_disk_full(error: BaseException | None) -> bool:
    """Whether error, or an error it was raised from, says the disk or quota is full."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def write_bytes_atomic(destination: Path, payload: bytes) -> Path:
    """Write bytes to destination atomically."""
    with atomic_path(destination) as temporary:
        temporary.write_bytes(payload)
    return destination


def write_text_atomic(destination: Path, text: str) -> Path:
    """Write UTF-8 text to destination atomically."""
    return write_bytes_atomic(destination, text.encode("utf-8"))


# Where a value was NaN or infinite, JSON holds null and this key of the same object says why.
NULL_REASONS_KEY = "null_reasons"


def write_json_atomic(destination: Path, payload: Any) -> Path:
    """Write strict JSON (numpy values converted, non-finite numbers as null) atomically.

    Python's json writes NaN and Infinity bare, which strict parsers (browsers, jq, Go, Java)
    refuse; each is written as null, and the object holding it gains a `null_reasons` entry
    naming the key and what the value was, unless the payload already gave its own reason.
    """
    text = json.dumps(finite_json(payload), indent=2, default=_json_default, allow_nan=False)
    return write_text_atomic(destination, text + "\n")


def finite_json(value: Any) -> Any:
    """value with every NaN/infinite number replaced by None, reasons kept beside (see above)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        cleaned, reasons = {}, dict(value.get(NULL_REASONS_KEY) or {})
        for key, item in value.items():
            if key == NULL_REASONS_KEY:
                continue
            cleaned[key] = finite_json(item)
            problem = _non_finite_description(item)
            if problem is not None:
                reasons.setdefault(str(key), problem)
        if reasons:
            cleaned[NULL_REASONS_KEY] = reasons
        return cleaned
    if isinstance(value, list | tuple):
        return [finite_json(item) for item in value]
    return value


def _non_finite_description(value: Any) -> str | None:
    """'was NaN' / 'was Infinity' for a non-finite number, or for a list holding some."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return f"was {_non_finite_name(float(value))}: not a number JSON can hold"
    if isinstance(value, list | tuple):
        bad = [float(v) for v in value if isinstance(v, float | np.floating) and not np.isfinite(v)]
        if bad:
            names = sorted({_non_finite_name(v) for v in bad})
            return f"{len(bad)} of {len(value)} values were {'/'.join(names)}, written as null"
    return None


def _non_finite_name(value: float) -> str:
    return "NaN" if np.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def write_parquet_atomic(destination: Path, frame: pd.DataFrame) -> Path:
    """Write a DataFrame as Parquet atomically."""
    with atomic_path(destination) as temporary:
        frame.to_parquet(temporary, index=False)
    return destination


def write_table_atomic(destination: Path, frame: pd.DataFrame) -> Path:
    """Write a DataFrame as CSV or Parquet, chosen by destination's extension, atomically."""
    if Path(destination).suffix.lower() == ".csv":
        with atomic_path(destination) as temporary:
            frame.to_csv(temporary, index=False)
        return destination
    return write_parquet_atomic(destination, frame)


class TableWriter:
    """Frames appended to one CSV or Parquet file (by its suffix), never all held at once.

    CSV is appended as it comes. Parquet goes to one part file per frame beside the
    destination, joined into it on close under one schema: a chunk may read a column as
    integers and the next as floats (a gap), and the joined file takes the wider type. On an
    error the parts are removed. Meant for a temporary path that write_with_atomic publishes.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.csv = self.path.suffix.lower() == ".csv"
        self.parts: list[Path] = []

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self._join()
        finally:
            for part in self.parts:
                part.unlink(missing_ok=True)

    def write(self, frame: pd.DataFrame) -> None:
        """Append frame's rows (its index is not written)."""
        if self.csv:
            first = not self.path.exists()
            frame.to_csv(self.path, mode="w" if first else "a", header=first, index=False)
            return
        part = self.path.with_name(f".{self.path.name}.part{len(self.parts):05d}")
        frame.to_parquet(part, index=False)
        self.parts.append(part)

    def _join(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.csv or not self.parts:
            return
        if len(self.parts) == 1:
            os.replace(self.parts.pop(), self.path)
            return
        schemas = [pq.read_schema(part) for part in self.parts]
        schema = pa.unify_schemas(schemas, promote_options="permissive")
        with pq.ParquetWriter(self.path, schema) as writer:
            for part in self.parts:
                writer.write_table(pq.read_table(part).cast(schema))


def write_with_atomic(destination: Path, writer: Callable[[Path], None]) -> Path:
    """Let writer(path) produce a file (e.g. a framework's save), then publish it atomically.

    The temporary name keeps destination's suffix, since some savers (Keras) insist on one.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(
        f".{destination.stem}.{secrets.token_hex(4)}{destination.suffix}"
    )
    try:
        writer(temporary)
        if temporary.is_file():
            with open(temporary, "rb") as written:
                os.fsync(written.fileno())
        _replace(temporary, destination)
    except OSError as error:
        _raise_naming(error, destination)
    finally:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            temporary.unlink(missing_ok=True)
    return destination


def write_scratch_array(destination: Path, array: np.ndarray) -> Path:
    """Save array as .npy under a temporary name, then rename: never seen half-written.

    Scratch (a streamed run's design chunks, deleted when the run ends): no fsync, since a crash
    discards the run that would read it, and syncing gigabytes would cost seconds.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.stem}.{secrets.token_hex(4)}.npy")
    try:
        np.save(temporary, array, allow_pickle=False)
        os.replace(temporary, destination)
    except OSError as error:
        _raise_naming(error, destination)
    finally:
        temporary.unlink(missing_ok=True)
    return destination


def remove_tree(path: Path) -> None:
    """Delete a folder and everything under it, if it exists."""
    shutil.rmtree(path, ignore_errors=True)


def _replace(source: Path, destination: Path) -> None:
    """os.replace, also where both are folders (os.replace refuses a non-empty destination).

    A task that runs twice writes its folder twice: on a Dask cluster, a finished task is run
    again when the worker holding its result dies before the flow has it. The old folder is
    moved aside first, so destination is missing for an instant but never half written.
    """
    if not (source.is_dir() and destination.is_dir()):
        os.replace(source, destination)
        return
    aside = destination.with_name(f".{destination.name}.old.{secrets.token_hex(4)}")
    os.replace(destination, aside)
    os.replace(source, destination)
    shutil.rmtree(aside, ignore_errors=True)


def read_json(path: Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


def read_yaml(path: Path) -> Any:
    """Read a YAML file (safe loader: plain data only); an empty file reads as {}."""
    return yaml.safe_load(Path(path).read_text()) or {}


def append_jsonl(path: Path, entry: dict[str, Any]) -> None:
    """Append one JSON line with a single write, flushed to disk.

    O_APPEND makes each line land whole at the end even if two writers race; a crash can at
    worst leave a torn last line, which read_jsonl skips.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(entry, default=_json_default) + "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(descriptor, line.encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_jsonl(path: Path, skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """Every JSON object line of a file, oldest first; missing file → [].

    Other lines (torn by a crash, edited by hand, not UTF-8) are skipped, each noted in skipped
    as 'path line N: why' when a list is given.
    """
    if not Path(path).exists():
        return []
    entries = []
    for number, raw in enumerate(Path(path).read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw.decode("utf-8"))
            if not isinstance(entry, dict):
                raise ValueError(f"a JSON {type(entry).__name__}, not an object")
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if skipped is not None:
                skipped.append(f"{path} line {number}: {str(error).splitlines()[0][:120]}")
            continue
        entries.append(entry)
    return entries


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return files_sha256([path])


def files_sha256(paths: Sequence[Path | str]) -> str:
    """SHA-256 of the files' bytes one after another, read in blocks (any size fits)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def copy_files_atomic(destination: Path, files: Sequence[tuple[Path | str, str]]) -> bool:
    """Copy (source, name) files into a new folder that appears whole or not at all.

    The copies go to a temporary folder beside destination, which is renamed into place; if
    destination already exists (or another writer gets there first) it is left as it is and
    False is returned. Only for content-addressed folders, whose contents never change.
    """
    destination = Path(destination)
    if destination.exists():
        return False
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        for source, name in files:
            shutil.copyfile(source, temporary / name)
            with open(temporary / name, "rb") as written:
                os.fsync(written.fileno())
        temporary.chmod(0o777 & ~_UMASK)  # mkdtemp makes folders owner-only; publish normally
        try:
            os.rename(temporary, destination)  # refuses a non-empty destination: no overwrite
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            return False  # a concurrent writer stored the same content first
        _fsync_folder(destination.parent)
        return True
    except OSError as error:
        _raise_naming(error, destination)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside folder durable (where the platform lets a folder be opened)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def move_file(source: Path, destination: Path) -> Path:
    """Move a file so that destination appears whole or not at all, even across filesystems."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, destination)  # same filesystem: one atomic rename
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        with atomic_path(destination) as temporary:  # another filesystem: copy, then rename
            shutil.copyfile(source, temporary)
        Path(source).unlink()
    return destination
