"""Where data lives under data/: content-addressed snapshots and dataset versions.

Snapshots: data/snapshots/<sha256>.parquet, immutable, one per distinct content. A source
streamed in chunks (too big to hold) is snapshotted as a copy of its Parquet files instead:
data/snapshots/<sha256 of the files' bytes>/part-00000.parquet, ... (read back as read_source
reads them).

Dataset versions (landing mode): a version is a manifest (data/versions/v000002.json) listing
immutable, content-addressed part files (data/versions/parts/<sha256>.parquet): the first
version's rows, then the new rows of each later version. Appending a day's sales writes only
those rows, so a version costs disk in proportion to what it adds, not to the history.
data/versions/current.json names the current version; replacing it (one atomic rename) is the
commit point: a version exists once current.json names it. Landing files move to
data/versions/accepted/<version>/ or data/quarantine/<batch>/ (with their validation report),
so no file is ingested twice. Versions written before parts existed (one whole
v000001.parquet each, no `parts` in the manifest) still load, and the next commit on top of
one stores its rows once as a part. Every write goes through houseprice/storage.py.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from houseprice.chunks import ChunkedTable, plan_chunks, read_chunked, read_head
from houseprice.storage import (
    copy_files_atomic,
    file_sha256,
    files_sha256,
    move_file,
    read_json,
    write_json_atomic,
    write_parquet_atomic,
)


@dataclass(frozen=True)
class Snapshot:
    """An immutable, content-addressed copy of the data a run trained on."""

    content_hash: str
    path: Path
    rows: int
    columns: int


def hash_frame(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's column names, dtypes and values (row order matters, index does not)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def snapshots_dir(data_dir: Path) -> Path:
    """Folder of content-addressed data snapshots."""
    return Path(data_dir) / "snapshots"


def plan_snapshot(frame: pd.DataFrame, data_dir: Path) -> Snapshot:
    """The snapshot frame would be stored as, without writing it (it may yet fail validation)."""
    content_hash = hash_frame(frame)
    path = snapshots_dir(data_dir) / f"{content_hash}.parquet"
    return Snapshot(content_hash, path, len(frame), frame.shape[1])


def store_snapshot(frame: pd.DataFrame, data_dir: Path) -> Snapshot:
    """Store frame as data/snapshots/<hash>.parquet unless that exact content is already there."""
    snapshot = plan_snapshot(frame, data_dir)
    if not snapshot.path.exists():
        write_parquet_atomic(snapshot.path, frame)
    return snapshot


def plan_file_snapshot(table: ChunkedTable, data_dir: Path) -> Snapshot:
    """The snapshot a Parquet source's files would be stored as, from their bytes and metadata.

    For a source too big to hold: the hash reads the files in blocks, never as a table. The
    same rows stored by store_snapshot hash differently (that hash is of the values).
    """
    content_hash = files_sha256(table.files)
    path = snapshots_dir(data_dir) / content_hash
    return Snapshot(content_hash, path, table.rows, len(table.columns))


def store_file_snapshot(snapshot: Snapshot, table: ChunkedTable, data_dir: Path) -> Snapshot:
    """Copy the source's files to data/snapshots/<hash>/part-NNNNN.parquet (once per content)."""
    names = [f"part-{number:05d}.parquet" for number in range(len(table.files))]
    copy_files_atomic(snapshot.path, list(zip(table.files, names, strict=True)))
    return snapshot


def snapshot_path(data_dir: Path, content_hash: str) -> Path:
    """Where a stored snapshot is: <hash>.parquet, or the folder <hash>/ for a streamed source."""
    folder = snapshots_dir(data_dir) / content_hash
    return folder if folder.is_dir() else snapshots_dir(data_dir) / f"{content_hash}.parquet"


def load_snapshot(data_dir: Path, content_hash: str) -> pd.DataFrame:
    """Read a stored snapshot back by its hash (whole: see read_snapshot_head for big ones)."""
    path = snapshot_path(data_dir, content_hash)
    if not path.exists():
        raise FileNotFoundError(f"no data snapshot {content_hash} under {snapshots_dir(data_dir)}")
    if path.is_dir():  # copies of the source's files: read as read_source read them
        return read_chunked(plan_chunks(str(path), SNAPSHOT_READ_ROWS))
    return pd.read_parquet(path)


def read_snapshot_head(snapshot_path: Path, rows: int) -> pd.DataFrame:
    """At most rows rows of a snapshot file or folder, from its first row groups only."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    return read_head(plan_chunks(str(snapshot_path), min(rows, SNAPSHOT_READ_ROWS)), rows)


# Rows read at a time from a snapshot folder; the result is the same whatever the size.
SNAPSHOT_READ_ROWS = 1_000_000


VERSION_WIDTH = 6


@dataclass
class LandedFile:
    """One file taken from the landing folder, accepted or quarantined."""

    name: str
    sha256: str
    rows: int | None  # None when the file could not be read as a table
    stored_as: str  # where it was moved, relative to data_dir
    reason: str | None = None  # why it was quarantined; None for an accepted file


@dataclass
class DatasetVersion:
    """A committed version of the dataset: its parent plus the files accepted into it."""

    version: str
    parent: str | None
    rows: int
    content_hash: str
    created_at: str
    source: str  # the seed source for the first version, "landing" for later ones
    rows_added: int  # new rows after dropping exact duplicates
    accepted: list[LandedFile] = field(default_factory=list)
    quarantined: list[LandedFile] = field(default_factory=list)  # refused in the same batch
    # Content hashes of the part files whose rows, in order, make up this version. Empty for a
    # version written in the old whole-file format (v000001.parquet).
    parts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, as the manifest stores it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> DatasetVersion:
        """Rebuild from to_dict() output."""
        files = {key: [LandedFile(**item) for item in payload[key]] for key in _FILE_LISTS}
        return cls(**{**payload, **files})


_FILE_LISTS = ("accepted", "quarantined")


def versions_dir(data_dir: Path) -> Path:
    """Folder of dataset versions, their manifests, the pointer and the learned suite."""
    return Path(data_dir) / "versions"


def version_name(number: int) -> str:
    """'v000001' for 1: zero-padded so names sort in order."""
    return f"v{number:0{VERSION_WIDTH}d}"


def next_version_name(current: DatasetVersion | None) -> str:
    """The name the next committed version gets."""
    return version_name(1 if current is None else int(current.version[1:]) + 1)


def version_data_path(data_dir: Path, version: str) -> Path:
    """A version's rows as one whole Parquet file: the format before part files."""
    return versions_dir(data_dir) / f"{version}.parquet"


