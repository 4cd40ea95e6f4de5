"""The `houseprice` command: the one place that talks to a person on the terminal."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import os
import shutil
import sys
import textwrap
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
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
from houseprice.trainers import trainer_names

SYNTHETIC_TARGET = "price"
# Where `houseprice serve` looks for new files unless told otherwise (prefect.yaml agrees).
DEFAULT_LANDING_DIR = Path("data/landing")


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _separator(text: str) -> str:
    """A separator as typed on a command line: '\\t' or 'tab' mean a tab."""
    return "\t" if text in {"\\t", "tab"} else text


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by every command that builds a PipelineConfig."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="YAML file with any part of the configuration (see the README); flags win over it",
    )
    parser.add_argument(
        "--source",
        help="the data: a CSV or Parquet file, a folder of them, an http(s) URL, or "
        "synthetic:rows=N,features=D (default: the bundled Ames house sales)",
    )
    parser.add_argument(
        "--target", help="the price column to predict (default: Sale_Price; price for synthetic)"
    )
    parser.add_argument(
        "--separator", help="field separator of CSV sources, e.g. ';' or '\\t' (default ',')"
    )
    parser.add_argument(
        "--features",
        type=_comma_list,
        metavar="COLUMNS",
        help="columns to predict from, comma-separated; numbers are used as numbers, anything "
        "else as categories (default: the Ames columns for the bundled data, every usable "
        "column for another source)",
    )
    parser.add_argument(
        "--categorical",
        type=_comma_list,
        metavar="COLUMNS",
        help="which of --features are categories even though they hold numbers (zip codes)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where snapshots of the data are kept (default: data)",
    )
    parser.add_argument(
        "--artifacts-dir",
        type=Path,
        metavar="DIR",
        help="where runs, reports and the champion are kept (default: artifacts)",
    )
    parser.add_argument(
        "--all-rows",
        action="store_true",
        help="fit on every row (split fractions 0): in-sample regression table, "
        "out-of-sample error by cross-validation",
    )


def config_from_arguments(args: argparse.Namespace) -> PipelineConfig:
    """Merge the YAML file (if any) with the flags; flags win."""
    file_values = read_config_file(args.config) if args.config is not None else {}
    file_data = file_values.get("data") or {}
    data: dict[str, Any] = {}
    # `is not None`: an empty --target or --source is refused by the config, not ignored.
    if args.source is not None:
        data["source"] = args.source
    if args.target is not None:
        data["target"] = args.target
    if args.separator is not None:
        data["separator"] = _separator(args.separator)
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
    overrides: dict[str, Any] = {"data": data, "paths": paths}
    if args.all_rows:
        overrides["split"] = {"validation_fraction": 0, "test_fraction": 0}
    return build_config(merge_nested(file_values, overrides))


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by the user's input or files: reported in one line, no traceback."""
    from houseprice.errors import InputSchemaError, ModelLoadError, SourceError
    from houseprice.locking import RunLockedError
    from houseprice.registry import RegistryError
    from tasks.trainers.common import DeviceUnavailableError, TrainingDivergedError
    from tasks.validate import DataValidationError

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
_FILESYSTEM_ERRNOS = {
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.ENOTDIR,
    errno.ENAMETOOLONG,
}


def _describe_os_error(error: OSError) -> str:
    """'cannot write /srv/out.csv: read-only file system', with what to do for a full disk."""
    where = error.filename or "a file"
    writing = error.errno in {errno.EROFS, errno.ENOSPC, errno.EDQUOT}
    verb = "cannot write" if writing else "cannot use"
    text = f"{verb} {where}: {(error.strerror or str(error)).lower()}"
    if error.errno in {errno.ENOSPC, errno.EDQUOT}:
        text += " (free some space there, or point the output elsewhere)"
    return text


def _fail(message: str, code: int = 1) -> int:
    print(f"houseprice: {message}", file=sys.stderr)
    return code


