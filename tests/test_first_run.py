"""The README's first command works on a fresh machine: a brand-new PREFECT_HOME, a busy CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from houseprice import prefect_server

REPO_ROOT = Path(__file__).resolve().parents[1]
BURN_CPU = "while True: pass"


def _houseprice_command() -> list[str]:
    """The console command as its module: this checkout's code, whatever script is installed."""
    return [sys.executable, "-m", "houseprice.cli"]


@pytest.mark.e2e  # spawns the houseprice command
def test_retrain_succeeds_first_time_with_a_new_prefect_home_on_a_busy_machine(tmp_path):
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),  # absent: nothing migrated yet
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("PREFECT_API_URL", None)
    argv = [
        *_houseprice_command(),
        "retrain",
        "--source",
        "synthetic:rows=200,features=2,seed=0",
        "--data-dir",
        str(tmp_path / "data"),
        "--artifacts-dir",
        str(tmp_path / "artifacts"),
    ]
    burners = [subprocess.Popen([sys.executable, "-c", BURN_CPU]) for _ in range(2)]
    try:
        result = subprocess.run(
            argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900
        )
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    assert result.returncode == 0, result.stderr[-4000:]
    statuses = [
        json.loads(path.read_text())["status"]
        for path in (tmp_path / "artifacts" / "runs").glob("*/run.json")
    ]
    assert statuses == ["completed"]
    assert "preparing Prefect's database" in result.stderr


def _use_database(path: Path):
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, temporary_settings

    return temporary_settings(
        updates={PREFECT_API_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{path}"}
    )


def test_a_missing_database_is_announced_as_new(tmp_path):
    with _use_database(tmp_path / "absent" / "prefect.db"):
        assert prefect_server.database_is_new()


def test_an_existing_database_is_not_announced(tmp_path):
    (tmp_path / "prefect.db").write_bytes(b"SQLite format 3\x00")
    with _use_database(tmp_path / "prefect.db"):
        assert not prefect_server.database_is_new()


def test_the_services_a_temporary_server_leaves_off_are_prefect_settings(monkeypatch):
    # A misspelt or renamed setting would be ignored, and the server would run the service.
    from prefect.settings import Settings

    for name, value in prefect_server.SERVER_SETTINGS.items():
        monkeypatch.setenv(name, value)
    services = Settings().server.services
    names = {
        name.removeprefix("PREFECT_SERVER_SERVICES_").removesuffix("_ENABLED").lower()
        for name in prefect_server.SERVER_SETTINGS
    }
    assert names and not any(getattr(services, name).enabled for name in names)
    assert services.task_run_recorder.enabled and services.event_persister.enabled


def test_a_server_that_exits_at_start_is_reported_with_its_output(monkeypatch):
    monkeypatch.setattr(prefect_server, "database_is_new", lambda: False)
    failing = [sys.executable, "-c", "import sys; sys.exit('no database for you')"]
    server = prefect_server.TemporaryServer(print, command=lambda port: failing)
    server.start()
    expected = r"(?s)exited with code 1.*no database for you"
    with pytest.raises(prefect_server.ServerStartError, match=expected):
        server.wait_ready(timeout_s=60)
