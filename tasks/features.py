"""Split and features: a deterministic split, then a preprocessor fitted on the training part only.

The split itself lives in tasks/split.py (shared with the streamed path); split_data and
DataSplit are re-exported here for the modules that import them from features.

The preprocessor is plain data (JSON), saved beside the models so a model can score new rows
later without the training run, and without unpickling anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import storage
from houseprice.chunks import ChunkedTable
from houseprice.columns import NAMES_QUOTED, summarize_names
from houseprice.config import DataConfig, FeatureConfig, PipelineConfig
from houseprice.errors import InputError
from houseprice.folds import Engine, fold_frames
from houseprice.layout import RunPaths
from houseprice.preprocessing import Preprocessor, refuse_non_finite
from houseprice.tasks.preprocessing_fold import fit_preprocessor_by
from houseprice.tasks.split import (
    TEST,
    TRAIN,
    VALIDATION,
    DataSplit,
    PartCuts,
    PartRows,
    assign_parts,
    part_cuts,
    row_positions,
    split_data,
)
from houseprice.trainers.common import TrainingData
from houseprice.trainers.design import DesignFiles


def fit_preprocessor(
    train: pd.DataFrame, data: DataConfig, features: FeatureConfig
) -> Preprocessor:
    """Learn imputation, encoding and scaling from the training rows only (one chunk of them)."""
    return fit_preprocessor_by(lambda fold: fold_frames(fold, [train]), data, features)


class FeatureSet(NamedTuple):
    """Everything training and evaluation need from the split data."""

    preprocessor: Preprocessor
    # In memory, or (streamed, flows/streamed.py) the scaled design on disk, by file name; then
    # split.train and split.validation hold no rows, and part_sizes() counts them.
    training: TrainingData | DesignFiles
    x_test: np.ndarray
    y_test: np.ndarray  # price units, not scaled
    split: DataSplit
    config: PipelineConfig | None = None  # what made it; cross-validation refits with it

    @property
    def on_disk(self) -> bool:
        """Whether the training rows are on disk (a streamed source) rather than in memory."""
        return isinstance(self.training, DesignFiles)

    def part_sizes(self) -> dict[str, int]:
        """Rows in each part: train, validation, test."""
        if isinstance(self.training, DesignFiles):
            design = self.training
            return {
                "train": design.train_rows,
                "validation": design.validation_rows,
                "test": len(self.split.test),
            }
        return {part: len(rows) for part, rows in self.split._asdict().items()}

    @property
    def width(self) -> int:
        """Design columns."""
        return len(self.preprocessor.feature_names)


class AliasedFeatureError(InputError, ValueError):
    """A feature the user named cannot be estimated: the other features explain it entirely."""


def redundant_features(preprocessor: Preprocessor) -> dict[str, str]:
    """Features all of whose design columns were dropped as aliased, with the first reason."""
    dropped = preprocessor.dropped_columns
    redundant = {}
    for column in preprocessor.numeric_features:
        if column in dropped:
            redundant[column] = dropped[column]
    for column in preprocessor.categorical_features:
        indicators = [f"{column}={level}" for level in preprocessor.levels[column]]
        if indicators and all(name in dropped for name in indicators):
            redundant[column] = (
                f"every level is aliased, e.g. {indicators[0]}: {dropped[indicators[0]]}"
            )
    return redundant


def refuse_redundant_features(preprocessor: Preprocessor, train_rows: int) -> None:
    """Raise AliasedFeatureError for a named feature whose every design column was dropped."""
    if redundant := redundant_features(preprocessor):
        listed = "; ".join(f"{column}: {why}" for column, why in redundant.items())
        raise AliasedFeatureError(
            f"features {sorted(redundant)} cannot be estimated beside the other features on "
            f"the {train_rows} training rows ({listed}); remove them from the features"
        )


def build_feature_set(
    frame: pd.DataFrame, config: PipelineConfig, features_listed: bool = True
) -> FeatureSet:
    """Split, fit the preprocessor on the training part, and transform every part.

    features_listed says the user named the features; then a feature that is redundant as a
    whole is refused (AliasedFeatureError) rather than silently dropped, since the request
    itself cannot be met. Single aliased design columns (a category level that always
    coincides with another column's) are dropped either way.
    """
    parts = split_data(frame, config.split)
    preprocessor = fit_preprocessor(parts.train, config.data, config.features)
    if features_listed:
        refuse_redundant_features(preprocessor, len(parts.train))
    training = TrainingData(
        x_train=preprocessor.transform(parts.train),
        y_train=preprocessor.transform_target(parts.train[config.data.target]),
        x_val=preprocessor.transform(parts.validation),
        y_val=preprocessor.transform_target(parts.validation[config.data.target]),
    )
    y_test = parts.test[config.data.target].astype("float64").to_numpy()
    x_test = preprocessor.transform(parts.test)
    return FeatureSet(preprocessor, training, x_test, y_test, parts, config)


@task(name="build-features", cache_policy=NO_CACHE)  # hashing whole frames costs more than it saves
def build_features(
    frame: pd.DataFrame, config: PipelineConfig, features_listed: bool = True
) -> FeatureSet:
    """Split the data and fit scaling and encoding on the training part."""
    feature_set = build_feature_set(frame, config, features_listed)
    check_finite_features(feature_set)
    log_features(feature_set)
    return feature_set


class _Designed(NamedTuple):
    """The design pass's partial: scratch files written, rows counted, the test rows kept."""

    train_files: tuple[str, ...]
    validation_files: tuple[str, ...]
    train_rows: int
    validation_rows: int
    test_rows: pd.DataFrame  # raw; at most split.max_held_out_rows in all


@dataclass(frozen=True)
class DesignFold:
    """Each chunk's training and validation rows scaled into design files the trainers read.

    Rows are written as [scaled design..., scaled target], one .npy per chunk and part, named
    by the chunk's first row; the test rows come back raw, for evaluation in memory.
    """

    prep: Preprocessor
    seed: int
    cuts: PartCuts
    run: RunPaths
    name: str = "design"
    columns: tuple[str, ...] | None = None  # the split hashes whole rows
    threads_help: bool = True

    def per_chunk(self, rows: pd.DataFrame) -> _Designed:
        labels = assign_parts(row_positions(rows, self.seed), self.cuts)
        files: dict[int, tuple[str, ...]] = {}
        for part, name in ((TRAIN, "train"), (VALIDATION, "validation")):
            block = design_block(rows[labels == part], self.prep)
            path = self.run.design_chunk(name, int(rows.index[0])) if len(block) else None
            files[part] = (str(storage.write_scratch_array(path, block)),) if path else ()
        test = rows[labels == TEST].reset_index(drop=True)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            bad = ~np.isfinite(self.prep.transform(test)).all(axis=0)
        refuse_non_finite(self.prep.feature_names, bad)  # as check_finite_features does
        counts = (int((labels == TRAIN).sum()), int((labels == VALIDATION).sum()))
        return _Designed(files[TRAIN], files[VALIDATION], *counts, test)

    def combine(self, first: _Designed, second: _Designed) -> _Designed:
        return _Designed(
            first.train_files + second.train_files,
            first.validation_files + second.validation_files,
            first.train_rows + second.train_rows,
            first.validation_rows + second.validation_rows,
            pd.concat([first.test_rows, second.test_rows], ignore_index=True),
        )

    def finish(self, total: _Designed) -> _Designed:
        return total


def design_block(rows: pd.DataFrame, prep: Preprocessor) -> np.ndarray:
    """Rows as [scaled design..., scaled target], refused (by name) where not finite."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        design = prep.transform(rows)
        target = prep.transform_target(rows[prep.target])
    refuse_non_finite(prep.feature_names, ~np.isfinite(design).all(axis=0))
    if not np.isfinite(target).all():
        raise ValueError(
            f"target {prep.target!r} is not finite after scaling in "
            f"{int((~np.isfinite(target)).sum())} rows; check its values"
        )
    return np.column_stack([design, target])


def build_table_features(
    table: ChunkedTable,
    config: PipelineConfig,
    run: RunPaths,
    features_listed: bool,
    engine: Engine,
) -> FeatureSet:
    """Split, fit the preprocessor on the training rows, and write the design, by chunk.

    Two passes over the table, each a fold the engine runs: the preprocessor's statistics
    (tasks/preprocessing_fold.py), then the scaled design files; the test rows come back raw.
    """
    data, cuts, seed = config.data, part_cuts(config.split, table.rows), config.split.seed
    prep = fit_preprocessor_by(
        lambda fold: engine.fold(fold, table), data, config.features, PartRows(seed, cuts, TRAIN)
    )
    refuse_overflowed_scaling(prep)
    designed = engine.fold(DesignFold(prep, seed, cuts, run), table)
    if features_listed:
        refuse_redundant_features(prep, designed.train_rows)
    design = DesignFiles(
        train_files=designed.train_files,
        validation_files=designed.validation_files,
        train_rows=designed.train_rows,
        validation_rows=designed.validation_rows,
        features=len(prep.feature_names),
    )
    test = designed.test_rows
    empty = test.iloc[:0]
    y_test = test[data.target].astype("float64").to_numpy()
    split = DataSplit(empty, empty.copy(), test)
    feature_set = FeatureSet(prep, design, prep.transform(test), y_test, split, config)
    log_features(feature_set)
    return feature_set


def log_features(feature_set: FeatureSet) -> None:
    """The dropped design columns (one line when many), then the parts' sizes."""
    dropped = feature_set.preprocessor.dropped_columns
    if len(dropped) > NAMES_QUOTED:  # a wide file: one line, not one per column
        get_run_logger().warning(
            "features: dropped %s design columns, their coefficients cannot be estimated "
            "(each one's reason is in the report)",
            summarize_names(list(dropped)),
        )
    else:
        for column, why in dropped.items():
            get_run_logger().warning(
                "features: dropped design column %r, its coefficient cannot be estimated: %s",
                column,
                why,
            )
    sizes = feature_set.part_sizes()
    get_run_logger().info(
        "features: %d design columns; %d train / %d validation / %d test rows%s",
        feature_set.width,
        sizes["train"],
        sizes["validation"],
        sizes["test"],
        " (training and validation rows on disk)" if feature_set.on_disk else "",
    )


def refuse_overflowed_scaling(prep: Preprocessor) -> None:
    """Refuse a target or feature whose mean or spread overflowed float64, naming it."""
    if not (math.isfinite(prep.target_mean) and math.isfinite(prep.target_scale)):
        raise ValueError(
            f"target {prep.target!r} cannot be scaled (mean {prep.target_mean:g}, spread "
            f"{prep.target_scale:g}): its values are too large; check them for unit errors"
        )
    stats = np.vstack([np.asarray(prep.means), np.asarray(prep.scales)])
    refuse_non_finite(prep.feature_names, ~np.isfinite(stats).all(axis=0))


def check_finite_features(feature_set: FeatureSet) -> None:
    """Refuse scaling that overflowed (a spread too large for float64), naming the columns."""
    prep = feature_set.preprocessor
    refuse_overflowed_scaling(prep)
    blocks = (feature_set.training.x_train, feature_set.training.x_val, feature_set.x_test)
    bad = np.zeros(len(prep.feature_names), dtype=bool)
    for block in blocks:
        if block.size:
            bad |= ~np.isfinite(block).all(axis=0)
    refuse_non_finite(prep.feature_names, bad)
