"""Run bookkeeping: the run folder's status file, per-stage timings and lineage.

A run folder is usable only once its run.json says "completed", and that file is written last,
so a run killed at any point is recognisable as unfinished and is never used as a model.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from houseprice import layout, storage
from houseprice.config import PipelineConfig
from houseprice.failures import causes, classify_failure
from houseprice.trainers import get_trainer, trainer_names

logger = logging.getLogger(__name__)

RUNNING, COMPLETED, FAILED = "running", "completed", "failed"
# Stopped by Ctrl-C or SIGTERM (recorded), or found running with no process left (SIGKILL).
KILLED = "killed"
# Set on an error that stopped a run: the run folder it left (read with run_folder_of).
RUN_FOLDER_ATTRIBUTE = "houseprice_run_folder"
# Each trainer's own packages (its spec's) are tracked too.
TRACKED_PACKAGES = (
    "prefect",
    "great-expectations",
    "pandas",
    "numpy",
    "pyarrow",
    "pydantic",
)


def utc_now() -> str:
    """Current UTC time as ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape a model (without importing them)."""
    versions = {}
    trainer_packages = [p for name in trainer_names() for p in get_trainer(name).packages]
    for name in dict.fromkeys([*TRACKED_PACKAGES, *trainer_packages]):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def git_commit() -> dict[str, Any] | None:
    """The checked-out commit and whether the tree has local changes; None outside git."""
    try:
        run = lambda *args: subprocess.run(  # noqa: E731
            ["git", *args], cwd=storage.REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = bool(run("status", "--porcelain", "--untracked-files=no").stdout.strip())
        return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return None


def remove_stale_scratch(artifacts_dir: Path, log: Callable[..., None]) -> None:
    """Delete what streamed runs killed mid-run (SIGKILL, a lost machine) left as scratch.

    Called under the retrain lock, when no other run on these folders can be alive: any run's
    design/ folder then belongs to a run that died before its own clean-up.
    """
    for design in layout.runs_dir(artifacts_dir).glob(f"*/{layout.DESIGN_DIR}"):
        storage.remove_tree(design)
        log("removed the scratch of interrupted run %s: %s", design.parent.name, design)


def start_run(config: PipelineConfig, run_id: str | None = None) -> layout.RunPaths:
    """Create the run folder, store the config, and mark the run as running.

    run_id (the flow run's name) is used unless a folder has it already (a retried flow run
    keeps its name, and a run folder is never reused): then a new id is made.
    """
    artifacts_dir = config.paths.artifacts_dir
    if run_id is not None and layout.run_folder(artifacts_dir, run_id).exists():
        run_id = None
    run = layout.create_run(artifacts_dir, run_id)
    storage.write_text_atomic(
        run.config, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    )
    storage.write_json_atomic(
        run.status, {"run_id": run.run_id, "status": RUNNING, "started_at": utc_now()}
    )
    return run


def read_status(run: layout.RunPaths) -> dict[str, Any]:
    """The run's status record; an unreadable one counts as unfinished."""
    try:
        status = storage.read_json(run.status)
    except (OSError, ValueError):
        status = None
    return status if isinstance(status, dict) else {"run_id": run.run_id, "status": "unknown"}


class RunRecorder:
    """Times each stage, logs a line per stage, and writes lineage and status at the end."""

    def __init__(self, run: layout.RunPaths, config: PipelineConfig, log: Callable[..., None]):
        self.run = run
        self.config = config
        self.log = log
        self.timings: dict[str, float] = {}
        self.lineage: dict[str, Any] = {}
        self.started_at = utc_now()
        self.failed_stage: str | None = None  # the stage an error left, for the failure report

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one stage and log its end.

        No "started" line: each stage's task says what it is doing as it begins, and one line
        per stage keeps a run's log short however many columns or trainers it has.
        """
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self.failed_stage = self.failed_stage or name
            raise
        finally:
            self.timings[name] = round(time.perf_counter() - start, 3)
        self.log("stage %s: done in %.2f s", name, self.timings[name])

    def finish(self, status: str, error: BaseException | None = None) -> None:
        """Write lineage.json, then run.json (last, so 'completed' implies everything else)."""
        lineage = {
            "run_id": self.run.run_id,
            "config": self.config.model_dump(mode="json"),
            "packages": package_versions(),
            "git": git_commit(),
            "stage_seconds": self.timings,
            **self.lineage,
        }
        storage.write_json_atomic(self.run.lineage, lineage)
        record = {
            "run_id": self.run.run_id,
            "status": status,
            "started_at": self.started_at,
            "finished_at": utc_now(),
        }
        if isinstance(error, Exception):
            record["error"] = f"{type(error).__name__}: {error}"
            record["failed_stage"] = self.failed_stage
        elif error is not None:  # stopped from outside: "stopped by SIGTERM"
            record["error"] = classify_failure(error).message
            record["failed_stage"] = self.failed_stage
        storage.write_json_atomic(self.run.status, record)


@contextlib.contextmanager
def recorded_run(
    run: layout.RunPaths,
    config: PipelineConfig,
    log: Callable[..., None],
    on_failure: Callable[[RunRecorder, BaseException], None] | None = None,
) -> Iterator[RunRecorder]:
    """Yield a RunRecorder; mark the run completed on success, failed (and re-raise) on error.

    on_failure (a failure report, say) runs before run.json is marked failed; an error of its
    own is logged and never hides the run's.
    """
    recorder = RunRecorder(run, config, log)
    log("run %s: writing to %s", run.run_id, run.root)
    try:
        yield recorder
    except BaseException as error:
        storage.remove_tree(run.design_dir)  # a streamed run's scratch: gigabytes, never reused
        if storage.is_disk_full(error):
            # A failed run's files would keep the disk full; a run is never resumed, so nothing
            # of value is lost (snapshots are stored only whole, via a temporary name).
            shutil.rmtree(run.root, ignore_errors=True)
            error.add_note(f"the disk is full: removed this run's folder {run.root}")
            raise
        if on_failure is not None and isinstance(error, Exception):
            try:
                on_failure(recorder, error)
            except Exception as report_error:
                logger.warning("could not write the failure report: %r", report_error)
        # Not an Exception: Ctrl-C, SIGTERM (ours or Prefect's), an exit: stopped from outside.
        recorder.finish(FAILED if isinstance(error, Exception) else KILLED, error)
        error.add_note(f"run folder: {run.root}")  # for logs that show only the exception
        setattr(error, RUN_FOLDER_ATTRIBUTE, run.root)  # where the CLI finds run.json, report
        raise
    storage.remove_tree(run.design_dir)
    recorder.finish(COMPLETED)


def run_folder_of(error: BaseException) -> Path | None:
    """The folder of the run an error stopped, or None if it struck before a run began."""
    # Walk the chain: Prefect re-raises SIGTERM as our Terminated during its TerminationSignal.
    return next((f for e in causes(error) if (f := getattr(e, RUN_FOLDER_ATTRIBUTE, None))), None)
