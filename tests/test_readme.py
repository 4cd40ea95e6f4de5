"""The README and the docs stay true: the example config is valid and the commands exist.

README.md is the two-minute overview; the details live in docs/*.md, so these checks read the
page each piece of text now lives on (tests/test_docs.py checks the links between them).
"""

import re
from pathlib import Path

import yaml

from houseprice.cli import build_parser
from houseprice.config import build_config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = {path.name: path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))}
# A newcomer reads it in two minutes: the pitch, the two commands, the stages, the layers.
README_MAX_LINES = 200


def test_example_config_is_valid():
    (block,) = re.findall(r"^## Configuration\n.*?```yaml\n(.*?)```", DOCS["usage.md"], re.M | re.S)
    config = build_config(yaml.safe_load(block))
    assert config.data.target == "price"


def test_first_two_commands_are_retrain_then_test():
    commands = re.findall(r"^make (\w+)", README, flags=re.M)
    assert commands[:2] == ["retrain", "test"]
    makefile = (ROOT / "Makefile").read_text()
    assert all(re.search(rf"^{target}:", makefile, flags=re.M) for target in ("retrain", "test"))


def test_readme_is_short_and_its_first_screen_is_the_two_commands():
    lines = README.splitlines()
    assert len(lines) <= README_MAX_LINES, len(lines)
    first_screen = "\n".join(lines[:20])
    assert "make retrain" in first_screen and "make test" in first_screen
    assert "requirements.lock" not in first_screen  # the lock's detail is in docs/operations.md


def test_readme_links_every_docs_page():
    linked = set(re.findall(r"\]\(docs/([\w.-]+\.md)", README))
    assert set(DOCS) <= linked, set(DOCS) - linked


def _code(markdown: str) -> str:
    """The code blocks and code spans of a page: where a command is written as one."""
    blocks = re.findall(r"^```.*?^```", markdown, flags=re.M | re.S)
    return "\n".join(blocks + re.findall(r"`[^`\n]+`", markdown))


def test_documented_subcommands_exist():
    documented = set()
    for text in [README, *DOCS.values()]:
        documented |= set(re.findall(r"houseprice (\w+)", _code(text)))
    available = set(build_parser()._subparsers._group_actions[0].choices)
    assert {"retrain", "predict", "history", "promote", "serve", "alerts"} <= documented
    assert documented <= available, documented - available
