"""`serve` and `alerts install`: the commands that need a running Prefect server."""

from __future__ import annotations

import argparse

from houseprice.config import PipelineConfig, build_config
from houseprice.config_files import merge_nested

from .arguments import DEFAULT_LANDING_DIR, config_values
from .terminal import fail


def serve_config(args: argparse.Namespace) -> PipelineConfig:
    """The flags' config in landing mode: --landing-dir, else the config's, else data/landing."""
    values = config_values(args)
    landing = args.landing_dir or values["data"].get("landing_dir") or DEFAULT_LANDING_DIR
    # The bundled data's time column in landing mode is the config's own default (Year_Sold).
    return build_config(merge_nested(values, {"data": {"landing_dir": landing}}))


def command_serve(args: argparse.Namespace) -> int:
    """Serve the retrain flow on a schedule (nightly by default) until interrupted."""
    config = serve_config(args)
    from prefect.settings import PREFECT_API_URL

    from houseprice.flows import serve  # imported late: Prefect start-up is slow

    # A temporary server runs no scheduler service: the schedule would never fire.
    if not PREFECT_API_URL.value():
        return fail(
            "serve needs a Prefect server to schedule its runs: start one with "
            "`prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api",
            code=2,
        )
    try:
        schedule = serve.nightly_schedule(
            args.cron or serve.NIGHTLY_CRON, args.timezone or serve.AMES_TIMEZONE
        )
    except ValueError as error:
        return fail(str(error), code=2)
    serve.serve_retrain(config, schedule)
    return 0


def command_alerts_install(args: argparse.Namespace) -> int:
    """Save the webhook block and the failure and silence automations on the Prefect server."""
    from prefect.settings import PREFECT_API_URL

    from houseprice.flows import alerts

    if not PREFECT_API_URL.value():
        return fail(
            "alerts live on the Prefect server that schedules the runs: set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api "
            "(see docs/operations.md, Scheduled retraining)",
            code=2,
        )
    if not args.webhook_url.startswith(("http://", "https://")):
        return fail(f"--webhook-url must be an http(s) URL, not {args.webhook_url!r}", code=2)
    if args.silence_hours * 3600 < 10:
        return fail("--silence-hours must be at least 10 seconds (0.003 hours)", code=2)
    try:
        installed = alerts.install_alerts(args.webhook_url, args.deployment, args.silence_hours)
    except alerts.AlertsError as error:
        return fail(str(error))
    print(f"webhook block {installed.block_name!r} -> {args.webhook_url}")
    for name, automation_id in installed.automations.items():
        print(f"automation {name!r} ({automation_id})")
    return 0
