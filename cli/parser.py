"""The command line's shape: one subcommand per capability, each with its flags and help."""

from __future__ import annotations

import argparse
from importlib import metadata
from pathlib import Path
from typing import Any

from houseprice.trainers import trainer_names

from .arguments import (
    DEFAULT_LANDING_DIR,
    add_artifacts_argument,
    add_config_arguments,
    add_model_argument,
    parse_fraction,
)
from .history import command_history, command_promote
from .predict import command_predict
from .retrain import command_retrain
from .schedule import command_alerts_install, command_serve


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
  1  failed (bad data, a missing file, an unreachable source, a full or read-only disk,
     another retrain holding the lock); the run's report.html says which stage and why
  2  the configuration was refused before anything ran
  3  completed, PASS, the champion was kept (or, in landing mode, nothing new to train)
  4  completed with CHECK: a trainer is off the least-squares answer, or the data drifted
  70   a bug in houseprice: the traceback is printed above the last lines
  130  interrupted by Ctrl-C; 143: stopped by SIGTERM (either way the run is marked killed)
"""


def _version() -> str:
    """The installed package's version, for --version."""
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
    add_config_arguments(retrain)
    retrain.set_defaults(handler=command_retrain)

    predict = add("predict", "Price the houses in a CSV or Parquet file with the champion.")
    predict.add_argument(  # a string, not a Path: Path('http://x') would lose a slash
        "--input",
        required=True,
        metavar="FILE|URL",
        help="CSV or Parquet file of houses, or an http(s) URL of one",
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
    add_model_argument(
        predict,
        "whose champion prices the houses (default: the only model with a champion, or the "
        "one whose columns the file has)",
    )
    predict.add_argument(
        "--max-imputed-fraction",
        type=parse_fraction,
        default=0.5,
        metavar="FRACTION",
        help="largest share of rows a numeric column may be missing in (filled with the "
        "training median) before predict refuses; 1 allows any (default: 0.5)",
    )
    predict.add_argument(
        "--separator", default=",", help="field separator of a CSV input (default: ',')"
    )
    predict.add_argument(
        "--strict",
        action="store_true",
        help="refuse (exit 2) rows with a feature outside its training range by more than half "
        "the range, instead of pricing them and flagging them in the out_of_range column",
    )
    add_artifacts_argument(predict)
    predict.set_defaults(handler=command_predict)

    history = add(
        "history", "List every run with its metrics and decision, and every champion change."
    )
    add_model_argument(history, "list only this model's runs and champion changes")
    add_artifacts_argument(history)
    history.set_defaults(handler=command_history)

    promote = add(
        "promote",
        "Make an earlier completed run's model the champion of its model (to roll back a "
        "promotion), once its files match the checksums it recorded.",
    )
    promote.add_argument("run_id", metavar="RUN_ID", help="the run to promote, as in `history`")
    promote.add_argument(
        "--framework",
        choices=trainer_names(),
        help="which of the run's models (default: the one the run selected)",
    )
    promote.add_argument("--reason", help="a note kept with the decision in the history")
    add_model_argument(
        promote,
        "the model the run must belong to; refused if it was trained as another (default: "
        "the run's own model, whose champion it becomes)",
    )
    promote.add_argument(
        "--wait",
        type=float,
        default=3600,
        metavar="SECONDS",
        help="how long to wait for a retrain in progress to finish (default: %(default).0f)",
    )
    add_artifacts_argument(promote)
    promote.set_defaults(handler=command_promote)

    serve = add(
        "serve",
        "Retrain on a schedule from this process until Ctrl-C (needs a Prefect server; no "
        "work pool).",
    )
    add_config_arguments(serve)
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
