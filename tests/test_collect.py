"""Collect: landing files become dataset versions; bad ones are quarantined, none taken twice."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from houseprice import datasets, layout, registry, storage
from houseprice.champion import RunBasis
from houseprice.tasks.collect import rows_not_in, update_dataset
from houseprice.tasks.ingest import read_source
from houseprice.tasks.no_retrain import no_retrain_reason
from houseprice.tasks.suites import build_learned_suite
from houseprice.tasks.validate import DataValidationError
from tests.conftest import make_houses, small_config


@pytest.fixture
def landing(tmp_path):
    """A seed CSV of 60 houses and a landing-mode config writing under tmp_path."""
    source = tmp_path / "seed.csv"
    make_houses(rows=60, seed=0).to_csv(source, index=False)
    config = small_config(
        tmp_path, data={"source": str(source), "landing_dir": str(tmp_path / "landing")}
    )
    return config, tmp_path / "landing", config.paths.data_dir


def drop(folder: Path, name: str, frame: pd.DataFrame) -> Path:
    """Put a file in the landing folder the way a producer would."""
    folder.mkdir(parents=True, exist_ok=True)
    storage.write_table_atomic(folder / name, frame)
    return folder / name


def test_first_version_is_seeded_from_the_source_and_learns_the_suite(landing):
    config, folder, data_dir = landing
    collected = update_dataset(config.data, data_dir)
    assert collected.version.version == "v000001" and collected.version.parent is None
    assert collected.version.rows == len(collected.frame) == 60
    assert datasets.read_current_version(data_dir) == collected.version
    assert collected.version.content_hash == datasets.hash_frame(collected.frame)
    suite = storage.read_json(datasets.learned_suite_path(data_dir))
    assert suite == collected.suite
    assert any(e["kwargs"].get("column") == "hood" for e in suite["expectations"])
    assert folder.is_dir() and collected.accepted == collected.quarantined == []


def test_a_seed_that_fails_validation_commits_nothing(landing):
    config, _, data_dir = landing
    make_houses(rows=60).assign(price=-1.0).to_csv(config.data.source, index=False)
    with pytest.raises(DataValidationError, match="'price'"):
        update_dataset(config.data, data_dir)
    assert datasets.read_current_version(data_dir) is None
    assert not datasets.learned_suite_path(data_dir).exists()


def test_a_good_file_appends_without_duplicate_rows(landing):
    config, folder, data_dir = landing
    update_dataset(config.data, data_dir)
    overlap = make_houses(rows=60, seed=0).head(10)  # already in version 1
    path = drop(folder, "batch.csv", pd.concat([overlap, make_houses(rows=20, seed=1)]))
    digest = storage.file_sha256(path)
    collected = update_dataset(config.data, data_dir)
    version = collected.version
    assert (version.version, version.parent, version.rows) == ("v000002", "v000001", 80)
    assert collected.rows_added == version.rows_added == 20 and len(collected.new_rows) == 20
    assert not collected.frame.duplicated().any()
    [record] = version.accepted
    assert (record.name, record.sha256, record.rows) == ("batch.csv", digest, 30)
    assert storage.file_sha256(data_dir / record.stored_as) == digest
    assert list(folder.iterdir()) == []


def test_bad_files_are_quarantined_with_reports_and_the_good_one_is_accepted(landing):
    config, folder, data_dir = landing
    update_dataset(config.data, data_dir)
    drop(folder, "good.parquet", make_houses(rows=20, seed=1))
    drop(folder, "negative.csv", make_houses(rows=20, seed=2).assign(price=-5.0))
    drop(folder, "extra.csv", make_houses(rows=20, seed=3).assign(agent="X"))
    (folder / "broken.parquet").write_bytes(b"not parquet")
    collected = update_dataset(config.data, data_dir)
    assert [item.name for item in collected.accepted] == ["good.parquet"]
    reasons = {item.name: item.reason for item in collected.quarantined}
    assert set(reasons) == {"negative.csv", "extra.csv", "broken.parquet"}
    assert "'price'" in reasons["negative.csv"] and "agent" in reasons["extra.csv"]
    assert "cannot read" in reasons["broken.parquet"]
    assert collected.version.quarantined == collected.quarantined
    for item in collected.quarantined:
        stored = data_dir / item.stored_as
        assert stored.is_file() and stored.parent.parent.name == "quarantine"
        report = storage.read_json(stored.with_name(f"{item.name}.validation.json"))
        assert report["success"] is False
    assert collected.version.rows == 80 and list(folder.iterdir()) == []


def test_only_bad_files_leave_the_dataset_untouched(landing):
    config, folder, data_dir = landing
    first = update_dataset(config.data, data_dir).version
    drop(folder, "strings.csv", make_houses(rows=20, seed=2).assign(area="big"))
    collected = update_dataset(config.data, data_dir)
    assert collected.version == first == datasets.read_current_version(data_dir)
    [refused] = collected.quarantined
    assert refused.reason.startswith("expect_column_values_to_be_in_type_list on 'area'")
    assert not datasets.dataset_version_exists(data_dir, "v000002")


def test_an_empty_landing_folder_makes_no_new_version(landing):
    config, _, data_dir = landing
    first = update_dataset(config.data, data_dir)
    again = update_dataset(config.data, data_dir)
    assert again.version == first.version and again.rows_added == 0
    assert sorted(p.name for p in datasets.versions_dir(data_dir).iterdir()) == [
        "current.json",
        "parts",
        "suite.json",
        "v000001.json",
    ]


@pytest.mark.parametrize("dies_writing", ["the new part", "v000002.json", "current.json"])
def test_a_crash_before_the_commit_leaves_the_file_in_landing(landing, monkeypatch, dies_writing):
    config, folder, data_dir = landing
    update_dataset(config.data, data_dir)
    drop(folder, "batch.csv", make_houses(rows=20, seed=1))
    real_atomic_path = storage.atomic_path

    def killed_while_writing(destination):
        destination = Path(destination)  # the first version's part exists: only v2's is written
        name = "the new part" if destination.parent.name == "parts" else destination.name
        if name == dies_writing:
            raise KeyboardInterrupt(f"killed while writing {dies_writing}")
        return real_atomic_path(destination)

    monkeypatch.setattr(storage, "atomic_path", killed_while_writing)
    with pytest.raises(KeyboardInterrupt):
        update_dataset(config.data, data_dir)
    assert datasets.read_current_version(data_dir).version == "v000001"
    assert [p.name for p in folder.iterdir()] == ["batch.csv"]
    assert not [p for p in datasets.versions_dir(data_dir).iterdir() if p.name.startswith(".")]
    monkeypatch.undo()
    assert update_dataset(config.data, data_dir).version.rows == 80


def test_a_crash_after_the_commit_is_finished_not_ingested_twice(landing):
    config, folder, data_dir = landing
    update_dataset(config.data, data_dir)
    batch = drop(folder, "batch.csv", make_houses(rows=20, seed=1))
    content = batch.read_bytes()
    committed = update_dataset(config.data, data_dir).version
    batch.write_bytes(content)  # as if the run died between the commit and the move
    again = update_dataset(config.data, data_dir)
    assert again.version == committed and again.accepted == []
    assert list(folder.iterdir()) == []


def _parquet_bytes(data_dir: Path) -> dict[str, int]:
    """Size of every Parquet file the dataset versions keep, by path."""
    versions = datasets.versions_dir(data_dir)
    return {
        str(p.relative_to(versions)): p.stat().st_size
        for p in versions.rglob("*.parquet")
        if "accepted" not in p.parts
    }


def test_a_new_version_stores_only_the_rows_it_adds(tmp_path):
    source = tmp_path / "seed.csv"
    make_houses(rows=2000, seed=0).to_csv(source, index=False)
    landing_dir = tmp_path / "landing"
    config = small_config(tmp_path, data={"source": str(source), "landing_dir": str(landing_dir)})
    data_dir = config.paths.data_dir
    first = update_dataset(config.data, data_dir)
    before = _parquet_bytes(data_dir)
    drop(landing_dir, "day.csv", make_houses(rows=10, seed=7))
    second = update_dataset(config.data, data_dir)
    written = {path: size for path, size in _parquet_bytes(data_dir).items() if path not in before}
    [(new_part, new_bytes)] = written.items()  # one new file: the day's rows, no copy of history
    assert new_part == f"parts/{second.version.parts[-1]}.parquet"
    assert second.version.parts == [*first.version.parts, second.version.parts[-1]]
    assert new_bytes < sum(before.values()) / 5  # Parquet has a ~2 KB floor per file
    assert pd.read_parquet(datasets.versions_dir(data_dir) / new_part).shape[0] == 10
    pd.testing.assert_frame_equal(datasets.load_dataset_version(data_dir, "v000002"), second.frame)
    assert len(datasets.load_dataset_version(data_dir, "v000001")) == 2000


def test_a_file_of_rows_already_held_keeps_the_content_hash(landing):
    config, folder, data_dir = landing
    first = update_dataset(config.data, data_dir).version
    drop(folder, "again.csv", make_houses(rows=60, seed=0).head(5))
    second = update_dataset(config.data, data_dir).version
    assert second.rows_added == 0 and second.parts == first.parts
    assert second.content_hash == first.content_hash


def test_versions_in_the_old_whole_file_format_load_and_grow_as_parts(landing):
    config, folder, data_dir = landing
    seed = read_source(config.data.source)
    legacy = datasets.DatasetVersion(
        "v000001", None, len(seed), datasets.hash_frame(seed), "2026-01-01T00:00:00Z", "x", 60
    )  # as the first release wrote it: one whole file, no parts in the manifest
    storage.write_parquet_atomic(datasets.version_data_path(data_dir, "v000001"), seed)
    manifest = {k: v for k, v in legacy.to_dict().items() if k != "parts"}
    storage.write_json_atomic(datasets.version_manifest_path(data_dir, "v000001"), manifest)
    storage.write_json_atomic(datasets.current_version_path(data_dir), manifest)
    suite = build_learned_suite(seed, "price", None)
    storage.write_json_atomic(datasets.learned_suite_path(data_dir), suite)
    drop(folder, "day.csv", make_houses(rows=20, seed=1))
    grown = update_dataset(config.data, data_dir)
    assert grown.version.version == "v000002" and len(grown.version.parts) == 2
    pd.testing.assert_frame_equal(datasets.load_dataset_version(data_dir, "v000002"), grown.frame)
    pd.testing.assert_frame_equal(datasets.load_dataset_version(data_dir, "v000001"), seed)


def test_rows_not_in_compares_whole_rows_including_missing_values():
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": ["x", "y", None]})
    reference = frame.iloc[[1]].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        rows_not_in(frame, reference), frame.iloc[[0, 2]].reset_index(drop=True)
    )
    assert rows_not_in(frame, frame).empty


def test_nothing_new_skips_only_with_the_champions_data_and_settings(landing):
    config, _, data_dir = landing
    collected = update_dataset(config.data, data_dir)
    settings = config.model_dump(mode="json")
    same = RunBasis("run-1", "v000001", collected.version.content_hash, settings)
    reason = no_retrain_reason(replace(collected, champion=same), config)
    assert reason.startswith("nothing new: dataset v000001 (60 rows)") and "run-1" in reason
    # A later run that was not promoted trained on it too: repeating it would change nothing.
    not_promoted = same._replace(run_id="run-2")
    reason = no_retrain_reason(replace(collected, champion=None, latest=not_promoted), config)
    assert "run run-2" in reason and "champion: none yet" in reason
    older = same._replace(dataset_hash="another version's hash")
    changed = same._replace(config={**settings, "lock_timeout_s": 1})
    for champion in (None, older, changed):
        assert no_retrain_reason(replace(collected, champion=champion), config) is None


# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_scheduled_runs_train_then_skip_then_train_on_the_new_version(
    tmp_path, prefect_harness, monkeypatch
):
    from houseprice.flows.retrain import retrain

    reads = []  # each run reads champion.json once, for collect, drift and the gate together
    read_champion = registry.read_champion
    monkeypatch.setattr(registry, "read_champion", lambda *a: reads.append(a) or read_champion(*a))
    source = tmp_path / "seed.csv"
    make_houses(rows=300, seed=2).to_csv(source, index=False)
    folder = tmp_path / "landing"
    config = small_config(tmp_path, data={"source": str(source), "landing_dir": str(folder)})
    artifacts = config.paths.artifacts_dir

    first = Path(retrain(config))
    assert len(reads) == 1
    assert registry.read_champion(artifacts).run_id == first.name
    assert storage.read_json(first / "lineage.json")["dataset"]["version"] == "v000001"

    message = retrain(config)  # nothing new: no run folder, no new version
    assert message.startswith("no retrain: nothing new")
    assert [p.name for p in layout.runs_dir(artifacts).iterdir()] == [first.name]

    drop(folder, "batch.csv", make_houses(rows=120, seed=5))
    drop(folder, "bad.csv", make_houses(rows=20, seed=6).assign(price=-1.0))
    reads.clear()
    third = Path(retrain(config))
    assert len(reads) == 1
    dataset = storage.read_json(third / "lineage.json")["dataset"]
    assert (dataset["version"], dataset["rows"], dataset["rows_added"]) == ("v000002", 420, 120)
    assert dataset["accepted"] == ["batch.csv"] and list(dataset["quarantined"]) == ["bad.csv"]
    metrics = storage.read_json(third / "metrics.json")
    assert metrics["dataset"] == dataset
    assert metrics["drift"]["checked"] and metrics["drift"]["champion_run_id"] == first.name
    assert set(metrics["drift"]["scores"]) == {"area", "year", "hood"}
    assert list(folder.iterdir()) == []
