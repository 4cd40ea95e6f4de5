"""The champion, read once per run: its record, what it was trained on, and its scoring model.

Collect (the nothing-new decision and the rows it has not seen), drift and the promotion gate
each need a part of it; the retrain flow loads it once, after finishing any interrupted
promotion, and hands the same object to each. A part that cannot be read is None with the
reason beside it, so each stage decides for itself what that means: collect trains anyway,
drift goes unchecked, and the gate replaces a model that no longer loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import yaml

from houseprice import datasets, layout, registry, storage
from houseprice.errors import ModelLoadError
from houseprice.model import HousePriceModel, load_run_model

# What a run folder whose lineage, config or snapshot is missing or damaged raises on the way
# in (storage.read_yaml lets yaml.YAMLError through).
UNREADABLE = (OSError, KeyError, TypeError, ValueError, yaml.YAMLError, registry.RegistryError)


class RunBasis(NamedTuple):
    """What a run (the champion, or the latest) was trained on: dataset version and settings."""

    run_id: str
    dataset_version: str | None  # None for a run trained outside landing mode
    dataset_hash: str | None
    config: dict[str, Any]  # its config.yaml
    snapshot: str | None = None  # content hash of its training rows, before the split


def read_run_basis(artifacts_dir: Path, run_id: str) -> RunBasis:
    """A run's dataset version, training rows' fingerprint and settings, from its run folder."""
    run = layout.open_run(artifacts_dir, run_id)
    lineage = storage.read_json(run.lineage)
    dataset = lineage.get("dataset") or {}
    config = storage.read_yaml(run.config)
    return RunBasis(
        run_id,
        dataset.get("version"),
        dataset.get("content_hash"),
        config,
        lineage.get("snapshot"),
    )


@dataclass(frozen=True)
class ChampionRun:
    """The model in use with its run: each part None when unreadable, and the reason why."""

    record: registry.Champion  # champion.json: run id, framework, when and why promoted
    basis: RunBasis | None  # its dataset version, config and training rows' fingerprint
    model: HousePriceModel | None  # its saved preprocessing and weights, ready to score
    basis_problem: str | None = None  # why basis is None
    model_problem: str | None = None  # why model is None: its files no longer load

    @property
    def run_id(self) -> str:
        """The champion's run."""
        return self.record.run_id

    @property
    def framework(self) -> str:
        """Which of its run's trainers is in use."""
        return self.record.framework


def load_champion(artifacts_dir: Path) -> ChampionRun | None:
    """The champion and everything the stages read of it; None before the first promotion.

    An unreadable champion.json raises RegistryError: no stage can go on without knowing which
    model is in use, and promoting over it would lose the record a person can still restore.
    """
    record = registry.read_champion(artifacts_dir)
    if record is None:
        return None
    basis = model = basis_problem = model_problem = None
    try:
        basis = read_run_basis(artifacts_dir, record.run_id)
    except UNREADABLE as error:
        basis_problem = str(error)
    try:
        model = load_run_model(artifacts_dir, record.run_id, record.framework)
    except (ModelLoadError, registry.RegistryError) as error:
        model_problem = str(error)
    return ChampionRun(record, basis, model, basis_problem, model_problem)


# Rows of a streamed champion's snapshot (a folder of the source's files) that drift compares
# with: its first row groups. Split like the whole, they are a subset of its training rows; the
# whole could be more than this machine holds.
DRIFT_SNAPSHOT_ROWS = 1_000_000


def read_training_snapshot(champion: ChampionRun, data_dir: Path) -> pd.DataFrame:
    """The rows the champion's run started from (its snapshot, by fingerprint), before the split.

    Every row of a snapshot file; of a streamed run's snapshot folder, the first
    DRIFT_SNAPSHOT_ROWS. Raises one of UNREADABLE when its run folder could not be read or the
    snapshot is gone.
    """
    if champion.basis is None:
        raise ValueError(champion.basis_problem or f"run {champion.run_id} is unreadable")
    if champion.basis.snapshot is None:
        raise ValueError(f"run {champion.run_id}'s lineage names no data snapshot")
    path = datasets.snapshot_path(data_dir, champion.basis.snapshot)
    if path.is_dir():
        return datasets.read_snapshot_head(path, DRIFT_SNAPSHOT_ROWS)
    return datasets.load_snapshot(data_dir, champion.basis.snapshot)
