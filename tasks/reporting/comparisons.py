"""The run against its champion, as a reader sees it: the promotion decision and the drift check.

Sentences and labelled tables built from the gate's figures and the drift report; no figure's
key (comparison.ci_low, challenger_test.rmse) ever reaches the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from houseprice.tasks.plots import model_label
from houseprice.tasks.reporting.text import Table, format_number

if TYPE_CHECKING:
    from houseprice.tasks.drift import DriftReport
    from houseprice.tasks.promote import PromotionDecision

# The gate's figure sets that hold metrics, and their column headings.
FIGURE_COLUMNS = {
    "challenger_test": "challenger (test rows)",
    "challenger_cross_validated": "challenger (cross-validated)",
    "champion_test": "champion (same test rows)",
}
MEASURES = (("RMSE", "rmse"), ("MAE", "mae"), ("R²", "r2"), ("MAPE %", "mape"))
# The usual reading of a PSI (drift.py's docstring): below 0.1 stable, above 0.25 a major shift.
PSI_BANDS = ((0.1, "stable"), (0.25, "moderate shift"))
# Stable features listed however many there are; the rest of the stable ones are counted.
SHOWN_STABLE = 5
# An interval within ±0.005% of no change: a rerun on the same data, not a contest.
SAME_SCORE = 5e-5


@dataclass(frozen=True)
class PromotionView:
    """The gate's decision and its reason, the comparison as sentences, the figures as a table."""

    promoted: bool
    reason: str
    model: str | None  # the challenger's label
    champion_run_id: str | None
    sentences: list[str]  # the comparison with the champion, or why there was none
    figures: Table | None  # measure × challenger (test, cross-validated) and champion (test)
    interval: str | None  # '-2.10%, 95% interval -3.40% .. -0.80% (...)', for the markdown


def promotion_view(decision: PromotionDecision) -> PromotionView:
    """The decision as text; the comparison is read off the gate's figures."""
    comparison = decision.figures.get("comparison") or {}
    return PromotionView(
        promoted=decision.promoted,
        reason=decision.reason,
        model=model_label(decision.framework) if decision.framework else None,
        champion_run_id=decision.champion_run_id,
        sentences=_comparison_sentences(decision, comparison),
        figures=_figures_table(decision.figures),
        interval=_interval_text(comparison),
    )


def _comparison_sentences(decision: PromotionDecision, comparison: Mapping[str, Any]) -> list[str]:
    """The challenger against the champion in words, or why they were not compared."""
    if decision.champion_run_id is None:
        return [
            "There is no champion yet, so there was nothing to compare with: the challenger "
            "was judged by the absolute limits alone."
        ]
    if "relative_change" not in comparison:
        return [f"The challenger was not compared with champion {decision.champion_run_id}."]
    figures = decision.figures
    challenger = comparison.get("challenger_rmse", figures.get("challenger_test", {}).get("rmse"))
    champion = comparison.get("champion_rmse", figures.get("champion_test", {}).get("rmse"))
    change = f"a change of {comparison['relative_change']:+.2%}"
    if challenger is None or champion is None:
        first = f"Against champion {decision.champion_run_id}, the challenger's test RMSE shows "
        sentences = [f"{first}{change}."]
    else:
        sentences = [
            f"The challenger's test RMSE is {format_number(challenger)} against the champion's "
            f"{format_number(champion)} (run {decision.champion_run_id}), {change}."
        ]
    if {"ci_low", "ci_high"} <= set(comparison):
        low, high = comparison["ci_low"], comparison["ci_high"]
        if max(abs(low), abs(high)) < SAME_SCORE:
            reading = "the two models score the same on these rows"
        elif high < 0:
            reading = "the challenger is better beyond noise"
        elif low > 0:
            reading = "the challenger is worse beyond noise"
        else:
            reading = "the difference is within noise: neither is shown to be better"
        level = f"{comparison['confidence']:.0%} " if "confidence" in comparison else ""
        samples = f" ({comparison['samples']:,} resamples)" if "samples" in comparison else ""
        sentences.append(
            f"The {level}paired-bootstrap interval of the change{samples} runs from "
            f"{low:+.2%} to {high:+.2%}, so {reading}."
        )
    return sentences


def _interval_text(comparison: Mapping[str, Any]) -> str | None:
    """The change and its interval in one phrase, for the markdown summary."""
    if "relative_change" not in comparison:
        return None
    text = f"{comparison['relative_change']:+.2%}"
    if {"ci_low", "ci_high"} <= set(comparison):
        level = f"{comparison['confidence']:.0%} " if "confidence" in comparison else ""
        samples = f", {comparison['samples']:,} resamples" if "samples" in comparison else ""
        text += (
            f", {level}interval {comparison['ci_low']:+.2%} .. {comparison['ci_high']:+.2%} "
            f"(paired bootstrap{samples})"
        )
    return text


