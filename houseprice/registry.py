"""The champion: which run's model is in use, and the history of every promotion decision.

`artifacts/champion.json` names the model in use (run id, framework, model path). It changes
only by one atomic rename, so a reader sees the old champion or the new one, never a mix, and
a process killed at any moment leaves a usable champion. Promotion never deletes a file: the
previous champion's run folder stays where it was, and `houseprice promote RUN_ID` can put it
back. `artifacts/promotions.jsonl` gets one line per decision, promoted or not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from houseprice import layout, storage
from houseprice.errors import InputError
from houseprice.locking import lock_is_held
from houseprice.runs import COMPLETED, KILLED, RUNNING, read_status, utc_now
from houseprice.trainers import UnknownTrainerError, trainer_names


class RegistryError(InputError, RuntimeError):
    """A champion or run that cannot be used, with the reason."""


@dataclass(frozen=True)
class Champion:
    """The model in use."""

    run_id: str
    framework: str
    model_path: str  # relative to the artifacts folder
    promoted_at: str
    reason: str


def champion_path(artifacts_dir: Path) -> Path:
    """Where the champion record lives."""
    return Path(artifacts_dir) / "champion.json"


def history_path(artifacts_dir: Path) -> Path:
    """Where the promotion history lives (JSON lines, append-only)."""
    return Path(artifacts_dir) / "promotions.jsonl"


def read_champion(artifacts_dir: Path) -> Champion | None:
    """The current champion, or None before the first promotion."""
    path = champion_path(artifacts_dir)
    if not path.exists():
        return None
    try:
        champion = Champion(**storage.read_json(path))
        _check_champion_paths(Path(artifacts_dir), champion)
    except (ValueError, TypeError) as error:
        raise RegistryError(
            f"{path} is unreadable ({error}); restore it with `houseprice promote`"
        ) from None
    return champion


def _check_champion_paths(artifacts_dir: Path, champion: Champion) -> None:
    """Refuse a champion.json whose run or model path points outside the artifacts folder."""
    run = layout.RunPaths(champion.run_id, layout.run_folder(artifacts_dir, champion.run_id))
    expected = str(model_file(run, champion.framework).relative_to(artifacts_dir))
    if champion.model_path != expected:
        raise ValueError(f"its model_path {champion.model_path!r} is not the run's {expected!r}")


def model_file(run: layout.RunPaths, framework: str) -> Path:
    """The saved model of one trainer in a run; RegistryError for an unregistered trainer."""
    try:
        return run.model_file(framework)
    except UnknownTrainerError:
        known = ", ".join(trainer_names())
        raise RegistryError(f"unknown framework {framework!r}; trainers: {known}") from None


def require_completed(artifacts_dir: Path, run_id: str) -> layout.RunPaths:
    """Paths of a run that finished; an unfinished, failed or killed run is refused."""
    try:
        run = layout.open_run(artifacts_dir, run_id)
    except (FileNotFoundError, layout.RunIdError) as error:
        raise RegistryError(str(error)) from None
    status = read_status(run).get("status")
    if status != COMPLETED:
        raise RegistryError(f"run {run_id} is not usable: its status is {status!r}")
    return run


def check_user_run_id(run_id: str) -> str:
    """A run id given by a person (CLI, Python API): the id format only, never a path."""
    try:
        return layout.check_run_id(run_id)
    except layout.RunIdError as error:
        raise RegistryError(str(error)) from None


def promote(artifacts_dir: Path, run_id: str, framework: str, reason: str) -> Champion:
    """Make a completed run's model the champion (one atomic rename) and record it."""
    run = require_completed(artifacts_dir, run_id)
    path = model_file(run, framework)
    if not path.exists():
        raise RegistryError(f"run {run_id} has no {framework} model at {path}")
    champion = Champion(
        run_id=run_id,
        framework=framework,
        model_path=str(path.relative_to(artifacts_dir)),
        promoted_at=utc_now(),
        reason=reason,
    )
    storage.write_json_atomic(champion_path(artifacts_dir), asdict(champion))
    return champion


def append_history(artifacts_dir: Path, entry: dict[str, Any]) -> None:
    """Append one decision, stamped with the time, to the promotion history."""
    storage.append_jsonl(history_path(artifacts_dir), {"time": utc_now(), **entry})


