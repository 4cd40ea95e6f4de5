"""GX's Data Docs views, offline and with column names escaped; the site config names them.

GX instantiates these by module and class name (`view` in tasks/data_docs.py's site config), its
supported way to change how pages are drawn; everything else is GX's renderer and templates.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import ChoiceLoader, FileSystemLoader

# Our copies of the few GX templates that name CDN files, each pointing at {{ static_root }}.
TEMPLATES = Path(__file__).resolve().parent / "data_docs_assets" / "templates"


def _page_depth(document: dict[str, Any]) -> int:
    """How many folders below the site's root GX writes this page (as its top_navbar.j2 does)."""
    kind = document.get("renderer_type") or ""
    dots = (document.get("expectation_suite_name") or "").count(".")  # a dot is a folder
    if "ValidationResults" in kind or "ProfilingResults" in kind:
        return dots + 4  # validations/<suite>/<run name>/<run time>/<batch>.html
    if "ExpectationSuite" in kind:
        return dots + 1  # expectations/<suite>.html
    return 0  # index.html


def escape_column_names(document: dict[str, Any]) -> dict[str, Any]:
    """The page with each section's name and column header HTML-escaped.

    GX 1.24 writes both raw (`table_of_contents.j2`, `ColumnSectionRenderer._render_header`)
    while it escapes the parameters of every other text: a column named `<script>...` would run
    when a person opens the page. Section names are plain text in every GX page, so escaping
    them all is safe; a header is escaped only where it is its section's column name.
    """
    for section in document.get("sections") or []:
        name = section.get("section_name")
        if not isinstance(name, str):
            continue
        for block in section.get("content_blocks") or []:
            header = block.get("header") if isinstance(block, dict) else None
            template = header.get("string_template") if isinstance(header, dict) else None
            if isinstance(template, dict) and template.get("template") == name.replace("$", "$$"):
                template["template"] = html.escape(template["template"])  # GX doubles each $
        section["section_name"] = html.escape(name)
    return document


class _Offline:
    """What both views add to GX's: our templates first, and static_root for each page."""

    def __init__(self, static_href: str, **gx_arguments: Any) -> None:
        super().__init__(**gx_arguments)
        self.static_href = static_href  # the shared static folder, from the site's root
        self.env.loader = ChoiceLoader([FileSystemLoader(str(TEMPLATES)), self.env.loader])

    def _validate_document(self, document: Any) -> None:
        if not isinstance(document, dict):  # render below hands GX the page as a dict
            super()._validate_document(document)

    def render(self, document: Any, template: Any = None, **kwargs: Any) -> str:
        self._validate_document(document)  # GX's own check, on what GX handed us
        page = escape_column_names(document.to_json_dict())  # a copy, so GX's stays as it was
        kwargs["static_root"] = "../" * _page_depth(page) + self.static_href
        return super().render(page, template, **kwargs)


class OfflinePageView(_Offline, DefaultJinjaPageView):
    """GX's page view (suites and validation results), offline, column names escaped."""


class OfflineIndexPageView(_Offline, DefaultJinjaIndexPageView):
    """GX's index page view, offline."""
