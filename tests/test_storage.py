"""Storage: atomic writes, content-addressed snapshots, one folder per run."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from houseprice import datasets, layout, storage


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


def test_a_folder_written_again_replaces_the_first_one_whole(tmp_path):
    """A task run twice (a Dask worker lost with its result) exports its folder twice."""
    target = tmp_path / "export_savedmodel"

    def folder_writer(files):
        def write(path):
            path.mkdir()
            for name in files:
                (path / name).write_text(name)

        return write

    storage.write_with_atomic(target, folder_writer(["a", "b"]))
    storage.write_with_atomic(target, folder_writer(["a", "c"]))
    assert sorted(p.name for p in target.iterdir()) == ["a", "c"]
    assert [p.name for p in tmp_path.iterdir()] == ["export_savedmodel"]  # nothing left aside


def test_a_write_error_is_raised_as_is_never_as_its_own_cause(tmp_path):
    """An exception that is its own cause cannot be serialized back from a Dask worker."""
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")

    def file_writer(path):
        path.write_text("a file where a folder is")

    with pytest.raises(OSError) as raised:
        storage.write_with_atomic(tmp_path / "taken", file_writer)
    assert raised.value.__cause__ is not raised.value


def test_snapshot_is_content_addressed_and_stored_once(tmp_path, houses):
    first = datasets.store_snapshot(houses, tmp_path)
    second = datasets.store_snapshot(houses.copy(), tmp_path)
    assert first == second
    assert len(list(datasets.snapshots_dir(tmp_path).iterdir())) == 1
    changed = houses.assign(price=houses.price + 1)
    assert datasets.store_snapshot(changed, tmp_path).content_hash != first.content_hash
    pd.testing.assert_frame_equal(datasets.load_snapshot(tmp_path, first.content_hash), houses)


def test_missing_snapshot_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no data snapshot"):
        datasets.load_snapshot(tmp_path, "0" * 64)


def test_runs_never_share_a_folder(tmp_path):
    first = layout.create_run(tmp_path)
    second = layout.create_run(tmp_path)
    assert first.root != second.root
    with pytest.raises(FileExistsError):
        layout.create_run(tmp_path, first.run_id)
    assert layout.open_run(tmp_path, first.run_id) == first
    with pytest.raises(FileNotFoundError):
        layout.open_run(tmp_path, "nope")


class _NanReason(str):
    """Equal to any reason that says the value was NaN."""

    def __eq__(self, other):
        return isinstance(other, str) and "was NaN" in other

    __hash__ = str.__hash__


ANY_NAN_REASON = _NanReason()


def _strict(text: str):
    """Parse as strict JSON: NaN and Infinity, which Python's json accepts, are refused."""

    def refuse(constant: str):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_are_written_as_null_with_the_reason_beside(tmp_path):
    target = tmp_path / "metrics.json"
    payload = {
        "test": {"rmse": 1.5, "r2": float("nan")},
        "gap": np.float64(np.inf),
        "losses": [1.0, float("nan")],
        "given": {"r2": float("nan"), "null_reasons": {"r2": "one row: no variance"}},
    }
    storage.write_json_atomic(target, payload)
    written = _strict(target.read_text())
    assert written["test"] == {"rmse": 1.5, "r2": None, "null_reasons": {"r2": ANY_NAN_REASON}}
    assert written["gap"] is None and "Infinity" in written["null_reasons"]["gap"]
    assert written["losses"] == [1.0, None] and "1 of 2" in written["null_reasons"]["losses"]
    assert written["given"]["null_reasons"] == {"r2": "one row: no variance"}


def test_finite_payloads_are_written_unchanged(tmp_path):
    payload = {"a": [1, 2.5, None], "b": {"c": "text", "d": True}}
    storage.write_json_atomic(tmp_path / "x.json", payload)
    assert _strict((tmp_path / "x.json").read_text()) == payload


def test_the_suite_wide_strict_json_check_finds_a_bare_nan(tmp_path):
    from tests.conftest import strict_json_problems

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text('{"r2": NaN}')
    storage.write_json_atomic(tmp_path / "ok" / "metrics.json", {"r2": float("nan")})
    problems = strict_json_problems(tmp_path)
    assert len(problems) == 1 and "run/metrics.json" in problems[0] and "NaN" in problems[0]
    (tmp_path / "run" / "metrics.json").unlink()  # the session-wide check would flag it too


def test_a_folder_of_copies_appears_whole_or_not_at_all(tmp_path):
    (tmp_path / "a").write_bytes(b"first")
    destination = tmp_path / "store" / "abc"
    with pytest.raises(FileNotFoundError):
        storage.copy_files_atomic(destination, [(tmp_path / "a", "1"), (tmp_path / "gone", "2")])
    assert not destination.exists() and list(destination.parent.iterdir()) == []
    assert storage.copy_files_atomic(destination, [(tmp_path / "a", "part-0")])
    (tmp_path / "a").write_bytes(b"second")
    assert not storage.copy_files_atomic(destination, [(tmp_path / "a", "part-0")])
    assert (destination / "part-0").read_bytes() == b"first"
    both = hashlib.sha256(b"first" + b"second").hexdigest()
    assert storage.files_sha256([destination / "part-0", tmp_path / "a"]) == both
