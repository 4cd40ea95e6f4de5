"""What Prefect's own log lines look like on the `houseprice` command's terminal.

Prefect logs every failed task and flow run with its full traceback (60-130 lines) before the
command can say in one line what went wrong. On the terminal of `houseprice retrain` those
records keep their first line and lose the traceback; the command then prints the reason itself,
and a traceback only for a bug or with --verbose. The Prefect server and UI still get every
traceback: only the console formatter changes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator

from prefect.logging.formatters import PrefectFormatter
from prefect.logging.handlers import PrefectConsoleHandler

# Prefect reads overrides of its logging.yml from PREFECT_LOGGING_<PATH>: this one replaces the
# factory ("()") of the console's "standard" formatter, in this process and in every worker
# process it starts (they inherit the environment and configure their logging from it).
FORMATTER_VARIABLE = "PREFECT_LOGGING_FORMATTERS_STANDARD_"
FORMATTER_PATH = f"{__name__}.BriefFormatter"
# Likewise the console handler's class, for the handler that leaves routine completions out.
HANDLER_VARIABLE = "PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS"
HANDLER_PATH = f"{__name__}.BriefConsoleHandler"
MAX_MESSAGE_CHARS = 300


class BriefFormatter(PrefectFormatter):
    """Prefect's console format, without tracebacks and with failure messages cut to a line."""

    def formatException(self, ei) -> str:  # logging calls it by this name
        return ""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record).rstrip()
        if record.name.startswith("prefect") and (named := _failure_named(text)):
            return named
        first = text.partition("\n")[0]
        if not record.exc_info and "\\n" not in first:
            return text
        # A failure message holds the whole error (as its repr, newlines escaped): the command
        # prints the error in full at the end, so here its first line is enough.
        first = first.split("\\n", 1)[0]
        if len(first) > MAX_MESSAGE_CHARS:
            first = first[: MAX_MESSAGE_CHARS - 1] + "…"
        return first + (" …" if first != text else "")


# Prefect's failure records, each repeating the error's whole message: "Task run failed with
# exception: E(...)", "Encountered exception during execution: E(...)", "Finished in state
# Failed('... exception: E: ...')". On the terminal they name the error's class only, so the
# reason is printed once, by the command, at the end. A retry's record keeps its message: the
# run goes on, and the person waits on what it says.
_FAILURE = re.compile(
    r"(?P<head>.*?(?:Task run failed with exception: |Encountered exception during execution: "
    r"|Finished in state (?P<state>\w+)\(.*?exception:? ))(?P<name>[A-Za-z_][\w.]*)"
)


def _failure_named(text: str) -> str | None:
    """A Prefect failure record as its head and the error's class, or None for other records."""
    first = text.partition("\n")[0]
    match = _FAILURE.match(first)
    if match is None or " - Retry " in first:
        return None
    if match["state"]:  # Finished in state Failed("... exception AliasedFeatureError: ...")
        head = match["head"][: match["head"].index("Finished in state ")]
        return f"{head}Finished in state {match['state']}: {match['name']}"
    return f"{match['head']}{match['name']} (the reason follows at the end)"


class QuietCompletions(logging.Filter):
    """Leaves out a task or flow run's routine "Finished in state Completed()" record."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Finished in state Completed(")


class BriefConsoleHandler(PrefectConsoleHandler):
    """Prefect's console handler with routine completions left out (worker processes use it)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.addFilter(QuietCompletions())


@contextlib.contextmanager
def brief_prefect_console(verbose: bool) -> Iterator[None]:
    """Keep tracebacks off the terminal for the duration, unless verbose."""
    if verbose or os.environ.get(FORMATTER_VARIABLE):
        yield  # verbose, or someone chose a formatter on purpose: leave Prefect's as it is
        return
    os.environ[FORMATTER_VARIABLE] = FORMATTER_PATH
    os.environ[HANDLER_VARIABLE] = HANDLER_PATH
    # This process may have configured its logging already (Prefect does it on import).
    swapped, quiet = [], QuietCompletions()
    for handler in logging.getLogger().handlers:
        formatter = handler.formatter
        if type(formatter) is PrefectFormatter:
            brief = BriefFormatter.__new__(BriefFormatter)
            brief.__dict__.update(formatter.__dict__)
            handler.setFormatter(brief)
            handler.addFilter(quiet)
            swapped.append((handler, formatter))
    try:
        yield
    finally:
        os.environ.pop(FORMATTER_VARIABLE, None)
        os.environ.pop(HANDLER_VARIABLE, None)
        for handler, formatter in swapped:
            handler.setFormatter(formatter)
            handler.removeFilter(quiet)
