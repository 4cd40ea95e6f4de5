"""Prefect's temporary API server for one command, started so that the first run works too.

Prefect starts such a server by itself when PREFECT_API_URL is unset, and gives up after
PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS (20 s). On a fresh PREFECT_HOME the server
first builds its SQLite database (about 100 migrations), which takes longer than that on a
busy 2-core machine, so the first `houseprice retrain` failed. Prefect's own way in
(SubprocessASGIServer) also costs the command 2 s of CPU to import the server's code. Here the
server is Prefect's public command, `prefect server start`, run as a subprocess with only the
services a temporary server needs, launched before the command imports the pipeline, given the
time it needs, and with a line on the terminal every few seconds while the person waits.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

# A fresh database on a busy 2-core machine took 40-60 s; a warm start takes 5-15 s.
STARTUP_TIMEOUT_S = 300.0
# The longest the person at the terminal goes without a line while the server starts.
PROGRESS_EVERY_S = 5.0
# uvicorn exits with 3 when its port was taken meanwhile; `prefect server start` exits saying
# so when it finds the port taken first. Either way another free port is tried.
PORT_TAKEN_EXIT_CODE = 3
PORT_TAKEN_TEXT = "already in use"
PORT_ATTEMPTS = 3
# Prefect's public settings for the periodic services that serve deployments, work pools and
# schedules, which a server that lasts one command has none of: off, as in the temporary server
# Prefect starts itself. The services that record task runs, events and logs stay on.
SERVER_SETTINGS = {
    f"PREFECT_SERVER_SERVICES_{service}_ENABLED": "false"
    for service in (
        "SCHEDULER",
        "LATE_RUNS",
        "FOREMAN",
        "REPOSSESSOR",
        "CANCELLATION_CLEANUP",
        "PAUSE_EXPIRATIONS",
        "CLEANUP_RECONCILER",
    )
}
# The server is on loopback: an http_proxy in the environment must not be asked for it.
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerStartError(RuntimeError):
    """Prefect's temporary server did not come up; the message carries its own output."""


def database_is_new() -> bool:
    """Whether the server will first build its SQLite database: no file there yet (a slow start).

    False when the database is not a local SQLite file (a Postgres server is managed by its
    owner). A database from an older Prefect is upgraded too, in a few seconds, unannounced.
    """
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url
    text = url.get_secret_value() if url is not None else ""
    if not text.startswith("sqlite") or ":memory:" in text:
        return False
    path = Path(text.split(":///", 1)[-1].split("?", 1)[0])
    return not path.exists() or path.stat().st_size == 0


def _free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(port: int) -> list[str]:
    """Prefect's own command for a server, on loopback, without its UI."""
    return [
        *(sys.executable, "-m", "prefect", "server", "start"),
        *("--host", "127.0.0.1", "--port", str(port), "--no-ui", "--log-level", "ERROR"),
    ]


