"""The champions: which run's model is in use per model name, and every promotion decision.

Each named model (houseprice/model_names.py) has its own champion,
`artifacts/models/<model>/champion.json` (run id, framework, model path), so runs on other
data never compete with it; a run belongs to the model its config names (or derives). A
champion changes only by one atomic rename, so a reader sees the old champion or the new one,
never a mix, and a process killed at any moment leaves a usable champion. Promotion never
deletes a file: the previous champion's run folder stays where it was, and
`houseprice promote RUN_ID` can put it back. `artifacts/promotions.jsonl` gets one line per
decision, promoted or not, naming its model.

Artifacts from before named models have one `artifacts/champion.json`: it is read as the
champion of its run's model until a retrain or `promote` moves it into place (with a note).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from houseprice import layout, storage
from houseprice.errors import InputError
from houseprice.locking import lock_is_held
from houseprice.model_names import DEFAULT_MODEL, check_model_name, derive_model_name
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
    model: str = DEFAULT_MODEL  # the model name whose champion this is


def models_dir(artifacts_dir: Path) -> Path:
    """Folder holding one subfolder per named model."""
    return Path(artifacts_dir) / "models"


def champion_path(artifacts_dir: Path, model: str = DEFAULT_MODEL) -> Path:
    """Where a model's champion record lives."""
    return models_dir(artifacts_dir) / check_model_name(model) / "champion.json"


def legacy_champion_path(artifacts_dir: Path) -> Path:
    """The single champion record of artifacts made before models had names."""
    return Path(artifacts_dir) / "champion.json"


def run_model(artifacts_dir: Path, run_id: str) -> str:
    """The model a run belongs to: its config's data.model, else derived from source and target.

    A run with no readable config (none was written) counts as the default model.
    """
    try:
        data = storage.read_yaml(layout.run_folder(artifacts_dir, run_id) / "config.yaml")["data"]
        return data.get("model") or derive_model_name(
            data.get("source", "bundled"), data.get("target", "Sale_Price")
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return DEFAULT_MODEL


def history_path(artifacts_dir: Path) -> Path:
    """Where the promotion history lives (JSON lines, append-only)."""
    return Path(artifacts_dir) / "promotions.jsonl"


def _read_record(artifacts_dir: Path, path: Path, model: str | None) -> Champion:
    """One champion record (model None: a legacy one, whose run says its model)."""
    try:
        values = storage.read_json(path)
        if model is None:
            model = run_model(artifacts_dir, values["run_id"])
        champion = Champion(**{**values, "model": model})
        _check_champion_paths(Path(artifacts_dir), champion)
    except (ValueError, TypeError, KeyError) as error:
        raise RegistryError(
            f"{path} is unreadable ({error}); restore it with `houseprice promote`"
        ) from None
    return champion


def _legacy_champion(artifacts_dir: Path) -> Champion | None:
    """The champion of artifacts from before named models, until it is moved into place."""
    path = legacy_champion_path(artifacts_dir)
    return _read_record(artifacts_dir, path, None) if path.exists() else None


def champion_models(artifacts_dir: Path) -> list[str]:
    """Every model name that has a champion, sorted."""
    root = models_dir(artifacts_dir)
    names = {
        folder.name
        for folder in (root.iterdir() if root.is_dir() else [])
        if (folder / "champion.json").is_file()
    }
    if (legacy := _legacy_champion(artifacts_dir)) is not None:
        names.add(legacy.model)
    return sorted(names)


def read_champion(artifacts_dir: Path, model: str | None = None) -> Champion | None:
    """A model's champion, or None before its first promotion.

    With no model named: the champion when there is one model only; RegistryError naming the
    models (and `--model`) when several have one.
    """
    if model is None:
        models = champion_models(artifacts_dir)
        if len(models) > 1:
            raise RegistryError(
                f"{len(models)} models have a champion under {artifacts_dir} "
                f"({', '.join(models)}): name one with --model"
            )
        if not models:
            return None
        model = models[0]
    path = champion_path(artifacts_dir, model)
    if path.exists():
        return _read_record(artifacts_dir, path, model)
    legacy = _legacy_champion(artifacts_dir)
    return legacy if legacy is not None and legacy.model == model else None


def migrate_legacy_champion(artifacts_dir: Path) -> str | None:
    """Move a champion.json from before named models into its model's place; a note, or None.

    Called by the writers (retrain, promote) under the retrain lock; readers read it in place.
    """
    legacy = _legacy_champion(artifacts_dir)
    if legacy is None:
        return None
    source, target = legacy_champion_path(artifacts_dir), champion_path(artifacts_dir, legacy.model)
    if target.exists():  # the model was promoted since: the old record is history
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)  # atomic: the record is in one place or the other
    return (
        f"champions are kept per model now: moved {source} to {target} "
        f"(run {legacy.run_id} is the champion of model {legacy.model!r})"
    )


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
    """Make a completed run's model its model's champion (one atomic rename)."""
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
        model=run_model(artifacts_dir, run_id),
    )
    target = champion_path(artifacts_dir, champion.model)
    target.parent.mkdir(parents=True, exist_ok=True)
    storage.write_json_atomic(target, asdict(champion))
    return champion


