"""Serve the retrain flow on the nightly schedule from this process, for users without a work pool.

The same schedule as prefect.yaml's `retrain/nightly` deployment, under another deployment name
so that serving never replaces the work-pool deployment.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect.schedules import Cron, Schedule

from houseprice.config import PipelineConfig
from houseprice.flows.retrain import retrain

# 02:00 in Ames (Central time, daylight saving included): after the day's sales are in.
NIGHTLY_CRON = "0 2 * * *"
AMES_TIMEZONE = "America/Chicago"
SERVED_DEPLOYMENT = "nightly-served"


def nightly_schedule(cron: str = NIGHTLY_CRON, timezone: str = AMES_TIMEZONE) -> Schedule:
    """A cron schedule read in timezone; ValueError names a bad cron string or time zone."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" is a folder
        raise ValueError(
            f"unknown time zone {timezone!r}: use an IANA name such as {AMES_TIMEZONE}"
        ) from None
    return Cron(cron, timezone=timezone)  # validates the cron string


def served_parameters(config: PipelineConfig) -> dict[str, Any]:
    """The deployment's parameters: only what differs from the code's defaults, as JSON values."""
    return {"config": config.model_dump(mode="json", exclude_defaults=True)}


def serve_retrain(config: PipelineConfig, schedule: Schedule) -> None:
    """Create the served deployment and run its scheduled runs in this process until interrupted."""
    retrain.serve(
        name=SERVED_DEPLOYMENT,
        schedules=[schedule],
        parameters=served_parameters(config),
        description="Nightly retrain served by `houseprice serve` (no work pool).",
        tags=["houseprice", "retrain", "served"],
        global_limit=1,  # one retrain at a time, as prefect.yaml's concurrency_limit
    )
