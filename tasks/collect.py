"""Collect (landing mode): validate each new landing file, then append the good ones to the dataset.

Producers drop CSV/Parquet files into `data.landing_dir`, written under a hidden name (leading
dot) and renamed when complete: hidden files are uploads in progress and are left alone. Each
file is checked on its own against the suite learned from the first dataset version plus the
config's checks. A file that cannot be read, has other columns, or fails the suite moves to
data/quarantine/<batch>/ beside its validation report and holds nothing else up. The accepted
ones join the previous version, exact duplicate rows dropped, as the next version; the first
version is seeded from `data.source`. houseprice/storage.py has the commit order that keeps a
file either in landing or recorded in a committed version, whenever a run stops.

What comes after the update lives beside it: the nothing-new decision in tasks/no_retrain.py,
and the rolling window, which the other mode uses too, in tasks/window.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import datasets, layout, registry, storage
from houseprice.champion import UNREADABLE, ChampionRun, RunBasis, read_run_basis
from houseprice.columns import refuse_spoilt_columns
from houseprice.config import BUNDLED_SOURCE, DataConfig
from houseprice.datasets import DatasetVersion, LandedFile
from houseprice.runs import utc_now
from houseprice.tasks.ingest import SourceError, read_source, resolve_source, retry_transient
from houseprice.tasks.suites import (
    build_expectation_suite,
    build_landing_suite,
    build_learned_suite,
)
from houseprice.tasks.validate import DataValidationError, run_validation

REASON_FAILURES = 3  # failed expectations quoted in a quarantine reason; the report has all


# ---------------------------------------------------------------------------------------------
# Pure steps.


def merge_rows(previous: pd.DataFrame, additions: list[pd.DataFrame]) -> pd.DataFrame:
    """previous plus the additions (in previous's column order), exact duplicate rows dropped."""
    aligned = [frame[list(previous.columns)] for frame in additions]
    return pd.concat([previous, *aligned], ignore_index=True).drop_duplicates(ignore_index=True)


def rows_not_in(frame: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """The rows of frame that reference does not hold (compared on every column)."""
    columns = list(frame.columns)
    if list(reference.columns) != columns:
        return frame
    # Numbers compared as float64: a file with a decimal price turns an int column into floats.
    numeric = {c: "float64" for c in columns if pd.api.types.is_numeric_dtype(frame[c])}
    numeric = {c: kind for c, kind in numeric.items() if not pd.api.types.is_bool_dtype(frame[c])}
    left, right = frame.astype(numeric), reference.astype(numeric).drop_duplicates()
    marked = left.merge(right, on=columns, how="left", indicator=True)
    return frame[(marked["_merge"] == "left_only").to_numpy()].reset_index(drop=True)


@dataclass
class CollectResult:
    """The dataset version this run trains on, and what this run changed about it."""

    version: DatasetVersion  # current after this run
    frame: pd.DataFrame  # all of its rows
    source: str  # where those rows are stored
    # Rows the champion has not trained on, for the drift check: those added since its dataset
    # version, else those added by this run, else every row.
    new_rows: pd.DataFrame
    suite: dict[str, Any]  # the learned suite, for validating the training rows
    champion: RunBasis | None
    latest: RunBasis | None = None  # the newest completed run, promoted or not
    rows_added: int = 0  # by this run, after dropping duplicates
    accepted: list[LandedFile] = field(default_factory=list)  # this run's files
    quarantined: list[LandedFile] = field(default_factory=list)

    def lineage(self) -> dict[str, Any]:
        """The run's lineage and metrics entry: which version, and what this run added."""
        return {
            "version": self.version.version,
            "parent": self.version.parent,
            "content_hash": self.version.content_hash,
            "rows": self.version.rows,
            "rows_added": self.rows_added,
            "unseen_by_champion": len(self.new_rows),
            "accepted": [item.name for item in self.accepted],
            "quarantined": {item.name: item.reason for item in self.quarantined},
        }


# ---------------------------------------------------------------------------------------------
# The dataset update, reading and writing through houseprice.storage.


@dataclass
class FileCheck:
    """One landing file: its rows when readable, and the verdict."""

    path: Path
    sha256: str
    frame: pd.DataFrame | None
    report: dict[str, Any]  # ValidationReport.to_dict(), or {"success": False, "error": ...}
    reason: str | None  # why it is refused; None when accepted


def check_landing_file(path: Path, suite: dict[str, Any], separator: str = ",") -> FileCheck:
    """Read one landing file and validate it; an unreadable file is refused, not raised.

    A column of numbers with a few text cells is refused here as in every other mode.
    """
    digest = storage.file_sha256(path)
    try:
        frame = read_source(str(path), separator)
        refuse_spoilt_columns(frame, list(frame.columns))
    except SourceError as error:
        return FileCheck(path, digest, None, {"success": False, "error": str(error)}, str(error))
    report = run_validation(frame, suite)
    if report.success:
        return FileCheck(path, digest, frame, report.to_dict(), None)
    reason = "; ".join(str(failure) for failure in report.failures[:REASON_FAILURES])
    if len(report.failures) > REASON_FAILURES:
        reason += f"; and {len(report.failures) - REASON_FAILURES} more"
    return FileCheck(path, digest, frame, report.to_dict(), reason)


def seed_first_version(data: DataConfig, data_dir: Path) -> DatasetVersion:
    """Version 1 from data.source, once it passes validation; its profile becomes the suite."""
    frame = merge_rows(read_source(data.source, data.separator), [])
    suite_path = datasets.learned_suite_path(data_dir)
    learned = storage.read_json(suite_path) if suite_path.exists() else None  # a person's edits
    base = learned
    if base is None and data.source == BUNDLED_SOURCE:
        base = storage.read_json(storage.BUNDLED_SUITE)
    report = run_validation(frame, build_expectation_suite(data, base))
    if not report.success:
        raise DataValidationError(report)
    if learned is None:
        suite = build_learned_suite(frame, data.target, data.time_column)
        storage.write_json_atomic(suite_path, suite)
    part = datasets.store_dataset_part(data_dir, frame)
    version = DatasetVersion(
        version=datasets.next_version_name(None),
        parent=None,
        rows=len(frame),
        content_hash=part,  # the first version is its one part
        created_at=utc_now(),
        source=resolve_source(data.source),
        rows_added=len(frame),
        parts=[part],
    )
    datasets.commit_dataset_version(data_dir, version)
    return version


def update_dataset(
    data: DataConfig, data_dir: Path, champion: RunBasis | None = None
) -> CollectResult:
    """Seed the dataset if needed, then take in the landing folder's files as the next version."""
    if data.landing_dir is None:
        raise ValueError("update_dataset needs data.landing_dir (landing mode)")
    landing = Path(data.landing_dir)
    current = datasets.read_current_version(data_dir) or seed_first_version(data, data_dir)
    datasets.settle_accepted_files(landing, data_dir, current)  # a commit a crash cut short
    learned = storage.read_json(datasets.learned_suite_path(data_dir))
    suite = build_landing_suite(data, learned)
    checks = [
        check_landing_file(path, suite, data.separator)
        for path in datasets.list_landing_files(landing)
    ]
    batch = layout.new_run_id()
    quarantined = [_quarantine(check, data_dir, batch) for check in checks if check.reason]
    good = [check for check in checks if check.reason is None]
    previous = frame = datasets.load_dataset_version(data_dir, current.version)
    if good:
        frame = merge_rows(previous, [check.frame for check in good])
        current = _commit(frame, current, previous, good, quarantined, data_dir)
        datasets.settle_accepted_files(landing, data_dir, current)
    return CollectResult(
        version=current,
        frame=frame,
        source=str(datasets.version_manifest_path(data_dir, current.version)),
        new_rows=_unseen_rows(frame, previous if good else None, champion, data_dir),
        suite=learned,
        champion=champion,
        rows_added=len(frame) - len(previous),
        accepted=current.accepted if good else [],
        quarantined=quarantined,
    )


def _quarantine(check: FileCheck, data_dir: Path, batch: str) -> LandedFile:
    stored = datasets.quarantine_file(check.path, data_dir, batch, check.report)
    rows = None if check.frame is None else len(check.frame)
    relative = str(stored.relative_to(data_dir))
    return LandedFile(check.path.name, check.sha256, rows, relative, check.reason)


def _commit(
    frame: pd.DataFrame,
    previous: DatasetVersion,
    previous_frame: pd.DataFrame,
    good: list[FileCheck],
    quarantined: list[LandedFile],
    data_dir: Path,
) -> DatasetVersion:
    """Store only the rows this batch adds as a new part, then commit the version naming it."""
    name = datasets.next_version_name(previous)
    folder = datasets.accepted_dir(data_dir, name).relative_to(data_dir)
    accepted = [
        LandedFile(c.path.name, c.sha256, len(c.frame), str(folder / c.path.name)) for c in good
    ]
    # merge_rows keeps the previous rows first and in order, so what follows them is new.
    added = frame.iloc[len(previous_frame) :].reset_index(drop=True)
    # An old-format parent (one whole file) is stored once as a part, so it converts as it grows.
    parts = previous.parts or [datasets.store_dataset_part(data_dir, previous_frame)]
    content_hash = previous.content_hash  # files of rows already held: same data, same hash
    if len(added):
        part = datasets.store_dataset_part(data_dir, added)
        parts, content_hash = [*parts, part], datasets.chain_hash(previous.content_hash, part)
    version = DatasetVersion(
        version=name,
        parent=previous.version,
        rows=len(frame),
        content_hash=content_hash,
        created_at=utc_now(),
        source="landing",
        rows_added=len(added),
        accepted=accepted,
        quarantined=quarantined,
        parts=parts,
    )
    datasets.commit_dataset_version(data_dir, version)
    return version


def _unseen_rows(
    frame: pd.DataFrame,
    previous: pd.DataFrame | None,
    champion: RunBasis | None,
    data_dir: Path,
) -> pd.DataFrame:
    version = champion.dataset_version if champion else None
    if version and datasets.dataset_version_exists(data_dir, version):
        return rows_not_in(frame, datasets.load_dataset_version(data_dir, version))
    return frame if previous is None else rows_not_in(frame, previous)


def read_earlier_bases(
    artifacts_dir: Path, champion: ChampionRun | None, model: str | None = None
) -> tuple[RunBasis | None, RunBasis | None]:
    """What the champion (as loaded) and the newest completed run (of model) were trained on.

    Raises one of houseprice.champion.UNREADABLE when either cannot be read.
    """
    if champion is not None and champion.basis is None:
        raise ValueError(champion.basis_problem)
    basis = champion.basis if champion else None
    latest = registry.latest_completed_run(artifacts_dir, model)
    if latest is None:
        return basis, None
    if basis is not None and basis.run_id == latest:  # the champion is the newest run
        return basis, basis
    return basis, read_run_basis(artifacts_dir, latest)


# ---------------------------------------------------------------------------------------------
# Tasks.


# Retrying is safe: a committed version is current, and its files are settled before anything
# is read again.
@task(
    name="collect-data",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def collect_data(
    data: DataConfig, data_dir: Path, artifacts_dir: Path, champion: ChampionRun | None
) -> CollectResult:
    """Validate each new landing file and append the accepted ones as a new dataset version."""
    log = get_run_logger()
    try:
        basis, latest = read_earlier_bases(artifacts_dir, champion, data.model_name)
    except UNREADABLE as error:
        log.warning("collect: cannot read what earlier runs trained on (%s); will train", error)
        basis = latest = None
    collected = replace(update_dataset(data, data_dir, basis), latest=latest)
    for item in collected.quarantined:
        log.warning("collect: quarantined %s -> %s: %s", item.name, item.stored_as, item.reason)
    log.info(
        "collect: dataset %s has %d rows; this run accepted %d file(s), %+d rows",
        collected.version.version,
        collected.version.rows,
        len(collected.accepted),
        collected.rows_added,
    )
    return collected
