"""The retrain flow: collect → ingest → validate → drift → features → train (all trainers at once)
→ evaluate → gate → record → report → promote. Collect runs only in landing mode (landing_dir set).
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture

from houseprice.champion import ChampionRun
from houseprice.config import PipelineConfig
from houseprice.flows.alerts import notify_failure
from houseprice.flows.engine import on_dask, on_dask_engine
from houseprice.flows.streamed import (
    build_streamed_features,
    evaluate_on_disk_features,
    ingest_streamed,
    store_streamed_snapshot,
    streamed_table,
    validate_streamed,
)
from houseprice.flows.training import (
    release_training_workers,
    start_training_workers,
    train_all,
    worker_for,
)
from houseprice.flows.workers import TrainingWorkers
from houseprice.layout import RunPaths
from houseprice.locking import retrain_lock
from houseprice.runs import RunRecorder, recorded_run, remove_stale_scratch, start_run
from houseprice.tasks.champion import apply_promotion, finish_interrupted_promotion, load_champion
from houseprice.tasks.collect import CollectResult, collect_data
from houseprice.tasks.drift import DriftReport, check_drift
from houseprice.tasks.evaluate import Evaluation, evaluate
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
from houseprice.tasks.promote import PromotionDecision, gate_promotion, select_run_model
from houseprice.tasks.record import build_metrics, record_metrics
from houseprice.tasks.report import ReportInputs, write_failure_report, write_report
from houseprice.tasks.tracking import track_run
from houseprice.tasks.validate import ValidationReport, validate_data
from houseprice.tasks.window import select_training_rows
from houseprice.trainers import default_trainers
from houseprice.trainers.common import TrainResult

# The defaults as the flow parameter's default, so the Prefect UI shows the whole form filled in.
# Never mutated: stages derive changed copies with model_copy.
DEFAULT_CONFIG = PipelineConfig()


# The local engine: one worker process per trainer, side by side, each with its own framework
# and threads (the default trainers' count here; the run starts one per configured trainer).
# They start only when the run asks for them, so a run that moves onto Dask starts none.
# A failure alert goes out from the run itself too, for runs no server automation watches.
@flow(
    name="retrain",
    task_runner=TrainingWorkers(max_workers=len(default_trainers()), route=worker_for),
    on_failure=[notify_failure],
    on_crashed=[notify_failure],
)
def retrain(config: PipelineConfig = DEFAULT_CONFIG) -> str:
    """Retrain every configured model; return the run folder, or why nothing needed training."""
    if config.compute.engine == "dask" and not on_dask():
        # A flow's task runner is fixed when it is defined, and the config arrives only with
        # the run; so the run re-enters itself as a subflow on the Dask runner. That way every
        # entry point (the CLI, served and prefect.yaml deployments, a call from Python) gets
        # the engine its config names, with public API only, and the subflow shows in the UI
        # under this run. The subflow runs in this process, so its lock guards this host.
        return on_dask_engine(retrain, config.compute)(config)
    paths = config.paths
    with retrain_lock(
        paths.data_dir, paths.artifacts_dir, config.lock_timeout_s, get_run_logger().info
    ):
        return _retrain_locked(config)


def _retrain_locked(config: PipelineConfig) -> str:
    """The stages, under the retrain lock; a stage that fails still leaves report.html."""
    paths = config.paths
    finish_interrupted_promotion(paths.artifacts_dir)  # a crash after the last run completed
    remove_stale_scratch(paths.artifacts_dir, get_run_logger().warning)  # a killed streamed run
    champion = load_champion(paths.artifacts_dir)  # read once: collect, drift and the gate use it
    # Landing mode: new files, validated into the next dataset version; nothing new stops here.
    collected = _collect(config, champion)
    if collected and (reason := no_retrain_reason(collected, config)):
        return announce_no_retrain(reason, collected)
    if collected is None and (problem := source_problem(config.data.source)):
        raise SourceError(problem)  # before a run folder exists to be left behind
    start_training_workers(config)  # each loads its framework while the data stages run
    run = start_run(config)
    features_listed = bool(config.data.feature_columns)  # else every column, typed by ingest
    with recorded_run(run, config, get_run_logger().info, _report_failure) as recorder:
        with recorder.stage("ingest"):  # the dataset version (or source), in its rolling window
            ingested, config = _ingest(config, collected, recorder)  # columns typed by ingest
        with recorder.stage("validate"):  # raises, and stops the run, when the suite fails
            validation = _validate(ingested, config, run, collected)
        with recorder.stage("drift"):  # new rows against the champion's training rows
            new_rows = collected.new_rows if collected else ingested.frame
            drift = check_drift(new_rows, config.data, config.drift, champion, paths.data_dir)
        with recorder.stage("features"):  # a streamed source's design goes to the run's folder
            features = _features(ingested, config, run, features_listed)
        with recorder.stage("train"):  # every configured trainer at once, a worker each
            results = train_all(config, features, run, recorder.lineage)
        with recorder.stage("evaluate"):  # against least squares; ONNX starts in a worker
            evaluation = _evaluate(features, results, config)
            onnx = export_onnx.submit(
                run, features.preprocessor, results, select_run_model(evaluation)
            )
        with recorder.stage("gate"):  # compares with the champion, then drift; promotes nothing
            decision = gate_promotion(
                evaluation, features.split.test, champion, config.promotion, drift, config.drift,
                run_id=run.run_id,
            )  # fmt: skip
        with recorder.stage("record"):
            _record(run, recorder, ingested, features, results, evaluation, decision, drift, onnx)
        with recorder.stage("report"):
            report = ReportInputs.collect(
                run, config, ingested, validation, features, results, evaluation, recorder.timings,
                promotion=decision, drift=drift,
            )  # fmt: skip
            write_report(report, run)
    apply_promotion(decision, run, paths.artifacts_dir)  # only a completed run can be champion
    track_run(run, config)  # MLflow, if configured: a warning when unreachable, never a failure
    return str(run.root)


def _ingest(
    config: PipelineConfig, collected: CollectResult | None, recorder: RunRecorder
) -> tuple[IngestResult, PipelineConfig]:
    """The training rows, lineage noted, and the config with the columns as ingest typed them."""
    ingested = _training_rows(config, collected)
    recorder.lineage["snapshot"] = ingested.snapshot.content_hash
    recorder.lineage["dataset"] = collected.lineage() if collected else None
    recorder.config = config.model_copy(update={"data": ingested.data})
    return ingested, recorder.config


def _validate(
    ingested: IngestResult, config: PipelineConfig, run: RunPaths, collected: CollectResult | None
) -> ValidationReport:
    """Validate the rows (landing mode: against the learned suite); keep a snapshot once valid."""
    if ingested.table is not None:  # streamed: chunk by chunk, and the source's files kept
        validation = validate_streamed(ingested, run)
        store_streamed_snapshot(ingested, config.paths.data_dir)
        return validation
    learned = collected.suite if collected else None
    validation = validate_data(ingested.frame, config.data, run, learned)
    store_snapshot(ingested.frame, config.paths.data_dir)  # only data that passed is kept
    return validation


def _features(
    ingested: IngestResult, config: PipelineConfig, run: RunPaths, features_listed: bool
) -> FeatureSet:
    """Split and fit scaling: in memory, or over a streamed source's chunks."""
    if ingested.table is not None:
        return build_streamed_features(ingested.table, config, run, features_listed)
    return build_features(ingested.frame, config, features_listed)


