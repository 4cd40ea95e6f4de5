"""The `houseprice` command: the one place that talks to a person on the terminal."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from houseprice.config import (
    BUNDLED_SOURCE,
    ConfigError,
    PipelineConfig,
    build_config,
    merge_nested,
    read_config_file,
)

SYNTHETIC_TARGET = "price"
# Where `houseprice serve` looks for new files unless told otherwise (prefect.yaml agrees).
DEFAULT_LANDING_DIR = Path("data/landing")


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by every command that builds a PipelineConfig."""
    parser.add_argument("--config", type=Path, help="YAML file holding a PipelineConfig")
    parser.add_argument("--source", help="CSV/Parquet file, folder, http(s) URL, or synthetic:...")
    parser.add_argument("--target", help="column to predict")
    parser.add_argument(
        "--features",
        type=_comma_list,
        help="feature columns, comma-separated (kinds read off the data)",
    )
    parser.add_argument(
        "--categorical", type=_comma_list, help="feature columns to treat as categorical"
    )
    parser.add_argument("--data-dir", type=Path, help="folder for data snapshots")
    parser.add_argument("--artifacts-dir", type=Path, help="folder for run outputs")


def config_from_arguments(args: argparse.Namespace) -> PipelineConfig:
    """Merge the YAML file (if any) with the flags; flags win."""
    file_values = read_config_file(args.config) if args.config is not None else {}
    file_data = file_values.get("data") or {}
    data: dict[str, Any] = {}
    if args.source:
        data["source"] = args.source
    if args.target:
        data["target"] = args.target
    if args.categorical is not None and args.features is None:
        raise ConfigError("--categorical says which of --features are categorical: add --features")
    if args.features is not None:
        categorical = args.categorical or []
        data["categorical_features"] = categorical
        data["numeric_features"] = []
        data["features"] = [f for f in (args.features or []) if f not in categorical]
    source = data.get("source", file_data.get("source", BUNDLED_SOURCE))
    column_keys = {"numeric_features", "categorical_features", "features"}
    if source != BUNDLED_SOURCE and not column_keys & (set(data) | set(file_data)):
        # The bundled defaults name Ames columns; another source starts from all its columns.
        data.update(numeric_features=[], categorical_features=[], features=[])
    if source.startswith("synthetic:") and "target" not in data and "target" not in file_data:
        data["target"] = SYNTHETIC_TARGET
    paths = {
        key: value
        for key, value in (("data_dir", args.data_dir), ("artifacts_dir", args.artifacts_dir))
        if value is not None
    }
    return build_config(merge_nested(file_values, {"data": data, "paths": paths}))


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by the user's input or files: reported in one line, no traceback."""
    from houseprice.errors import ModelLoadError
    from houseprice.model import InputSchemaError
    from houseprice.registry import RegistryError
    from tasks.ingest import SourceError

    return (
        SourceError,
        InputSchemaError,
        RegistryError,
        ModelLoadError,
        FileNotFoundError,
        PermissionError,
        IsADirectoryError,
    )


def _fail(message: str, code: int = 1) -> int:
    print(f"houseprice: {message}", file=sys.stderr)
    return code


@contextlib.contextmanager
def prefect_api() -> Iterator[None]:
    """Make sure every process of a run talks to one Prefect API.

    With no PREFECT_API_URL, Prefect starts a temporary server per process, and the training
    workers are processes of their own: each would start (and wait ~10 s for) another server.
    Starting the temporary server here and exporting its URL lets the workers share it.
    """
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    server = SubprocessASGIServer()  # the instance Prefect itself would use in this process
    server.start()
    os.environ["PREFECT_API_URL"] = server.api_url  # inherited by the worker processes
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield
    finally:
        os.environ.pop("PREFECT_API_URL", None)


def command_retrain(args: argparse.Namespace) -> int:
    """Run the retrain flow once and print the run folder."""
    config = config_from_arguments(args)
    from flows.retrain import retrain  # imported late: Prefect start-up is slow

    try:
        with prefect_api():
            run_folder = retrain(config)
    except Exception as error:
        notes = "".join(f"\n  {note}" for note in getattr(error, "__notes__", []))
        return _fail(f"retrain failed: {error}{notes}")
    print(run_folder)
    return 0


def command_predict(args: argparse.Namespace) -> int:
    """Score a file with the champion or a named run and write it with predictions."""
    from tasks.predict import predict_file

    summary = predict_file(args.input, args.output, args.artifacts_dir, args.run)
    print(f"{summary.rows} rows scored by {summary.model_id} -> {summary.output}")
    for column, values in summary.unseen_categories.items():
        print(f"note: {column} levels unseen in training, scored as the reference: {values[:10]}")
    return 0


