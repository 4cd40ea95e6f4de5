"""Ingest: files, folders and URLs read the same; bad sources fail clearly; kinds are inferred."""

import http.server
import threading
import urllib.error

import numpy as np
import pandas as pd
import pytest

from houseprice.config import DataConfig
from houseprice.tasks.ingest import (
    SourceError,
    is_transient_error,
    read_source,
    resolve_feature_kinds,
)
from tests.conftest import houses_config, make_houses


def test_csv_and_parquet_read_the_same(tmp_path, houses):
    houses.to_csv(tmp_path / "a.csv", index=False)
    houses.to_parquet(tmp_path / "a.parquet", index=False)
    from_csv = read_source(str(tmp_path / "a.csv"))
    from_parquet = read_source(str(tmp_path / "a.parquet"))
    assert from_csv.shape == from_parquet.shape == houses.shape
    assert from_csv["price"].tolist() == from_parquet["price"].tolist()


def test_folder_concatenates_files_in_name_order(tmp_path, houses):
    houses.iloc[:10].to_csv(tmp_path / "1.csv", index=False)
    houses.iloc[10:].to_parquet(tmp_path / "2.parquet", index=False)
    frame = read_source(str(tmp_path))
    assert frame["price"].tolist() == houses["price"].tolist()


def test_folder_with_mismatched_columns_names_the_file(tmp_path, houses):
    houses.to_csv(tmp_path / "1.csv", index=False)
    houses.drop(columns=["year"]).to_csv(tmp_path / "2.csv", index=False)
    with pytest.raises(SourceError, match=r"2\.csv.*missing \['year'\]"):
        read_source(str(tmp_path))