@contextlib.contextmanager
def prefect_api() -> Iterator[Callable[[], None]]:
    """Make sure every process of a run talks to one Prefect API; yield a wait-until-ready.

    With no PREFECT_API_URL, Prefect starts a temporary server per process, and the training
    workers are processes of their own: each would start (and wait ~10 s for) another server.
    Starting the temporary server here and exporting its URL lets the workers share it. It
    starts in the background: call the yielded function once the slow imports are done.
    """
    from prefect.context import refresh_global_settings_context
    from prefect.settings import PREFECT_API_URL

    from houseprice.prefect_server import TemporaryServer

    if PREFECT_API_URL.value():
        yield lambda: None
        return
    server = TemporaryServer(_notify)
    server.start()
    # Inherited by the worker processes; the refresh shows it to Prefect's own threads too
    # (its event and log workers), which would otherwise start a server of their own.
    os.environ["PREFECT_API_URL"] = server.api_url
    refresh_global_settings_context()
    # Stopped at exit, after Prefect's log and event workers have sent what they hold (they
    # drain at interpreter exit, before atexit hooks run); stopped earlier, they retry for a
    # minute and print "Error logging to API".
    atexit.register(server.stop)
    try:
        yield server.wait_ready
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        refresh_global_settings_context()


# Exit codes of `houseprice retrain`, so that a scheduler or a shell can tell outcomes apart
# (README: "Exit codes"). The other commands use 0, 1 and 2 the same way.
EXIT_PROMOTED = 0  # completed, verdict PASS, and this run's model is now the champion
EXIT_FAILED = 1  # failed: bad data, a missing file, another retrain holding the lock, a bug
EXIT_REFUSED = 2  # the configuration (or a command-line value) was refused before anything ran
EXIT_KEPT = 3  # completed, verdict PASS, champion kept (not better beyond noise; nothing new)
EXIT_CHECK = 4  # completed, but the verdict is CHECK: read the report before trusting the run
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report it


@dataclass
class RetrainOutcome:
    """What a completed run amounts to: the closing lines of `retrain` and its exit code."""

    run_folder: Path
    passed: bool
    verdict: str  # "PASS: ..." or "CHECK: ..."
    promoted: bool
    decision: str  # the promotion decision and its reason
    champion: str  # the champion now

    @property
    def exit_code(self) -> int:
        """EXIT_CHECK before anything else: a run that needs a look must not pass silently."""
        if not self.passed:
            return EXIT_CHECK
        return EXIT_PROMOTED if self.promoted else EXIT_KEPT

    def lines(self) -> list[str]:
        """The closing lines, one fact each."""
        return [
            f"run:       {self.run_folder}",
            f"verdict:   {self.verdict}",
            f"promotion: {self.decision}",
            f"champion:  {self.champion}",
            f"report:    {self.run_folder / 'report.html'}",
        ]


def read_outcome(run_folder: Path, artifacts_dir: Path) -> RetrainOutcome:
    """Read a completed run's verdict and promotion back from what it wrote."""
    from houseprice import registry, storage
    from tasks.plots import model_label
    from tasks.report import run_verdict

    metrics = storage.read_json(run_folder / "metrics.json")
    try:
        validation = storage.read_json(run_folder / "validation" / "result.json")
    except (OSError, ValueError):  # a completed run passed validation: it stops a run otherwise
        validation = {"success": True}
    passed, verdict = run_verdict(validation, metrics["reference_check"], metrics.get("drift"))
    promotion = metrics.get("promotion") or {}
    champion = registry.read_champion(artifacts_dir)
    promoted = champion is not None and champion.run_id == run_folder.name
    model = f" ({model_label(promotion['framework'])})" if promotion.get("framework") else ""
    decision = f"{'promoted' if promoted else 'not promoted'}{model}: {promotion.get('reason')}"
    return RetrainOutcome(
        run_folder, passed, verdict, promoted, decision, _champion_text(champion, run_folder.name)
    )


