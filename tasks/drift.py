"""Drift: how far new data has moved from the rows the champion was trained on, per feature.

The population stability index (PSI) compares the share of rows in each bin: quantile bins of
the reference for numeric features, levels for categorical ones (the bins - 1 most frequent,
the rest pooled), and missing values as a bin of their own. PSI = Σ (new - ref) · ln(new / ref);
below 0.1 is stable, above 0.25 a major shift. Numeric features also get the two-sample
Kolmogorov–Smirnov statistic (largest gap between the two empirical CDFs, 0 to 1).

A feature is compared only when both frames have it with the same kind (numeric or not, read off
the data as ingest does); the others are listed as not comparable, with the reason. Drift is
advisory, so no single feature can stop the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice.champion import UNREADABLE, ChampionRun, read_training_snapshot
from houseprice.columns import summarize_names
from houseprice.config import DataConfig, DriftConfig, SplitConfig
from houseprice.preprocessing import MISSING_LEVEL, category_strings
from houseprice.tasks.features import split_data

# An empty bin would make ln(new / ref) infinite; a floor this small still scores a level that
# vanished (or appeared) as a large shift (about 0.1 · ln(0.1 / 1e-4) ≈ 0.7 for a 10% bin).
EMPTY_SHARE = 1e-4
OTHER_LEVEL = "<other>"


def _psi(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    reference = np.maximum(reference_shares, EMPTY_SHARE)
    current = np.maximum(current_shares, EMPTY_SHARE)
    return float(np.sum((current - reference) * np.log(current / reference)))


def _shares(codes: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(codes, minlength=size) / max(len(codes), 1)


def numeric_psi(reference: np.ndarray, current: np.ndarray, bins: int) -> float:
    """PSI over quantile bins of the reference, with missing values as one more bin."""
    reference, current = np.asarray(reference, "float64"), np.asarray(current, "float64")
    known = reference[~np.isnan(reference)]
    # Inner edges only; repeated quantiles (a discrete column) merge into one bin.
    edges = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1])) if known.size else []
    size = len(edges) + 2  # the bins between the edges, plus the missing bin

    def codes(values: np.ndarray) -> np.ndarray:
        found = np.searchsorted(edges, values, side="right")
        return np.where(np.isnan(values), size - 1, found)

    return _psi(_shares(codes(reference), size), _shares(codes(current), size))


def categorical_psi(reference: pd.Series, current: pd.Series, bins: int) -> float:
    """PSI over the reference's bins - 1 most frequent levels; others (new ones too) pooled."""
    # The levels the model's encoder sees: a zip code read as 50010.0 is level 50010.
    reference, current = (pd.Series(category_strings(values)) for values in (reference, current))
    kept = list(reference.value_counts().index[: bins - 1])
    categories = [*kept, OTHER_LEVEL, MISSING_LEVEL]

    def shares(values: pd.Series) -> np.ndarray:
        pooled = values.where(values.isin(kept) | (values == MISSING_LEVEL), OTHER_LEVEL)
        counts = pooled.value_counts().reindex(categories, fill_value=0).to_numpy()
        return counts / max(len(values), 1)

    return _psi(shares(reference), shares(current))


