"""Drift: how far new data has moved from the rows the champion was trained on, per feature.

Both sides are profiles (houseprice/drift_profile.py): the champion's training rows, stored
with its run, and every new row, folded over chunks (tasks/drift_profiles.py). The population
stability index (PSI) compares the share of rows in each bin: quantile bins of the reference
for numeric features, levels for categorical ones (the bins - 1 most frequent, the rest pooled),
and missing values as a bin of their own. PSI = Σ (new - ref) · ln(new / ref); below 0.1 is
stable, above 0.25 a major shift. Numeric features also get the two-sample Kolmogorov–Smirnov
statistic (largest gap between the two empirical CDFs, 0 to 1).

A feature is compared only when both profiles have it with the same kind (numeric or not, read
off the data as ingest does) and scored the same way; the others are listed as not comparable,
with the reason. Drift is advisory, so no single feature can stop the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice.columns import summarize_names
from houseprice.config import DataConfig, DriftConfig
from houseprice.drift_profile import (
    CATEGORICAL,
    NUMERIC,
    CategoricalProfile,
    DriftProfile,
    FeatureProfile,
    NumericProfile,
    Unscored,
    count_profile,
)
from houseprice.folds import fold_frames
from houseprice.tasks.drift_profiles import DriftProfileFold, ReferenceProfile, profiled_features

# An empty bin would make ln(new / ref) infinite; a floor this small still scores a level that
# vanished (or appeared) as a large shift (about 0.1 · ln(0.1 / 1e-4) ≈ 0.7 for a 10% bin).
EMPTY_SHARE = 1e-4


def _psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI from two profiles' counts per bin (each over all its rows, missing ones included)."""
    reference = np.maximum(reference_counts / max(reference_counts.sum(), 1), EMPTY_SHARE)
    current = np.maximum(current_counts / max(current_counts.sum(), 1), EMPTY_SHARE)
    return float(np.sum((current - reference) * np.log(current / reference)))


def quantile_edges(reference: NumericProfile, bins: int) -> np.ndarray:
    """The inner quantile edges of the reference's present values, as np.quantile computes them.

    Linear interpolation between the values at the two ranks around (n - 1)·q, in numpy's own
    arithmetic, so an exact profile gives np.quantile's edges bit for bit. Repeated edges (a
    discrete column) merge into one.
    """
    count = reference.present
    if not count:
        return np.empty(0)
    virtual = (count - 1) * np.linspace(0, 1, bins + 1)[1:-1]
    top = virtual >= count - 1
    previous = np.where(top, count - 1, np.floor(virtual)).astype("int64")
    following = np.where(top, count - 1, previous + 1)
    gamma = virtual - previous
    low, high = reference.value_at_ranks(previous), reference.value_at_ranks(following)
    difference = high - low
    edges = np.where(gamma >= 0.5, high - difference * (1 - gamma), low + difference * gamma)
    return np.unique(edges)


def _numeric_counts(profile: NumericProfile, edges: np.ndarray) -> np.ndarray:
    """Rows per bin: between consecutive edges (a value on an edge goes above it), then missing."""
    bounds = np.concatenate([[0], profile.count_below(edges), [profile.present]])
    return np.append(np.diff(bounds), profile.missing).astype("float64")


def profile_numeric_psi(reference: NumericProfile, current: NumericProfile, bins: int) -> float:
    """PSI over quantile bins of the reference, with missing values as one more bin."""
    edges = quantile_edges(reference, bins)
    return _psi(_numeric_counts(reference, edges), _numeric_counts(current, edges))


def profile_categorical_psi(
    reference: CategoricalProfile, current: CategoricalProfile, bins: int
) -> float:
    """PSI over the reference's bins - 1 most frequent levels; others (new ones too) pooled."""
    kept = list(reference.levels)[: bins - 1]

    def counts(profile: CategoricalProfile) -> np.ndarray:
        levels = [profile.levels.get(level, 0) for level in kept]
        other = profile.rows - profile.missing - sum(levels)
        return np.array([*levels, other, profile.missing], dtype="float64")

    return _psi(counts(reference), counts(current))


