"""The retrain flow: collect → ingest → validate → drift → features → train (all trainers at once)
→ evaluate → gate → record → report → promote. Collect runs only in landing mode (landing_dir set).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.context import FlowRunContext

from houseprice.champion import ChampionRun
from houseprice.config import PipelineConfig
from houseprice.flows.alerts import notify_failure
from houseprice.flows.workers import TrainingWorkers
from houseprice.layout import RunPaths
from houseprice.locking import retrain_lock
from houseprice.runs import RunRecorder, recorded_run, start_run
from houseprice.tasks.champion import apply_promotion, finish_interrupted_promotion, load_champion
from houseprice.tasks.collect import CollectResult, collect_data
from houseprice.tasks.drift import check_drift
from houseprice.tasks.evaluate import evaluate
from houseprice.tasks.export import export_onnx
from houseprice.tasks.features import FeatureSet, build_features
from houseprice.tasks.ingest import (
    IngestResult,
    SourceError,
    ingest_data,
    source_problem,
    store_snapshot,
)
from houseprice.tasks.no_retrain import announce_no_retrain, no_retrain_reason
from houseprice.tasks.promote import gate_promotion, select_run_model
from houseprice.tasks.record import build_metrics, record_metrics
from houseprice.tasks.report import ReportInputs, write_failure_report, write_report
from houseprice.tasks.tracking import track_run
from houseprice.tasks.train import train_model
from houseprice.tasks.trainers.common import TrainResult
from houseprice.tasks.validate import validate_data
from houseprice.tasks.window import select_training_rows
from houseprice.trainers import TrainerSpec, default_trainers, get_trainer

# The defaults as the flow parameter's default, so the Prefect UI shows the whole form filled in.
# Never mutated: stages derive changed copies with model_copy.
DEFAULT_CONFIG = PipelineConfig()


def _training_workers() -> TrainingWorkers | None:
    """This flow run's pool of training workers (None where a caller swapped the runner)."""
    runner = getattr(FlowRunContext.get(), "task_runner", None)
    return runner if isinstance(runner, TrainingWorkers) else None


def _release_training_workers() -> None:
    if (workers := _training_workers()) is not None:
        workers.release_workers()


def _start_training_workers(config: PipelineConfig) -> None:
    """Start a worker per configured trainer now, to load its framework while ingest runs."""
    if (workers := _training_workers()) is not None:
        # The flow's module first: a training task arrives with the flow run's context, which
        # refers to this flow. Then the trainer's module, which imports its framework.
        workers.start_workers(
            {
                name: ("houseprice.flows.retrain", get_trainer(name).train.partition(":")[0])
                for name in config.training.trainers
            }
        )


def _worker_for(task_name: str, parameters: dict[str, Any]) -> str:
    """A training task goes to the worker started for its trainer."""
    spec = parameters.get("spec")
    return spec.name if isinstance(spec, TrainerSpec) else task_name


def _train(config: PipelineConfig, features: FeatureSet, run: RunPaths) -> list[TrainResult]:
    """Submit one training task per configured trainer; their results, in trainer order."""
    trainers = config.training.trainers
    if (workers := _training_workers()) is not None:
        workers.resize(len(trainers))
    seed, prep = config.training.seed, features.preprocessor  # exports build prep in
    fits = [
        train_model.submit(get_trainer(name), features.training, settings, seed, run, prep)
        for name, settings in trainers.items()
    ]
    return [fit.result() for fit in fits]


# One worker process per trainer: they run side by side, each with its own framework and
# threads (the default trainers' count here; the train stage resizes it to the config's).
# A failure alert goes out from the run itself too, for runs no server automation watches.
@flow(
    name="retrain",
    task_runner=TrainingWorkers(max_workers=len(default_trainers()), route=_worker_for),
    on_failure=[notify_failure],
    on_crashed=[notify_failure],
)
def retrain(config: PipelineConfig = DEFAULT_CONFIG) -> str:
    """Retrain every configured model; return the run folder, or why nothing needed training."""
    paths = config.paths
    with retrain_lock(
        paths.data_dir, paths.artifacts_dir, config.lock_timeout_s, get_run_logger().info
    ):
        return _retrain_locked(config)


