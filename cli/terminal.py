"""What every command shares on the terminal: exit codes, one-line errors, the champion in words."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from houseprice.failures import (  # noqa: F401  (the failure codes, beside the outcome codes)
    BUG_LINE,
    EXIT_BUG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    EXIT_SIGPIPE,
    EXIT_TERMINATED,
    Failure,
    classify_failure,
)

# Exit codes of `houseprice retrain`, so that a scheduler or a shell can tell outcomes apart
# (README: "Exit codes"). The other commands use 0, 1, 2 and the failure codes the same way;
# the failure codes (1, 2, 70, 130, 141, 143) come from houseprice/failures.py.
EXIT_PROMOTED = 0  # completed, verdict PASS, and this run's model is now the champion
EXIT_KEPT = 3  # completed, verdict PASS, champion kept (not better beyond noise; nothing new)
EXIT_CHECK = 4  # completed, but the verdict is CHECK: read the report before trusting the run


class StopSignals:
    """Which stop signals (SIGINT, SIGTERM) reached the process while watched.

    Read from the wakeup file descriptor that Python's C-level handler writes each signal's
    number to, whoever's Python handler then runs (ours, or Prefect's during a flow run): the
    exception a handler raises can be swallowed by the code it lands in.
    """

    def __init__(self) -> None:
        self._read: int | None = None
        self._seen: list[int] = []

    @contextlib.contextmanager
    def watch(self) -> Iterator[None]:
        """Note stop signals for the duration (main thread only, where handlers run)."""
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        self._read, self._seen = read, []
        try:
            yield
        finally:
            signal.set_wakeup_fd(previous)
            self._drain()
            self._read = None
            os.close(read)
            os.close(write)

    def received(self) -> int | None:
        """The last stop signal received while watched, or None."""
        self._drain()
        return self._seen[-1] if self._seen else None

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError, TypeError):
            numbers = os.read(self._read, 1024)  # type: ignore[arg-type]
            self._seen += [n for n in numbers if n in (signal.SIGINT, signal.SIGTERM)]


STOP_SIGNALS = StopSignals()


def report_failure(error: BaseException, verbose: bool, what: str = "") -> Failure:
    """Say in one line why the command stopped; a traceback only for a bug, or with --verbose.

    what ('retrain failed in stage features') leads the line; the classification gives the rest.
    """
    failure = classify_failure(error, STOP_SIGNALS.received())
    if verbose or failure.is_bug:
        traceback.print_exception(error)
    if failure.is_bug:
        print(f"houseprice: {BUG_LINE}", file=sys.stderr)
    fail(f"{what}: {failure.message}" if what else failure.message)
    return failure


def fail(message: str, code: int = 1) -> int:
    """Say why the command stopped, in one line on stderr; return the exit code."""
    print(f"houseprice: {message}", file=sys.stderr)
    return code


def notify(message: str, *values: object) -> None:
    """Tell the person at the terminal what the command is waiting for."""
    print(message % values, file=sys.stderr)


def champion_text(champion: Any, this_run: str | None = None) -> str:
    """The champion in one line: run/framework, and whether it is this run's model."""
    if champion is None:
        return "none yet"
    mine = " (this run)" if champion.run_id == this_run else ""
    return f"{champion.run_id}/{champion.framework}{mine}, since {champion.promoted_at}"


def read_champion(artifacts_dir: Path, model: str | None = None) -> Any:
    """A model's champion record, or None (the registry is imported only when asked)."""
    from houseprice import registry

    return registry.read_champion(artifacts_dir, model)
