"""Split and features: a deterministic split, then a preprocessor fitted on the training part only.

The preprocessor is plain data (JSON), saved beside the models so a model can score new rows
later without the training run, and without unpickling anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice.config import DataConfig, FeatureConfig, PipelineConfig, SplitConfig
from tasks.trainers.common import TrainingData

MISSING_LEVEL = "<missing>"
PREPROCESSOR_FORMAT = 1


class DataSplit(NamedTuple):
    """Row subsets of one frame; together they hold every row exactly once."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def split_data(frame: pd.DataFrame, split: SplitConfig) -> DataSplit:
    """Split rows by a seeded hash of their content: same data and seed, same split.

    A row's part depends on its own content only (hash below test_fraction → test, and so on),
    so a row stays in its part when the file is reordered or grows: a champion is never scored
    on rows it trained on, and duplicated rows never straddle train and test. On tiny data,
    where a part could come out empty, the parts are cut by hash rank instead.
    """
    if len(frame) < 3:
        raise ValueError(f"need at least 3 rows to split, got {len(frame)}")
    hash_key = f"{split.seed:016d}"[-16:]  # pandas wants exactly 16 characters
    row_hashes = pd.util.hash_pandas_object(
        _comparable_values(frame), index=False, hash_key=hash_key
    ).to_numpy()
    position = row_hashes / np.float64(2**64)  # uniform in [0, 1)
    test_cut = split.test_fraction
    val_cut = test_cut + split.validation_fraction
    parts = [
        position < test_cut,
        (test_cut <= position) & (position < val_cut),
        val_cut <= position,
    ]
    if min(part.sum() for part in parts) == 0:
        ranks = np.empty(len(frame), dtype=int)
        ranks[np.argsort(position, kind="stable")] = np.arange(len(frame))
        n_test = max(1, round(len(frame) * split.test_fraction))
        n_val_end = n_test + max(1, round(len(frame) * split.validation_fraction))
        parts = [ranks < n_test, (ranks >= n_test) & (ranks < n_val_end), ranks >= n_val_end]
    test, val, train = (frame[part].reset_index(drop=True) for part in parts)
    return DataSplit(train, val, test)


