"""One retrain at a time: an exclusive lock on the data and artifacts folders.

A schedule firing while a manual run is going must not interleave two read-modify-write
cycles on the dataset versions or the champion. flock is released by the kernel when its
holder dies, even by SIGKILL, so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from houseprice.errors import InputError
from houseprice.runs import utc_now

LOCK_NAME = ".retrain.lock"
POLL_SECONDS = 1.0


class RunLockedError(InputError, RuntimeError):
    """Another retrain held the lock for longer than we were willing to wait."""


@contextlib.contextmanager
def _locked_file(folder: Path, timeout_s: float, log: Callable[..., None]) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout_s
        waited = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown holder"
                if time.monotonic() >= deadline:
                    raise RunLockedError(
                        f"another retrain holds {path} ({holder}); gave up after {timeout_s:.0f} s "
                        "(lock_timeout_s)"
                    ) from None
                if not waited:
                    log("lock: waiting for another retrain to finish (%s)", holder)
                    waited = True
                time.sleep(POLL_SECONDS)
        handle.seek(0)
        handle.truncate()
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": utc_now()}
        handle.write(json.dumps(holder))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def retrain_lock(
    data_dir: Path, artifacts_dir: Path, timeout_s: float, log: Callable[..., None]
) -> Iterator[None]:
    """Hold the data and artifacts locks (always in that order, so two runs cannot deadlock)."""
    folders = [Path(data_dir).resolve(), Path(artifacts_dir).resolve()]
    with contextlib.ExitStack() as stack:
        for folder in dict.fromkeys(folders):  # the same folder twice would deadlock on itself
            stack.enter_context(_locked_file(folder, timeout_s, log))
        yield


def lock_is_held(folder: Path) -> bool:
    """Whether a live process holds the retrain lock on folder (a killed one holds nothing)."""
    path = Path(folder) / LOCK_NAME
    try:
        handle = open(path)  # noqa: SIM115 (closed below, after the probe)
    except FileNotFoundError:
        return False
    with handle:
        try:
            # A shared lock is granted unless someone holds the exclusive one, and is dropped at
            # once: a retrain starting this very moment waits one poll at most.
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