def _decision_text(run: dict[str, Any]) -> str:
    """What became of a run: its promotion decision, or the error that stopped it."""
    promotion = run["promotion"]
    if not promotion:
        return (run["error"] or "").partition("\n")[0]  # the first line says what failed
    verdict = "promoted" if promotion.get("promoted") else "not promoted"
    return f"{verdict}: {promotion.get('reason', '')}"


def command_history(args: argparse.Namespace) -> int:
    """Print every run (time, data, metrics, decision) and every champion change."""
    from houseprice import registry

    runs = registry.list_runs(args.artifacts_dir)
    if not runs:
        print(f"no runs under {args.artifacts_dir}")
        return 0
    row = "{:<24} {:<25} {:<10} {:<12} {:<10} {:>11} {:>7}  {}"
    print(
        row.format("run", "started", "status", "snapshot", "model", "test RMSE", "R2", "decision")
    )
    for run in runs:
        test = run["test"] or {}
        print(
            row.format(
                run["run_id"],
                run["started_at"] or "-",
                run["status"] or "?",
                (run["snapshot"] or "-")[:12],
                run["selected_model"] or "-",
                f"{test['rmse']:,.0f}" if "rmse" in test else "-",
                f"{test['r2']:.3f}" if "r2" in test else "-",
                _decision_text(run),
            )
        )
    print("\nchampion changes:")
    changes = [e for e in registry.read_history(args.artifacts_dir) if e.get("promoted")]
    for entry in changes:
        framework = entry.get("framework") or ""
        print(f"  {entry['time']}  {entry['run_id']}/{framework}: {entry['reason']}")
    champion = registry.read_champion(args.artifacts_dir)
    if champion is None:
        print("current champion: none yet")
    else:
        model = f"{champion.run_id}/{champion.framework}"
        print(f"current champion: {model}, since {champion.promoted_at}")
    return 0


def command_promote(args: argparse.Namespace) -> int:
    """Make an earlier run the champion again."""
    from houseprice.locking import RunLockedError, retrain_lock

    # Wait for a retrain in progress: its own promotion would silently undo this one.
    try:
        with retrain_lock(args.artifacts_dir, args.artifacts_dir, args.wait, _notify):
            return _promote_run(args)
    except RunLockedError as error:
        return _fail(str(error))


def _notify(message: str, *values: object) -> None:
    """Tell the person at the terminal what the command is waiting for."""
    print(message % values, file=sys.stderr)


def _promote_run(args: argparse.Namespace) -> int:
    """Promote one completed run (the caller holds the retrain lock)."""
    from houseprice import registry, storage

    run = registry.require_completed(args.artifacts_dir, args.run_id)
    framework = args.framework or storage.read_json(run.metrics).get("selected_model")
    if framework is None:
        return _fail(f"run {args.run_id} has no selected model; pass --framework torch|tensorflow")
    reason = f"manual promotion by `houseprice promote`{': ' + args.reason if args.reason else ''}"
    champion = registry.promote(args.artifacts_dir, args.run_id, framework, reason)
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
    print(f"champion: {champion.run_id}/{champion.framework}")
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
        version = tracking.sync_champion_alias(artifacts_dir, settings)
    except ValidationError as error:
        print(f"warning: MLflow alias not moved: {error.errors()[0]['msg']}", file=sys.stderr)
        return
    except Exception as error:  # champion.json has changed; MLflow only mirrors it
        print(f"warning: MLflow alias not moved ({type(error).__name__}: {error})", file=sys.stderr)
        return
    print(f"MLflow: {settings.registered_model}@{tracking.CHAMPION_ALIAS} -> version {version}")


def command_serve(args: argparse.Namespace) -> int:
    """Serve the retrain flow on a schedule (nightly by default) until interrupted."""
    config = config_from_arguments(args)
    landing = args.landing_dir or config.data.landing_dir or DEFAULT_LANDING_DIR
    data: dict[str, Any] = {"landing_dir": landing}
    if config.data.source == BUNDLED_SOURCE and config.data.time_column is None:
        # As in prefect.yaml: the sale year keeps growing, so its learned range stays open.
        data["time_column"] = "Year_Sold"
    config = build_config(merge_nested(config.model_dump(), {"data": data}))
    from prefect.settings import PREFECT_API_URL

    from flows import serve  # imported late: Prefect start-up is slow

    # A temporary server runs no scheduler service: the schedule would never fire.
    if not PREFECT_API_URL.value():
        return _fail(
            "serve needs a Prefect server to schedule its runs: start one with "
            "`prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api",
            code=2,
        )
    try:
        schedule = serve.nightly_schedule(
            args.cron or serve.NIGHTLY_CRON, args.timezone or serve.AMES_TIMEZONE
        )
    except ValueError as error:
        return _fail(str(error), code=2)
    serve.serve_retrain(config, schedule)
    return 0


