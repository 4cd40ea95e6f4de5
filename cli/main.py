"""The `houseprice` command's entry point: parse, run the command, turn errors into exit codes."""

from __future__ import annotations

import traceback

from houseprice.config_files import ConfigError

from .parser import build_parser
from .terminal import (
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    FILESYSTEM_ERRNOS,
    describe_os_error,
    fail,
    user_errors,
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `houseprice` console command."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as error:
        return fail(str(error), code=EXIT_REFUSED)
    except Exception as error:
        if isinstance(error, user_errors()):
            if args.verbose:
                traceback.print_exception(error)
            return fail(str(error))
        if isinstance(error, OSError) and error.errno in FILESYSTEM_ERRNOS:
            return fail(describe_os_error(error))
        raise  # a bug: Python prints the traceback
    except KeyboardInterrupt:
        return fail("interrupted", code=EXIT_INTERRUPTED)