def profile_ks(reference: NumericProfile, current: NumericProfile) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: the largest gap between the two CDFs.

    Exact when both profiles are; a stored profile thinned to STORED_POINTS points (or counted
    in ranges) is compared at its points, which is off by at most the rows between two points.
    """
    if not reference.present or not current.present:
        return float("nan")
    pooled = np.union1d(reference.values, current.values)
    gaps = (
        reference.count_at_or_below(pooled) / reference.present
        - current.count_at_or_below(pooled) / current.present
    )
    return float(np.max(np.abs(gaps)))


def _one_feature(values: object, scored_as: str) -> FeatureProfile:
    """The profile of one array or Series, as the fold makes it from a single chunk."""
    counts = count_profile(pd.DataFrame({"x": pd.Series(values)}), (("x", scored_as),))
    feature = counts.profile().features["x"]
    if isinstance(feature, Unscored):
        raise ValueError(feature.problem)
    return feature


def numeric_psi(reference: np.ndarray, current: np.ndarray, bins: int) -> float:
    """profile_numeric_psi of two arrays (one chunk each)."""
    return profile_numeric_psi(
        _one_feature(np.asarray(reference, "float64"), NUMERIC),
        _one_feature(np.asarray(current, "float64"), NUMERIC),
        bins,
    )


def categorical_psi(reference: pd.Series, current: pd.Series, bins: int) -> float:
    """profile_categorical_psi of two Series (one chunk each)."""
    return profile_categorical_psi(
        _one_feature(reference, CATEGORICAL), _one_feature(current, CATEGORICAL), bins
    )


def ks_statistic(reference: np.ndarray, current: np.ndarray) -> float:
    """profile_ks of two arrays (one chunk each)."""
    return profile_ks(
        _one_feature(np.asarray(reference, "float64"), NUMERIC),
        _one_feature(np.asarray(current, "float64"), NUMERIC),
    )


def min_rows_for_psi(bins: int, max_psi: float) -> int:
    """Fewest new rows for which sampling noise alone stays well below the PSI threshold.

    With k bins and no real shift, PSI averages about (k - 1) · (1/n_ref + 1/n_new), so a
    handful of rows always looks drifted. At this size noise averages about half the threshold
    and seldom crosses it.
    """
    return math.ceil(2 * bins / max_psi)


@dataclass
class DriftReport:
    """Per-feature drift of the new data from the champion's training rows."""

    checked: bool
    threshold: float
    note: str
    scores: dict[str, float] = field(default_factory=dict)  # PSI per feature
    ks: dict[str, float] = field(default_factory=dict)  # numeric features only
    champion_run_id: str | None = None
    reference_rows: int = 0
    current_rows: int = 0
    not_comparable: dict[str, str] = field(default_factory=dict)  # feature → why not scored

    @property
    def drifted(self) -> list[str]:
        """Features whose PSI is above the threshold, largest first."""
        over = [name for name, score in self.scores.items() if score > self.threshold]
        return sorted(over, key=lambda name: -self.scores[name])

    def to_dict(self) -> dict[str, Any]:
        """The shape the report's drift section and the promotion gate read."""
        return {
            "threshold": self.threshold,
            "scores": self.scores,
            "drifted": self.drifted,
            "ks": self.ks,
            "checked": self.checked,
            "note": self.note,
            "champion_run_id": self.champion_run_id,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "not_comparable": self.not_comparable,
        }


