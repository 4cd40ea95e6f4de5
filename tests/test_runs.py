"""Run folders: a run takes its flow run's name as its id, so the UI and artifacts/runs agree."""

from __future__ import annotations

from houseprice.runs import start_run
from tests.conftest import small_config

RUN_ID = "20261126T041133Z-900c4e"


def test_a_run_takes_the_given_id_unless_a_folder_has_it_already(tmp_path):
    config = small_config(tmp_path)
    run = start_run(config, RUN_ID)
    assert run.run_id == RUN_ID and run.status.is_file()
    retried = start_run(config, RUN_ID)  # a retried flow run keeps its name; folders are new
    assert retried.run_id != RUN_ID and retried.root.is_dir()
    assert start_run(config).run_id not in {RUN_ID, retried.run_id}
