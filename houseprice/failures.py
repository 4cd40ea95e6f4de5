"""One classification of what stopped a command: the user's input, an unreachable source, the
disk, an interrupt, or a bug; each with its one-line message and exit code (README: Exit codes).

Every command's error path goes through classify_failure, so the same error reads the same in
`retrain`, `predict`, `promote`, `history`, `serve` and `alerts`. Only a bug prints a traceback.
"""

from __future__ import annotations

import errno
import re
import signal
import socket
import ssl
import urllib.error
from collections.abc import Iterator
from typing import NamedTuple

from houseprice.config_files import ConfigError
from houseprice.errors import InputError, TransientSourceError

USER, REFUSED, UNREACHABLE, DISK, INTERRUPTED, BUG = (
    "user input",
    "refused",
    "unreachable",
    "disk",
    "interrupted",
    "bug",
)

EXIT_FAILED = 1  # the user's data, files or settings; an unreachable source; a full disk
EXIT_REFUSED = 2  # the configuration (or a command-line value) was refused
EXIT_BUG = 70  # a bug in houseprice (sysexits' EX_SOFTWARE): the traceback is printed
EXIT_SIGPIPE = 141  # the reader of the output went away (`| head`), as shells report SIGPIPE
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130: Ctrl-C, as shells report it
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143: SIGTERM (a scheduler or `kill` stopping the run)

BUG_LINE = "this looks like a bug; the traceback is above"

# The disk refuses to take more (or fails): the machine's problem, named with its path.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
# Hiccups of a disk or a network mount that may pass on a later try.
RETRYABLE_ERRNOS = frozenset({errno.EIO, errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT, errno.ESTALE})
# The user's paths: missing, not what they should be, not allowed, a FIFO that never opens.
PATH_ERRNOS = frozenset(
    {
        errno.ENOENT,
        errno.EACCES,
        errno.EPERM,
        errno.EISDIR,
        errno.ENOTDIR,
        errno.EEXIST,
        errno.ELOOP,
        errno.ENAMETOOLONG,
        errno.ENXIO,
    }
)
# A host that answers no or does not exist: retrying won't help. A timeout or reset may pass.
REFUSED_CONNECTIONS = (ConnectionRefusedError, socket.gaierror, ssl.SSLError)
NETWORK_ERRORS = (
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    ssl.SSLError,
    urllib.error.URLError,
)


class Terminated(KeyboardInterrupt):
    """A signal (SIGTERM) asked the process to stop; raised by the CLI's handler.

    A KeyboardInterrupt, so that everything that stops cleanly on Ctrl-C (Prefect, the run's
    bookkeeping, the training workers) does so here too.
    """

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"stopped by {signal.Signals(self.signum).name}"


class Failure(NamedTuple):
    """What stopped a command: its kind, one line for the person, the exit code."""

    kind: str
    message: str
    exit_code: int

    @property
    def is_bug(self) -> bool:
        return self.kind == BUG


def causes(error: BaseException) -> Iterator[BaseException]:
    """error, then what it was raised from or during, outermost first; groups' members too.

    Wrappers (a chunk's ChunkError, a task's or Dask's re-raise) keep their cause here, so the
    user's error inside one is still seen as the user's.
    """
    pending, seen = [error], set()
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen or len(seen) > 50:
            continue
        seen.add(id(current))
        yield current
        pending += list(getattr(current, "exceptions", None) or ())  # an ExceptionGroup
        pending += [current.__cause__, current.__context__]


