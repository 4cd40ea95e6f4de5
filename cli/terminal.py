"""What every command shares on the terminal: exit codes, one-line errors, the champion in words."""

from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import Any

from houseprice.config_files import ConfigError

# Exit codes of `houseprice retrain`, so that a scheduler or a shell can tell outcomes apart
# (README: "Exit codes"). The other commands use 0, 1 and 2 the same way.
EXIT_PROMOTED = 0  # completed, verdict PASS, and this run's model is now the champion
EXIT_FAILED = 1  # failed: bad data, a missing file, another retrain holding the lock, a bug
EXIT_REFUSED = 2  # the configuration (or a command-line value) was refused before anything ran
EXIT_KEPT = 3  # completed, verdict PASS, champion kept (not better beyond noise; nothing new)
EXIT_CHECK = 4  # completed, but the verdict is CHECK: read the report before trusting the run
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report it


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by the user's input or files: reported in one line, no traceback."""
    from houseprice.errors import InputSchemaError, ModelLoadError, SourceError
    from houseprice.locking import RunLockedError
    from houseprice.registry import RegistryError
    from houseprice.tasks.validate import DataValidationError
    from houseprice.trainers.common import DeviceUnavailableError, TrainingDivergedError

    return (
        ConfigError,
        SourceError,
        DataValidationError,
        TrainingDivergedError,
        DeviceUnavailableError,
        RunLockedError,
        InputSchemaError,
        RegistryError,
        ModelLoadError,
        FileNotFoundError,
        PermissionError,
        IsADirectoryError,
    )


# Refusals by the file system that a person can act on: a message, not a traceback.
FILESYSTEM_ERRNOS = {
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.ENOTDIR,
    errno.ENAMETOOLONG,
}


def describe_os_error(error: OSError) -> str:
    """'cannot write /srv/out.csv: read-only file system', with what to do for a full disk."""
    where = error.filename or "a file"
    writing = error.errno in {errno.EROFS, errno.ENOSPC, errno.EDQUOT}
    verb = "cannot write" if writing else "cannot use"
    text = f"{verb} {where}: {(error.strerror or str(error)).lower()}"
    if error.errno in {errno.ENOSPC, errno.EDQUOT}:
        text += " (free some space there, or point the output elsewhere)"
    return text


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