class TemporaryServer:
    """One Prefect API server subprocess on loopback, for as long as a command runs."""

    def __init__(
        self,
        notify: Callable[[str], None],
        command: Callable[[int], list[str]] = server_command,
    ):
        self.notify = notify
        self.command = command
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        # The server's output, shown if it fails; open as long as the server runs, closed by stop().
        self._output = tempfile.TemporaryFile()  # noqa: SIM115
        self._started_at = 0.0

    @property
    def api_url(self) -> str:
        """The URL every process of the command talks to."""
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        """Launch the server process and return at once; wait_ready() waits for it."""
        # Launched before anything imports Prefect (1-2 s): its start-up overlaps those imports.
        self._started_at = time.monotonic()
        self._launch()

    def announce(self) -> None:
        """Tell the person at the terminal what they are waiting for."""
        self.notify("houseprice: starting Prefect's temporary server...")
        # The server imports for seconds before it touches its database: the check is not late.
        if database_is_new():
            self.notify(
                "houseprice: preparing Prefect's database (first run with this PREFECT_HOME "
                "only; about a minute on a busy machine)..."
            )

    def _launch(self) -> None:
        self.port = _free_port()
        env = {**os.environ, **SERVER_SETTINGS}
        env.pop("PREFECT_API_URL", None)
        self._output.seek(0)
        self._output.truncate()  # a retry's output only
        self.process = subprocess.Popen(
            self.command(self.port), env=env, stdout=self._output, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Block until the server answers /health, saying every few seconds that it is waiting."""
        assert self.process is not None, "start() first"
        attempts, next_note = 1, self._started_at + PROGRESS_EVERY_S
        while True:
            if self._healthy():
                return
            code = self.process.poll()
            if code is not None and self._port_taken(code) and attempts < PORT_ATTEMPTS:
                attempts += 1
                self._launch()
                continue
            waited = time.monotonic() - self._started_at
            if code is not None or waited > timeout_s:
                message = self._failure_text(code, waited)
                self.stop()
                raise ServerStartError(message)
            if time.monotonic() >= next_note:
                self.notify(f"houseprice: waiting for Prefect's temporary server ({waited:.0f} s)")
                next_note = time.monotonic() + PROGRESS_EVERY_S
            time.sleep(0.1)

    def _port_taken(self, code: int) -> bool:
        return code == PORT_TAKEN_EXIT_CODE or PORT_TAKEN_TEXT in self._server_output()

    def _healthy(self) -> bool:
        try:
            with _LOOPBACK.open(f"{self.api_url}/health", timeout=2) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def _failure_text(self, code: int | None, waited: float) -> str:
        what = f"did not answer in {waited:.0f} s" if code is None else f"exited with code {code}"
        output = self._server_output()
        return f"Prefect's temporary server {what}" + (f":\n{output}" if output else "")

    def _server_output(self) -> str:
        """The end of what the server wrote (its banner, then its errors and warnings)."""
        self._output.seek(0)
        return self._output.read().decode("utf-8", "replace").strip()[-2000:]

    def stop(self) -> None:
        """Stop the server (it shuts down cleanly on SIGTERM) and reap it."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        self._output.close()


@contextlib.contextmanager
def temporary_api(notify: Callable[[str], None]) -> Iterator[Callable[[], None]]:
    """Make sure every process of a command talks to one Prefect API; yield a wait-until-ready.

    With no PREFECT_API_URL, Prefect starts a temporary server per process, and the training
    workers are processes of their own: each would start (and wait ~10 s for) another server.
    Starting the temporary server here and exporting its URL lets the workers share it. Enter it
    before the slow imports, and call the yielded function once they are done.
    """
    # The command next imports Prefect, the pipeline and GX: millions of long-lived objects,
    # over which the garbage collector would make ~1,000 passes (2 s of CPU). Off while they
    # load, then frozen (never scanned again); registered first, so it runs last at exit, where
    # it spares the interpreter's teardown the same passes.
    gc.disable()
    atexit.register(gc.freeze)
    try:
        with _command_server(notify) as wait_for_server:
            yield wait_for_server
    finally:
        gc.enable()  # also when the command failed before it called wait_for_server


@contextlib.contextmanager
def _command_server(notify: Callable[[str], None]) -> Iterator[Callable[[], None]]:
    """The temporary server, unless PREFECT_API_URL names one; yield the wait for it."""
    if os.environ.get("PREFECT_API_URL"):
        yield _collect_from_now
        return
    server = TemporaryServer(notify)
    server.start()
    from prefect.context import refresh_global_settings_context
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():  # set in Prefect's settings: that server, not this one
        server.stop()
        yield _collect_from_now
        return
    server.announce()
    # Inherited by the worker processes; the refresh shows it to Prefect's own threads too
    # (its event and log workers), which would otherwise start a server of their own.
    os.environ["PREFECT_API_URL"] = server.api_url
    refresh_global_settings_context()
    # Stopped at exit, after Prefect's log and event workers have sent what they hold (they
    # drain at interpreter exit, before atexit hooks run); stopped earlier, they retry for a
    # minute and print "Error logging to API".
    atexit.register(server.stop)

    def wait_until_ready() -> None:
        _collect_from_now()
        server.wait_ready()

    try:
        yield wait_until_ready
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        refresh_global_settings_context()


def _collect_from_now() -> None:
    """Freeze what the command has loaded so far, and let the garbage collector run again."""
    gc.freeze()
    gc.enable()