def _retrain_locked(config: PipelineConfig) -> str:
    """The stages, run while this process holds the retrain lock."""
    paths = config.paths
    finish_interrupted_promotion(paths.artifacts_dir)  # a crash after the last run completed
    champion = load_champion(paths.artifacts_dir)  # read once: collect, drift and the gate use it
    # Landing mode: new files are validated one by one into the next dataset version. A run
    # with nothing new stops here, before it makes a run folder (run folders hold models).
    collected = _collect(config, champion)
    if collected and (reason := no_retrain_reason(collected, config)):
        return announce_no_retrain(reason, collected)
    if collected is None and (problem := source_problem(config.data.source)):
        raise SourceError(problem)  # before a run folder exists to be left behind
    _start_training_workers(config)
    run = start_run(config)
    get_run_logger().info("run %s: writing to %s", run.run_id, run.root)
    features_listed = bool(config.data.feature_columns)  # else every column, typed by ingest
    # A stage that raises still leaves report.html and an artifact saying where and why.
    with recorded_run(run, config, get_run_logger().info, _report_failure) as recorder:
        with recorder.stage("ingest"):  # the dataset version (or source), in its rolling window
            ingested = _training_rows(config, collected)
            recorder.lineage["snapshot"] = ingested.snapshot.content_hash
            recorder.lineage["dataset"] = collected.lineage() if collected else None
            config = recorder.config = config.model_copy(update={"data": ingested.data})
        with recorder.stage("validate"):  # raises, and stops the run, when the suite fails
            learned = collected.suite if collected else None
            validation = validate_data(ingested.frame, config.data, run, learned)
            store_snapshot(ingested.frame, paths.data_dir)  # only data that passed is kept
        with recorder.stage("drift"):  # new rows against the champion's training rows
            new_rows = collected.new_rows if collected else ingested.frame
            drift_report = check_drift(
                new_rows, config.data, config.drift, champion, paths.data_dir
            )
            drift = drift_report.to_dict()
        with recorder.stage("features"):
            features = build_features(ingested.frame, config, features_listed)
        with recorder.stage("train"):  # every configured trainer at once, a worker each
            results = _train(config, features, run)
            recorder.lineage["devices"] = {
                r.framework: f"{r.device} ({r.device_name})" for r in results
            }
        with recorder.stage("evaluate"):
            evaluation = evaluate(features, results, config.evaluation, config.training)
            # ONNX needs only the selected fit: a worker builds it while the gate runs.
            selected = select_run_model(evaluation)
            onnx_export = export_onnx.submit(run, features.preprocessor, results, selected)
        with recorder.stage("gate"):  # compares with the champion, then drift; promotes nothing
            decision = gate_promotion(
                evaluation,
                features.split.test,
                champion,
                config.promotion,
                drift_report,
                config.drift,
                run_id=run.run_id,
            )
        with recorder.stage("record"):
            metrics = build_metrics(
                run.run_id, ingested.snapshot.content_hash, evaluation, results, decision
            )
            metrics.update(drift=drift, dataset=recorder.lineage["dataset"])
            onnx_export.result()  # raises here, failing the run, if the export failed
            _release_training_workers()  # nothing else runs in them
            record_metrics(run, features.preprocessor, metrics)
        with recorder.stage("report"):
            report = ReportInputs.collect(
                run, config, ingested, validation, features, results, evaluation, recorder.timings,
                promotion=decision, drift=drift_report,
            )  # fmt: skip
            write_report(report, run)
    # Only a run marked completed can become champion, so this comes after the block above.
    apply_promotion(decision, run, paths.artifacts_dir)
    track_run(run, config)  # MLflow, if configured: a warning when unreachable, never a failure
    return str(run.root)


def _report_failure(recorder: RunRecorder, error: BaseException) -> None:
    """Write the failed run's report: the stage that stopped it and why."""
    write_failure_report(recorder.run, recorder.failed_stage, error, recorder.timings)


def _collect(config: PipelineConfig, champion: ChampionRun | None) -> CollectResult | None:
    """Landing mode: this run's new files, validated into the current dataset version."""
    if config.data.landing_dir is None:
        return None
    paths = config.paths
    return collect_data(config.data, paths.data_dir, paths.artifacts_dir, champion)


def _training_rows(config: PipelineConfig, collected: CollectResult | None) -> IngestResult:
    """The current dataset version in landing mode, else the source; in its window if one is set."""
    data, data_dir = config.data, config.paths.data_dir
    if collected is not None:
        return select_training_rows(collected.frame, collected.source, data, data_dir)
    ingested = ingest_data(data, data_dir)
    if data.window is None:
        return ingested
    return select_training_rows(ingested.frame, ingested.source, data, data_dir)
