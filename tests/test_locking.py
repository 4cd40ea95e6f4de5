"""Locking: one retrain at a time across processes; a timeout says why; no stale lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from houseprice import locking
from houseprice.locking import LOCK_NAME, RunLockedError, lock_is_held, retrain_lock

ROOT = Path(__file__).resolve().parent.parent
# Another process's retrain: holds both locks until its stdin closes (or it is killed).
HOLDER = """
import sys
from collections.abc import Callable
from pathlib import Path
from houseprice.locking import retrain_lock
with retrain_lock(Path(sys.argv[1]), Path(sys.argv[2]), 0, print):
    print("held", flush=True)
    sys.stdin.read()
"""


def _messages() -> tuple[list[str], Callable[..., None]]:
    """A logger that keeps each formatted message."""
    messages: list[str] = []
    return messages, lambda text, *args: messages.append(text % args)


def _holder_of(folder: Path) -> dict:
    return json.loads((folder / LOCK_NAME).read_text())


def test_a_retrain_in_another_process_excludes_this_one_until_that_process_is_killed(tmp_path):
    data, artifacts = tmp_path / "data", tmp_path / "artifacts"
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data), str(artifacts)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert lock_is_held(data) and lock_is_held(artifacts)
        assert _holder_of(data)["pid"] == holder.pid
        with pytest.raises(RunLockedError) as raised, retrain_lock(data, artifacts, 0, print):
            pytest.fail("entered a lock another process holds")
        message = str(raised.value)
        assert f"another retrain holds {data.resolve() / LOCK_NAME}" in message
        assert f'"pid": {holder.pid}' in message and "gave up after 0 s (lock_timeout_s)" in message
    finally:
        holder.kill()  # SIGKILL: no finally block of the holder runs
        holder.wait(timeout=30)
    assert _holder_of(data)["pid"] == holder.pid  # the dead holder's note is still there...
    assert not lock_is_held(data) and not lock_is_held(artifacts)  # ...but the kernel freed it
    with retrain_lock(data, artifacts, 0, print):
        assert _holder_of(data)["pid"] == _holder_of(artifacts)["pid"] == os.getpid()


def test_a_wait_that_times_out_logs_once_and_names_the_holder_and_the_setting(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(locking, "POLL_SECONDS", 0.05)
    messages, log = _messages()
    with retrain_lock(tmp_path, tmp_path, 0, print):
        started = time.monotonic()
        gave_up = r"gave up after 0 s \(lock_timeout_s\)"
        with (
            pytest.raises(RunLockedError, match=gave_up),
            retrain_lock(tmp_path, tmp_path, 0.3, log),
        ):
            pytest.fail("entered a held lock")
        assert time.monotonic() - started >= 0.3
    assert len(messages) == 1
    assert messages[0].startswith("lock: waiting for another retrain to finish ({")
    assert f'"pid": {os.getpid()}' in messages[0]


def test_a_waiting_retrain_starts_as_soon_as_the_holder_finishes(tmp_path, monkeypatch):
    monkeypatch.setattr(locking, "POLL_SECONDS", 0.05)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with retrain_lock(tmp_path, tmp_path, 0, print):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    threading.Timer(0.3, release.set).start()
    messages, log = _messages()
    started = time.monotonic()
    with retrain_lock(tmp_path, tmp_path, 10, log):
        waited = time.monotonic() - started
    thread.join(10)
    assert 0.2 <= waited < 5  # the release came 0.3 s after the timer started
    assert len(messages) == 1 and "waiting for another retrain" in messages[0]


def test_the_lock_is_released_and_its_note_cleared_when_the_body_raises(tmp_path):
    with (
        pytest.raises(ValueError, match="stage failed"),
        retrain_lock(tmp_path, tmp_path, 0, print),
    ):
        assert lock_is_held(tmp_path)
        raise ValueError("stage failed")
    assert not lock_is_held(tmp_path)
    assert (tmp_path / LOCK_NAME).read_text() == ""


def test_giving_up_on_the_artifacts_lock_releases_the_data_lock(tmp_path):
    data, artifacts = tmp_path / "data", tmp_path / "artifacts"
    with retrain_lock(artifacts, artifacts, 0, print):  # e.g. `houseprice promote` running
        with pytest.raises(RunLockedError), retrain_lock(data, artifacts, 0, print):
            pytest.fail("entered a held lock")
        assert not lock_is_held(data)
        assert lock_is_held(artifacts)


def test_one_folder_named_two_ways_is_locked_once_without_deadlock(tmp_path):
    (tmp_path / "sub").mkdir()
    with retrain_lock(tmp_path, tmp_path / "sub" / "..", 0, print):
        assert lock_is_held(tmp_path)
        assert not (tmp_path / "sub" / LOCK_NAME).exists()
    assert not lock_is_held(tmp_path)


def test_a_folder_never_locked_is_not_held(tmp_path):
    assert not lock_is_held(tmp_path / "never-created")
    assert not lock_is_held(tmp_path)
