"""prefect.yaml and `houseprice serve`: the deployments agree with the code, and run for real.

The e2e test deploys prefect.yaml to a real Prefect server (SQLite under tmp_path, loopback only)
and runs it as production does, through `prefect worker start --run-once` on the process pool,
for three nights: the first seeds the dataset and makes a champion; the second has nothing new
and trains nothing (while the batch deployment scores a file with the champion); before the
third a file lands, and it must become the next dataset version. About 90 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from houseprice import datasets, layout, registry, storage
from houseprice.cli import main
from houseprice.config import ComputeConfig, build_config

PREFECT_YAML = storage.REPO_ROOT / "prefect.yaml"
# The console script beside this interpreter: the venv's, even when .venv/bin is not on PATH.
PREFECT = Path(sys.executable).parent / "prefect"
POOL = "houseprice-process"
SERVER_START_TIMEOUT_S = 90
COMMAND_TIMEOUT_S = 120
WORKER_TIMEOUT_S = 420  # one retrain takes ~45 s alone; CI machines are slower and shared
LANDED_ROWS = 50


def _deployment(name: str) -> dict[str, Any]:
    """One deployment's entry in prefect.yaml."""
    deployments = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
    return next(item for item in deployments if item["name"] == name)


# ---------------------------------------------------------------------------------------------
# Fast checks: prefect.yaml, the served deployment and the CLI agree with the code.


def test_prefect_yaml_parameters_are_a_valid_config():
    config = build_config(_deployment("nightly")["parameters"]["config"])
    assert config.data.landing_dir == Path("data/landing")
    assert _deployment("nightly")["concurrency_limit"]["limit"] == 1