def _champion_text(champion: Any, this_run: str | None = None) -> str:
    """The champion in one line: run/framework, and whether it is this run's model."""
    if champion is None:
        return "none yet"
    mine = " (this run)" if champion.run_id == this_run else ""
    return f"{champion.run_id}/{champion.framework}{mine}, since {champion.promoted_at}"


def command_retrain(args: argparse.Namespace) -> int:
    """Run the retrain flow once; end with the verdict, the promotion, the champion, the report."""
    config = config_from_arguments(args)
    from tasks.sources import source_problem

    # Checked before the Prefect server starts (tens of seconds) or a run folder is made.
    if config.data.landing_dir is None and (problem := source_problem(config.data.source)):
        raise ConfigError(problem)
    from houseprice.console import brief_prefect_console

    with brief_prefect_console(args.verbose):
        try:
            with prefect_api() as wait_for_server:
                from flows.retrain import retrain  # imported while the server starts: both slow

                wait_for_server()
                result = retrain(config)
        except Exception as error:
            return _report_failed_run(error, config.paths.artifacts_dir, args.verbose)
    artifacts_dir = config.paths.artifacts_dir
    if not Path(result).is_dir():  # landing mode with nothing new: the flow says why
        print(result)
        print(f"champion:  {_champion_text(_read_champion(artifacts_dir))}")
        return EXIT_KEPT
    outcome = read_outcome(Path(result), artifacts_dir)
    print("\n".join(outcome.lines()))
    return outcome.exit_code


def _read_champion(artifacts_dir: Path) -> Any:
    from houseprice import registry

    return registry.read_champion(artifacts_dir)


def _report_failed_run(error: Exception, artifacts_dir: Path, verbose: bool) -> int:
    """Say why the run failed and where its report is; a traceback only for a bug or verbose."""
    from houseprice import runs, storage

    expected = isinstance(error, _user_errors())
    if verbose or not expected:
        traceback.print_exception(error)
        if not expected:
            print("houseprice: this looks like a bug; the traceback is above", file=sys.stderr)
    folder = runs.run_folder_of(error)
    status = runs.read_status(storage.RunPaths(folder.name, folder)) if folder else {}
    where = f" in stage {status['failed_stage']}" if status.get("failed_stage") else ""
    lines = [f"houseprice: retrain failed{where}: {error}"]
    if folder is not None:
        lines.append(f"run:       {folder}")
        if (folder / "report.html").exists():
            lines.append(f"report:    {folder / 'report.html'}")
    with contextlib.suppress(Exception):  # an unreadable champion must not hide the failure
        lines.append(f"champion:  {_champion_text(_read_champion(artifacts_dir))} (unchanged)")
    print("\n".join(lines), file=sys.stderr)
    return EXIT_FAILED


def command_predict(args: argparse.Namespace) -> int:
    """Score a file with the champion or a named run and write it with predictions."""
    from houseprice.inputs import InputLimits
    from tasks.scoring import describe_input_notes, predict_file  # Prefect-free: starts in ~1 s

    limits = InputLimits(max_imputed_fraction=args.max_imputed_fraction)
    summary = predict_file(
        args.input, args.output, args.artifacts_dir, args.run, limits, _separator(args.separator)
    )
    print(f"{summary.rows} rows scored by {summary.model_id} -> {summary.output}")
    for column, values in summary.unseen_categories.items():
        print(f"note: {column} levels unseen in training, scored as the reference: {values[:10]}")
    for line in describe_input_notes(summary):
        print(f"note: {line}")
    return 0


def _decision_text(run: dict[str, Any]) -> str:
    """What became of a run: its promotion decision, or what stopped it."""
    status = run["status"]
    if status == "failed":
        stage = f" in stage {run['failed_stage']}" if run.get("failed_stage") else ""
        return f"failed{stage}: " + (run["error"] or "").partition("\n")[0]
    if status == "killed":
        return "killed: stopped before it finished (no process holds its lock)"
    if status != "completed":
        return "running now" if status == "running" else f"status {status!r}"
    promotion = run["promotion"] or {}
    verdict = "promoted" if promotion.get("promoted") else "not promoted"
    return f"{verdict}: {promotion.get('reason', '')}"


