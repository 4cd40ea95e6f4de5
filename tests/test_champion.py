"""The champion, read once: each part that cannot be read is None with the reason, never a crash."""

from __future__ import annotations

import pandas as pd
import pytest

from houseprice import layout, registry, storage
from houseprice.champion import ChampionRun, RunBasis, load_champion, training_snapshot
from houseprice.config import PathsConfig, SplitConfig
from houseprice.runs import COMPLETED
from houseprice.tasks.collect import read_earlier_bases
from tests.conftest import make_houses, small_config
from tests.test_drift import _champion


def _paths(tmp_path) -> PathsConfig:
    return PathsConfig(data_dir=tmp_path / "data", artifacts_dir=tmp_path / "artifacts")


def test_before_the_first_promotion_there_is_no_champion(tmp_path):
    assert load_champion(_paths(tmp_path).artifacts_dir) is None


def test_a_champion_whose_model_does_not_load_keeps_its_record_and_training_rows(tmp_path):
    paths = _paths(tmp_path)
    run_id = _champion(paths, make_houses(rows=300), SplitConfig())  # its model is b"model"
    champion = load_champion(paths.artifacts_dir)
    assert (champion.run_id, champion.framework) == (run_id, "torch")
    assert champion.model is None and "model manifest" in champion.model_problem
    assert champion.basis.config["split"] == SplitConfig().model_dump()
    assert len(pd.read_parquet(training_snapshot(champion, paths.data_dir))) == 300


def test_a_damaged_run_config_leaves_the_basis_unread_and_says_why(tmp_path):
    paths = _paths(tmp_path)
    run_id = _champion(paths, make_houses(rows=300), SplitConfig())
    layout.open_run(paths.artifacts_dir, run_id).config.write_text("split: [unclosed\n")
    champion = load_champion(paths.artifacts_dir)
    assert champion.run_id == run_id and champion.basis is None
    assert champion.basis_problem.startswith("while parsing")
    with pytest.raises(ValueError, match=r"^while parsing"):
        training_snapshot(champion, paths.data_dir)
    with pytest.raises(ValueError, match=r"^while parsing"):  # collect then trains anyway
        read_earlier_bases(paths.artifacts_dir, champion)


def test_an_unreadable_champion_record_stops_the_load(tmp_path):
    paths = _paths(tmp_path)
    _champion(paths, make_houses(rows=300), SplitConfig())
    registry.champion_path(paths.artifacts_dir).write_text("{not json")
    with pytest.raises(registry.RegistryError, match=r"champion\.json is unreadable"):
        load_champion(paths.artifacts_dir)


def test_collect_reads_only_a_latest_run_that_is_not_the_champion(tmp_path):
    artifacts = _paths(tmp_path).artifacts_dir
    record = registry.Champion("run-1", "torch", "runs/run-1/torch_model.pt", "then", "test")
    basis = RunBasis("run-1", "v000001", "hash-1", {"split": {}}, "abc")
    champion = ChampionRun(record, basis, None, None, "no model in this test")
    assert read_earlier_bases(artifacts, None) == (None, None)
    for run_id in ("run-1", "run-2"):  # run-1 has no run files: it must not be read again
        run = layout.create_run(artifacts, run_id)
        storage.write_json_atomic(run.status, {"status": COMPLETED})
        if run_id == "run-1":
            assert read_earlier_bases(artifacts, champion) == (basis, basis)
    latest = layout.open_run(artifacts, "run-2")
    storage.write_json_atomic(latest.lineage, {"dataset": {"version": "v000002"}})
    latest.config.write_text("split: {}\n")
    assert read_earlier_bases(artifacts, champion) == (
        basis,
        RunBasis("run-2", "v000002", None, {"split": {}}, None),
    )


@pytest.mark.slow
def test_a_run_with_an_unreadable_champion_record_stops_before_training(tmp_path, prefect_harness):
    from houseprice.flows.retrain import retrain

    source = tmp_path / "houses.csv"
    make_houses(rows=200).to_csv(source, index=False)
    config = small_config(tmp_path, data={"source": str(source)})
    artifacts = config.paths.artifacts_dir
    record = registry.champion_path(artifacts, config.data.model_name)  # this run's model's
    record.parent.mkdir(parents=True)
    record.write_text("{not json")
    with pytest.raises(registry.RegistryError, match=r"restore it with `houseprice promote`"):
        retrain(config)
    assert not layout.runs_dir(artifacts).exists()  # nothing trained, nothing to clean up
    assert record.read_text() == "{not json"  # left for a person
