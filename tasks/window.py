"""Rolling window: train only on the rows within `data.window` of the newest `data.time_column`.

Both modes use it: landing mode on the current dataset version, the other on the source's rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import datasets
from houseprice.config import DataConfig
from houseprice.tasks.ingest import IngestResult, resolve_feature_kinds

BAD_TIMES_QUOTED = 3  # values quoted when a time column holds text that is not a date


def apply_window(
    frame: pd.DataFrame, time_column: str | None, window: float | None
) -> pd.DataFrame:
    """Rows whose time_column is within `window` of the newest (column units; days for dates).

    Rows without a time cannot be placed in the window and are left out. Dates stored as text
    (every CSV's) are parsed for the comparison only; the rows keep their text.
    """
    if time_column is None or window is None:
        return frame
    if time_column not in frame.columns:
        raise ValueError(f"time_column {time_column!r} is not a column of the data")
    times = frame[time_column]
    if pd.api.types.is_numeric_dtype(times) and not pd.api.types.is_bool_dtype(times):
        span: Any = window
    else:
        times, span = _parse_times(times, time_column), pd.Timedelta(days=window)
    return frame[(times >= times.max() - span).to_numpy()].reset_index(drop=True)


def _parse_times(values: pd.Series, name: str) -> pd.Series:
    """A datetime column as it is; text parsed as dates, refused if any value is not one."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    if pd.api.types.is_bool_dtype(values):
        raise ValueError(f"time_column {name!r} must hold numbers or dates, not bool")
    # utc=True: a file mixing time zones (or zones and none) parses instead of raising.
    parsed = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
    given = values.notna() & values.astype(str).str.strip().ne("")
    bad = parsed.isna() & given
    if not bad.any():
        return parsed
    quoted = ", ".join(repr(str(v)) for v in values[bad].unique()[:BAD_TIMES_QUOTED])
    if bad.sum() <= given.sum() / 2:  # mostly dates, a few malformed
        problem = f"has {bad.sum()} values that are not dates: {quoted}"
    else:
        problem = f"must hold numbers or dates, not text such as {quoted}"
    raise ValueError(f"time_column {name!r} {problem}")


@task(name="select-training-rows", cache_policy=NO_CACHE)
def select_training_rows(
    frame: pd.DataFrame, source: str, data: DataConfig, data_dir: Path
) -> IngestResult:
    """Keep the rolling window's rows, store them as the run's snapshot, and type the features."""
    rows = apply_window(frame, data.time_column, data.window)
    snapshot = datasets.plan_snapshot(rows, data_dir)  # stored once the rows pass validation
    window = f"{data.time_column} within {data.window:g} of the newest" if data.window else "all"
    get_run_logger().info(
        "training rows: %d of %d (%s) -> snapshot %s",
        len(rows),
        len(frame),
        window,
        snapshot.content_hash[:12],
    )
    return IngestResult(rows, snapshot, source, resolve_feature_kinds(rows, data))
