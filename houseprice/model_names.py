"""Model names: which champion slot a run competes for (`--model`, `data.model`).

Runs on different data or columns must not compete for one champion, so each run belongs to a
named model and each model has its own champion. A name is given (`--model sales-2026`) or
derived from the source and target: the file's (or folder's, or URL's) name, then the target,
lowercased with anything but letters, digits, '.', '_' and '-' turned into '-'
(`data/Sales 2026.csv`, target `price` → `sales-2026-price`). The bundled Ames data with its own
target keeps the name `ames`, which is also the model of runs made before models had names.
This module imports nothing heavy: the config and the registry both need it.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import urlparse

from houseprice.errors import InputError

# The bundled data with its default target; runs and champions from before named models too.
DEFAULT_MODEL = "ames"
# Kept in step with houseprice/data_config.py (which imports this module, not the reverse).
_BUNDLED_SOURCE, _BUNDLED_TARGET, _SYNTHETIC_PREFIX = "bundled", "Sale_Price", "synthetic:"

# A folder name on any file system: lowercase (case-insensitive disks would merge 'A' and 'a'),
# no separators, no leading dot, short enough to read in `history`.
MODEL_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class ModelNameError(InputError, ValueError):
    """A model name that cannot name a folder (capitals, a slash, too long)."""


def check_model_name(name: str) -> str:
    """name when it is a valid model name, else ModelNameError saying what one looks like."""
    if not isinstance(name, str) or not MODEL_NAME_PATTERN.fullmatch(name):
        raise ModelNameError(
            f"{name!r} is not a model name: use 1-64 lowercase letters, digits, '.', '_' or "
            "'-', starting with a letter or digit (e.g. sales-2026)"
        )
    return name


def _slug(text: str) -> str:
    """text lowercased, with each run of other characters as one '-'."""
    return re.sub(r"[^a-z0-9._]+", "-", text.lower()).strip("-._")


def _source_stem(source: str) -> str:
    """The name a source goes by: a file's without its extension, a folder's, a URL path's last."""
    if source.startswith(_SYNTHETIC_PREFIX):
        return "synthetic"
    path = urlparse(source).path if "://" in source else source
    name = PurePosixPath(path.replace("\\", "/").rstrip("/")).name
    for suffix in (".csv", ".parquet", ".pq", ".gz", ".zip", ".bz2", ".xz", ".zst"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name.removesuffix(".csv")


def derive_model_name(source: str, target: str) -> str:
    """The default model name of a source and target (module docstring)."""
    if source == _BUNDLED_SOURCE:
        return DEFAULT_MODEL if target == _BUNDLED_TARGET else f"ames-{_slug(target) or 'target'}"
    parts = [_slug(_source_stem(source)) or "data", _slug(target) or "target"]
    return "-".join(parts)[:64].rstrip("-._")