def _comparable_values(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with dtype differences erased: numbers as float64, everything else as text.

    A merge that turns an int column into floats (one new row with a gap or a decimal) must
    not change which part a row hashes to.
    """
    columns = {}
    for name, values in frame.items():
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        columns[name] = values.astype("float64") if numeric else values.astype("object").astype(str)
    return pd.DataFrame(columns, index=frame.index)


@dataclass
class Preprocessor:
    """Turns raw rows into the scaled design matrix, and the target into the scaled target.

    Categorical features are one-hot encoded without their most frequent training level, which
    is the reference: a category never seen in training scores as that reference level.
    """

    target: str
    numeric_features: list[str]
    categorical_features: list[str]
    medians: dict[str, float]  # imputation values for missing numeric inputs
    levels: dict[str, list[str]]  # one design column per level listed here
    reference_levels: dict[str, str]
    means: list[float]  # per design column
    scales: list[float]
    log_target: bool
    target_mean: float
    target_scale: float

    @property
    def feature_names(self) -> list[str]:
        """Design-matrix column names: numeric columns, then 'column=level' indicators."""
        names = list(self.numeric_features)
        for column in self.categorical_features:
            names += [f"{column}={level}" for level in self.levels[column]]
        return names

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Impute and one-hot encode, before scaling; shape (rows, design columns)."""
        blocks = [
            frame[column].astype("float64").fillna(self.medians[column]).to_numpy()[:, None]
            for column in self.numeric_features
        ]
        for column in self.categorical_features:
            values = category_strings(frame[column])
            blocks.append(np.stack([values == level for level in self.levels[column]], axis=1))
        if not blocks:
            return np.empty((len(frame), 0))
        return np.hstack([block.astype("float64").reshape(len(frame), -1) for block in blocks])

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Scaled design matrix (rows, design columns), float64."""
        return (self.encode(frame) - np.asarray(self.means)) / np.asarray(self.scales)

    def transform_target(self, target: pd.Series | np.ndarray) -> np.ndarray:
        """Price → the scaled space the trainers fit."""
        values = np.asarray(target, dtype="float64")
        values = np.log(values) if self.log_target else values
        return (values - self.target_mean) / self.target_scale

    def inverse_target(self, scaled: np.ndarray) -> np.ndarray:
        """Scaled target → price units."""
        values = np.asarray(scaled, dtype="float64") * self.target_scale + self.target_mean
        return np.exp(values) if self.log_target else values

    def unseen_categories(self, frame: pd.DataFrame) -> dict[str, list[str]]:
        """Categorical values absent from training (scored as the reference level)."""
        unseen = {}
        for column in self.categorical_features:
            known = {*self.levels[column], self.reference_levels[column]}
            values = set(category_strings(frame[column]).tolist()) - known
            if values:
                unseen[column] = sorted(values)
        return unseen

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, with a format number for future migrations."""
        return {"format": PREPROCESSOR_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> Preprocessor:
        """Rebuild from to_dict() output; refuses unknown formats."""
        payload = dict(payload)
        version = payload.pop("format", None)
        if version != PREPROCESSOR_FORMAT:
            raise ValueError(f"unsupported preprocessing format {version!r}")
        return cls(**payload)


def category_strings(column: pd.Series) -> np.ndarray:
    """Categorical values as strings, with missing values as their own level.

    Whole numbers in a float column (a zip code column with a gap reads as 50010.0) are written
    as integers, so they match the same codes read from a column without gaps.
    """
    if pd.api.types.is_float_dtype(column):
        values = column.dropna()
        if np.isfinite(values).all() and (values == np.round(values)).all():
            column = column.astype("Int64")
    return column.astype("object").where(column.notna(), MISSING_LEVEL).astype(str).to_numpy()


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
        # Most frequent first, ties by name, so the reference level is deterministic.
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        reference_levels[column] = ordered[0][0]
        levels[column] = sorted(level for level, _ in ordered[1:])
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
        target_scale=_safe_scale(target.std()) if features.standardize else 1.0,
    )
    encoded = preprocessor.encode(train)
    width = encoded.shape[1]
    preprocessor.means = encoded.mean(axis=0).tolist() if features.standardize else [0.0] * width
    preprocessor.scales = (
        [_safe_scale(s) for s in encoded.std(axis=0)] if features.standardize else [1.0] * width
    )
    return preprocessor


def _safe_scale(std: float) -> float:
    """A constant column keeps scale 1 rather than dividing by zero."""
    return float(std) if std > 1e-12 else 1.0


class FeatureSet(NamedTuple):
    """Everything training and evaluation need from the split data."""

    preprocessor: Preprocessor
    training: TrainingData
    x_test: np.ndarray
    y_test: np.ndarray  # price units, not scaled
    split: DataSplit


def build_feature_set(frame: pd.DataFrame, config: PipelineConfig) -> FeatureSet:
    """Split, fit the preprocessor on the training part, and transform every part."""
    parts = split_data(frame, config.split)
    preprocessor = fit_preprocessor(parts.train, config.data, config.features)
    training = TrainingData(
        x_train=preprocessor.transform(parts.train),
        y_train=preprocessor.transform_target(parts.train[config.data.target]),
        x_val=preprocessor.transform(parts.validation),
        y_val=preprocessor.transform_target(parts.validation[config.data.target]),
    )
    y_test = parts.test[config.data.target].astype("float64").to_numpy()
    return FeatureSet(preprocessor, training, preprocessor.transform(parts.test), y_test, parts)


@task(name="build-features", cache_policy=NO_CACHE)  # hashing whole frames costs more than it saves
def build_features(frame: pd.DataFrame, config: PipelineConfig) -> FeatureSet:
    """Split the data and fit scaling and encoding on the training part."""
    feature_set = build_feature_set(frame, config)
    get_run_logger().info(
        "features: %d design columns; %d train / %d validation / %d test rows",
        feature_set.training.x_train.shape[1],
        len(feature_set.split.train),
        len(feature_set.split.validation),
        len(feature_set.split.test),
    )
    return feature_set
