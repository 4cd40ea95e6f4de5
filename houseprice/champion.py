"""The champion, read once per run: its record, what it was trained on, and its scoring model.

Collect (the nothing-new decision and the rows it has not seen), drift and the promotion gate
each need a part of it; the retrain flow loads it once, after finishing any interrupted
promotion, and hands the same object to each. A part that cannot be read is None with the
reason beside it, so each stage decides for itself what that means: collect trains anyway,
drift goes unchecked, and the gate replaces a model that no longer loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import yaml

from houseprice import datasets, layout, registry, storage
from houseprice.errors import InputSchemaError, ModelLoadError
from houseprice.model import HousePriceModel, load_run_model, verify_checksums

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


def load_champion(artifacts_dir: Path, model: str | None = None) -> ChampionRun | None:
    """A model's champion and everything the stages read of it; None before its first promotion.

    An unreadable champion.json raises RegistryError: no stage can go on without knowing which
    model is in use, and promoting over it would lose the record a person can still restore.
    """
    record = registry.read_champion(artifacts_dir, model)
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


def training_snapshot(champion: ChampionRun, data_dir: Path) -> Path:
    """Where the rows the champion's run started from are stored (its snapshot), before the split.

    A Parquet file, or a folder of the source's files for a streamed run; read it as chunks.
    Raises one of UNREADABLE when its run folder could not be read or the snapshot is gone.
    """
    if champion.basis is None:
        raise ValueError(champion.basis_problem or f"run {champion.run_id} is unreadable")
    if champion.basis.snapshot is None:
        raise ValueError(f"run {champion.run_id}'s lineage names no data snapshot")
    path = datasets.snapshot_path(data_dir, champion.basis.snapshot)
    if not path.exists():
        raise FileNotFoundError(
            f"no data snapshot {champion.basis.snapshot} under {datasets.snapshots_dir(data_dir)}"
        )
    return path


def verify_run(artifacts_dir: Path, run_id: str, framework: str) -> HousePriceModel:
    """A completed run's model, after checking every file its manifest lists; else raise.

    ModelLoadError names the first file that is missing or differs from its recorded checksum
    (the model, its preprocessing, its weights or an export): such a run must never become a
    champion, or every later predict would fail.
    """
    run = registry.require_completed(artifacts_dir, run_id)
    try:
        listed = storage.read_json(run.model_manifest)
    except (OSError, ValueError):
        listed = {}  # verify_checksums below names the missing manifest
    verify_checksums(run, [run.root / name for name in listed if isinstance(name, str)])
    return load_run_model(artifacts_dir, run_id, framework)


def promote_verified(
    artifacts_dir: Path, run_id: str, framework: str, reason: str
) -> registry.Champion:
    """Promote a run only once its files match the checksums it recorded (verify_run)."""
    verify_run(artifacts_dir, run_id, framework)
    return registry.promote(artifacts_dir, run_id, framework, reason)


# ---------------------------------------------------------------------------------------------
# Which model scores a file: `predict` without --run.


class ScoringChoice(NamedTuple):
    """The model predict uses, the model name it belongs to, and whether it is the champion."""

    model: HousePriceModel
    model_name: str
    champion: bool


def _missing_columns(model: HousePriceModel, columns: pd.Index) -> list[str]:
    """The model's input columns that a file lacks."""
    prep = model.preprocessor
    return [c for c in prep.numeric_features + prep.categorical_features if c not in columns]


def fitting_models(artifacts_dir: Path, columns: pd.Index) -> dict[str, str]:
    """Model name → champion run id, for each champion that finds all its columns in columns."""
    fitting = {}
    for name in registry.champion_models(artifacts_dir):
        try:
            record = registry.read_champion(artifacts_dir, name)
            model = load_run_model(artifacts_dir, record.run_id, record.framework)
        except (ModelLoadError, registry.RegistryError, AttributeError):
            continue  # a broken champion fits nothing; loading it names the problem
        if not _missing_columns(model, columns):
            fitting[name] = record.run_id
    return fitting


def _fitting_text(fitting: dict[str, str]) -> str:
    """'sales-price (champion run X: --model sales-price)', or that none fits."""
    if not fitting:
        return "no model's champion has these columns"
    listed = ", ".join(f"{n} (champion run {r}: --model {n})" for n, r in fitting.items())
    return f"models whose champion has these columns: {listed}"


def choose_scoring_model(
    artifacts_dir: Path,
    read_frame: Callable[[], pd.DataFrame],
    model: str | None = None,
    run_id: str | None = None,
) -> tuple[ScoringChoice, pd.DataFrame]:
    """The model that scores a file, and the file's rows (read_frame is called once).

    The run named, else the named model's champion, else the one champion (with several, the
    one whose columns the file has; none or several fitting raise RegistryError naming them).
    The model is found before the file is read, so a bad run id or champion.json is refused
    first. A champion whose columns the file lacks raises InputSchemaError naming the models
    that fit and the --model/--run to use.
    """
    artifacts_dir = Path(artifacts_dir)
    if run_id is not None:
        chosen = load_run_model(artifacts_dir, registry.check_user_run_id(run_id))
        return ScoringChoice(chosen, registry.run_model(artifacts_dir, run_id), False), read_frame()
    frame = None
    if model is None and len(registry.champion_models(artifacts_dir)) > 1:
        frame = read_frame()  # several champions: the file's columns pick one
        model = _only_fitting_model(artifacts_dir, frame.columns)
    record = registry.read_champion(artifacts_dir, model)
    if record is None:
        raise registry.RegistryError(registry.no_champion_message(artifacts_dir, model))
    chosen = load_run_model(artifacts_dir, record.run_id, record.framework)
    frame = read_frame() if frame is None else frame
    if missing := _missing_columns(chosen, frame.columns):
        raise InputSchemaError(
            f"the champion of model {record.model!r} (run {chosen.model_id}) cannot score this "
            f"file: it lacks the model's columns {missing}; "
            f"{_fitting_text(fitting_models(artifacts_dir, frame.columns))}; or score with a "
            "run that has them: --run RUN_ID (see `houseprice history`)"
        )
    return ScoringChoice(chosen, record.model, True), frame


def _only_fitting_model(artifacts_dir: Path, columns: pd.Index) -> str:
    """With no --model and several champions: the one whose champion has these columns."""
    names = registry.champion_models(artifacts_dir)
    fitting = fitting_models(artifacts_dir, columns)
    if len(fitting) == 1:
        return next(iter(fitting))
    found = "several fit these columns" if fitting else "none fits these columns"
    raise registry.RegistryError(
        f"{len(names)} models have a champion under {artifacts_dir} ({', '.join(names)}) and "
        f"{found}: name one with --model; {_fitting_text(fitting)}"
    )