def classify_failure(error: BaseException, signum: int | None = None) -> Failure:
    """The kind of failure error is, a one-line message for it, and the command's exit code.

    signum: a stop signal the process received meanwhile, where the caller knows of one. A
    signal can land inside a library that turns it into an error of its own (pydantic, say), so
    the error alone does not always tell.
    """
    chain = list(causes(error))
    if signum is None:  # an interrupt anywhere means the person or a scheduler stopped it
        signum = next((s for e in chain if (s := _stop_signal(e)) is not None), None)
    if signum is not None:
        name = signal.Signals(signum).name
        text = "interrupted (Ctrl-C)" if signum == signal.SIGINT else f"stopped by {name}"
        return Failure(INTERRUPTED, text, 128 + signum)
    for current in chain:  # a full disk first: it may surface as any error a writer raises
        if isinstance(current, OSError) and current.errno in DISK_ERRNOS:
            return Failure(DISK, describe_os_error(current), EXIT_FAILED)
    for current in chain:
        if (failure := _known_failure(current, chain)) is not None:
            return failure
    return Failure(BUG, f"{type(error).__name__}: {error}", EXIT_BUG)


def _known_failure(error: BaseException, chain: list[BaseException]) -> Failure | None:
    """The failure error stands for, or None when it says nothing of the cause by itself."""
    if isinstance(error, ConfigError):
        return Failure(REFUSED, str(error), EXIT_REFUSED)
    if isinstance(error, InputError):
        return Failure(USER, str(error), EXIT_FAILED)
    if isinstance(error, (TransientSourceError, *NETWORK_ERRORS)) or _is_dask_comm(error):
        return Failure(UNREACHABLE, _unreachable_text(chain), EXIT_FAILED)
    if isinstance(error, OSError) and error.errno in PATH_ERRNOS:
        return Failure(USER, describe_os_error(error), EXIT_FAILED)
    return None


def _is_dask_comm(error: BaseException) -> bool:
    """A Dask connection error (distributed's CommClosedError), without importing distributed."""
    return isinstance(error, OSError) and type(error).__module__.startswith("distributed.")


def _unreachable_text(chain: list[BaseException]) -> str:
    """The outermost network error's own words ('cannot download URL: ...', 'Timed out ...')."""
    return str(next(e for e in chain if isinstance(e, OSError | urllib.error.URLError)))


def _stop_signal(error: BaseException) -> int | None:
    """The signal that stopped the process, if error is how it arrived; else None.

    Ctrl-C is a KeyboardInterrupt, SIGTERM our Terminated, or Prefect's TerminationSignal
    during a flow run (a BaseException with the signal's number, matched without Prefect).
    """
    if isinstance(error, Terminated):
        return error.signum
    if isinstance(error, KeyboardInterrupt):
        return signal.SIGINT
    number = getattr(error, "signal", None)
    if not isinstance(error, Exception) and isinstance(number, int):
        return number
    return None


def describe_os_error(error: OSError) -> str:
    """'cannot write /srv/out.csv: read-only file system', with what to do for a full disk."""
    verb = "cannot write" if error.errno in WRITE_ERRNOS else "cannot use"
    if error.filename:
        text = f"{verb} {error.filename}: {(error.strerror or str(error)).lower()}"
        if error.errno in {errno.EEXIST, errno.ENOTDIR}:
            text += " (a file stands where a folder is needed)"
    else:  # pyarrow's and others' own words name the file: "Failed to open local file '...'"
        text = re.sub(r"^\[Errno \d+\] ", "", str(error)) or f"{verb} a file"
    if error.errno in {errno.ENOSPC, errno.EDQUOT}:
        text += " (free some space there, or point the output elsewhere)"
    return text


def is_transient(error: BaseException) -> bool:
    """Whether a read that failed this way may succeed on a later try (Prefect's retries).

    A timeout, a reset connection or an HTTP 5xx may pass; a refused connection, an unknown host,
    a TLS failure, a full disk, or anything about the user's paths or content will not.
    """
    chain = list(causes(error))
    if any(isinstance(e, REFUSED_CONNECTIONS) for e in chain):
        return False
    if any(isinstance(e, OSError) and e.errno in RETRYABLE_ERRNOS for e in chain):
        return True
    return classify_failure(error).kind == UNREACHABLE
