"""A run killed with SIGKILL (mid-training or mid-write) leaves the champion intact and usable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from houseprice import layout, registry, storage
from houseprice.model import load_model
from tests.conftest import make_houses, small_config


def _wait_for_line(process: subprocess.Popen, needle: str, timeout_s: float) -> list[str]:
    """Read the process's output until a line contains needle; fail on exit or timeout."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        if needle in line:
            return seen
    process.kill()
    pytest.fail(f"never saw {needle!r}; output:\n{''.join(seen[-40:])}")


@pytest.mark.e2e  # spawns `houseprice retrain` and kills it
def test_sigkill_during_training_leaves_the_champion_usable(tmp_path, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    from houseprice.flows.retrain import retrain

    make_houses(rows=300, seed=4).to_csv(tmp_path / "houses.csv", index=False)
    config = small_config(tmp_path, data={"source": str(tmp_path / "houses.csv")})
    champion_run = Path(retrain(config)).name
    champion_before = registry.read_champion(config.paths.artifacts_dir)
    assert champion_before.run_id == champion_run

    # A second retrain in its own process group (the CLI plus its two training workers).
    paths = config.paths
    command = [
        sys.executable, "-m", "houseprice.cli", "retrain",
        "--source", str(tmp_path / "houses.csv"), "--target", "price",
        "--features", "area,year,hood",
        "--data-dir", str(paths.data_dir), "--artifacts-dir", str(paths.artifacts_dir),
    ]  # fmt: skip
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    _wait_for_line(process, "stage features: done", timeout_s=120)  # train is next
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    runs = sorted(p.name for p in layout.runs_dir(config.paths.artifacts_dir).iterdir())
    killed = next(run_id for run_id in runs if run_id != champion_run)
    killed_status = json.loads(
        (layout.runs_dir(config.paths.artifacts_dir) / killed / "run.json").read_text()
    )
    assert killed_status["status"] == "running"  # never marked completed
    # ... but nothing holds its lock any more, so `history` says what became of it.
    listed = {run["run_id"]: run["status"] for run in registry.list_runs(paths.artifacts_dir)}
    assert listed[killed] == "killed"
    assert registry.read_champion(config.paths.artifacts_dir) == champion_before
    assert len(load_model(config.paths.artifacts_dir).predict(make_houses(rows=5))) == 5
    with pytest.raises(registry.RegistryError, match="not usable"):
        registry.promote(config.paths.artifacts_dir, killed, "torch", "should be refused")

    # The next run takes the lock the killed one held, and succeeds.
    next_run = Path(retrain(config))
    assert json.loads((next_run / "run.json").read_text())["status"] == "completed"


def test_sigkill_mid_write_never_leaves_a_partial_file(tmp_path):
    target = tmp_path / "model" / "torch_state_dict.pt"
    storage.write_bytes_atomic(target, b"the champion's weights")
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from houseprice import storage

        def slow_writer(path):
            with open(path, "wb") as handle:
                handle.write(b"half of a new mod")
                handle.flush()
                print("writing", flush=True)
                time.sleep(60)

        storage.write_with_atomic(Path({str(target)!r}), slow_writer)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    _wait_for_line(process, "writing", timeout_s=60)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert target.read_bytes() == b"the champion's weights"


@pytest.mark.e2e  # spawns `houseprice retrain` and stops it with SIGTERM
def test_sigterm_mid_run_marks_the_run_killed_in_one_line_and_exits_143(tmp_path, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    make_houses(rows=300, seed=4).to_csv(tmp_path / "houses.csv", index=False)
    command = [
        sys.executable, "-m", "houseprice.cli", "retrain",
        "--source", str(tmp_path / "houses.csv"), "--target", "price",
        "--features", "area,year,hood",
        "--data-dir", str(tmp_path / "data"), "--artifacts-dir", str(tmp_path / "art"),
    ]  # fmt: skip
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    _wait_for_line(process, "stage validate: done", timeout_s=120)
    process.send_signal(signal.SIGTERM)  # to the command only, as a scheduler stops it
    rest = process.communicate(timeout=60)[0]
    assert process.returncode == 143, rest
    said = [line for line in rest.splitlines() if line.startswith("houseprice: retrain")]
    assert len(said) == 1 and said[0].endswith("stopped by SIGTERM"), rest
    assert "looks like a bug" not in rest and "Traceback" not in rest, rest
    (run,) = registry.list_runs(tmp_path / "art")
    assert run["status"] == "killed" and run["error"] == "stopped by SIGTERM"
