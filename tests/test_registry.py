"""Registry: the champion pointer, atomic promotion, the decision history, and what it refuses."""

from __future__ import annotations

import json
import os

import pytest

from houseprice import layout, registry, storage
from houseprice.locking import retrain_lock
from houseprice.runs import RUNNING
from tests.fakes import completed_run

# Run ids in the format new_run_id makes, oldest first.
RUN_A, RUN_B, RUN_C = (f"2026010{day}T000000Z-{day * 6}" for day in "123")


def test_there_is_no_champion_before_the_first_promotion(tmp_path):
    assert registry.read_champion(tmp_path) is None
    assert not registry.champion_path(tmp_path).exists()


def test_a_promoted_run_is_read_back_as_the_champion_with_a_relative_model_path(tmp_path):
    run = completed_run(tmp_path, RUN_A)
    promoted = registry.promote(tmp_path, RUN_A, "torch", "first champion")
    champion = registry.read_champion(tmp_path)
    assert champion == promoted
    assert (champion.run_id, champion.framework, champion.reason) == (
        RUN_A,
        "torch",
        "first champion",
    )
    assert tmp_path / champion.model_path == registry.model_file(run, "torch")
    assert not os.path.isabs(champion.model_path)  # the artifacts folder can be moved
    assert champion.promoted_at.startswith("20")


def test_promotion_is_atomic_and_keeps_earlier_champions(tmp_path):
    first = completed_run(tmp_path, "run-1")
    second = completed_run(tmp_path, "run-2")
    registry.promote(tmp_path, "run-1", "torch", "first")
    registry.promote(tmp_path, "run-2", "torch", "better")
    assert registry.read_champion(tmp_path).run_id == "run-2"
    assert first.model_file("torch").exists() and second.model_file("torch").exists()
    registry.promote(tmp_path, "run-1", "torch", "rollback")
    assert registry.read_champion(tmp_path).run_id == "run-1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "runs"]


def test_a_promotion_that_dies_before_its_rename_leaves_the_old_champion_whole(
    tmp_path, monkeypatch
):
    completed_run(tmp_path, RUN_A, promote="first")
    completed_run(tmp_path, RUN_B)
    before = registry.champion_path(tmp_path).read_bytes()

    def crash(*args):
        raise OSError("killed before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="killed before the rename"):
        registry.promote(tmp_path, RUN_B, "torch", "better")
    monkeypatch.undo()
    assert registry.champion_path(tmp_path).read_bytes() == before
    assert registry.read_champion(tmp_path).run_id == RUN_A
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "runs"]  # no temp


def test_unfinished_runs_cannot_be_promoted(tmp_path):
    run = layout.create_run(tmp_path, "killed")
    storage.write_json_atomic(run.status, {"status": "running"})
    with pytest.raises(registry.RegistryError, match="status is 'running'"):
        registry.promote(tmp_path, "killed", "torch", "no")
    with pytest.raises(registry.RegistryError, match="no run 'absent'"):
        registry.promote(tmp_path, "absent", "torch", "no")


def test_a_run_without_the_frameworks_model_or_an_unknown_framework_is_refused(tmp_path):
    completed_run(tmp_path, RUN_A, framework="torch")
    with pytest.raises(registry.RegistryError, match=f"run {RUN_A} has no tensorflow model"):
        registry.promote(tmp_path, RUN_A, "tensorflow", "no")
    with pytest.raises(registry.RegistryError, match="unknown framework 'sklearn'"):
        registry.promote(tmp_path, RUN_A, "sklearn", "no")
    assert registry.read_champion(tmp_path) is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda record: "{not json",
        lambda record: json.dumps({k: v for k, v in record.items() if k != "framework"}),
        lambda record: json.dumps({**record, "model_path": "../../etc/passwd"}),
        lambda record: json.dumps({**record, "run_id": "../../elsewhere"}),
    ],
    ids=["torn", "missing-field", "model-outside", "run-outside"],
)
def test_a_damaged_champion_json_is_refused_naming_the_file_and_the_fix(tmp_path, damage):
    completed_run(tmp_path, RUN_A, promote="first")
    path = registry.champion_path(tmp_path)
    path.write_text(damage(storage.read_json(path)))
    with pytest.raises(registry.RegistryError) as raised:
        registry.read_champion(tmp_path)
    assert str(path) in str(raised.value) and "houseprice promote" in str(raised.value)


@pytest.mark.parametrize("run_id", ["../x", "", "run-1", "20260101T000000Z-ABCDEF"])
def test_run_ids_given_by_a_person_must_have_the_run_id_format(run_id):
    with pytest.raises(registry.RegistryError, match="is not a run id"):
        registry.check_user_run_id(run_id)


def test_a_well_formed_run_id_is_accepted_as_given():
    assert registry.check_user_run_id(RUN_A) == RUN_A


