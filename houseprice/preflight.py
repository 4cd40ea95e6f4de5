"""What `houseprice retrain` refuses before Prefect or Great Expectations starts.

A mistyped column, a source that is not a table, a folder that cannot be written: each would
otherwise surface 20 s later, after the server started and a run folder was made, as several
near-identical validation failures. Here each is one line, from headers alone (houseprice/
headers.py), and nothing is created.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from houseprice.config import PipelineConfig
from houseprice.data_config import BUNDLED_SOURCE, DEFAULT_TARGET, DataConfig
from houseprice.errors import SourceError
from houseprice.headers import SourceHeader, path_kind, read_header

# Columns quoted in a refusal; a wide file's others are counted.
COLUMNS_QUOTED = 20
# How alike a column must be to a mistyped name to be suggested (difflib's ratio, case ignored).
MATCH_CUTOFF = 0.6


def retrain_problem(config: PipelineConfig) -> str | None:
    """Why a retrain with this config cannot work, in one line, or None; creates nothing."""
    paths = config.paths
    for flag, folder in (("--data-dir", paths.data_dir), ("--artifacts-dir", paths.artifacts_dir)):
        if problem := folder_problem(Path(folder), flag):
            return problem
    data = config.data
    if data.landing_dir is not None:
        # Landing mode trains on the dataset version grown from landing files, which collect
        # checks file by file; the source only seeds the first version.
        return None
    try:
        header = read_header(data.source, data.separator)
    except SourceError as error:
        return str(error)
    return None if header is None else missing_columns_problem(data, header)


def folder_problem(folder: Path, flag: str) -> str | None:
    """Why the run could not create or write in folder (a file, not writable), or None."""
    folder = folder.expanduser()
    existing = folder
    # The nearest part of the path that exists is where the run's mkdir starts.
    while (kind := path_kind(existing)) == "missing" and existing.parent != existing:
        existing = existing.parent
    if kind != "a folder" and existing == folder:
        return f"{flag} {folder} is {kind}, not a folder"
    if kind != "a folder":
        return f"{flag} {folder} cannot be made: {existing} in its path is {kind}"
    if not os.access(existing, os.W_OK | os.X_OK):  # also refuses a read-only file system
        return f"{flag} {folder}: cannot write in {existing}; choose a folder you can write"
    return None


def configured_names(data: DataConfig) -> list[str]:
    """Every column the data section names, the target first."""
    names = [data.target, *data.feature_columns, *data.value_ranges]
    if data.time_column is not None:
        names.append(data.time_column)
    return list(dict.fromkeys(names))


def closest_column(name: str, columns: list[str]) -> str | None:
    """The column most like name, ignoring case ('Sale_Price' finds 'price'), or None."""
    lowered = {str(column).lower(): column for column in reversed(columns)}
    found = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=MATCH_CUTOFF)
    return lowered[found[0]] if found else None


def missing_columns_problem(data: DataConfig, header: SourceHeader) -> str | None:
    """'no column 'X' in F; did you mean 'Y'? columns: …' for names the source lacks, or None."""
    present = set(header.columns)
    missing = [name for name in configured_names(data) if name not in present]
    if not missing:
        return None
    matches = {name: match for name in missing if (match := closest_column(name, header.columns))}
    quoted = ", ".join(repr(name) for name in missing)
    text = f"no column{'s' if len(missing) > 1 else ''} {quoted} in {header.name}"
    if len(missing) == 1 and matches:
        text += f"; did you mean {matches[missing[0]]!r}?"
    elif matches:
        text += "; did you mean " + ", ".join(f"{m!r} for {n!r}" for n, m in matches.items()) + "?"
    text += f" columns: {_listing(header.columns)}"
    if data.target in missing and data.target == DEFAULT_TARGET and data.source != BUNDLED_SOURCE:
        text += f" (the target is {DEFAULT_TARGET} unless --target names another)"
    return text


def _listing(columns: list[str]) -> str:
    shown = ", ".join(str(column) for column in columns[:COLUMNS_QUOTED])
    if len(columns) <= COLUMNS_QUOTED:
        return shown
    return f"{shown}, … ({len(columns):,} in all)"
