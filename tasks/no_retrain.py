"""The nothing-new decision (landing mode): skip training when it would repeat the latest run."""

from __future__ import annotations

import html

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from houseprice.config import PipelineConfig
from houseprice.tasks.collect import CollectResult

NO_RETRAIN_ARTIFACT_KEY = "houseprice-no-retrain"


def no_retrain_reason(collected: CollectResult, config: PipelineConfig) -> str | None:
    """Why this run need not train (the latest run's data and settings, unchanged), or None.

    Compared with the latest completed run, not only the champion: training is deterministic,
    so retraining what a run was not promoted for would only repeat its decision every night.
    """
    latest, version = collected.latest or collected.champion, collected.version
    if latest is None or latest.dataset_hash != version.content_hash:
        return None
    # Same data but other settings (features, window, training) is worth a run.
    if latest.config != config.model_dump(mode="json"):
        return None
    champion = collected.champion.run_id if collected.champion else "none yet"
    return (
        f"nothing new: dataset {version.version} ({version.rows:,} rows) with these settings is "
        f"what run {latest.run_id} was trained on (champion: {champion})"
    )


@task(name="announce-no-retrain", cache_policy=NO_CACHE)
def announce_no_retrain(reason: str, collected: CollectResult) -> str:
    """Say in the log and in a Prefect artifact why this run trained nothing; return the line."""
    lines = [f"**No retrain.** {html.escape(reason)}.", ""]
    lines += [
        f"- quarantined `{html.escape(item.name)}`: {html.escape(item.reason or '')}"
        for item in collected.quarantined
    ]
    create_markdown_artifact(
        "\n".join(lines) + "\n", key=NO_RETRAIN_ARTIFACT_KEY, description="houseprice retrain"
    )
    get_run_logger().info("no retrain: %s", reason)
    return f"no retrain: {reason}"