def _not_comparable(column: str, reference: DriftProfile, current: DriftProfile) -> str | None:
    """Why a feature cannot be compared between the two profiles; None when it can."""
    for profile, rows in ((reference, "the champion's training rows"), (current, "the new rows")):
        if column not in profile.columns:
            return f"not in {rows}"
    if column not in reference.features:
        return "not one of the champion's features"
    then, now = reference.features[column], current.features[column]
    if then.kind != now.kind:
        return f"{then.kind} for the champion, {now.kind} now"
    for feature in (then, now):
        if isinstance(feature, Unscored):
            return feature.problem
    if type(then) is not type(now):
        return f"scored as {_scored_as(then)} for the champion, as {_scored_as(now)} now"
    return None


def _scored_as(feature: FeatureProfile) -> str:
    return NUMERIC if isinstance(feature, NumericProfile) else CATEGORICAL


def _score_feature(
    old: FeatureProfile, new: FeatureProfile, bins: int
) -> tuple[float, float | None]:
    """PSI, and KS for a numeric feature (None for a categorical one)."""
    if isinstance(old, NumericProfile) and isinstance(new, NumericProfile):
        return profile_numeric_psi(old, new, bins), profile_ks(old, new)
    assert isinstance(old, CategoricalProfile) and isinstance(new, CategoricalProfile)
    return profile_categorical_psi(old, new, bins), None


def compare_profiles(
    reference: DriftProfile, current: DriftProfile, data: DataConfig, settings: DriftConfig
) -> DriftReport:
    """PSI for every feature (and KS for numeric ones) of the current profile against reference."""
    needed = min_rows_for_psi(settings.bins, settings.max_psi)
    if current.rows < needed:
        note = f"not checked: {current.rows} new rows, fewer than the {needed} a PSI needs"
        return DriftReport(False, settings.max_psi, note, current_rows=current.rows)
    report = DriftReport(
        True, settings.max_psi, "", reference_rows=reference.rows, current_rows=current.rows
    )
    for column in [*data.numeric_features, *data.categorical_features]:
        reason = _not_comparable(column, reference, current)
        if reason is not None:
            report.not_comparable[column] = reason
            continue
        psi, ks = _score_feature(
            reference.features[column], current.features[column], settings.bins
        )
        report.scores[column] = psi
        if ks is not None:
            report.ks[column] = ks
    drifted = summarize_names(report.drifted) if report.drifted else "none"
    report.note = f"{current.rows} new rows against {reference.rows}; PSI above it: {drifted}"
    if report.not_comparable:
        report.note += f"; not comparable: {summarize_names(list(report.not_comparable))}"
    return report


def measure_drift(
    reference: pd.DataFrame, current: pd.DataFrame, data: DataConfig, settings: DriftConfig
) -> DriftReport:
    """compare_profiles of two frames, each profiled whole (one chunk)."""
    fold = DriftProfileFold(profiled_features(data))
    return compare_profiles(
        fold_frames(fold, [reference]), fold_frames(fold, [current]), data, settings
    )


def not_checked(settings: DriftConfig, why: object) -> DriftReport:
    """The report of a drift check that could not run, saying why."""
    return DriftReport(False, settings.max_psi, f"not checked: {why}")


@task(name="check-drift", cache_policy=NO_CACHE)
def check_drift(
    current: DriftProfile, reference: ReferenceProfile, data: DataConfig, settings: DriftConfig
) -> DriftReport:
    """Compare the new rows' profile with the champion's training profile, feature by feature."""
    log = get_run_logger()
    if reference.profile is None:
        log.info("drift: not checked: %s", reference.problem)
        return not_checked(settings, reference.problem)
    report = compare_profiles(reference.profile, current, data, settings)
    report.champion_run_id = reference.run_id
    log.info("drift vs champion %s (%s): %s", reference.run_id, reference.origin, report.note)
    by_reason: dict[str, list[str]] = {}
    for column, reason in report.not_comparable.items():
        by_reason.setdefault(reason, []).append(column)
    for reason, columns in by_reason.items():  # one line per reason, however wide the data
        log.warning(
            "drift: not compared with the champion's rows (%s), %s",
            reason,
            summarize_names(columns),
        )
    return report