def test_the_dask_deployment_is_the_nightly_one_on_the_dask_engine_one_run_at_a_time():
    nightly, on_dask = _deployment("nightly"), _deployment("retrain-dask")
    config = build_config(on_dask["parameters"]["config"])
    assert (config.compute.engine, config.compute.dask_address) == ("dask", None)
    assert config.model_copy(update={"compute": ComputeConfig()}) == build_config(
        nightly["parameters"]["config"]
    )
    assert on_dask["entrypoint"] == nightly["entrypoint"]
    # The file lock guards one host: the server's limit is what holds across machines.
    assert on_dask["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    ((schedule,), (nightly_schedule,)) = on_dask["schedules"], nightly["schedules"]
    assert schedule == {**nightly_schedule, "active": False}  # never both on by default


def test_served_schedule_is_the_nightly_deployments():
    from houseprice.flows.serve import AMES_TIMEZONE, NIGHTLY_CRON, nightly_schedule

    (schedule,) = _deployment("nightly")["schedules"]
    assert (schedule["cron"], schedule["timezone"]) == (NIGHTLY_CRON, AMES_TIMEZONE)
    served = nightly_schedule()
    assert (served.cron, served.timezone) == (NIGHTLY_CRON, AMES_TIMEZONE)


@pytest.fixture
def server_configured():
    """A Prefect API URL for the CLI's check; nothing is served there, and nothing calls it."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        yield


@pytest.fixture
def served(monkeypatch):
    """What `houseprice serve` would have served: its config and schedule."""
    import houseprice.flows.serve

    calls = []
    monkeypatch.setattr(houseprice.flows.serve, "serve_retrain", lambda *args: calls.append(args))
    return calls


@pytest.mark.parametrize(
    ("cron", "timezone", "message"),
    [
        ("0 2 * * *", "Mars/Olympus_Mons", "unknown time zone"),
        ("0 2 * * *", "America", "unknown time zone"),
        ("0 25 * * *", "UTC", "cron"),
    ],
)
def test_serve_refuses_a_bad_schedule(server_configured, served, capsys, cron, timezone, message):
    assert main(["serve", "--cron", cron, "--timezone", timezone]) == 2
    assert message in capsys.readouterr().err
    assert served == []


def test_serve_refuses_to_run_without_a_server(served, capsys):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # A temporary server has no scheduler service: a schedule served there never fires.
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert main(["serve"]) == 2
    assert "PREFECT_API_URL" in capsys.readouterr().err
    assert served == []


def test_serve_passes_flags_as_the_deployments_parameters(server_configured, served, tmp_path):
    from houseprice.flows.serve import served_parameters

    argv = ["serve", "--artifacts-dir", str(tmp_path / "out"), "--timezone", "Europe/Paris"]
    assert main(argv) == 0
    ((config, schedule),) = served
    assert (schedule.cron, schedule.timezone) == ("0 2 * * *", "Europe/Paris")
    assert served_parameters(config) == {
        "config": {
            # The defaults, as in prefect.yaml.
            "data": {"landing_dir": "data/landing", "time_column": "Year_Sold"},
            "paths": {"artifacts_dir": str(tmp_path / "out")},
        }
    }


# ---------------------------------------------------------------------------------------------
# End to end: a real server, `prefect deploy`, and a process worker.


def _prefect_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """This environment without the user's Prefect settings, pointed at home (and api_url)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_PROFILES_PATH=str(home / "profiles.toml"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",  # on, the server logs "database is locked"
        PYTHONUNBUFFERED="1",
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(process: subprocess.Popen, grace_s: float = 10) -> None:
    """Stop a process started in its own session, and everything it started."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait_s)
            return


def _tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class PrefectServer:
    """A running server: `prefect` commands against it (each in a session of its own, killed
    on timeout, its output kept under logs/) and reads of its REST API."""

    def __init__(self, api_url: str, env: dict[str, str], logs: Path):
        self.api_url, self.env, self.logs = api_url, env, logs

    def cli(self, *args: str, timeout: float = COMMAND_TIMEOUT_S, check: bool = True) -> str:
        log = self.logs / f"{time.monotonic_ns()}-{args[0]}.log"
        with open(log, "w") as output:
            process = subprocess.Popen(
                [str(PREFECT), "--no-prompt", *args],
                cwd=storage.REPO_ROOT,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                code = process.wait(timeout)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                _stop(process)  # also any flow-run process a worker left behind
        if check and code != 0:
            pytest.fail(f"`prefect {' '.join(args)}` exited {code}:\n{_tail(log)}")
        return log.read_text(errors="replace")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.api_url}/{path}", timeout=30) as response:
            return json.load(response)

    def run_deployment(self, name: str, parameters: dict[str, Any]) -> str:
        """Trigger a run now, as a person would; return its id."""
        output = self.cli("deployment", "run", name, "--params", json.dumps(parameters))
        return re.search(r"UUID: ([0-9a-f-]{36})", output).group(1)

    def run_worker_once(self) -> None:
        """Start a process worker that runs what is due, waits for those runs, and exits."""
        self.cli("worker", "start", "--pool", POOL, "--run-once", timeout=WORKER_TIMEOUT_S)

    def assert_completed(self, *flow_run_ids: str) -> None:
        for flow_run_id in flow_run_ids:
            state = self.get(f"flow_runs/{flow_run_id}")["state"]
            worker_log = _tail(sorted(self.logs.glob("*-worker.log"))[-1])
            assert state["type"] == "COMPLETED", f"{flow_run_id}: {state}\n{worker_log}"


@pytest.fixture
def prefect_server(tmp_path):
    """A Prefect server of its own (SQLite under tmp_path) on a free loopback port."""
    if not PREFECT.exists():
        pytest.fail(f"no prefect command beside {sys.executable}")
    home = tmp_path / "prefect-home"
    home.mkdir()
    port = _free_port()
    env = _prefect_env(home)
    env.update(
        PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        # No runs of the real schedule: they would use the real data/ and artifacts/ folders.
        PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
    )
    log = tmp_path / "server.log"
    with open(log, "w") as output:
        server = subprocess.Popen(
            [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        api_url = f"http://127.0.0.1:{port}/api"
        _wait_for_health(api_url, server, log)
        logs = tmp_path / "logs"
        logs.mkdir()
        yield PrefectServer(api_url, _prefect_env(home, api_url), logs)
    finally:
        _stop(server)


def _wait_for_health(api_url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"prefect server exited {server.returncode}:\n{_tail(log)}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{api_url}/health", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.25)
    pytest.fail(f"prefect server not healthy after {SERVER_START_TIMEOUT_S} s:\n{_tail(log)}")


def _landed_rows(rows: int) -> pd.DataFrame:
    """Sales the bundled data does not hold: sampled rows, each sold for $1,000 more.

    Sampled among rows with a masonry veneer type: that column is a third empty in the bundled
    data, and a file emptier than that is quarantined.
    """
    bundled = pd.read_parquet(storage.BUNDLED_DATA)
    sample = bundled[bundled["Mas_Vnr_Type"].notna()].sample(rows, random_state=7)
    return sample.assign(Sale_Price=sample["Sale_Price"] + 1000)


@pytest.mark.e2e
def test_nightly_deployment_runs_on_a_process_worker(prefect_server, tmp_path):
    server = prefect_server
    server.cli("work-pool", "create", POOL, "--type", "process")
    # `prefect deploy` fills {{ $PWD }} from the environment: a shell sets it, Popen does not.
    server.env["PWD"] = str(storage.REPO_ROOT)
    server.cli("deploy", "--all")

    nightly = server.get("deployments/name/retrain/nightly")
    (schedule,) = nightly["schedules"]
    assert schedule["schedule"]["cron"] == "0 2 * * *"
    assert schedule["schedule"]["timezone"] == "America/Chicago"
    assert nightly["global_concurrency_limit"]["limit"] == 1
    assert nightly["work_pool_name"] == POOL
    (pull_step,) = nightly["pull_steps"]
    assert pull_step["prefect.deployments.steps.set_working_directory"] == {
        "directory": str(storage.REPO_ROOT)
    }
    assert server.get("deployments/name/batch-predict/batch")["schedules"] == []

    # prefect.yaml's own parameters, with each folder moved under tmp_path.
    config = nightly["parameters"]["config"]
    config["data"]["landing_dir"] = str(tmp_path / config["data"]["landing_dir"])
    config["paths"] = {key: str(tmp_path / value) for key, value in config["paths"].items()}
    data_dir, artifacts_dir = Path(config["paths"]["data_dir"]), config["paths"]["artifacts_dir"]
    landing = Path(config["data"]["landing_dir"])

    # A misspelt setting is refused when the run is asked for, not at 02:00 in the log.
    typo = json.dumps({"config": {"data": {"landing_dri": "data/landing"}}})
    refused = server.cli("deployment", "run", "retrain/nightly", "--params", typo, check=False)
    assert "landing_dri" in refused and "UUID" not in refused

    # Night 1: no dataset yet, so the source seeds version 1; the first model becomes champion.
    night_one = server.run_deployment("retrain/nightly", {"config": config})
    server.run_worker_once()
    server.assert_completed(night_one)
    seeded = datasets.read_current_version(data_dir)
    assert seeded is not None and seeded.version == "v000001"
    (first_run,) = layout.runs_dir(artifacts_dir).iterdir()
    assert registry.read_champion(Path(artifacts_dir)).run_id == first_run.name

    # Night 2: nothing landed, so nothing to retrain. Meanwhile the batch deployment scores a file.
    to_score, scored = tmp_path / "to_score.csv", tmp_path / "scored.csv"
    _landed_rows(20).drop(columns="Sale_Price").to_csv(to_score, index=False)
    night_two = server.run_deployment("retrain/nightly", {"config": config})
    batch = server.run_deployment(
        "batch-predict/batch",
        {"input_path": str(to_score), "output_path": str(scored), "artifacts_dir": artifacts_dir},
    )
    server.run_worker_once()
    server.assert_completed(night_two, batch)
    assert datasets.read_current_version(data_dir) == seeded
    assert list(layout.runs_dir(artifacts_dir).iterdir()) == [first_run]
    predictions = pd.read_csv(scored)
    assert len(predictions) == 20 and predictions["prediction"].notna().all()
    assert set(predictions["model_id"].str.split("/").str[0]) == {first_run.name}  # champion

    # Night 3: a file has landed; it becomes version 2, and a model is trained on it.
    storage.write_parquet_atomic(landing / "sales-2011-01.parquet", _landed_rows(LANDED_ROWS))
    night_three = server.run_deployment("retrain/nightly", {"config": config})
    server.run_worker_once()
    server.assert_completed(night_three)
    grown = datasets.read_current_version(data_dir)
    assert (grown.version, grown.parent) == ("v000002", "v000001")
    assert (grown.rows, grown.rows_added) == (seeded.rows + LANDED_ROWS, LANDED_ROWS)
    assert [item.name for item in grown.accepted] == ["sales-2011-01.parquet"]
    assert not list(landing.iterdir())  # taken in, so never ingested twice
    (second_run,) = set(layout.runs_dir(artifacts_dir).iterdir()) - {first_run}
    assert storage.read_json(second_run / "lineage.json")["dataset"]["version"] == "v000002"
