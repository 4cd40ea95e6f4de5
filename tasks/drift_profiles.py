"""Drift profiles of a run's rows: its training part (kept with the run) and its new rows.

Both are folds over the run's chunks (houseprice/folds.py), so every row counts however large
the data and however it is chunked. The training part is picked per chunk by the same content
hash as the split (tasks/split.py), so the profile is of exactly the rows the model is fitted
on; on a table so small that split_data falls back to cutting by rank, it may differ from them
by those few rows. The run's training profile is stored beside its model (layout's
drift_profile, listed in the run's checksum manifest): the next run compares its new rows with
it, without reading the champion's rows again.

A champion trained before runs stored profiles is profiled once from its snapshot, by the same
fold, and the profile is stored beside its run for the runs after.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from prefect import get_run_logger

from houseprice import layout, storage
from houseprice.champion import UNREADABLE, ChampionRun, training_snapshot
from houseprice.chunks import ChunkedTable, plan_chunks
from houseprice.config import DataConfig, PathsConfig, SplitConfig
from houseprice.drift_profile import (
    CATEGORICAL,
    NUMERIC,
    DriftProfile,
    ProfileCounts,
    count_profile,
)
from houseprice.folds import Engine, Fused
from houseprice.tasks.split import TRAIN, PartCuts, assign_parts, part_cuts, row_positions


@dataclass(frozen=True)
class TrainingRows:
    """Which rows of a chunk the split trains on: by their content hash, as split_data cuts."""

    seed: int
    cuts: PartCuts | None  # None: a full-sample fit trains on every row

    @classmethod
    def of(cls, split: SplitConfig, total_rows: int) -> TrainingRows:
        """The training rows of a table of total_rows rows split with these settings."""
        return cls(split.seed, None if split.full_sample else part_cuts(split, total_rows))

    def select(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The chunk's training rows (its every column is hashed, as the split hashes them)."""
        if self.cuts is None:
            return rows
        return rows[assign_parts(row_positions(rows, self.seed), self.cuts) == TRAIN]


@dataclass(frozen=True)
class DriftProfileFold:
    """The drift profile of a table's rows (its training part when training is given)."""

    features: tuple[tuple[str, str], ...]  # (column, NUMERIC or CATEGORICAL)
    training: TrainingRows | None = None
    name: str = "drift-profile"
    threads_help: bool = True  # sorting and hashing release the GIL

    @property
    def columns(self) -> tuple[str, ...] | None:
        # The split hashes every column of a row; every row's profile reads only the features.
        return None if self.training is not None else tuple(name for name, _ in self.features)

    def per_chunk(self, rows: pd.DataFrame) -> ProfileCounts:
        if self.training is not None:
            rows = self.training.select(rows)
        return count_profile(rows, self.features)

    def combine(self, first: ProfileCounts, second: ProfileCounts) -> ProfileCounts:
        return first + second

    def finish(self, total: ProfileCounts) -> DriftProfile:
        return total.profile()


def profiled_features(data: DataConfig) -> tuple[tuple[str, str], ...]:
    """Each feature the config lists and how it is scored."""
    return _listed(data.numeric_features, data.categorical_features)


def _listed(numeric: list[str], categorical: list[str]) -> tuple[tuple[str, str], ...]:
    scored = {name: NUMERIC for name in numeric} | {name: CATEGORICAL for name in categorical}
    return tuple(scored.items())


class RunProfiles(NamedTuple):
    """A run's training part's profile (to store) and its new rows' (to compare)."""

    training: DriftProfile
    new_rows: DriftProfile


def profile_run(
    table: ChunkedTable,
    new_rows: ChunkedTable | None,
    data: DataConfig,
    split: SplitConfig,
    engine: Engine,
) -> RunProfiles:
    """Fold the run's training part and its new rows (None: every row of table) into profiles.

    A plain function, not a task: under the Dask engine each chunk becomes a task of the flow
    run. With every row new, both profiles come from one read of each chunk.
    """
    features = profiled_features(data)
    training = DriftProfileFold(
        features, TrainingRows.of(split, table.rows), name="drift-training-profile"
    )
    every_row = DriftProfileFold(features, name="drift-new-rows")
    if new_rows is None:
        trained, new = engine.fold(Fused((training, every_row)), table)
    else:
        trained, new = engine.fold(training, table), engine.fold(every_row, new_rows)
    return RunProfiles(trained, new)


