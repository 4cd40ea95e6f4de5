"""`history` and `promote`: the record of runs and champions, and rolling back by hand."""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

from houseprice.trainers import trainer_names

from .terminal import EXIT_REFUSED, champion_text, fail, notify


def _decision_text(run: dict[str, Any]) -> str:
    """What became of a run: its promotion decision, or what stopped it."""
    status = run["status"]
    if status == "failed":
        stage = f" in stage {run['failed_stage']}" if run.get("failed_stage") else ""
        return f"failed{stage}: " + str(run["error"] or "").partition("\n")[0]
    if status == "killed":
        if run.get("error"):  # recorded by the run itself: Ctrl-C or SIGTERM
            stage = f" in stage {run['failed_stage']}" if run.get("failed_stage") else ""
            return f"killed{stage}: {run['error']}"
        return "killed: stopped before it finished (no process holds its lock)"
    if status != "completed":
        return "running now" if status == "running" else f"status {status!r}"
    promotion = run["promotion"] if isinstance(run["promotion"], dict) else {}
    verdict = "promoted" if promotion.get("promoted") else "not promoted"
    return f"{verdict}: {promotion.get('reason', '')}"


def _number(value: Any, spec: str) -> str:
    """A metric as written in the row, or '-' where it is missing or not a number."""
    return format(value, spec) if isinstance(value, int | float) else "-"


HISTORY_ROW = "{:<23} {:<10} {:<9} {:<6} {:<10} {:>9} {:>6}"
MODEL_WIDTH = 10  # a longer model name is cut with '…' (the champion lines below say it whole)
MIN_WIDTH, MAX_WIDTH = 80, 100  # fits an 80-column terminal; longer lines are hard to scan


def _wrapped(text: str, width: int, indent: str = "    ", max_lines: int = 3) -> list[str]:
    """text under its row, wrapped to the terminal and cut after max_lines."""
    return textwrap.wrap(
        text, width, initial_indent=indent, subsequent_indent=indent, max_lines=max_lines
    )


def command_history(args: argparse.Namespace) -> int:
    """Print every run (data, model, metrics, decision) and every champion change."""
    from houseprice import registry

    model = getattr(args, "model", None)
    skipped: list[str] = []  # unreadable lines and files: a warning each, after the listing
    runs = [
        r for r in registry.list_runs(args.artifacts_dir, skipped) if model in (None, r["model"])
    ]
    if not runs:
        print(f"no runs under {args.artifacts_dir}" + (f" for model {model}" if model else ""))
        return 0
    width = min(max(shutil.get_terminal_size((MAX_WIDTH, 24)).columns, MIN_WIDTH), MAX_WIDTH)
    print(HISTORY_ROW.format("run", "model", "status", "data", "trainer", "test RMSE", "R²"))
    for run in runs:
        test = run["test"] if isinstance(run["test"], dict) else {}
        name = str(run["model"])
        print(
            HISTORY_ROW.format(
                run["run_id"],
                name if len(name) <= MODEL_WIDTH else name[: MODEL_WIDTH - 1] + "…",
                str(run["status"] or "?"),
                str(run["snapshot"] or "-")[:6],
                str(run["selected_model"] or "-"),
                _number(test.get("rmse"), ",.0f"),
                _number(test.get("r2"), ".3f"),
            ).rstrip()
        )
        print("\n".join(_wrapped(_decision_text(run), width)))
    print("\nchampion changes:")
    history = registry.read_history(args.artifacts_dir, model, skipped)
    for entry in (e for e in history if e.get("promoted")):
        framework = entry.get("framework") or ""
        run_id = entry.get("run_id", "?")
        print(f"  {entry.get('time', '?')}  {entry.get('model')}: {run_id}/{framework}")
        print("\n".join(_wrapped(entry.get("reason") or "", width, indent="      ")))
    names = [model] if model else registry.champion_models(args.artifacts_dir)
    print("current champions:" if names else "current champion: none yet")
    for name in names:
        text = f"{name}: {champion_text(registry.read_champion(args.artifacts_dir, name))}"
        print("\n".join(_wrapped(text, width, indent="  ", max_lines=2)))
    for problem in skipped:
        print(f"houseprice: warning: skipped {problem}", file=sys.stderr)
    return 0


def command_promote(args: argparse.Namespace) -> int:
    """Make an earlier run the champion again."""
    from houseprice import registry
    from houseprice.locking import RunLockedError, retrain_lock

    registry.check_user_run_id(args.run_id)  # before the lock file is made: a path is no id
    # Wait for a retrain in progress: its own promotion would silently undo this one.
    try:
        with retrain_lock(args.artifacts_dir, args.artifacts_dir, args.wait, notify):
            return _promote_run(args)
    except RunLockedError as error:
        return fail(str(error))


def _promote_run(args: argparse.Namespace) -> int:
    """Promote one completed run (the caller holds the retrain lock)."""
    from houseprice import registry, storage
    from houseprice.champion import promote_verified
    from houseprice.errors import ModelLoadError

    if note := registry.migrate_legacy_champion(args.artifacts_dir):
        notify("note: %s", note)
    run = registry.require_completed(args.artifacts_dir, args.run_id)
    trained_as = registry.run_model(args.artifacts_dir, args.run_id)
    if args.model is not None and args.model != trained_as:
        return fail(
            f"run {args.run_id} was trained as model {trained_as!r}, not {args.model!r}: it "
            f"can only be the champion of {trained_as!r}",
            code=EXIT_REFUSED,
        )
    framework = args.framework or storage.read_json(run.metrics).get("selected_model")
    if framework is None:
        names = "|".join(trainer_names())
        return fail(f"run {args.run_id} has no selected model; pass --framework {names}")
    reason = f"manual promotion by `houseprice promote`{': ' + args.reason if args.reason else ''}"
    try:  # a tampered or truncated run must never replace a working champion
        champion = promote_verified(args.artifacts_dir, args.run_id, framework, reason)
    except ModelLoadError as error:
        return fail(f"refused, the champion is unchanged: {error}", code=EXIT_REFUSED)
    registry.append_history(
        args.artifacts_dir,
        {
            "event": "manual",
            "run_id": args.run_id,
            "framework": framework,
            "promoted": True,
            "reason": reason,
        },
    )
    print(f"champion of {champion.model}: {champion.run_id}/{champion.framework}")
    _move_champion_alias(args.artifacts_dir, args.run_id)
    return 0


def _move_champion_alias(artifacts_dir: Path, run_id: str) -> None:
    """Point MLflow's 'champion' alias at the new champion, where the runs are tracked."""
    from pydantic import ValidationError

    from houseprice import registry, tracking

    # The store this run was logged to, else the one the latest run used.
    candidates = [run_id, registry.latest_completed_run(artifacts_dir) or run_id]
    try:
        settings = tracking.recorded_settings(artifacts_dir, candidates)
        if settings is None:
            return
        model = registry.run_model(artifacts_dir, run_id)
        version = tracking.sync_champion_alias(artifacts_dir, settings, model)
    except ValidationError as error:
        print(f"warning: MLflow alias not moved: {error.errors()[0]['msg']}", file=sys.stderr)
        return
    except Exception as error:  # champion.json has changed; MLflow only mirrors it
        print(f"warning: MLflow alias not moved ({type(error).__name__}: {error})", file=sys.stderr)
        return
    print(f"MLflow: {settings.registered_model}@{tracking.CHAMPION_ALIAS} -> version {version}")