def _evaluate(
    features: FeatureSet, results: list[TrainResult], config: PipelineConfig
) -> Evaluation:
    """Score the models against least squares; with the training rows on disk, streamed."""
    if not features.on_disk:
        return evaluate(features, results, config.evaluation, config.training)
    return evaluate_on_disk_features(features, results, config)


def _record(
    run: RunPaths,
    recorder: RunRecorder,
    ingested: IngestResult,
    features: FeatureSet,
    results: list[TrainResult],
    evaluation: Evaluation,
    decision: PromotionDecision,
    drift: DriftReport,
    onnx: PrefectFuture[None],
) -> None:
    """Write metrics.json and the checksums, once the ONNX export has finished."""
    metrics = build_metrics(
        run.run_id, ingested.snapshot.content_hash, evaluation, results, decision
    )
    metrics.update(drift=drift.to_dict(), dataset=recorder.lineage["dataset"])
    onnx.result()  # raises here, failing the run, if the export failed
    release_training_workers()  # nothing else runs in them
    record_metrics(run, features.preprocessor, metrics)


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
    if (table := streamed_table(config)) is not None:  # Parquet past compute.stream_above_rows
        return ingest_streamed(table, data, data_dir)
    ingested = ingest_data(data, data_dir)
    if data.window is None:
        return ingested
    return select_training_rows(ingested.frame, ingested.source, data, data_dir)
