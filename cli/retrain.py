"""`retrain`: one run of the retrain flow, its closing lines and its exit code."""

from __future__ import annotations

import argparse
import contextlib
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from houseprice import layout
from houseprice.config_files import ConfigError

from .arguments import config_from_arguments
from .terminal import (
    EXIT_CHECK,
    EXIT_FAILED,
    EXIT_KEPT,
    EXIT_PROMOTED,
    champion_text,
    notify,
    read_champion,
    user_errors,
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
    except Exception as error:
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
    error: Exception, artifacts_dir: Path, verbose: bool, model: str | None = None
) -> int:
    """Say why the run failed and where its report is; a traceback only for a bug or verbose."""
    from houseprice import runs

    expected = isinstance(error, user_errors())
    if verbose or not expected:
        traceback.print_exception(error)
        if not expected:
            print("houseprice: this looks like a bug; the traceback is above", file=sys.stderr)
    folder = runs.run_folder_of(error)
    status = runs.read_status(layout.RunPaths(folder.name, folder)) if folder else {}
    where = f" in stage {status['failed_stage']}" if status.get("failed_stage") else ""
    lines = [f"houseprice: retrain failed{where}: {error}"]
    if folder is not None:
        lines.append(f"run:       {folder}")
        if (folder / "report.html").exists():
            lines.append(f"report:    {folder / 'report.html'}")
    with contextlib.suppress(Exception):  # an unreadable champion must not hide the failure
        champion = champion_text(read_champion(artifacts_dir, model))
        lines.append(f"champion:  {champion} (unchanged)")
    print("\n".join(lines), file=sys.stderr)
    return EXIT_FAILED