HISTORY_ROW = "{:<23}  {:<9}  {:<8}  {:<10}  {:>10}  {:>6}"
MIN_WIDTH, MAX_WIDTH = 80, 100  # fits an 80-column terminal; longer lines are hard to scan


def _wrapped(text: str, width: int, indent: str = "    ", max_lines: int = 3) -> list[str]:
    """text under its row, wrapped to the terminal and cut after max_lines."""
    return textwrap.wrap(
        text, width, initial_indent=indent, subsequent_indent=indent, max_lines=max_lines
    )


def command_history(args: argparse.Namespace) -> int:
    """Print every run (data, model, metrics, decision) and every champion change."""
    from houseprice import registry

    runs = registry.list_runs(args.artifacts_dir)
    if not runs:
        print(f"no runs under {args.artifacts_dir}")
        return 0
    width = min(max(shutil.get_terminal_size((MAX_WIDTH, 24)).columns, MIN_WIDTH), MAX_WIDTH)
    print(HISTORY_ROW.format("run", "status", "snapshot", "model", "test RMSE", "R²"))
    for run in runs:
        test = run["test"] or {}
        print(
            HISTORY_ROW.format(
                run["run_id"],
                run["status"] or "?",
                (run["snapshot"] or "-")[:8],
                run["selected_model"] or "-",
                f"{test['rmse']:,.0f}" if "rmse" in test else "-",
                f"{test['r2']:.3f}" if "r2" in test else "-",
            ).rstrip()
        )
        print("\n".join(_wrapped(_decision_text(run), width)))
    print("\nchampion changes:")
    changes = [e for e in registry.read_history(args.artifacts_dir) if e.get("promoted")]
    for entry in changes:
        framework = entry.get("framework") or ""
        print(f"  {entry['time']}  {entry['run_id']}/{framework}")
        print("\n".join(_wrapped(entry.get("reason") or "", width, indent="      ")))
    champion = registry.read_champion(args.artifacts_dir)
    print(f"current champion: {_champion_text(champion)}")
    return 0


def command_promote(args: argparse.Namespace) -> int:
    """Make an earlier run the champion again."""
    from houseprice import registry
    from houseprice.locking import RunLockedError, retrain_lock

    registry.check_user_run_id(args.run_id)  # before the lock file is made: a path is no id
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
        names = "|".join(trainer_names())
        return _fail(f"run {args.run_id} has no selected model; pass --framework {names}")
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


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps one-paragraph descriptions; keeps text laid out in lines (the exit codes) as is."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" not in text:
            return super()._fill_text(text, width, indent)
        return "".join(indent + line for line in text.splitlines(keepends=True))


RETRAIN_EPILOG = """\
The last lines say what happened: the run folder, the verdict (PASS, or CHECK and why), whether
this run's model was promoted and why, the champion now, and the report's path.

exit codes:
  0  completed, PASS, and this run's model is now the champion
  1  failed (bad data, a missing file, another retrain holding the lock, a bug); the run's
     report.html says which stage stopped it and why
  2  the configuration was refused before anything ran
  3  completed, PASS, the champion was kept (or, in landing mode, nothing new to train)
  4  completed with CHECK: a trainer is off the least-squares answer, or the data drifted
"""