def test_history_keeps_every_decision_in_order_stamped_with_the_time(tmp_path):
    registry.append_history(tmp_path, {"event": "decision", "run_id": "a", "promoted": False})
    registry.append_history(tmp_path, {"event": "manual", "run_id": "b"})
    history = registry.read_history(tmp_path)
    assert [(e["event"], e["run_id"]) for e in history] == [("decision", "a"), ("manual", "b")]
    assert all(entry["time"].startswith("20") for entry in history)
    assert registry.read_history(tmp_path / "elsewhere") == []


def test_history_survives_a_torn_last_line(tmp_path):
    registry.append_history(tmp_path, {"run_id": "a", "promoted": True})
    with open(registry.history_path(tmp_path), "a") as handle:
        handle.write('{"run_id": "b", "prom')  # a crash mid-append
    assert [entry["run_id"] for entry in registry.read_history(tmp_path)] == ["a"]


def test_the_no_champion_message_names_the_refused_run_and_both_ways_to_use_it(tmp_path):
    assert "run `houseprice retrain` first" in registry.no_champion_message(tmp_path)
    refused = {"event": "decision", "run_id": RUN_A, "promoted": False, "reason": "R² too low"}
    registry.append_history(tmp_path, refused)
    message = registry.no_champion_message(tmp_path)
    assert f"the latest run, {RUN_A}, was not promoted: R² too low" in message
    assert f"houseprice predict --run {RUN_A}" in message
    assert f"houseprice promote {RUN_A}" in message
    advised = {**refused, "reason": "drift; use `houseprice predict --run X` to score anyway"}
    registry.append_history(tmp_path, advised)
    assert registry.no_champion_message(tmp_path).count("--run") == 1  # not said twice


def _run_with_status(artifacts, run_id, status, **fields):
    run = layout.create_run(artifacts, run_id)
    storage.write_json_atomic(run.status, {"run_id": run_id, "status": status, **fields})
    return run


def test_the_latest_completed_run_skips_newer_failed_and_running_ones(tmp_path):
    assert registry.latest_completed_run(tmp_path) is None
    completed_run(tmp_path, RUN_A)
    _run_with_status(tmp_path, RUN_B, "failed")
    _run_with_status(tmp_path, RUN_C, RUNNING)
    assert registry.latest_completed_run(tmp_path) == RUN_A


def test_list_runs_summarizes_each_run_oldest_first_and_names_a_dead_one_killed(tmp_path):
    metrics = {
        "snapshot": "ab" * 32,
        "selected_model": "torch",
        "torch": {"test": {"rmse": 1.5}},
        "promotion": {"promoted": True},
    }
    completed_run(tmp_path, RUN_A, metrics=metrics)
    _run_with_status(tmp_path, RUN_B, "failed", error="boom", failed_stage="validate")
    _run_with_status(tmp_path, RUN_C, RUNNING)
    (layout.runs_dir(tmp_path) / ".tmp-copy").mkdir()  # hidden: never a run
    listed = registry.list_runs(tmp_path)
    assert [(s["run_id"], s["status"]) for s in listed] == [
        (RUN_A, "completed"),
        (RUN_B, "failed"),
        (RUN_C, "killed"),  # says running, but nobody holds the retrain lock
    ]
    assert listed[0]["test"] == {"rmse": 1.5} and listed[0]["snapshot"] == "ab" * 32
    assert (listed[1]["error"], listed[1]["failed_stage"], listed[1]["test"]) == (
        "boom",
        "validate",
        None,
    )
    with retrain_lock(tmp_path / "data", tmp_path, 0, print):
        assert registry.list_runs(tmp_path)[2]["status"] == RUNNING


def _decided_run(artifacts, run_id, promoted, champion_run_id=None):
    promotion = {"promoted": promoted, "framework": "torch", "champion_run_id": champion_run_id}
    return completed_run(artifacts, run_id, metrics={"promotion": promotion})


def test_a_promote_decision_never_applied_is_found_with_its_promotion(tmp_path):
    _decided_run(tmp_path, RUN_A, promoted=True)  # completed, then killed before promoting
    run_id, promotion = registry.interrupted_promotion(tmp_path)
    assert run_id == RUN_A and promotion["framework"] == "torch"


def test_no_recovery_for_applied_refused_or_stale_decisions(tmp_path):
    _decided_run(tmp_path, "run-1", promoted=False)
    assert registry.interrupted_promotion(tmp_path) is None
    _decided_run(tmp_path, "run-2", promoted=True, champion_run_id="run-0")
    assert registry.interrupted_promotion(tmp_path) is None  # champion is no longer run-0
    registry.promote(tmp_path, "run-1", "torch", "by hand")
    _decided_run(tmp_path, "run-3", promoted=True, champion_run_id="run-1")
    registry.append_history(tmp_path, {"event": "decision", "run_id": "run-3", "promoted": True})
    assert registry.interrupted_promotion(tmp_path) is None  # it was applied
