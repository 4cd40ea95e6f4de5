"""Configuration as files and overrides: reading YAML, merging nested values, naming bad fields."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from houseprice.errors import InputError


class ConfigError(InputError, ValueError):
    """A configuration that was refused, with a message naming each bad field."""


def format_validation_error(error: ValidationError, model: type[BaseModel] | None = None) -> str:
    """Render pydantic's errors as one 'field.path: message' line each.

    Given the model, an unknown key names the closest known one ('taget': did you mean 'target'?).
    """
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "config"
        message = item["msg"]
        if item["type"] == "extra_forbidden" and model is not None:
            message += _closest_key(model, item["loc"])
        lines.append(f"{where}: {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _closest_key(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """'; did you mean 'target'?' for an unknown key at loc, or '' when nothing is close."""
    for part in loc[:-1]:  # down the nested sections to the one holding the key
        field = model.model_fields.get(str(part))
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        ):
            return ""
        model = field.annotation
    found = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f"; did you mean {found[0]!r}?" if found else ""


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML config file into a nested dict, raising ConfigError on a bad file."""
    path = Path(path)
    if path.exists() and not path.is_file():  # reading a FIFO would wait for a writer
        kind = "a folder" if path.is_dir() else "not a regular file (a FIFO, socket or device)"
        raise ConfigError(f"config file {path} is {kind}: give a YAML file")
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
