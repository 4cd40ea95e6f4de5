"""The fold seam: a stage folded over one chunk or many, in memory or from Parquet, agrees."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from houseprice.chunks import frame_table, plan_chunks, read_rows
from houseprice.flows.engine import LocalEngine, run_engine
from houseprice.folds import Fold, Fused, combine_all, fold_frames, frame_pieces
from tests.conftest import make_houses


@dataclass(frozen=True)
class AreaMoments:
    """A test fold: rows, the sum of area, and where the largest area is (by table position)."""

    name: str = "area-moments"
    columns: tuple[str, ...] | None = ("area",)
    threads_help: bool = True

    def per_chunk(self, rows: pd.DataFrame) -> tuple[int, float, tuple[float, int]]:
        assert list(rows.columns) == ["area"]
        area = rows["area"]
        return len(rows), float(area.sum()), (float(area.max()), int(area.idxmax()))

    def combine(self, first, second):
        return first[0] + second[0], first[1] + second[1], max(first[2], second[2])

    def finish(self, total):
        return {"rows": total[0], "mean": total[1] / total[0], "largest_at": total[2][1]}


@dataclass(frozen=True)
class Rows:
    """A second test fold that reads every column."""

    name: str = "rows"
    columns: tuple[str, ...] | None = None
    threads_help: bool = False

    def per_chunk(self, rows: pd.DataFrame) -> int:
        return len(rows)

    def combine(self, first: int, second: int) -> int:
        return first + second

    def finish(self, total: int) -> int:
        return total


@pytest.fixture(scope="module")
def houses() -> pd.DataFrame:
    return make_houses(rows=97, seed=5)


def test_a_test_fold_keeps_the_protocol():
    assert isinstance(AreaMoments(), Fold) and isinstance(Rows(), Fold)


@pytest.mark.parametrize("rows", [1, 10, 96, 97, 1_000])
def test_folding_pieces_gives_the_whole_frames_result(houses, rows):
    whole = fold_frames(AreaMoments(), [houses])
    assert fold_frames(AreaMoments(), frame_pieces(houses, rows)) == pytest.approx(whole)
    assert whole["largest_at"] == int(houses["area"].idxmax())  # the table's row, not a chunk's


@pytest.mark.parametrize("chunk_rows", [1, 13, 97, 500])
@pytest.mark.parametrize("threads", [1, 2])
def test_the_local_engine_folds_a_table_in_memory_as_the_reference(houses, chunk_rows, threads):
    table = frame_table(houses, "houses", chunk_rows)
    assert len(table.chunks) == -(-len(houses) // chunk_rows)
    assert [chunk.start for chunk in table.chunks] == list(range(0, len(houses), chunk_rows))
    expected = fold_frames(AreaMoments(), [houses])
    assert LocalEngine(threads).fold(AreaMoments(), table) == pytest.approx(expected)


def test_the_local_engine_folds_parquet_row_groups_as_the_reference(houses, tmp_path):
    houses.iloc[:40].to_parquet(tmp_path / "a.parquet", row_group_size=15)
    houses.iloc[40:].to_parquet(tmp_path / "b.parquet", row_group_size=15)
    table = plan_chunks(str(tmp_path), 30)
    assert [chunk.start for chunk in table.chunks] == [0, 30, 40, 70]
    pd.testing.assert_frame_equal(
        pd.concat(read_rows(chunk) for chunk in table.chunks),
        houses.reset_index(drop=True),
        check_index_type=False,
    )
    expected = fold_frames(AreaMoments(), [houses])
    assert LocalEngine(2).fold(AreaMoments(), table) == pytest.approx(expected)


def test_fused_folds_read_each_chunk_once_for_all_of_them(houses):
    reads = []

    @dataclass(frozen=True)
    class Counting(Rows):
        def per_chunk(self, rows: pd.DataFrame) -> int:
            reads.append(len(rows))
            return len(rows)

    fused = Fused((AreaMoments(), Counting()))
    assert fused.columns is None and not fused.threads_help and fused.name == "area-moments+rows"
    moments, rows = LocalEngine().fold(fused, frame_table(houses, "houses", 25))
    assert rows == 97 and reads == [25, 25, 25, 22]
    assert moments == pytest.approx(fold_frames(AreaMoments(), [houses]))
    assert Fused((AreaMoments(), AreaMoments())).columns == ("area",)


def test_nothing_to_fold_is_an_error_naming_the_stage():
    with pytest.raises(ValueError, match="area-moments: no chunks to fold"):
        combine_all(AreaMoments(), [])
    with pytest.raises(ValueError, match="at least one row"):
        frame_pieces(pd.DataFrame({"area": [1.0]}), 0)


def test_a_chunk_in_memory_keeps_its_rows_and_the_tables_positions(houses):
    table = frame_table(houses.set_index(np.arange(100, 197)), "houses", 40)
    rows = read_rows(table.chunks[1], ["area", "no-such-column"])
    assert list(rows.index) == list(range(40, 80)) and list(rows.columns) == ["area"]
    assert rows["area"].tolist() == houses["area"].iloc[40:80].tolist()


def test_the_run_engine_follows_the_config():
    from houseprice.config import ComputeConfig
    from houseprice.flows.engine import DaskEngine

    assert isinstance(run_engine(ComputeConfig()), LocalEngine)
    assert run_engine(ComputeConfig(local_threads=3)).threads == 3
    assert isinstance(run_engine(ComputeConfig(engine="dask")), DaskEngine)
