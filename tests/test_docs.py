"""Every relative link and #anchor in README.md and docs/*.md leads to a file and a heading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```.*?^```", flags=re.M | re.S)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6} +(.+?) *#* *$", flags=re.M)


def _prose(markdown: str) -> str:
    """The text outside code blocks, where a link or a heading is one."""
    return _FENCE.sub("", markdown)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text, lower case, punctuation dropped, - for space."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading's anchor in a page, a repeated one numbered as GitHub numbers it."""
    seen: dict[str, int] = {}
    found = set()
    for heading in _HEADING.findall(_prose(markdown)):
        slug = github_slug(heading)
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


def broken_links(page: Path) -> list[str]:
    """The relative links of a page whose file or heading does not exist."""
    broken = []
    prose = _CODE_SPAN.sub("", _prose(page.read_text()))
    for target in _LINK.findall(prose):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_and_anchor_resolves(page):
    assert broken_links(page) == []


def test_slugs_are_githubs():
    assert github_slug("What `retrain` says, and its exit codes") == (
        "what-retrain-says-and-its-exit-codes"
    )
    assert github_slug("Small data: cross-validation") == "small-data-cross-validation"
    assert github_slug("`training.<trainer>`") == "trainingtrainer"
    assert github_slug("The lock file and `make lock`") == "the-lock-file-and-make-lock"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_a_missing_file_or_heading_is_reported(tmp_path):
    (tmp_path / "other.md").write_text("# Here\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Top\n[ok](other.md#here) [ok](#top) [web](https://example.org/x#y) `[code](gone.md)`\n"
        "[gone](gone.md) [no heading](other.md#there) [self](#nowhere)\n"
        "```\n[in a code block](gone.md)\n```\n"
    )
    assert broken_links(page) == [
        f"gone.md: no file {tmp_path / 'gone.md'}",
        "other.md#there: no heading #there in other.md",
        "#nowhere: no heading #nowhere in page.md",
    ]
