"""Pass A of the streamed features stage: what the medians and the one-hot levels need.

Medians. An exact median needs every value at once, so pass A keeps a sample of each numeric
column's non-missing training values: those of the `sample_size` rows with the smallest row
hashes (a bottom-k sample). A row's hash depends on its content only, so the sample (and the
median) is the same whatever the chunking and the order of combining, and a column with at most
sample_size values keeps them all: its median is exactly fit_preprocessor's. Past that, the
sample is a uniform one of k = sample_size values (as uniform as the hash), and its median is the
training values' q-quantile with |q − 1/2| ≤ sqrt(ln(2/δ) / (2k)) with probability 1 − δ
(Dvoretzky–Kiefer–Wolfowitz; sampling without replacement only tightens it): for the default
k = 50,000, between the 48.8th and 51.2nd percentiles with probability 1 − 10⁻⁶ (typically
within 0.2 points: 0.5/√k). Rows repeated whole share a hash and enter the sample together,
which widens the bound only when a few rows repeat by the thousands. The median imputes missing
values and centres pass B's sums; this is plenty for both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import reduce

import numpy as np
import pandas as pd

from houseprice.config import DataConfig, FeatureConfig
from houseprice.preprocessing import Preprocessor, category_strings, order_levels
from houseprice.tasks.split import TEST, TRAIN, VALIDATION

# Values kept per numeric column for its median (see the module docstring for the error bound);
# 16 bytes each, so a chunk's profile is at most 0.8 MB per numeric column.
MEDIAN_SAMPLE_SIZE = 50_000
# Any fixed 16-character key; a different one from the split's, so the sample is independent of
# the split's hash.
_SAMPLE_HASH_KEY = "median-sample-01"


@dataclass
class ValueSample:
    """A bottom-k sample of one column's non-missing training values, by row hash."""

    keys: np.ndarray  # uint64: the smallest row hashes seen
    values: np.ndarray  # float64: the column's value in those rows
    seen: int  # non-missing values offered, sampled or not

    def merged(self, other: ValueSample, size: int) -> ValueSample:
        """The sample of both sets of rows."""
        keys = np.concatenate([self.keys, other.keys])
        values = np.concatenate([self.values, other.values])
        return _bottom(keys, values, self.seen + other.seen, size)


@dataclass
class ChunkProfile:
    """Pass A's result for some rows: what the medians and the one-hot levels need."""

    part_rows: tuple[int, ...]  # rows labelled TRAIN, VALIDATION, TEST
    category_counts: dict[str, dict[str, int]]  # training rows per level, per categorical feature
    samples: dict[str, ValueSample]  # per numeric feature, and the target (for pass B's centre)
    sample_size: int

    @property
    def train_rows(self) -> int:
        """Rows labelled TRAIN."""
        return self.part_rows[TRAIN]

    @property
    def exact_medians(self) -> bool:
        """Whether every sample holds all of its column's values (medians are then exact)."""
        return all(len(sample.values) == sample.seen for sample in self.samples.values())


def profile_chunk(
    frame: pd.DataFrame, labels: np.ndarray, data: DataConfig, sample_size: int = MEDIAN_SAMPLE_SIZE
) -> ChunkProfile:
    """Pass A on one chunk: rows per part, training category counts, median samples."""
    labels = checked_labels(frame, labels)
    part_rows = tuple(int(np.count_nonzero(labels == part)) for part in (TRAIN, VALIDATION, TEST))
    train = frame[labels == TRAIN]
    counts = {
        column: {
            str(level): int(count)
            for level, count in pd.Series(category_strings(train[column])).value_counts().items()
        }
        for column in data.categorical_features
    }
    keys = _row_keys(train, data)
    samples = {}
    for column in dict.fromkeys([*data.numeric_features, data.target]):
        values = train[column].astype("float64").to_numpy()
        present = ~np.isnan(values)
        samples[column] = _bottom(keys[present], values[present], int(present.sum()), sample_size)
    return ChunkProfile(part_rows, counts, samples, sample_size)


def combine_profiles(profiles: Iterable[ChunkProfile]) -> ChunkProfile:
    """The profile of all the chunks (any order, any grouping: the same result)."""
    return reduce(_merge_profiles, profiles)


def _merge_profiles(first: ChunkProfile, second: ChunkProfile) -> ChunkProfile:
    size = min(first.sample_size, second.sample_size)
    counts = {}
    for column, levels in first.category_counts.items():
        merged = dict(levels)
        for level, count in second.category_counts[column].items():
            merged[level] = merged.get(level, 0) + count
        counts[column] = merged
    samples = {
        column: sample.merged(second.samples[column], size)
        for column, sample in first.samples.items()
    }
    part_rows = tuple(a + b for a, b in zip(first.part_rows, second.part_rows, strict=True))
    return ChunkProfile(part_rows, counts, samples, size)


def start_preprocessor(
    profile: ChunkProfile, data: DataConfig, features: FeatureConfig
) -> Preprocessor:
    """Medians and one-hot levels from pass A; means and scales wait for finish_preprocessor.

    Its target_mean is provisional: the training target's sample median (log if log_target),
    the centre pass B sums the target around.
    """
    if profile.train_rows == 0:
        raise ValueError("no training rows to fit the preprocessor on")
    medians = {column: _median(profile.samples[column].values) for column in data.numeric_features}
    levels, reference_levels = {}, {}
    for column in data.categorical_features:
        counts = profile.category_counts[column]
        reference_levels[column], levels[column] = order_levels(counts)
    target = profile.samples[data.target].values
    with np.errstate(divide="ignore", invalid="ignore"):
        target_centre = _median(np.log(target) if features.log_target else target)
    return Preprocessor(
        target=data.target,
        numeric_features=list(data.numeric_features),
        categorical_features=list(data.categorical_features),
        medians=medians,
        levels=levels,
        reference_levels=reference_levels,
        means=[],
        scales=[],
        log_target=features.log_target,
        target_mean=target_centre if np.isfinite(target_centre) else 0.0,
        target_scale=1.0,
    )


def checked_labels(frame: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
    """The labels as an array, refused unless there is one per row of the frame."""
    labels = np.asarray(labels)
    if labels.shape != (len(frame),):
        raise ValueError(f"need one label per row: {len(frame)} rows, labels {labels.shape}")
    return labels


def _row_keys(rows: pd.DataFrame, data: DataConfig) -> np.ndarray:
    """A hash per row of its model columns, with dtypes erased as split_data erases them.

    Chunks of one file may read a column as int64 in one and float64 (with gaps) in another;
    the same row must hash alike in both, whatever its chunk.
    """
    columns = {}
    for name in dict.fromkeys([data.target, *data.numeric_features, *data.categorical_features]):
        values = rows[name]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        columns[name] = values.astype("float64") if numeric else values.astype("object").astype(str)
    comparable = pd.DataFrame(columns, index=rows.index)
    hashes = pd.util.hash_pandas_object(comparable, index=False, hash_key=_SAMPLE_HASH_KEY)
    return hashes.to_numpy(dtype=np.uint64)


def _bottom(keys: np.ndarray, values: np.ndarray, seen: int, size: int) -> ValueSample:
    """The entries with the `size` smallest keys.

    Equal keys come from equal rows, so which of them is kept never changes the values kept.
    """
    if len(keys) > size:
        chosen = np.argpartition(keys, size - 1)[:size]
        keys, values = keys[chosen], values[chosen]
    return ValueSample(keys, values, seen)


def _median(values: np.ndarray) -> float:
    """The median, 0.0 for no values (as fit_preprocessor imputes an all-missing column)."""
    return float(np.median(values)) if len(values) else 0.0
