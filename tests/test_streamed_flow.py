"""The retrain flow on a streamed source: the same models as in memory, never all rows at once.

One Parquet folder of 6,000 houses in three files of 1,000-row groups, trained twice: in memory
(below compute.stream_above_rows) and streamed (the threshold at 0, six chunks). The same
streamed run on a 2-process LocalCluster is in tests/test_dask_engine.py. The split hashes
every column in both, medians are exact below the sample size, so the two runs fit the same
rows with the same scaling: their coefficients must agree to 1e-9 relative.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from houseprice import layout
from tests.conftest import STREAMED, small_config, write_houses_folder

pytestmark = pytest.mark.slow

ROWS, FILES = 6_000, 3


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A folder of three Parquet files of 2,000 houses each, in row groups of 1,000."""
    return write_houses_folder(tmp_path_factory.mktemp("streamed") / "houses", ROWS, FILES)


def _run(source: Path, root: Path, evaluation: dict | None = None, **compute) -> layout.RunPaths:
    from houseprice.flows.retrain import retrain

    sections = {"evaluation": evaluation} if evaluation else {}
    config = small_config(root, data={"source": str(source)}, compute=compute, **sections)
    folder = Path(retrain(config))
    return layout.RunPaths(folder.name, folder)


@pytest.fixture(scope="module")
def runs(source, tmp_path_factory, prefect_harness) -> dict[str, layout.RunPaths]:
    """The same data trained in memory and streamed, each in folders of its own."""
    return {
        "memory": _run(source, tmp_path_factory.mktemp("memory")),
        "streamed": _run(source, tmp_path_factory.mktemp("streamed"), **STREAMED),
    }


def _metrics(run: layout.RunPaths) -> dict:
    return json.loads(run.metrics.read_text())


def _coefficients(run: layout.RunPaths) -> dict[str, dict[str, float]]:
    metrics = _metrics(run)
    return {name: metrics[name]["coefficients"] for name in ("ols", "torch", "tensorflow")}


def test_streamed_coefficients_equal_the_in_memory_ones(runs):
    memory, streamed = _coefficients(runs["memory"]), _coefficients(runs["streamed"])
    for model, expected in memory.items():
        for term, value in expected.items():
            got = streamed[model][term]
            assert abs(got - value) <= 1e-9 * max(abs(value), 1e-12), (model, term, got, value)


def test_streamed_trainers_match_the_streamed_qr_reference(runs):
    check = _metrics(runs["streamed"])["reference_check"]
    assert set(check) == {"torch", "tensorflow"}
    assert all(entry["within_tolerance"] for entry in check.values()), check


def test_streamed_run_counts_every_part_and_leaves_no_design_files(runs):
    streamed, memory = runs["streamed"], runs["memory"]
    evaluation = _metrics(streamed)["evaluation"]
    assert evaluation == _metrics(memory)["evaluation"]
    assert evaluation["training_rows"] + evaluation["test_rows"] < ROWS  # validation rows too
    assert not streamed.design_dir.exists()  # scratch: removed when the run ended
    assert streamed.report.is_file() and "area" in streamed.report.read_text()


# More test rows wanted than the split gives: the runs are judged by cross-validation.
CV_JUDGED = {"min_test_rows": 5_000}


@pytest.fixture(scope="module")
def cv_runs(source, tmp_path_factory, prefect_harness) -> dict[str, layout.RunPaths]:
    """Runs judged by cross-validation: in memory, and over the chunks read in place."""
    return {
        "memory": _run(source, tmp_path_factory.mktemp("cv-memory"), evaluation=CV_JUDGED),
        "streamed": _run(
            source, tmp_path_factory.mktemp("cv-streamed"), evaluation=CV_JUDGED, **STREAMED
        ),
    }


def test_a_chunked_run_is_cross_validated_as_in_memory(cv_runs):
    memory, streamed = (_metrics(cv_runs[kind]) for kind in ("memory", "streamed"))
    assert streamed["evaluation"]["basis"] == "cross-validation"
    assert streamed["evaluation"]["cross_validation"]["rows"] == ROWS
    for model in ("ols", "torch", "tensorflow"):
        expected, got = memory[model]["cross_validated"], streamed[model]["cross_validated"]
        for figure, value in expected.items():
            assert got[figure] == pytest.approx(value, rel=1e-9), (model, figure)


def test_streamed_snapshot_keeps_the_source_files(runs):
    lineage = json.loads(runs["streamed"].lineage.read_text())
    snapshot = runs["streamed"].root.parents[2] / "data" / "snapshots" / lineage["snapshot"]
    assert sorted(p.suffix for p in snapshot.iterdir()) == [".parquet"] * FILES


def test_streamed_and_in_memory_runs_store_the_same_training_profile(runs):
    # The drift profile folded over six chunks, and over one: the same rows, the same counts.
    memory, streamed = (json.loads(runs[name].drift_profile.read_text()) for name in runs)
    assert streamed == memory
    assert memory["rows"] == _metrics(runs["memory"])["evaluation"]["training_rows"]


def test_a_killed_streamed_runs_scratch_is_removed_by_the_next_run(tmp_path):
    from houseprice.runs import remove_stale_scratch

    killed, finished = layout.create_run(tmp_path), layout.create_run(tmp_path)
    killed.design_dir.mkdir()
    (killed.design_dir / "train-00000.npy").write_bytes(b"\0" * 64)
    finished.report.write_text("kept")
    removed: list[str] = []
    remove_stale_scratch(tmp_path, lambda message, *args: removed.append(message % args))
    assert not killed.design_dir.exists() and killed.root.is_dir()  # only the scratch goes
    assert finished.report.read_text() == "kept"
    assert len(removed) == 1 and killed.run_id in removed[0]