def test_bundled_source_is_the_ames_data():
    frame = read_source("bundled")
    assert frame.shape == (2930, 74)
    assert "Sale_Price" in frame.columns


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "not found"),
        ("table.xlsx", b"x", "unsupported file type"),
        ("empty.csv", b"a,b\n", "no rows"),
        ("broken.parquet", b"not parquet", "cannot read"),
    ],
)
def test_bad_sources_raise_source_error(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(SourceError, match=message):
        read_source(str(tmp_path / name))


def test_only_network_and_io_trouble_is_retried():
    assert is_transient_error(urllib.error.URLError("timed out"))
    assert is_transient_error(ConnectionResetError())
    assert not is_transient_error(SourceError("bad file"))
    assert not is_transient_error(FileNotFoundError())


def test_url_source_is_downloaded(tmp_path, houses):
    houses.to_parquet(tmp_path / "houses.parquet", index=False)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=tmp_path, **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert len(read_source(f"{base}/houses.parquet")) == len(houses)
        with pytest.raises(SourceError, match="HTTP 404"):
            read_source(f"{base}/absent.csv")
    finally:
        server.shutdown()


def test_feature_kinds_are_read_off_the_data(houses):
    untyped = DataConfig(
        target="price", numeric_features=[], categorical_features=[], features=["area", "hood"]
    )
    resolved = resolve_feature_kinds(houses, untyped)
    assert (resolved.numeric_features, resolved.categorical_features) == (["area"], ["hood"])
    everything = resolve_feature_kinds(
        houses, DataConfig(target="price", numeric_features=[], categorical_features=[])
    )
    assert everything.numeric_features == ["area", "year"]
    assert everything.categorical_features == ["hood"]


def test_all_columns_mode_skips_dates_and_identifiers(houses):
    frame = houses.assign(
        sold=[f"2024-01-{day:02d}" for day in range(1, 21)],
        listing_id=[f"L{i}" for i in range(20)],
        zip_text=["50010", "50011"] * 10,
    )
    frame.loc[0, "listing_id"] = None
    skipped: dict[str, str] = {}
    everything = DataConfig(target="price", numeric_features=[], categorical_features=[])
    resolved = resolve_feature_kinds(frame, everything, skipped)
    assert resolved.categorical_features == ["hood", "listing_id", "zip_text"]
    assert set(skipped) == {"sold"}  # 20 distinct ids in 20 rows: under the 50-level floor
    assert "dates" in skipped["sold"]
    many = pd.concat([frame] * 10, ignore_index=True).assign(
        listing_id=[f"L{i}" for i in range(200)]
    )
    skipped = {}
    resolve_feature_kinds(many, everything, skipped)
    assert "identifiers" in skipped["listing_id"]
    named = DataConfig(target="price", numeric_features=[], categorical_features=["sold"])
    assert resolve_feature_kinds(frame, named).categorical_features == ["sold"]  # user's choice


def test_a_numeric_column_with_a_few_text_cells_is_refused_by_name(houses):
    spoilt = houses.astype({"area": "object"})
    spoilt.loc[4, "area"] = "1,200"
    everything = DataConfig(target="price", numeric_features=[], categorical_features=[])
    with pytest.raises(
        SourceError, match=r"'area' holds numbers except in 1 rows \(rows 4\), e.g. \['1,200'\]"
    ):
        resolve_feature_kinds(spoilt, everything)
    forced = DataConfig(target="price", numeric_features=[], categorical_features=["area"])
    assert resolve_feature_kinds(spoilt, forced).categorical_features[0] == "area"


def test_folder_files_must_agree_on_column_kinds_and_hidden_files_are_skipped(tmp_path, houses):
    houses.to_csv(tmp_path / "1.csv", index=False)
    houses.assign(year="unknown").to_csv(tmp_path / "2.csv", index=False)
    with pytest.raises(SourceError, match=r"'year' holds numbers in 1\.csv but not in 2\.csv"):
        read_source(str(tmp_path))
    (tmp_path / "2.csv").rename(tmp_path / ".2.csv")
    assert len(read_source(str(tmp_path))) == len(houses)


def test_leakage_check_on_many_rows_still_flags_a_price_derived_column():
    from houseprice.columns import LEAK, SPEARMAN_ROWS, left_out_rule

    rows = 3 * SPEARMAN_ROWS + 7  # ranked on an evenly spaced subset
    rng = np.random.default_rng(1)
    price = pd.Series(rng.uniform(1e5, 9e5, rows), name="price")
    # Not named after the target: its ranks must give it away.
    per_foot = pd.Series(price / 1_000 + rng.normal(0, 1, rows), name="value_per_area")
    area = pd.Series(rng.uniform(500, 3_000, rows), name="area")
    assert left_out_rule(per_foot, price, "price", None, 0.5)[0] == LEAK
    assert left_out_rule(area, price, "price", None, 0.5) is None


def test_a_parquet_source_read_in_place_is_typed_from_every_row(tmp_path):
    """A column empty in half the first chunk is judged on all rows, not left out as empty."""
    from houseprice.chunks import plan_chunks, read_chunk
    from houseprice.flows.engine import LocalEngine
    from houseprice.tasks.ingest import ColumnProfileFold, resolve_feature_decision

    frame = make_houses(rows=3_000, seed=2)
    frame["garage"] = np.where(np.arange(3_000) < 500, np.nan, 1.0 + np.arange(3_000) % 3)
    frame.to_parquet(tmp_path / "houses.parquet", row_group_size=1_000)
    table = plan_chunks(str(tmp_path / "houses.parquet"), 1_000)
    data = houses_config(numeric_features=[], categorical_features=[], features=[])
    first = read_chunk(table.chunks[0])
    alone = resolve_feature_decision(first, data)
    assert "garage" in alone.left_out  # half empty in the first chunk
    judgments = LocalEngine().fold(ColumnProfileFold(data.notation), table)
    assert judgments["garage"].missing_share == pytest.approx(1 / 6)
    every_row = resolve_feature_decision(first, data, judgments)
    assert "garage" in every_row.numeric and "garage" not in every_row.left_out
