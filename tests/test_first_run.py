"""The README's first command works on a fresh machine: a brand-new PREFECT_HOME, a busy CPU."""

from __future__ import annotations

import json
import os
import sqlite3
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


def _stamp(path: Path, *revisions: str) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        connection.executemany("INSERT INTO alembic_version VALUES (?)", [(r,) for r in revisions])


def test_a_missing_database_is_announced_as_needing_preparation(tmp_path):
    with _use_database(tmp_path / "absent" / "prefect.db"):
        assert prefect_server.database_needs_migrating()


def test_a_database_at_an_older_revision_needs_migrating(tmp_path):
    _stamp(tmp_path / "prefect.db", "0000aaaa0000")
    with _use_database(tmp_path / "prefect.db"):
        assert prefect_server.database_needs_migrating()


def test_a_database_at_prefects_newest_revision_is_ready(tmp_path):
    heads = prefect_server._migration_heads()
    assert len(heads) == 1  # Prefect's SQLite migrations form one line of history
    _stamp(tmp_path / "prefect.db", *heads)
    with _use_database(tmp_path / "prefect.db"):
        assert not prefect_server.database_needs_migrating()


def test_a_server_that_exits_at_start_is_reported_with_its_output(monkeypatch):
    monkeypatch.setattr(prefect_server, "database_needs_migrating", lambda: False)
    failing = [sys.executable, "-c", "import sys; sys.exit('no database for you')"]
    server = prefect_server.TemporaryServer(print, command=lambda port: failing)
    server.start()
    expected = r"(?s)exited with code 1.*no database for you"
    with pytest.raises(prefect_server.ServerStartError, match=expected):
        server.wait_ready(timeout_s=60)