def read_history(artifacts_dir: Path, skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """Every recorded decision, oldest first; unreadable lines are skipped (noted in skipped)."""
    return storage.read_jsonl(history_path(artifacts_dir), skipped)


def no_champion_message(artifacts_dir: Path) -> str:
    """Why there is no champion and what to do: the latest decision's reason, and `--run`."""
    decisions = [e for e in read_history(artifacts_dir) if e.get("event") == "decision"]
    latest = decisions[-1] if decisions else None
    if latest is None or latest.get("promoted"):
        return f"no champion under {artifacts_dir}: run `houseprice retrain` first"
    run_id, reason = latest.get("run_id"), latest.get("reason") or ""
    message = f"no champion under {artifacts_dir}: the latest run, {run_id}, was not promoted: "
    if "--run" in reason:  # the reason already says how to use the run anyway
        return message + reason
    return (
        f"{message}{reason}; to use it anyway, score with `houseprice predict --run {run_id}` "
        f"or make it the champion with `houseprice promote {run_id}`"
    )


def list_runs(artifacts_dir: Path, skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """One summary per run folder, oldest first: status, data snapshot, metrics, decision.

    A run file that is not a JSON object is read as empty, and noted in skipped when given.
    """
    root = layout.runs_dir(artifacts_dir)
    live = lock_is_held(Path(artifacts_dir).resolve())
    summaries = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        run = layout.RunPaths(folder.name, folder)
        status = _json_object(_read_json(run.status), run.status, skipped) or {"status": "unknown"}
        state = status.get("status")
        summary: dict[str, Any] = {
            "run_id": run.run_id,
            # running with no retrain holding the lock: its process died (SIGKILL, power cut)
            "status": KILLED if state == RUNNING and not live else state,
            "started_at": status.get("started_at"),
            "error": status.get("error"),
            "failed_stage": status.get("failed_stage"),
        }
        metrics = _json_object(_read_json(run.metrics), run.metrics, skipped)
        selected = metrics.get("selected_model")
        summary["snapshot"] = metrics.get("snapshot")
        summary["selected_model"] = selected
        model = metrics.get(selected) if isinstance(selected, str) else None
        summary["test"] = _json_object(model or {}, run.metrics, skipped).get("test")
        summary["promotion"] = metrics.get("promotion")
        summaries.append(summary)
    return summaries


def latest_completed_run(artifacts_dir: Path) -> str | None:
    """The newest run whose status is completed (run ids sort by start time)."""
    root = layout.runs_dir(artifacts_dir)
    for folder in sorted(root.iterdir(), reverse=True) if root.is_dir() else []:
        run = layout.RunPaths(folder.name, folder)
        if folder.is_dir() and read_status(run).get("status") == COMPLETED:
            return folder.name
    return None


def interrupted_promotion(artifacts_dir: Path) -> tuple[str, dict[str, Any]] | None:
    """The latest completed run, if its gate said promote but the promotion never happened.

    A run is marked completed before it is promoted (only completed runs may be champions), so
    a crash between the two leaves a decision that was never applied: no history entry for the
    run, and the champion still the one the gate compared it with.
    """
    run_id = latest_completed_run(artifacts_dir)
    if run_id is None:
        return None
    try:
        promotion = storage.read_json(layout.open_run(artifacts_dir, run_id).metrics)["promotion"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not promotion or not promotion.get("promoted"):
        return None
    if any(entry.get("run_id") == run_id for entry in read_history(artifacts_dir)):
        return None
    champion = read_champion(artifacts_dir)
    if (champion.run_id if champion else None) != promotion.get("champion_run_id"):
        return None  # the champion changed since (e.g. by hand): the decision is stale
    return run_id, promotion


def _read_json(path: Path) -> Any:
    """A run file's JSON value; None where it is missing, the error where it is unreadable."""
    try:
        return storage.read_json(path)
    except (OSError, ValueError) as error:
        return None if isinstance(error, FileNotFoundError) else error


def _json_object(value: Any, path: Path, skipped: list[str] | None) -> dict[str, Any]:
    """value when it is a JSON object; else {} (None means absent), noting why in skipped."""
    if isinstance(value, dict):
        return value
    if value is not None and skipped is not None:
        why = value if isinstance(value, Exception) else f"a JSON {type(value).__name__}"
        skipped.append(f"{path}: unreadable ({str(why).splitlines()[0][:120]}), shown as empty")
    return {}