def store_profile(path: Path, profile: DriftProfile) -> DriftProfile:
    """Write the profile as a run keeps it (DriftProfile.stored) and return that form."""
    stored = profile.stored()
    storage.write_json_atomic(path, stored.to_dict())
    return stored


def read_stored_profile(run: layout.RunPaths) -> DriftProfile | None:
    """A run's stored training profile; None when it has none; ValueError when it is damaged.

    When the run's manifest lists it (it was written by the run itself), its checksum must match.
    """
    path = run.drift_profile
    if not path.exists():
        return None
    name = str(path.relative_to(run.root))
    listed = storage.read_json(run.model_manifest) if run.model_manifest.exists() else {}
    if name in listed and storage.file_sha256(path) != listed[name]:
        raise ValueError(f"{path} does not match the checksum its run recorded")
    try:
        return DriftProfile.from_dict(storage.read_json(path))
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{path} is not a drift profile: {error!r}") from None


class ReferenceProfile(NamedTuple):
    """The champion's training profile, or why there is none to compare with."""

    run_id: str | None
    profile: DriftProfile | None
    problem: str | None = None  # why profile is None
    origin: str = ""  # where the profile came from, for the log


def champion_profile(
    champion: ChampionRun | None,
    data: DataConfig,
    paths: PathsConfig,
    chunk_rows: int,
    engine: Engine,
) -> ReferenceProfile:
    """The champion's stored training profile; else one folded from its snapshot (then stored).

    None with the reason when the champion has neither: drift then goes unchecked, which is no
    evidence of drift, so the gate goes on and the report says so.
    """
    if champion is None:
        return ReferenceProfile(None, None, "no champion yet")
    log = get_run_logger()
    run_id = champion.run_id
    try:
        run: layout.RunPaths | None = layout.open_run(paths.artifacts_dir, run_id)
    except (OSError, ValueError):
        run = None  # its folder is gone: only its snapshot can tell
    stored = None
    try:
        stored = read_stored_profile(run) if run is not None else None
    except (OSError, ValueError) as error:
        log.warning("drift: ignoring the champion's stored profile: %s", error)
    if stored is not None:
        return ReferenceProfile(run_id, stored, origin="profile stored with its run")
    try:
        profile = _profile_snapshot(champion, data, paths.data_dir, chunk_rows, engine)
    except UNREADABLE as error:
        return ReferenceProfile(run_id, None, str(error))
    if run is not None and not run.drift_profile.exists():  # written once, never over a file
        profile = store_profile(run.drift_profile, profile)
        log.info("drift: stored the champion's training profile in %s", run.drift_profile)
    return ReferenceProfile(run_id, profile.stored(), origin="profiled from its snapshot")


def _profile_snapshot(
    champion: ChampionRun, data: DataConfig, data_dir: Path, chunk_rows: int, engine: Engine
) -> DriftProfile:
    """The champion's training part of its snapshot, folded over the snapshot's chunks.

    Profiles the features this run lists and those the champion's own config lists. Raises
    one of UNREADABLE when its settings or snapshot cannot be read.
    """
    if champion.basis is None:
        raise ValueError(champion.basis_problem or f"run {champion.run_id} is unreadable")
    split = SplitConfig.model_validate(champion.basis.config["split"])
    table = plan_chunks(str(training_snapshot(champion, data_dir)), chunk_rows)
    own = champion.basis.config.get("data") or {}
    theirs = _listed(own.get("numeric_features") or [], own.get("categorical_features") or [])
    features = tuple((dict(theirs) | dict(profiled_features(data))).items())  # ours score
    fold = DriftProfileFold(
        features, TrainingRows.of(split, table.rows), name="drift-champion-profile"
    )
    return engine.fold(fold, table)
