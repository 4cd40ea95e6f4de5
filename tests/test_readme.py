"""The README stays true: its example config is valid and its commands exist."""

import re
from pathlib import Path

import yaml

from houseprice.cli import build_parser
from houseprice.config import build_config

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_example_config_is_valid():
    (block,) = re.findall(r"### Configuration.*?```yaml\n(.*?)```", README, flags=re.S)
    config = build_config(yaml.safe_load(block))
    assert config.data.target == "price"


def test_first_two_commands_are_retrain_then_test():
    commands = re.findall(r"^make (\w+)", README, flags=re.M)
    assert commands[:2] == ["retrain", "test"]
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    assert all(re.search(rf"^{target}:", makefile, flags=re.M) for target in ("retrain", "test"))


def test_documented_subcommands_exist():
    documented = set(re.findall(r"houseprice (\w+)", README))
    available = set(build_parser()._subparsers._group_actions[0].choices)
    assert documented <= available, documented - available
