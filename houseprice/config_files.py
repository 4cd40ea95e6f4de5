"""Configuration as files and overrides: reading YAML, merging nested values, naming bad fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from houseprice.errors import InputError


class ConfigError(InputError, ValueError):
    """A configuration that was refused, with a message naming each bad field."""


def format_validation_error(error: ValidationError) -> str:
    """Render pydantic's errors as one 'field.path: message' line each."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "config"
        lines.append(f"{where}: {item['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML config file into a nested dict, raising ConfigError on a bad file."""
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:  # a folder, no permission, binary file
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping, not {type(loaded).__name__}")
    return loaded or {}


def merge_nested(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return base with overrides applied key by key, recursing into nested sections."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_nested(merged[key], value)
        else:
            merged[key] = value
    return merged
