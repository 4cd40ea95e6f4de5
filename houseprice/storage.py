"""The one place that knows where files live under data/ and artifacts/, and how they are written.

Every write is atomic: the bytes go to a temporary file in the destination folder, which is then
renamed over the final name, so a crash (even SIGKILL) never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from houseprice.trainers import TrainerSpec, get_trainer

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
        raise _naming(error, destination) from error
    finally:
        temporary_path.unlink(missing_ok=True)


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def _naming(error: OSError, destination: Path) -> OSError:
    """error, or for a full disk (whose write errors name no file) the same error naming it."""
    if error.errno in DISK_FULL_ERRNOS and not error.filename:
        return OSError(error.errno, error.strerror, str(destination))
    return error


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
        os.replace(temporary, destination)
    except OSError as error:
        raise _naming(error, destination) from error
    finally:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            temporary.unlink(missing_ok=True)
    return destination


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


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every whole JSON line of a file, oldest first; missing file → []; torn lines skipped."""
    if not Path(path).exists():
        return []
    entries = []
    for line in Path(path).read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
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


# ---------------------------------------------------------------------------------------------
# Data snapshots: data/snapshots/<sha256>.parquet, immutable and content-addressed.


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


def load_snapshot(data_dir: Path, content_hash: str) -> pd.DataFrame:
    """Read a stored snapshot back by its hash."""
    path = snapshots_dir(data_dir) / f"{content_hash}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"no data snapshot {content_hash} under {snapshots_dir(data_dir)}")
    return pd.read_parquet(path)


# ---------------------------------------------------------------------------------------------
# Run folders: artifacts/runs/<run_id>/, one per run, never reused.


@dataclass(frozen=True)
class RunPaths:
    """Every file a run writes, by name."""

    run_id: str
    root: Path

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def lineage(self) -> Path:
        return self.root / "lineage.json"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def status(self) -> Path:
        """Written last: a run without it (or with status != completed) is not usable."""
        return self.root / "run.json"

    @property
    def validation(self) -> Path:
        return self.root / "validation" / "result.json"

    @property
    def data_docs(self) -> Path:
        return self.root / "validation" / "data_docs"

    @property
    def data_docs_static(self) -> Path:
        """Data Docs' styles and scripts, one folder shared by every run (artifacts/...)."""
        return self.root.parent.parent / DATA_DOCS_STATIC

    @property
    def preprocessing(self) -> Path:
        return self.root / "model" / "preprocessing.json"

    @property
    def model_manifest(self) -> Path:
        """SHA-256 of each model file, written once they are all in place."""
        return self.root / "model" / "manifest.json"

    def model_file(self, trainer: str | TrainerSpec) -> Path:
        """A trainer's saved model, named by its spec (houseprice/trainers.py)."""
        return self.root / "model" / _spec(trainer).model_file

    def linear_weights(self, framework: str) -> Path:
        """The saved model's weights and bias as JSON, for scoring with numpy alone."""
        return self.root / "model" / f"{framework}_linear.json"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def onnx_export(self) -> Path:
        return self.exports / "model.onnx"

    def trainer_export(self, trainer: str | TrainerSpec) -> Path:
        """A trainer's stand-alone export (a file or a folder); ValueError if it has none."""
        spec = _spec(trainer)
        if spec.export_file is None:
            raise ValueError(f"trainer {spec.name!r} has no stand-alone export")
        return self.exports / spec.export_file

    @property
    def export_signature(self) -> Path:
        """The raw input columns the exports take, and which fit each export holds."""
        return self.exports / "signature.json"


def _spec(trainer: str | TrainerSpec) -> TrainerSpec:
    """A trainer's spec from its name (a spec is passed where the registry may not hold it)."""
    return trainer if isinstance(trainer, TrainerSpec) else get_trainer(trainer)


# Under the artifacts folder, beside runs/: Data Docs assets, one subfolder per version.
DATA_DOCS_STATIC = "data_docs_static"


def runs_dir(artifacts_dir: Path) -> Path:
    """Folder holding one subfolder per run."""
    return Path(artifacts_dir) / "runs"


# What new_run_id makes: UTC start time, then six hex digits.
RUN_ID_PATTERN = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")


class RunIdError(ValueError):
    """A run id that is not one (a path, a typo): it could name a folder outside the runs."""


def check_run_id(run_id: str) -> str:
    """run_id when it has the format new_run_id makes ('20261126T041133Z-900c4e'), else raise."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise RunIdError(
            f"{run_id!r} is not a run id: expected the form 20261126T041133Z-900c4e "
            "(see `houseprice history`)"
        )
    return run_id


def run_folder(artifacts_dir: Path, run_id: str) -> Path:
    """A run's folder, refusing any name that could resolve outside artifacts/runs/."""
    runs = runs_dir(artifacts_dir)
    name = str(run_id)
    if not name or name in {".", ".."} or "/" in name or "\\" in name or "\0" in name:
        raise RunIdError(f"{run_id!r} is not a run id: it must be a folder name under {runs}")
    folder = runs / name
    if folder.resolve().parent != runs.resolve():  # e.g. a symlink pointing elsewhere
        raise RunIdError(f"run {run_id!r} resolves outside {runs}")
    return folder


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: UTC timestamp plus random suffix."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def create_run(artifacts_dir: Path, run_id: str | None = None) -> RunPaths:
    """Create a fresh run folder; refuses to reuse an existing one."""
    run_id = run_id or new_run_id()
    root = run_folder(artifacts_dir, run_id)
    root.parent.mkdir(parents=True, exist_ok=True)
    root.mkdir(exist_ok=False)
    return RunPaths(run_id, root)


def open_run(artifacts_dir: Path, run_id: str) -> RunPaths:
    """Paths of an existing run; raises FileNotFoundError when there is no such run."""
    root = run_folder(artifacts_dir, run_id)
    if not root.is_dir():
        raise FileNotFoundError(f"no run {run_id!r} under {runs_dir(artifacts_dir)}")
    return RunPaths(run_id, root)


# ---------------------------------------------------------------------------------------------
# Dataset versions (landing mode). A version is a manifest (data/versions/v000002.json) listing
# immutable, content-addressed part files (data/versions/parts/<sha256>.parquet): the first
# version's rows, then the new rows of each later version. Appending a day's sales writes only
# those rows, so a version costs disk in proportion to what it adds, not to the history.
# data/versions/current.json names the current version; replacing it (one atomic rename) is the
# commit point: a version exists once current.json names it. Landing files move to
# data/versions/accepted/<version>/ or data/quarantine/<batch>/ (with their validation report),
# so no file is ingested twice. Versions written before parts existed (one whole
# v000001.parquet each, no `parts` in the manifest) still load, and the next commit on top of
# one stores its rows once as a part.

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


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
