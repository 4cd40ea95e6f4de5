"""Rendering: report.html from Jinja2 templates, and the same view as a markdown summary.

The HTML templates autoescape every value, so text from the data (a column name, an error
message) can never become markup; the markdown escapes each value with md().
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from houseprice.tasks.reporting.failure import FailureView
from houseprice.tasks.reporting.text import md
from houseprice.tasks.reporting.view import DriftView, PromotionView, ReportView

# StrictUndefined: a misspelt field fails the render instead of leaving a blank in the page.
_TEMPLATES = Environment(
    loader=PackageLoader(__package__, "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def code_spans(text: str) -> Markup:
    """Text with its `backtick spans` as <code>, the way a reason or a note writes commands.

    Every piece is escaped first, so only the <code> tags added here are markup. An unpaired
    backtick is left as it is.
    """
    pieces = str(text).split("`")
    if len(pieces) % 2 == 0:  # an odd number of backticks: no pairs to trust
        return escape(text)
    return Markup("").join(
        Markup("<code>%s</code>") % piece if odd else escape(piece)
        for odd, piece in ((i % 2 == 1, p) for i, p in enumerate(pieces))
    )


_TEMPLATES.filters["code_spans"] = code_spans


def render_page(view: ReportView) -> str:
    """report.html of a finished run: one self-contained page (inline CSS, plots as PNG)."""
    return _TEMPLATES.get_template("report.html.j2").render(view=view)


def render_failure_page(view: FailureView) -> str:
    """report.html of a failed run: the stage, the error and each failed expectation."""
    return _TEMPLATES.get_template("failure.html.j2").render(view=view)


def summary_markdown(view: ReportView) -> str:
    """The view in markdown: verdict, promotion, drift, metrics, other models, reference check."""
    lines = [
        f"**{md(view.verdict.text)}**",
        "",
        f"Run `{md(view.run_id)}` on snapshot `{view.snapshot_hash[:12]}`.",
        "",
        *(_promotion_markdown(view.promotion) if view.promotion is not None else []),
        *(_drift_markdown(view.drift) if view.drift is not None else []),
        *view.metrics.table.markdown(),
        "",
        *([*view.metrics.differences.markdown(), ""] if view.metrics.differences else []),
        *view.metrics.checks.markdown(),
    ]
    return "\n".join(lines) + "\n"


def _promotion_markdown(promotion: PromotionView) -> list[str]:
    """The promotion decision, its reason and its bootstrap interval, as markdown lines."""
    verdict = "promoted" if promotion.promoted else "not promoted"
    model = f" ({md(promotion.model)})" if promotion.model else ""
    lines = [f"**Promotion: {verdict}**{model}: {md(promotion.reason)}", ""]
    if promotion.interval is not None:
        lines += [
            f"Test RMSE change against champion `{md(promotion.champion_run_id)}`: "
            f"{promotion.interval}.",
            "",
        ]
    return lines


def _drift_markdown(drift: DriftView) -> list[str]:
    """Drift in one markdown line: the features above the threshold, or why none."""
    if not drift.checked:
        return [f"**Drift: not checked**: {md(drift.note)}", ""]
    status = (
        f"above threshold in {md(', '.join(drift.drifted))}"
        if drift.drifted
        else "none above threshold"
    )
    return [
        f"**Drift (PSI, threshold {drift.threshold}): {status}**; "
        f"{len(drift.rows)} features compared, largest {md(drift.largest) or '—'}.",
        "",
    ]


def failure_markdown(view: FailureView) -> str:
    """The failure in markdown for the Prefect artifact: the same facts as the page."""
    lines = [f"**{md(view.headline)}**", "", f"Run `{md(view.run_id)}`.", ""]
    lines += [view.consequence, "", f"What to do: {view.next_step}", ""]  # fixed text: no data
    if view.suite is not None:
        lines += [*view.suite.failures.markdown(), ""]
    else:  # in a code block markdown shows the text as it is: only a backtick could break out
        lines += ["```", view.error.replace("`", "'"), "```", ""]
    return "\n".join(lines) + "\n"
