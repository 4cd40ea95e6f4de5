"""The `houseprice` command's entry point: parse, run the command, turn errors into exit codes."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

from houseprice.failures import Terminated

from .parser import build_parser
from .terminal import EXIT_SIGPIPE, STOP_SIGNALS, report_failure


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `houseprice` console command."""
    args = build_parser().parse_args(argv)
    with _sigterm_as_interrupt():
        try:
            code = args.handler(args)
            sys.stdout.flush()  # here, not at exit, where a closed pipe could not be caught
            return code
        except BrokenPipeError:
            return _output_closed()
        except (SystemExit, GeneratorExit):
            raise
        except BaseException as error:  # houseprice/failures.py sorts them, interrupts too
            return report_failure(error, args.verbose).exit_code


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler, `kill`) stops the command as Ctrl-C does: the run is marked killed.

    Python's default for SIGTERM ends the process at once, with no chance to say so in run.json.
    A flow run swaps in Prefect's own handler meanwhile (raising its TerminationSignal); either
    way STOP_SIGNALS notes the signal, for the one line that ends the command.
    """
    if threading.current_thread() is not threading.main_thread():  # handlers: main thread only
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with STOP_SIGNALS.watch():
            yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


def _output_closed() -> int:
    """The reader went away (`houseprice history | head -1`): stop quietly, as `cat` would.

    stdout is pointed at /dev/null so that Python's flush at exit does not fail again.
    """
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_SIGPIPE
