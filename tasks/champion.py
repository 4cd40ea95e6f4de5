"""The champion in the flow: finish a promotion a crash cut short, load it once, apply the gate.

The gate's rule lives in tasks/promote.py; this module is what reads and changes the registry.
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import layout, registry
from houseprice.champion import ChampionRun, promote_verified
from houseprice.champion import load_champion as read_champion_run
from houseprice.errors import ModelLoadError
from houseprice.tasks.promote import PromotionDecision, decision_headline


@task(name="load-champion", cache_policy=NO_CACHE)
def load_champion(artifacts_dir: Path, model: str) -> ChampionRun | None:
    """Read this model's champion once for the run: collect, drift and the gate all use this."""
    log = get_run_logger()
    if note := registry.migrate_legacy_champion(artifacts_dir):  # artifacts from before models
        log.warning("champion: %s", note)
    champion = read_champion_run(artifacts_dir, model)
    if champion is None:
        log.info("champion of model %s: none yet", model)
        return None
    log.info("champion of model %s: %s/%s", model, champion.run_id, champion.framework)
    for part, problem in (("run", champion.basis_problem), ("model", champion.model_problem)):
        if problem:
            log.warning("champion %s: its %s cannot be read: %s", champion.run_id, part, problem)
    return champion


@task(name="apply-promotion", cache_policy=NO_CACHE)
def apply_promotion(decision: PromotionDecision, run: layout.RunPaths, artifacts_dir: Path) -> None:
    """Promote the finished run if the gate said so, and record the decision in the history."""
    if decision.promoted:
        registry.promote(artifacts_dir, run.run_id, decision.framework, decision.reason)
        get_run_logger().info(
            "promotion: %s/%s is now the champion", run.run_id, decision.framework
        )
    elif decision.framework is not None:
        get_run_logger().warning(
            "promotion: run %s not promoted (%s); to use it anyway: "
            "`houseprice predict --run %s` or `houseprice promote %s`",
            run.run_id,
            decision_headline(decision),
            run.run_id,
            run.run_id,
        )
    registry.append_history(
        artifacts_dir, {"event": "decision", "run_id": run.run_id, **decision.to_dict()}
    )


@task(name="finish-interrupted-promotion", cache_policy=NO_CACHE)
def finish_interrupted_promotion(artifacts_dir: Path) -> None:
    """Apply a promotion that a crash cut short after its run completed."""
    pending = registry.interrupted_promotion(artifacts_dir)
    if pending is None:
        return
    run_id, promotion = pending
    reason = f"{promotion['reason']} (applied by a later run: the first attempt was interrupted)"
    try:  # the run has waited since it completed: its files are checked before it takes over
        promote_verified(artifacts_dir, run_id, promotion["framework"], reason)
    except ModelLoadError as error:
        get_run_logger().warning("promotion: run %s not promoted after all: %s", run_id, error)
        return
    registry.append_history(
        artifacts_dir, {"event": "recovered", "run_id": run_id, **promotion, "reason": reason}
    )
    get_run_logger().warning("promotion: finished the interrupted promotion of run %s", run_id)