def version_manifest_path(data_dir: Path, version: str) -> Path:
    """A version's manifest: what it holds and which part files make it up."""
    return versions_dir(data_dir) / f"{version}.json"


def parts_dir(data_dir: Path) -> Path:
    """Folder of content-addressed part files shared by the dataset versions."""
    return versions_dir(data_dir) / "parts"


def part_path(data_dir: Path, part_hash: str) -> Path:
    """One part file's path, from its content hash."""
    return parts_dir(data_dir) / f"{part_hash}.parquet"


def current_version_path(data_dir: Path) -> Path:
    """The pointer: a copy of the current version's manifest."""
    return versions_dir(data_dir) / "current.json"


def learned_suite_path(data_dir: Path) -> Path:
    """The GX suite learned from the first version; people may edit it."""
    return versions_dir(data_dir) / "suite.json"


def accepted_dir(data_dir: Path, version: str) -> Path:
    """Where a version's accepted landing files are kept (under versions/, ignored by git)."""
    return versions_dir(data_dir) / "accepted" / version


def quarantine_dir(data_dir: Path, batch: str) -> Path:
    """Where one run's refused landing files are kept, each beside its validation report."""
    return Path(data_dir) / "quarantine" / batch


def read_current_version(data_dir: Path) -> DatasetVersion | None:
    """The current dataset version, or None before the first one is committed."""
    path = current_version_path(data_dir)
    return DatasetVersion.from_dict(read_json(path)) if path.exists() else None


def dataset_version_exists(data_dir: Path, version: str) -> bool:
    """Whether a version was committed (in either format)."""
    return version_manifest_path(data_dir, version).exists()


def load_dataset_version(data_dir: Path, version: str) -> pd.DataFrame:
    """A committed version's rows: its part files in order, or its one file in the old format."""
    manifest = DatasetVersion.from_dict(read_json(version_manifest_path(data_dir, version)))
    if not manifest.parts:
        return pd.read_parquet(version_data_path(data_dir, version))
    frames = []
    for part_hash in manifest.parts:
        path = part_path(data_dir, part_hash)
        if not path.exists():
            raise FileNotFoundError(f"dataset version {version} lacks its part file {path}")
        frames.append(pd.read_parquet(path))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def store_dataset_part(data_dir: Path, rows: pd.DataFrame) -> str:
    """Store rows as an immutable part file named by their content hash; return the hash."""
    part_hash = hash_frame(rows)
    path = part_path(data_dir, part_hash)
    if not path.exists():  # the same rows are never stored twice
        write_parquet_atomic(path, rows)
    return part_hash


def chain_hash(parent_hash: str, part_hash: str) -> str:
    """A version's content hash from its parent's and its new part's: no need to reread history."""
    return hashlib.sha256(f"{parent_hash}+{part_hash}".encode()).hexdigest()


def commit_dataset_version(data_dir: Path, version: DatasetVersion) -> None:
    """Write the version's manifest, then point current.json at it (the commit).

    Its part files must be stored first (store_dataset_part): a crash before the pointer moves
    leaves at most an unreferenced part, never a version with missing rows.
    """
    missing = [h for h in version.parts if not part_path(data_dir, h).exists()]
    if missing:
        raise FileNotFoundError(f"version {version.version} names part files not stored: {missing}")
    write_json_atomic(version_manifest_path(data_dir, version.version), version.to_dict())
    write_json_atomic(current_version_path(data_dir), version.to_dict())


def list_landing_files(landing_dir: Path) -> list[Path]:
    """Files waiting in the landing folder, by name; hidden ones are uploads still in progress."""
    landing_dir = Path(landing_dir)
    landing_dir.mkdir(parents=True, exist_ok=True)  # so people see where to drop files
    return sorted(p for p in landing_dir.iterdir() if p.is_file() and not p.name.startswith("."))


def quarantine_file(source: Path, data_dir: Path, batch: str, report: dict[str, Any]) -> Path:
    """Move a refused landing file into quarantine, its validation report written first."""
    folder = quarantine_dir(data_dir, batch)
    # Report first: a crash in between leaves the file in landing, to be checked again.
    write_json_atomic(folder / f"{Path(source).name}.validation.json", report)
    return move_file(source, folder / Path(source).name)


def settle_accepted_files(landing_dir: Path, data_dir: Path, version: DatasetVersion) -> list[Path]:
    """Move the version's accepted files out of landing; also finishes a commit cut short.

    A file still in landing whose bytes match a file the committed version lists was merged
    already (the run stopped between the commit and the move), so it is moved, not re-read.
    """
    moved = []
    for record in version.accepted:
        source = Path(landing_dir) / record.name
        if not source.is_file() or file_sha256(source) != record.sha256:
            continue
        destination = Path(data_dir) / record.stored_as
        if destination.exists():  # the copy landed before the crash; drop the original
            source.unlink()
        else:
            move_file(source, destination)
        moved.append(destination)
    return moved
