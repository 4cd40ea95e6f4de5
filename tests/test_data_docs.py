"""Data Docs: GX's own pages, column names escaped, their libraries shipped with the package."""

from __future__ import annotations

import tomllib
from pathlib import Path

from houseprice.tasks.data_docs_views import escape_column_names
from houseprice.tasks.suites import build_expectation_suite
from houseprice.tasks.validate import run_validation
from tests.conftest import houses_config, make_houses

ROOT = Path(__file__).resolve().parent.parent
PWNED = "<img src=x onerror=\"document.title='pwned'\">"


def test_pages_show_an_html_column_name_as_text_never_as_markup(tmp_path):
    houses = make_houses().rename(columns={"area": PWNED, "hood": "<script>alert(1)</script>"})
    config = houses_config(
        numeric_features=[PWNED, "year"], categorical_features=["<script>alert(1)</script>"]
    )
    report = run_validation(houses, build_expectation_suite(config), tmp_path / "docs")
    assert report.success
    pages = [p for p in (tmp_path / "docs").rglob("*.html") if p.name != "index.html"]
    assert len(pages) == 2  # the suite and the validation result
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "<script>alert" not in html and "<img src=x" not in html, page
        assert "&lt;img src=x onerror=&#34;document.title=&#39;pwned&#39;&#34;&gt;" in html or (
            "&lt;img src=x onerror=&quot;document.title=&#x27;pwned&#x27;&quot;&gt;" in html
        ), page


def test_escaping_touches_section_names_and_their_column_headers_only():
    header = {"string_template": {"template": "<b>$$x</b>", "tag": "h5"}}
    other = {"string_template": {"template": "<span>$column</span> is <b>&</b>"}}
    page = {
        "sections": [
            {"section_name": "<b>$x</b>", "content_blocks": [{"header": header}, other]},
            {"section_name": "Overview", "content_blocks": [None, {"header": "plain"}]},
        ]
    }
    escaped = escape_column_names(page)
    first, second = escaped["sections"]
    assert first["section_name"] == "&lt;b&gt;$x&lt;/b&gt;"
    assert header["string_template"]["template"] == "&lt;b&gt;$$x&lt;/b&gt;"
    assert other["string_template"]["template"] == "<span>$column</span> is <b>&</b>"  # GX's HTML
    assert second["section_name"] == "Overview"


def test_every_data_docs_file_ships_with_the_package():
    """The templates and libraries are read at run time, so a wheel must contain each of them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["houseprice.tasks"]
    assets = ROOT / "tasks" / "data_docs_assets"
    files = [p for p in assets.rglob("*") if p.is_file() and p.suffix != ".md"]
    assert len(files) > 10
    for path in files:
        relative = path.relative_to(ROOT / "tasks")
        assert any(relative.match(pattern) for pattern in patterns), relative