def _figures_table(figures: Mapping[str, Any]) -> Table | None:
    """RMSE, MAE, R² and MAPE % (rows) of each figure set the gate recorded (columns)."""
    columns = [(heading, figures[key]) for key, heading in FIGURE_COLUMNS.items() if key in figures]
    if not columns:
        return None
    rows = [
        [label, *(_measure(values.get(key), key) for _, values in columns)]
        for label, key in MEASURES
        if any(values.get(key) is not None for _, values in columns)
    ]
    return Table(["measure", *(heading for heading, _ in columns)], rows) if rows else None


def _measure(value: float | None, key: str) -> str:
    """One figure as display text: MAPE in percent (the gate records a fraction), R² to 4 places."""
    if value is None:
        return "—"
    if key == "mape":
        return f"{100 * value:.2f}"
    return f"{value:.4f}" if key == "r2" else format_number(value)


@dataclass(frozen=True)
class DriftRow:
    """One compared feature: its PSI, its KS statistic (numeric only) and what the PSI means."""

    feature: str
    score: str
    ks: str
    meaning: str
    drifted: bool


@dataclass(frozen=True)
class DriftView:
    """The drift check in sentences; a table of scores only when features were compared."""

    checked: bool
    note: str
    threshold: str
    summary: str  # what drifted and by how much, or 'no drift', or why nothing was checked
    compared: str | None  # which rows were compared with which
    drifted: list[str]  # largest first, as DriftReport.drifted gives them
    rows: list[DriftRow]  # largest PSI first; empty when nothing was compared
    stable_left_out: int  # stable features below the rows shown, counted but not listed
    largest: str  # the three largest scores, 'Kind 0.350, Year_Built 0.050'
    not_compared: list[str]  # 'feature: why', for features that could not be scored


def psi_meaning(score: float) -> str:
    """'stable', 'moderate shift' or 'major shift'."""
    return next((label for limit, label in PSI_BANDS if score < limit), "major shift")


def drift_view(drift: DriftReport) -> DriftView:
    """What drifted and by how much; features that could not be compared are listed with why."""
    drifted = drift.drifted
    ordered = sorted(drift.scores.items(), key=lambda item: -item[1])
    # A wide table's stable features say nothing one by one: list the largest few and every
    # feature past stable or the threshold, and count the rest.
    shown = [
        name
        for rank, (name, score) in enumerate(ordered)
        if rank < SHOWN_STABLE or name in drifted or psi_meaning(score) != "stable"
    ]
    return DriftView(
        checked=drift.checked,
        note=drift.note,
        threshold=f"{drift.threshold:g}",
        summary=_drift_summary(drift, ordered),
        compared=_compared_rows(drift) if drift.checked else None,
        drifted=drifted,
        rows=[
            DriftRow(
                feature,
                f"{score:.3f}",
                f"{drift.ks[feature]:.3f}" if feature in drift.ks else "—",
                psi_meaning(score),
                feature in drifted,
            )
            for feature, score in ordered
            if feature in shown
        ],
        stable_left_out=len(ordered) - len(shown),
        largest=", ".join(f"{name} {score:.3f}" for name, score in ordered[:3]),
        not_compared=[f"{feature}: {why}" for feature, why in drift.not_comparable.items()],
    )


def _drift_summary(drift: DriftReport, ordered: list[tuple[str, float]]) -> str:
    """One sentence: which features drifted and by how much, no drift, or why not checked."""
    if not drift.checked:  # drift.py's notes start 'not checked: ' already
        return f"Drift was not checked: {drift.note.removeprefix('not checked: ')}."
    if not ordered:
        return "No feature could be compared, so no drift was measured."
    if not drift.drifted:
        name, score = ordered[0]
        return (
            f"No drift: all {len(ordered)} compared features have a PSI at or below the "
            f"threshold {drift.threshold:g} (the largest: {name}, {score:.3f})."
        )
    listed = ", ".join(
        f"{feature} (PSI {drift.scores[feature]:.3f}, {psi_meaning(drift.scores[feature])})"
        for feature in drift.drifted
    )
    return (
        f"{len(drift.drifted)} of {len(ordered)} compared features drifted past the PSI "
        f"threshold {drift.threshold:g}: {listed}."
    )


def _compared_rows(drift: DriftReport) -> str:
    """Which rows the scores compare (the check's note repeats the counts and the verdict)."""
    champion = f" of champion {drift.champion_run_id}" if drift.champion_run_id else ""
    counted = drift.current_rows and drift.reference_rows
    new = f"The {drift.current_rows:,} new rows" if counted else "The new rows"
    old = f"the {drift.reference_rows:,} training rows" if counted else "the training rows"
    return (
        f"{new} against {old}{champion}. PSI below 0.1 is stable, 0.1–0.25 a moderate "
        "shift, above 0.25 a major one; KS is the largest gap between the two cumulative "
        "distributions."
    )
