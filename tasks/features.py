"""Split and features: a deterministic split, then a preprocessor fitted on the training part only.

The split itself lives in tasks/split.py (shared with the streamed path); split_data and
DataSplit are re-exported here for the modules that import them from features.

The preprocessor is plain data (JSON), saved beside the models so a model can score new rows
later without the training run, and without unpickling anything.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice.columns import NAMES_QUOTED, summarize_names
from houseprice.config import DataConfig, FeatureConfig, PipelineConfig
from houseprice.errors import InputError
from houseprice.preprocessing import (
    Preprocessor,
    category_strings,
    order_levels,
    refuse_non_finite,
    safe_scale,
)
from houseprice.tasks.split import DataSplit, split_data
from houseprice.tasks.statistics import find_aliased_columns
from houseprice.tasks.trainers.common import TrainingData
from houseprice.tasks.trainers.design import DesignFiles


def fit_preprocessor(
    train: pd.DataFrame, data: DataConfig, features: FeatureConfig
) -> Preprocessor:
    """Learn imputation, encoding and scaling from the training rows only."""
    medians = {}
    for column in data.numeric_features:
        median = train[column].astype("float64").median()
        medians[column] = 0.0 if np.isnan(median) else float(median)
    levels, reference_levels = {}, {}
    for column in data.categorical_features:
        counts = pd.Series(category_strings(train[column])).value_counts()
        reference_levels[column], levels[column] = order_levels(counts.to_dict())
    target = train[data.target].astype("float64").to_numpy()
    if features.log_target:
        target = np.log(target)
    preprocessor = Preprocessor(
        target=data.target,
        numeric_features=list(data.numeric_features),
        categorical_features=list(data.categorical_features),
        medians=medians,
        levels=levels,
        reference_levels=reference_levels,
        means=[],
        scales=[],
        log_target=features.log_target,
        target_mean=float(target.mean()) if features.standardize else 0.0,
        target_scale=safe_scale(target.std()) if features.standardize else 1.0,
    )
    encoded = preprocessor.encode(train)
    names = preprocessor.encoded_names
    # A spread past float64 (1e200 squared) must be named as such before the aliasing check
    # below reads the overflowed column as a constant.
    with np.errstate(over="ignore", invalid="ignore"):
        refuse_non_finite(names, ~np.isfinite(encoded.mean(axis=0) + encoded.std(axis=0)))
    # Aliased columns have no identifiable coefficient: leave them out of the design, so every
    # fit (and every coefficient reported) is unique rather than one of many equally good ones.
    preprocessor.dropped_columns = find_aliased_columns(encoded, names)
    encoded = encoded[:, [name not in preprocessor.dropped_columns for name in names]]
    width = encoded.shape[1]
    preprocessor.means = encoded.mean(axis=0).tolist() if features.standardize else [0.0] * width
    preprocessor.scales = (
        [safe_scale(s) for s in encoded.std(axis=0)] if features.standardize else [1.0] * width
    )
    return preprocessor


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


def refit_preprocessor(rows: pd.DataFrame, feature_set: FeatureSet) -> Preprocessor:
    """A preprocessor fitted as feature_set's was, on other rows (a cross-validation fold)."""
    config = feature_set.config or PipelineConfig()
    prep = feature_set.preprocessor
    data = config.data.model_copy(
        update={
            "target": prep.target,
            "numeric_features": list(prep.numeric_features),
            "categorical_features": list(prep.categorical_features),
            "features": [],
        }
    )
    features = config.features.model_copy(update={"log_target": prep.log_target})
    return fit_preprocessor(rows, data, features)


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
