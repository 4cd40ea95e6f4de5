"""The saved-model format's preprocessing: raw rows in, the scaled design matrix out.

It is plain data (JSON, `preprocessing.json` beside the models), so a saved model scores new rows
without the training run, without Prefect, and without unpickling anything. Fitting it is a stage
(`tasks/features.py`); using it belongs here, in the ground that serving needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

MISSING_LEVEL = "<missing>"
MEDIAN, MEAN = "median", "mean"  # what a log-target prediction estimates
PREPROCESSOR_FORMAT = 1


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
    # Design columns left out because the training rows could not tell them from the others
    # (aliased: a linear combination of earlier columns), with the reason. Absent from files
    # written before this existed, hence the default.
    dropped_columns: dict[str, str] = field(default_factory=dict)
    # Each numeric feature's [min, max] over the training rows (missing cells as imputed):
    # scoring flags rows far beyond them (houseprice/inputs.py). None in older files ({} is a
    # model without numeric features).
    training_ranges: dict[str, list[float]] | None = None
    # With a log target, exp(predicted log price) estimates the median price; "mean" multiplies
    # it by Duan's smearing factor, mean(exp(residual)) over the training rows, to estimate the
    # mean (features.log_target_estimate). Older files: the median, as they always gave.
    log_target_estimate: str = MEDIAN
    smearing_factor: float = 1.0

    @property
    def price_offset(self) -> float:
        """What inverse_target adds to the unscaled target before exp: the target's mean, plus
        log(smearing factor) when the mean is estimated, since exp(v + log s) = s·exp(v).

        Exports compute the price with it too, so every scorer gives the same estimate.
        """
        if self.log_target and self.log_target_estimate == MEAN:
            return self.target_mean + float(np.log(self.smearing_factor))
        return self.target_mean

    @property
    def estimate(self) -> str:
        """What a prediction estimates: 'mean', or 'median' for exp of a predicted log price."""
        return self.log_target_estimate if self.log_target else MEAN

    @property
    def encoded_names(self) -> list[str]:
        """Every encoded column: numeric columns, then 'column=level' indicators."""
        names = list(self.numeric_features)
        for column in self.categorical_features:
            names += [f"{column}={level}" for level in self.levels[column]]
        return names

    @property
    def feature_names(self) -> list[str]:
        """Design-matrix column names: the encoded columns less the dropped ones."""
        return [name for name in self.encoded_names if name not in self.dropped_columns]

    def with_dropped_restored(self, weights: np.ndarray) -> tuple[Preprocessor, np.ndarray]:
        """The same model over every encoded column: dropped ones back, with weight 0.

        Exports compute every encoded column in one fixed layout; a dropped column given mean
        0, scale 1 and weight 0 there leaves every price unchanged.
        """
        if not self.dropped_columns:
            return self, np.asarray(weights, dtype="float64")
        kept = iter(zip(self.means, self.scales, np.asarray(weights, dtype="float64"), strict=True))
        means, scales, full = [], [], []
        for name in self.encoded_names:
            mean, scale, weight = (0.0, 1.0, 0.0) if name in self.dropped_columns else next(kept)
            means.append(float(mean))
            scales.append(float(scale))
            full.append(float(weight))
        restored = replace(self, means=means, scales=scales, dropped_columns={})
        return restored, np.asarray(full)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Impute and one-hot encode, before scaling; shape (rows, design columns)."""
        blocks = [
            frame[column].astype("float64").fillna(self.medians[column]).to_numpy()[:, None]
            for column in self.numeric_features
        ]
        for column in self.categorical_features:
            values = category_strings(frame[column])
            indicators = [values == level for level in self.levels[column]]
            # Built as (rows, levels) explicitly: a reshape cannot infer it from zero rows.
            block = np.zeros((len(frame), len(indicators)))
            for index, indicator in enumerate(indicators):
                block[:, index] = indicator
            blocks.append(block)
        if not blocks:
            return np.empty((len(frame), 0))
        encoded = np.hstack([block.astype("float64") for block in blocks])
        if not self.dropped_columns:
            return encoded
        keep = [name not in self.dropped_columns for name in self.encoded_names]
        return encoded[:, keep]

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
        values = np.asarray(scaled, dtype="float64") * self.target_scale + self.price_offset
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


def numeric_ranges(names: list[str], low: np.ndarray, high: np.ndarray) -> dict[str, list[float]]:
    """{column: [min, max]} for the numeric columns, from per-encoded-column minima and maxima."""
    return {name: [float(low[i]), float(high[i])] for i, name in enumerate(names)}


def safe_scale(std: float) -> float:
    """A constant column keeps scale 1 rather than dividing by zero."""
    return float(std) if std > 1e-12 else 1.0


def refuse_non_finite(names: list[str], bad: np.ndarray) -> None:
    """Raise ValueError naming the design columns flagged bad (not finite after scaling)."""
    if bad.any():
        columns = [names[i] for i in np.flatnonzero(bad)]
        raise ValueError(
            f"features {columns[:5]} are not finite after scaling: their values are too large "
            "or infinite; check them for unit errors"
        )


def order_levels(counts: Mapping[str, int]) -> tuple[str, list[str]]:
    """The reference level (the most frequent, ties by name, so deterministic) and the others.

    The others are sorted by name: each becomes a one-hot design column.
    """
    ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    return ordered[0][0], sorted(level for level, _ in ordered[1:])