def append_history(artifacts_dir: Path, entry: dict[str, Any]) -> None:
    """Append one decision, stamped with the time, to the promotion history."""
    if not entry.get("model") and isinstance(entry.get("run_id"), str):
        entry = {**entry, "model": run_model(artifacts_dir, entry["run_id"])}
    storage.append_jsonl(history_path(artifacts_dir), {"time": utc_now(), **entry})


def read_history(
    artifacts_dir: Path, model: str | None = None, skipped: list[str] | None = None
) -> list[dict[str, Any]]:
    """Every recorded decision (of one model, if named), oldest first.

    Unreadable lines are skipped (and noted in skipped). Each entry names its model; one
    written before models had names gets its run's.
    """
    entries = storage.read_jsonl(history_path(artifacts_dir), skipped)
    models: dict[str, str] = {}  # run id → model, each run's config read once
    for entry in entries:
        run_id = entry.get("run_id")
        if not entry.get("model") and isinstance(run_id, str):
            if run_id not in models:
                models[run_id] = run_model(artifacts_dir, run_id)
            entry["model"] = models[run_id]
    return [e for e in entries if model is None or e.get("model") == model]


def no_champion_message(artifacts_dir: Path, model: str | None = None) -> str:
    """Why there is no champion and what to do: the latest decision's reason, and `--run`."""
    history = read_history(artifacts_dir, model)
    decisions = [e for e in history if e.get("event") == "decision"]
    latest = decisions[-1] if decisions else None
    where = f"{artifacts_dir}" + (f" for model {model!r}" if model else "")
    if latest is None or latest.get("promoted"):
        known = champion_models(artifacts_dir)
        if model and known:
            return (
                f"no champion under {where}; models with one: {', '.join(known)} "
                "(name one with --model, or train this one with `houseprice retrain --model`)"
            )
        return f"no champion under {where}: run `houseprice retrain` first"
    run_id, reason = latest.get("run_id"), latest.get("reason") or ""
    message = f"no champion under {where}: the latest run, {run_id}, was not promoted: "
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
            "model": run_model(artifacts_dir, run.run_id),
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


def latest_completed_run(artifacts_dir: Path, model: str | None = None) -> str | None:
    """The newest run (of one model, if named) whose status is completed (ids sort by time)."""
    root = layout.runs_dir(artifacts_dir)
    for folder in sorted(root.iterdir(), reverse=True) if root.is_dir() else []:
        run = layout.RunPaths(folder.name, folder)
        if not folder.is_dir() or read_status(run).get("status") != COMPLETED:
            continue
        if model is None or run_model(artifacts_dir, folder.name) == model:
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
    champion = read_champion(artifacts_dir, run_model(artifacts_dir, run_id))
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