def ks_statistic(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: the largest gap between the empirical CDFs."""
    reference = np.sort(np.asarray(reference, "float64")[~np.isnan(reference)])
    current = np.sort(np.asarray(current, "float64")[~np.isnan(current)])
    if not reference.size or not current.size:
        return float("nan")
    pooled = np.concatenate([reference, current])
    gaps = (
        np.searchsorted(reference, pooled, side="right") / reference.size
        - np.searchsorted(current, pooled, side="right") / current.size
    )
    return float(np.max(np.abs(gaps)))


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


def _data_kind(values: pd.Series) -> str:
    """'numeric' or 'categorical', read off the dtype the way ingest types features."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    return "numeric" if numeric else "categorical"


def _not_comparable(column: str, reference: pd.DataFrame, current: pd.DataFrame) -> str | None:
    """Why a feature cannot be compared between the two frames; None when it can."""
    for frame, rows in ((reference, "the champion's training rows"), (current, "the new rows")):
        if column not in frame.columns:
            return f"not in {rows}"
    then, now = _data_kind(reference[column]), _data_kind(current[column])
    return None if then == now else f"{then} for the champion, {now} now"


def _score_feature(
    old: pd.Series, new: pd.Series, numeric: bool, bins: int
) -> tuple[float, float | None]:
    """PSI, and KS for a numeric feature (None for a categorical one)."""
    if not numeric:
        return categorical_psi(old, new, bins), None
    old, new = (values.astype("float64").to_numpy() for values in (old, new))
    return numeric_psi(old, new, bins), ks_statistic(old, new)


def measure_drift(
    reference: pd.DataFrame, current: pd.DataFrame, data: DataConfig, settings: DriftConfig
) -> DriftReport:
    """PSI for every feature (and KS for numeric ones) of current against reference."""
    needed = min_rows_for_psi(settings.bins, settings.max_psi)
    if len(current) < needed:
        note = f"not checked: {len(current)} new rows, fewer than the {needed} a PSI needs"
        return DriftReport(False, settings.max_psi, note, current_rows=len(current))
    report = DriftReport(
        True, settings.max_psi, "", reference_rows=len(reference), current_rows=len(current)
    )
    for column in [*data.numeric_features, *data.categorical_features]:
        reason = _not_comparable(column, reference, current)
        if reason is not None:
            report.not_comparable[column] = reason
            continue
        numeric = column in data.numeric_features
        try:
            psi, ks = _score_feature(reference[column], current[column], numeric, settings.bins)
        except Exception as error:  # advisory: one odd column must not stop the retrain
            report.not_comparable[column] = f"could not be scored: {error}"
            continue
        report.scores[column] = psi
        if ks is not None:
            report.ks[column] = ks
    drifted = summarize_names(report.drifted) if report.drifted else "none"
    report.note = f"{len(current)} new rows against {len(reference)}; PSI above it: {drifted}"
    if report.not_comparable:
        report.note += f"; not comparable: {summarize_names(list(report.not_comparable))}"
    return report


def champion_training_part(champion: ChampionRun, snapshot: pd.DataFrame) -> pd.DataFrame:
    """The rows the champion was fitted on: its snapshot, split with its own split settings."""
    if champion.basis is None:
        raise ValueError(champion.basis_problem)
    split = SplitConfig.model_validate(champion.basis.config["split"])
    return split_data(snapshot, split).train


def not_checked(settings: DriftConfig, why: object) -> DriftReport:
    """The report of a drift check that could not run, saying why."""
    return DriftReport(False, settings.max_psi, f"not checked: {why}")


def drift_from_champion(
    current: pd.DataFrame,
    champion: ChampionRun | None,
    snapshot: pd.DataFrame | None,
    data: DataConfig,
    settings: DriftConfig,
) -> DriftReport:
    """Drift of current from the champion's training part of snapshot (its run's stored rows).

    Not checked without a champion, or when its run's settings or rows cannot be read: that is
    no evidence of drift, so the gate goes on and the report says drift went unchecked.
    """
    if champion is None:
        return not_checked(settings, "no champion yet")
    if snapshot is None:
        return not_checked(settings, champion.basis_problem or "its training rows are unreadable")
    try:
        reference = champion_training_part(champion, snapshot)
    except UNREADABLE as error:
        return not_checked(settings, error)
    report = measure_drift(reference, current, data, settings)
    report.champion_run_id = champion.run_id
    return report


@task(name="check-drift", cache_policy=NO_CACHE)  # inputs are whole frames: never hash them
def check_drift(
    current: pd.DataFrame,
    data: DataConfig,
    settings: DriftConfig,
    champion: ChampionRun | None,
    data_dir: Path,
) -> DriftReport:
    """Compare the new rows with the champion's training rows, feature by feature."""
    log = get_run_logger()
    snapshot = None
    if champion is not None:
        try:
            snapshot = read_training_snapshot(champion, data_dir)
        except UNREADABLE as error:
            log.warning("drift: cannot load the champion's training rows: %s", error)
            return not_checked(settings, error)
    report = drift_from_champion(current, champion, snapshot, data, settings)
    if champion is None:
        log.info("drift: no champion yet, nothing to compare with")
    elif report.champion_run_id is None:  # its run's split settings could not be read
        log.warning("drift: cannot compare with the champion's training rows: %s", report.note)
    else:
        log.info("drift vs champion %s: %s", champion.run_id, report.note)
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
