"""Rolling window: the rows within `data.window` of the newest time, in the column's units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from houseprice.tasks.ingest import read_source
from houseprice.tasks.window import apply_window


def test_rolling_window_keeps_recent_rows_in_the_columns_units():
    years = pd.DataFrame({"year": [2000, 2004, 2005, 2010, np.nan], "price": [1, 2, 3, 4, 5]})
    assert apply_window(years, "year", 5)["price"].tolist() == [3, 4]
    assert apply_window(years, None, None) is years
    days = pd.DataFrame({"sold": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-03-10"])})
    assert len(apply_window(days, "sold", 30)) == 2


def test_rolling_window_on_dates_read_from_a_csv_counts_days(tmp_path):
    sold = ["2024-01-01", "2024-03-01", None, "2024-03-10 12:00", "2024-02-08"]
    pd.DataFrame({"sold": sold, "price": [1, 2, 3, 4, 5]}).to_csv(tmp_path / "s.csv", index=False)
    frame = read_source(str(tmp_path / "s.csv"))
    assert pd.api.types.is_string_dtype(frame["sold"])  # a CSV has no date type
    kept = apply_window(frame, "sold", 30)
    assert kept["price"].tolist() == [2, 4] and kept["sold"].tolist() == [sold[1], sold[3]]
    # The same rows as when the column is parsed beforehand.
    parsed = frame.assign(sold=pd.to_datetime(frame["sold"], format="ISO8601"))
    assert apply_window(parsed, "sold", 30)["price"].tolist() == [2, 4]


def test_rolling_window_names_the_values_that_are_not_dates():
    frame = pd.DataFrame({"sold": ["2024-01-01", "soon", "2024-03-01", "2024-13-45"]})
    with pytest.raises(ValueError, match=r"'sold' has 2 values that are not dates: 'soon', "):
        apply_window(frame, "sold", 30)


def test_rolling_window_refuses_a_non_time_or_missing_time_column():
    frame = pd.DataFrame({"hood": ["North", "South"], "new": [True, False], "price": [1.0, 2.0]})
    with pytest.raises(ValueError, match="'hood' must hold numbers or dates, not text such as 'N"):
        apply_window(frame, "hood", 30)
    with pytest.raises(ValueError, match="'new' must hold numbers or dates, not bool"):
        apply_window(frame, "new", 30)
    with pytest.raises(ValueError, match="not a column"):
        apply_window(frame, "year", 5)
