"""Chunked Parquet: chunks of whole row groups read back exactly what read_source reads."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from houseprice import datasets
from houseprice.chunks import (
    Chunk,
    parquet_rows,
    plan_chunks,
    read_chunk,
    read_chunked,
)
from houseprice.errors import SourceError
from houseprice.tasks.sources import read_source

GROUP_ROWS = 7
FILE_ROWS = (23, 15, 30)  # 4, 3 and 5 row groups


def _piece(rows: int, seed: int) -> pd.DataFrame:
    """Mixed columns with gaps: ints (with a gap in some files only), floats, text, flags."""
    rng = np.random.default_rng(seed)
    area = rng.integers(500, 3000, rows).astype("float64")
    area[rng.random(rows) < 0.2] = np.nan
    year = pd.array(rng.integers(1950, 2020, rows), dtype="Int64")
    if seed == 1:  # ints with a gap in this file only: float64 here, int64 elsewhere
        year[3] = pd.NA
    hood = rng.choice(["North", "South", "NA", " n/a ", "East"], rows).astype(object)
    hood[rng.random(rows) < 0.1] = None
    return pd.DataFrame(
        {
            "area": area,
            "year": year.astype("float64") if seed == 1 else year.astype("int64"),
            "hood": hood,
            "new": rng.random(rows) < 0.5,
            "price": rng.normal(200_000, 30_000, rows).round(2),
        }
    )


def _write(path, frame: pd.DataFrame, group_rows: int = GROUP_ROWS) -> None:
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=group_rows
    )


@pytest.fixture
def folder(tmp_path):
    """Three Parquet files of several row groups each, plus files read_source skips."""
    root = tmp_path / "source"
    root.mkdir()
    for number, rows in enumerate(FILE_ROWS):
        _write(root / f"part-{number}.parquet", _piece(rows, number))
    (root / ".upload.parquet").write_bytes(b"partial")
    (root / "_SUCCESS").write_text("")
    return root


@pytest.mark.parametrize("chunk_rows", [1, 5, 7, 10, 16, 1000])
def test_chunks_read_back_exactly_what_read_source_reads(folder, chunk_rows):
    table = plan_chunks(str(folder), chunk_rows)
    chunks = [read_chunk(chunk) for chunk in table.chunks]
    expected = read_source(str(folder))
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), expected)
    pd.testing.assert_frame_equal(read_chunked(table), expected)
    assert expected["hood"].isna().sum() > 0  # the missing-value tokens were read as missing


def test_chunks_hold_whole_row_groups_close_to_chunk_rows(folder):
    table = plan_chunks(str(folder), 16)
    assert table.rows == sum(FILE_ROWS) == sum(chunk.rows for chunk in table.chunks)
    assert [c.index for c in table.chunks] == list(range(len(table.chunks)))
    assert [(c.row_groups, c.rows) for c in table.chunks if c.path == table.files[0]] == [
        ((0, 1), 14),
        ((2, 3), 9),
    ]
    assert table.files == tuple(str(folder / f"part-{n}.parquet") for n in range(3))
    assert table.columns == ("area", "year", "hood", "new", "price")


def test_a_row_group_bigger_than_chunk_rows_is_its_own_chunk(folder):
    table = plan_chunks(str(folder / "part-0.parquet"), 3)
    assert [c.row_groups for c in table.chunks] == [(0,), (1,), (2,), (3,)]
    assert [c.rows for c in table.chunks] == [7, 7, 7, 2]


def test_read_chunk_reads_only_the_listed_columns(folder):
    chunk = plan_chunks(str(folder), 10).chunks[1]
    frame = read_chunk(chunk, ["price", "hood"])
    assert list(frame.columns) == ["price", "hood"] and len(frame) == chunk.rows


def test_a_chunk_is_small_and_picklable(folder):
    chunk = plan_chunks(str(folder), 10).chunks[0]
    assert pickle.loads(pickle.dumps(chunk)) == chunk
    assert len(pickle.dumps(chunk)) < 400


def test_a_stored_index_is_not_a_column(tmp_path):
    frame = _piece(20, 0).set_index("price")
    frame.to_parquet(tmp_path / "a.parquet", row_group_size=GROUP_ROWS)
    table = plan_chunks(str(tmp_path / "a.parquet"), 10)
    assert "price" not in table.columns
    expected = read_source(str(tmp_path / "a.parquet")).reset_index(drop=True)
    pd.testing.assert_frame_equal(read_chunked(table), expected)


def test_files_with_other_columns_are_refused(folder):
    _write(folder / "part-3.parquet", _piece(10, 3).drop(columns=["year"]))
    with pytest.raises(SourceError, match=r"part-3\.parquet does not match.*missing \['year'\]"):
        plan_chunks(str(folder), 10)


def test_a_column_holding_text_in_one_file_and_numbers_in_another_is_refused(folder):
    _write(folder / "part-3.parquet", _piece(10, 3).assign(area="big"))
    with pytest.raises(SourceError, match=r"'area' holds numbers in part-0.parquet but not"):
        plan_chunks(str(folder), 10)


def test_only_local_parquet_can_be_chunked(tmp_path, folder):
    _piece(5, 0).to_csv(tmp_path / "a.csv", index=False)
    for source in (str(tmp_path / "a.csv"), "synthetic:rows=10", "https://x/a.parquet"):
        with pytest.raises(SourceError, match="only a local Parquet"):
            plan_chunks(source, 10)
    with pytest.raises(ValueError, match="chunk_rows"):
        plan_chunks(str(folder), 0)


def test_an_empty_file_is_refused(tmp_path):
    _write(tmp_path / "a.parquet", _piece(5, 0).iloc[:0])
    with pytest.raises(SourceError, match="holds no rows"):
        plan_chunks(str(tmp_path / "a.parquet"), 10)


def test_parquet_rows_reads_metadata_of_local_parquet_only(tmp_path, folder):
    assert parquet_rows(str(folder)) == sum(FILE_ROWS)
    assert parquet_rows(str(folder / "part-1.parquet")) == FILE_ROWS[1]
    _piece(5, 0).to_csv(tmp_path / "a.csv", index=False)
    (folder / "zz.csv").write_text("area\n1\n")
    for source in (
        str(tmp_path / "a.csv"),
        str(folder),  # now holds a CSV too
        str(tmp_path / "missing.parquet"),
        "synthetic:rows=10",
        "https://example.com/a.parquet",
        "bundled",
        "",
    ):
        assert parquet_rows(source) is None, source


def test_parquet_rows_of_a_corrupt_file_is_none(tmp_path):
    (tmp_path / "a.parquet").write_bytes(b"not parquet at all")
    assert parquet_rows(str(tmp_path / "a.parquet")) is None


def test_a_file_snapshot_hashes_the_bytes_and_copies_the_files(folder, tmp_path):
    table = plan_chunks(str(folder), 10)
    data_dir = tmp_path / "data"
    planned = datasets.plan_file_snapshot(table, data_dir)
    digest = hashlib.sha256(b"".join(Path(p).read_bytes() for p in table.files)).hexdigest()
    assert planned.content_hash == digest
    assert (planned.rows, planned.columns) == (sum(FILE_ROWS), 5)
    assert not planned.path.exists()  # planning writes nothing
    stored = datasets.store_file_snapshot(planned, table, data_dir)
    assert stored == planned and planned.path.is_dir()
    names = sorted(p.name for p in planned.path.iterdir())
    assert names == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert (planned.path / "part-00001.parquet").read_bytes() == Path(table.files[1]).read_bytes()
    assert list(planned.path.parent.iterdir()) == [planned.path]  # no temporary left behind
    expected = read_source(str(folder))
    pd.testing.assert_frame_equal(datasets.load_snapshot(data_dir, planned.content_hash), expected)


def test_storing_a_file_snapshot_twice_keeps_the_first(folder, tmp_path):
    table = plan_chunks(str(folder), 10)
    snapshot = datasets.plan_file_snapshot(table, tmp_path)
    datasets.store_file_snapshot(snapshot, table, tmp_path)
    first = (snapshot.path / "part-00000.parquet").stat().st_mtime_ns
    datasets.store_file_snapshot(snapshot, table, tmp_path)
    assert (snapshot.path / "part-00000.parquet").stat().st_mtime_ns == first


def test_a_snapshot_head_reads_only_the_first_rows(folder, tmp_path):
    table = plan_chunks(str(folder), 10)
    snapshot = datasets.store_file_snapshot(
        datasets.plan_file_snapshot(table, tmp_path), table, tmp_path
    )
    whole = read_source(str(folder))
    for rows in (1, 7, 30, 1000):
        head = datasets.read_snapshot_head(snapshot.path, rows)
        pd.testing.assert_frame_equal(head, whole.head(rows), check_dtype=False)
    frame_snapshot = datasets.store_snapshot(whole, tmp_path)
    pd.testing.assert_frame_equal(
        datasets.read_snapshot_head(frame_snapshot.path, 12), whole.head(12)
    )


def test_chunk_paths_are_absolute(folder, monkeypatch):
    monkeypatch.chdir(folder.parent)
    table = plan_chunks(folder.name, 10)
    assert all(isinstance(c, Chunk) and c.path.startswith("/") for c in table.chunks)
