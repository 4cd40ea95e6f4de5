"""Record: write the run's metrics.json, the fitted preprocessing and the model checksums."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import exports, layout, storage
from houseprice.preprocessing import Preprocessor
from houseprice.tasks.evaluate import Evaluation
from houseprice.tasks.promote import PromotionDecision
from houseprice.trainers import trainer_names
from houseprice.trainers.common import TrainResult


def build_metrics(
    run_id: str,
    snapshot_hash: str,
    evaluation: Evaluation,
    results: list[TrainResult],
    decision: PromotionDecision,
) -> dict[str, Any]:
    """The metrics.json document: scores per model, how each trainer ran, the promotion."""
    payload = {
        "run_id": run_id,
        "snapshot": snapshot_hash,
        "selected_model": decision.framework,
        **evaluation.metrics_payload(),
        "promotion": decision.to_dict(),
    }
    for result in results:
        training = asdict(result)
        for bulky in ("weights", "bias", "train_loss", "val_loss"):
            training.pop(bulky)
        training["final_train_loss"] = result.train_loss[-1] if result.train_loss else None
        training["final_val_loss"] = result.val_loss[-1] if result.val_loss else None
        if result.val_loss and math.isnan(result.val_loss[-1]):
            training["null_reasons"] = {"final_val_loss": "no validation rows (full-sample fit)"}
        payload[result.framework]["training"] = training
    return payload


def model_checksums(run: layout.RunPaths) -> dict[str, str]:
    """SHA-256 of every file a loader reads: model files, preprocessing, exports, drift profile."""
    # Each trainer that ran saved its model and its weights as JSON (written and checked by its
    # training task, for numpy scoring); a run folder holds no other trainer's files.
    trained = [(run.model_file(name), run.linear_weights(name)) for name in trainer_names()]
    model_files = [run.preprocessing, *(path for pair in trained for path in pair if path.exists())]
    if run.drift_profile.exists():  # written by the drift stage (a test may record without it)
        model_files.append(run.drift_profile)
    if run.exports.is_dir():  # hidden names are writes in progress, never part of an export
        found = exports.export_files(run.exports)
        model_files += [f for f in found if not f.relative_to(run.exports).parts[0].startswith(".")]
    return {str(path.relative_to(run.root)): storage.file_sha256(path) for path in model_files}


@task(name="record-metrics", cache_policy=NO_CACHE)
def record_metrics(
    run: layout.RunPaths, preprocessor: Preprocessor, metrics: dict[str, Any]
) -> None:
    """Write the preprocessing, the checksums of every model and export file, and metrics.json."""
    storage.write_json_atomic(run.preprocessing, preprocessor.to_dict())
    storage.write_json_atomic(run.model_manifest, model_checksums(run))
    storage.write_json_atomic(run.metrics, metrics)
    get_run_logger().info("record: wrote %s", run.metrics)
