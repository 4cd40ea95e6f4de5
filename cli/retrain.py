"""`retrain`: one run of the retrain flow, its closing lines and its exit code."""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path

from houseprice import layout
from houseprice.config_files import ConfigError
from houseprice.failures import INTERRUPTED, classify_failure

from .arguments import config_from_arguments
from .terminal import (
    EXIT_CHECK,
    EXIT_KEPT,
    EXIT_PROMOTED,
    STOP_SIGNALS,
    champion_text,
    notify,
    read_champion,
    report_failure,
)


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
    from houseprice.tasks.plots import model_label
    from houseprice.tasks.reporting.metrics import run_verdict

    metrics = storage.read_json(run_folder / "metrics.json")
    try:
        validation = storage.read_json(run_folder / "validation" / "result.json")
    except (OSError, ValueError):  # a completed run passed validation: it stops a run otherwise
        validation = {"success": True}
    drifted = (metrics.get("drift") or {}).get("drifted") or []
    passed, verdict = run_verdict(validation, metrics["reference_check"], drifted=drifted)
    promotion = metrics.get("promotion") or {}
    name = registry.run_model(artifacts_dir, run_folder.name)  # each model has its champion
    champion = registry.read_champion(artifacts_dir, name)
    promoted = champion is not None and champion.run_id == run_folder.name
    model = f" ({model_label(promotion['framework'])})" if promotion.get("framework") else ""
    decision = f"{'promoted' if promoted else 'not promoted'}{model}: {promotion.get('reason')}"
    champion_line = f"{champion_text(champion, run_folder.name)} (model {name})"
    return RetrainOutcome(run_folder, passed, verdict, promoted, decision, champion_line)


def command_retrain(args: argparse.Namespace) -> int:
    """Run the retrain flow once; end with the verdict, the promotion, the champion, the report."""
    config = config_from_arguments(args)
    from houseprice.preflight import retrain_problem

    # Checked before the Prefect server starts (tens of seconds) or a run folder is made: the
    # source's kind and header, the columns named, the folders (nothing read but headers).
    if problem := retrain_problem(config):
        raise ConfigError(problem)
    from houseprice.prefect_server import temporary_api

    try:
        # The server starts first: it comes up while this process imports the pipeline.
        with temporary_api(notify) as wait_for_server:
            from houseprice.console import brief_prefect_console

            with brief_prefect_console(args.verbose):
                from houseprice.flows.alerts import without_unused_alerts
                from houseprice.flows.retrain import retrain
                from houseprice.flows.workers import import_in_background

                import_in_background("great_expectations")  # validate's, while the server starts
                wait_for_server()
                result = without_unused_alerts(retrain)(config)
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as error:  # Ctrl-C and SIGTERM (ours or Prefect's) name the run too
        return _report_failed_run(
            error, config.paths.artifacts_dir, args.verbose, config.data.model_name
        )
    artifacts_dir = config.paths.artifacts_dir
    if not Path(result).is_dir():  # landing mode with nothing new: the flow says why
        print(result)
        model = config.data.model_name
        print(f"champion:  {champion_text(read_champion(artifacts_dir, model))} (model {model})")
        return EXIT_KEPT
    outcome = read_outcome(Path(result), artifacts_dir)
    print("\n".join(outcome.lines()))
    return outcome.exit_code


def _report_failed_run(
    error: BaseException, artifacts_dir: Path, verbose: bool, model: str | None = None
) -> int:
    """Say once why the run stopped and where its report is; a traceback only for a bug."""
    from houseprice import runs

    folder = runs.run_folder_of(error)
    status = runs.read_status(layout.RunPaths(folder.name, folder)) if folder else {}
    stage = f" in stage {status['failed_stage']}" if status.get("failed_stage") else ""
    failure = classify_failure(error, STOP_SIGNALS.received())
    verb = "interrupted" if failure.kind == INTERRUPTED else "failed"
    report_failure(error, verbose, f"retrain {verb}{stage}")
    lines = []
    if folder is not None and folder.exists():  # a run that filled the disk removed its own
        lines.append(f"run:       {folder}")
        if (folder / "report.html").exists():
            lines.append(f"report:    {folder / 'report.html'}")
    with contextlib.suppress(Exception):  # an unreadable champion must not hide the failure
        champion = champion_text(read_champion(artifacts_dir, model))
        lines.append(f"champion:  {champion} (unchanged)")
    print("\n".join(lines), file=sys.stderr)
    return failure.exit_code