def command_alerts_install(args: argparse.Namespace) -> int:
    """Save the webhook block and the failure and silence automations on the Prefect server."""
    from prefect.settings import PREFECT_API_URL

    from flows import alerts

    if not PREFECT_API_URL.value():
        return _fail(
            "alerts live on the Prefect server that schedules the runs: set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api (see README, Scheduled retraining)",
            code=2,
        )
    if not args.webhook_url.startswith(("http://", "https://")):
        return _fail(f"--webhook-url must be an http(s) URL, not {args.webhook_url!r}", code=2)
    if args.silence_hours * 3600 < 10:
        return _fail("--silence-hours must be at least 10 seconds (0.003 hours)", code=2)
    try:
        installed = alerts.install_alerts(args.webhook_url, args.deployment, args.silence_hours)
    except alerts.AlertsError as error:
        return _fail(str(error))
    print(f"webhook block {installed.block_name!r} -> {args.webhook_url}")
    for name, automation_id in installed.automations.items():
        print(f"automation {name!r} ({automation_id})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface, one subcommand per capability."""
    parser = argparse.ArgumentParser(prog="houseprice", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    retrain = commands.add_parser("retrain", help="ingest, validate, train, evaluate and report")
    _add_config_arguments(retrain)
    retrain.set_defaults(handler=command_retrain)

    predict = commands.add_parser("predict", help="score a CSV/Parquet file with the champion")
    predict.add_argument("--input", type=Path, required=True, help="CSV or Parquet file of houses")
    predict.add_argument(
        "--output", type=Path, required=True, help="where to write, .csv or .parquet"
    )
    predict.add_argument("--run", help="score with this run's model instead of the champion")
    predict.add_argument("--artifacts-dir", type=Path, default=Path("artifacts"))
    predict.set_defaults(handler=command_predict)

    history = commands.add_parser("history", help="list runs, metrics and champion changes")
    history.add_argument("--artifacts-dir", type=Path, default=Path("artifacts"))
    history.set_defaults(handler=command_history)

    promote = commands.add_parser("promote", help="make an earlier run the champion")
    promote.add_argument("run_id")
    promote.add_argument("--framework", choices=["torch", "tensorflow"])
    promote.add_argument("--reason", help="note kept in the promotion history")
    promote.add_argument(
        "--wait", type=float, default=3600, help="seconds to wait for a running retrain"
    )
    promote.add_argument("--artifacts-dir", type=Path, default=Path("artifacts"))
    promote.set_defaults(handler=command_promote)

    serve = commands.add_parser(
        "serve", help="retrain on a schedule from this process (no work pool needed)"
    )
    _add_config_arguments(serve)
    serve.add_argument(
        "--landing-dir",
        type=Path,
        help=f"folder where new CSV/Parquet files are dropped (default: {DEFAULT_LANDING_DIR})",
    )
    serve.add_argument("--cron", help="when to retrain, a cron string (default: 0 2 * * *)")
    serve.add_argument(
        "--timezone", help="IANA time zone the cron is read in (default: America/Chicago)"
    )
    serve.set_defaults(handler=command_serve)

    alerts = commands.add_parser("alerts", help="tell a person when the nightly run fails")
    alerts_commands = alerts.add_subparsers(dest="alerts_command", required=True)
    install = alerts_commands.add_parser(
        "install", help="webhook block + automations: failed run, no completed run for 26 h"
    )
    install.add_argument("--webhook-url", required=True, help="where alerts are POSTed (JSON)")
    install.add_argument(
        "--deployment", default="retrain/nightly", help="deployment to watch (flow/deployment)"
    )
    install.add_argument(
        "--silence-hours",
        type=float,
        default=26.0,
        help="alert when no run completed for this long (default: 26)",
    )
    install.set_defaults(handler=command_alerts_install)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `houseprice` console command."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as error:
        return _fail(str(error), code=2)
    except Exception as error:
        if isinstance(error, _user_errors()):
            return _fail(str(error))
        raise
    except KeyboardInterrupt:
        return _fail("interrupted", code=130)


if __name__ == "__main__":
    sys.exit(main())
