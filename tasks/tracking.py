"""Track: mirror the finished run and the champion into MLflow, when tracking.mlflow_uri is set.

champion.json stays the source of truth, so MLflow being down, slow or refusing costs a warning
in the log, never the run.
"""

from __future__ import annotations

import logging

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import layout
from houseprice.config import PipelineConfig


def track_run_safely(
    run: layout.RunPaths, config: PipelineConfig, logger: logging.Logger | logging.LoggerAdapter
) -> str | None:
    """Log the run and move the champion alias; on any failure warn and return None."""
    settings = config.tracking
    if settings.mlflow_uri is None:
        return None
    from houseprice import tracking

    try:
        mlflow_run_id = tracking.log_run(run, config)
        version = tracking.sync_champion_alias(
            config.paths.artifacts_dir, settings, config.data.model_name
        )
    except Exception as error:  # whatever MLflow raises, the run itself has succeeded
        logger.warning(
            "MLflow: could not log run %s to %s (%s: %s); the run and champion.json are unaffected",
            run.run_id,
            settings.mlflow_uri,
            type(error).__name__,
            str(error).splitlines()[0] if str(error) else "",
        )
        return None
    logger.info(
        "MLflow: run %s logged as %s; alias %r -> %s version %s",
        run.run_id,
        mlflow_run_id,
        tracking.CHAMPION_ALIAS,
        settings.registered_model,
        version,
    )
    return mlflow_run_id


@task(name="track-run", cache_policy=NO_CACHE)
def track_run(run: layout.RunPaths, config: PipelineConfig) -> str | None:
    """Log the run to MLflow and point the 'champion' alias at champion.json's model."""
    return track_run_safely(run, config, get_run_logger())