def _version() -> str:
    try:
        return metadata.version("houseprice")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface, one subcommand per capability."""
    parser = argparse.ArgumentParser(
        prog="houseprice",
        description="Train house-price models on validated data, keep the best one as the "
        "champion, and price new houses with it.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--verbose",
        action="store_true",
        help="show full tracebacks, also for errors in your data or files",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, summary: str, **extra: Any) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=summary,
            description=summary,
            parents=[common],
            formatter_class=_HelpFormatter,
            **extra,
        )

    retrain = add(
        "retrain",
        "Validate the data, train the PyTorch and TensorFlow models, check them against the "
        "exact least-squares answer, write a report, and promote the better model if it "
        "beats the champion.",
        epilog=RETRAIN_EPILOG,
    )
    _add_config_arguments(retrain)
    retrain.set_defaults(handler=command_retrain)

    predict = add("predict", "Price the houses in a CSV or Parquet file with the champion.")
    predict.add_argument(
        "--input", type=Path, required=True, metavar="FILE", help="CSV or Parquet file of houses"
    )
    predict.add_argument(
        "--output",
        type=Path,
        required=True,
        metavar="FILE",
        help="where to write the houses with a prediction column (.csv or .parquet)",
    )
    predict.add_argument(
        "--run", metavar="RUN_ID", help="use this run's model instead of the champion"
    )
    predict.add_argument(
        "--max-imputed-fraction",
        type=_fraction,
        default=0.5,
        metavar="FRACTION",
        help="largest share of rows a numeric column may be missing in (filled with the "
        "training median) before predict refuses; 1 allows any (default: 0.5)",
    )
    predict.add_argument(
        "--separator", default=",", help="field separator of a CSV input (default: ',')"
    )
    _add_artifacts_argument(predict)
    predict.set_defaults(handler=command_predict)

    history = add(
        "history", "List every run with its metrics and decision, and every champion change."
    )
    _add_artifacts_argument(history)
    history.set_defaults(handler=command_history)

    promote = add(
        "promote",
        "Make an earlier completed run's model the champion (to roll back a promotion).",
    )
    promote.add_argument("run_id", metavar="RUN_ID", help="the run to promote, as in `history`")
    promote.add_argument(
        "--framework",
        choices=trainer_names(),
        help="which of the run's models (default: the one the run selected)",
    )
    promote.add_argument("--reason", help="a note kept with the decision in the history")
    promote.add_argument(
        "--wait",
        type=float,
        default=3600,
        metavar="SECONDS",
        help="how long to wait for a retrain in progress to finish (default: %(default).0f)",
    )
    _add_artifacts_argument(promote)
    promote.set_defaults(handler=command_promote)

    serve = add(
        "serve",
        "Retrain on a schedule from this process until Ctrl-C (needs a Prefect server; no "
        "work pool).",
    )
    _add_config_arguments(serve)
    serve.add_argument(
        "--landing-dir",
        type=Path,
        metavar="DIR",
        help=f"folder where new CSV/Parquet files are dropped (default: {DEFAULT_LANDING_DIR})",
    )
    serve.add_argument("--cron", help="when to retrain, a cron string (default: 0 2 * * *)")
    serve.add_argument(
        "--timezone", help="IANA time zone the cron is read in (default: America/Chicago)"
    )
    serve.set_defaults(handler=command_serve)

    alerts = add("alerts", "Tell a person when the nightly retrain fails or stops running.")
    alerts_commands = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    install = alerts_commands.add_parser(
        "install",
        help="save a webhook block and two automations: a failed or crashed run, and no "
        "completed run for --silence-hours",
        parents=[common],
        formatter_class=_HelpFormatter,
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


def _add_artifacts_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--artifacts-dir",
        type=Path,
        default=Path("artifacts"),
        metavar="DIR",
        help="where runs and the champion are kept (default: %(default)s)",
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `houseprice` console command."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as error:
        return _fail(str(error), code=EXIT_REFUSED)
    except Exception as error:
        if isinstance(error, _user_errors()):
            if args.verbose:
                traceback.print_exception(error)
            return _fail(str(error))
        if isinstance(error, OSError) and error.errno in _FILESYSTEM_ERRNOS:
            return _fail(_describe_os_error(error))
        raise  # a bug: Python prints the traceback
    except KeyboardInterrupt:
        return _fail("interrupted", code=EXIT_INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
