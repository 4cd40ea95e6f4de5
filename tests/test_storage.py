"""Storage: atomic writes, content-addressed snapshots, one folder per run."""

import pandas as pd
import pytest

from houseprice import storage


def test_atomic_write_leaves_no_partial_file_on_error(tmp_path):
    target = tmp_path / "out.json"
    storage.write_json_atomic(target, {"a": 1})

    def broken_writer(path):
        path.write_text("half")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        storage.write_with_atomic(target, broken_writer)
    assert storage.read_json(target) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_snapshot_is_content_addressed_and_stored_once(tmp_path, houses):
    first = storage.store_snapshot(houses, tmp_path)
    second = storage.store_snapshot(houses.copy(), tmp_path)
    assert first == second
    assert len(list(storage.snapshots_dir(tmp_path).iterdir())) == 1
    changed = houses.assign(price=houses.price + 1)
    assert storage.store_snapshot(changed, tmp_path).content_hash != first.content_hash
    pd.testing.assert_frame_equal(storage.load_snapshot(tmp_path, first.content_hash), houses)


def test_missing_snapshot_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no data snapshot"):
        storage.load_snapshot(tmp_path, "0" * 64)


def test_runs_never_share_a_folder(tmp_path):
    first = storage.create_run(tmp_path)
    second = storage.create_run(tmp_path)
    assert first.root != second.root
    with pytest.raises(FileExistsError):
        storage.create_run(tmp_path, first.run_id)
    assert storage.open_run(tmp_path, first.run_id) == first
    with pytest.raises(FileNotFoundError):
        storage.open_run(tmp_path, "nope")
