"""The retrain flow: collect → ingest → validate → drift → features → train (all trainers at once)
→ evaluate → gate → record → report → promote. Collect runs only in landing mode (landing_dir set).
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run

from houseprice.champion import ChampionRun
from houseprice.chunks import ChunkedTable, frame_table
from houseprice.config import PipelineConfig
from houseprice.flows.alerts import notify_failure
from houseprice.flows.engine import Engine, on_dask, on_dask_engine, run_engine
from houseprice.flows.streamed import (
    evaluate_on_disk_features,
    ingest_table,
    store_streamed_snapshot,
    streamed_table,
)
from houseprice.flows.training import (
    release_training_workers,
    start_training_workers,
    train_all,
    worker_for,
)
from houseprice.flows.workers import TrainingWorkers
from houseprice.layout import RUN_ID_PATTERN, RunPaths, new_run_id
from houseprice.locking import retrain_lock
from houseprice.runs import RunRecorder, recorded_run, remove_stale_scratch, start_run
from houseprice.tasks.champion import apply_promotion, finish_interrupted_promotion, load_champion
from houseprice.tasks.collect import CollectResult, collect_data
from houseprice.tasks.drift import DriftReport, check_drift
from houseprice.tasks.drift_profiles import champion_profile, profile_run, store_profile
from houseprice.tasks.evaluate import Evaluation, evaluate
from houseprice.tasks.export import export_onnx
from houseprice.tasks.features import FeatureSet, build_features, build_table_features
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
from houseprice.tasks.validate import ValidationReport, validate_table
from houseprice.tasks.window import select_training_rows
from houseprice.trainers import default_trainers
from houseprice.trainers.common import TrainResult

# The defaults as the flow parameter's default, so the Prefect UI shows the whole form filled in.
# Never mutated: stages derive changed copies with model_copy.
DEFAULT_CONFIG = PipelineConfig()


def run_name() -> str:
    """A new run id as the flow run's name: the UI and logs show the id of artifacts/runs/<id>."""
    return new_run_id()


# The local engine: one worker process per trainer, side by side, each with its own framework
# and threads (the default trainers' count here; the run starts one per configured trainer).
# They start only when the run asks for them, so a run that moves onto Dask starts none.
# A failure alert goes out from the run itself too, for runs no server automation watches.
@flow(
    name="retrain",
    flow_run_name=run_name,
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
        named = retrain.with_options(flow_run_name=flow_run.name)  # its folder's id, as here
        return on_dask_engine(named, config.compute)(config)
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
    # This model's champion, read once: collect, drift and the gate use it.
    champion = load_champion(paths.artifacts_dir, config.data.model_name)
    # Landing mode: new files, validated into the next dataset version; nothing new stops here.
    collected = _collect(config, champion)
    if collected and (reason := no_retrain_reason(collected, config)):
        return announce_no_retrain(reason, collected)
    if collected is None and (problem := source_problem(config.data.source)):
        raise SourceError(problem)  # before a run folder exists to be left behind
    start_training_workers(config)  # each loads its framework while the data stages run
    engine = run_engine(config.compute)  # folds every data stage's chunks
    run = start_run(config, _named_run_id())
    features_listed = bool(config.data.feature_columns)  # else every column, typed by ingest
    with recorded_run(run, config, get_run_logger().info, _report_failure) as recorder:
        with recorder.stage("ingest"):  # the dataset version (or source), in its rolling window
            ingested, config = _ingest(config, collected, recorder, engine)  # columns typed
        with recorder.stage("validate"):  # raises, and stops the run, when the suite fails
            validation = _validate(ingested, config, run, collected, engine)
        with recorder.stage("drift"):  # every new row against the champion's training profile
            drift = _drift(ingested, collected, config, champion, run, engine)
        with recorder.stage("features"):  # a streamed source's design goes to the run's folder
            features = _features(ingested, config, run, features_listed, engine)
        with recorder.stage("train"):  # every configured trainer at once, a worker each
            results = train_all(config, features, run, recorder.lineage)
        with recorder.stage("evaluate"):  # against least squares; ONNX starts in a worker
            evaluation = _evaluate(features, results, config, ingested.table, engine)
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


def _named_run_id() -> str | None:
    """This flow run's name when run_name gave it (a run id), so the run folder takes it."""
    name = flow_run.name
    return name if isinstance(name, str) and RUN_ID_PATTERN.fullmatch(name) else None


def _ingest(
    config: PipelineConfig,
    collected: CollectResult | None,
    recorder: RunRecorder,
    engine: Engine,
) -> tuple[IngestResult, PipelineConfig]:
    """The training rows, lineage noted, and the config with the columns as ingest typed them."""
    ingested = _training_rows(config, collected, engine).with_table(config.compute.chunk_rows)
    recorder.lineage["snapshot"] = ingested.snapshot.content_hash
    recorder.lineage["dataset"] = collected.lineage() if collected else None
    recorder.config = config.model_copy(update={"data": ingested.data})
    return ingested, recorder.config


def _validate(
    ingested: IngestResult,
    config: PipelineConfig,
    run: RunPaths,
    collected: CollectResult | None,
    engine: Engine,
) -> ValidationReport:
    """Validate every chunk (landing: against the learned suite); keep a snapshot once valid."""
    learned = collected.suite if collected else None
    validation = validate_table(ingested.table, config.data, run, engine, learned)
    if ingested.table.files:  # a Parquet source read in place: its files are kept
        store_streamed_snapshot(ingested, config.paths.data_dir)
    else:
        store_snapshot(ingested.frame, config.paths.data_dir)  # only data that passed is kept
    return validation


def _drift(
    ingested: IngestResult,
    collected: CollectResult | None,
    config: PipelineConfig,
    champion: ChampionRun | None,
    run: RunPaths,
    engine: Engine,
) -> DriftReport:
    """Profile the training part (kept with the run) and the new rows; compare with the champion.

    New rows: in landing mode the rows the champion has not seen, else every ingested row.
    """
    chunk_rows = config.compute.chunk_rows
    new_rows = frame_table(collected.new_rows, "new rows", chunk_rows) if collected else None
    profiles = profile_run(ingested.table, new_rows, config.data, config.split, engine)
    store_profile(run.drift_profile, profiles.training)
    reference = champion_profile(champion, config.data, config.paths, chunk_rows, engine)
    return check_drift(profiles.new_rows, reference, config.data, config.drift)


def _features(
    ingested: IngestResult,
    config: PipelineConfig,
    run: RunPaths,
    features_listed: bool,
    engine: Engine,
) -> FeatureSet:
    """Split and fit scaling: in memory, or over a Parquet source's chunks, read in place."""
    if ingested.table.files:
        return build_table_features(ingested.table, config, run, features_listed, engine)
    return build_features(ingested.frame, config, features_listed)


def _evaluate(
    features: FeatureSet,
    results: list[TrainResult],
    config: PipelineConfig,
    table: ChunkedTable,
    engine: Engine,
) -> Evaluation:
    """Score the models against least squares; with the training rows on disk, by chunks."""
    if not features.on_disk:
        return evaluate(features, results, config.evaluation, config.training)
    return evaluate_on_disk_features(features, results, config, table, engine)


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


def _training_rows(
    config: PipelineConfig, collected: CollectResult | None, engine: Engine
) -> IngestResult:
    """The current dataset version in landing mode, else the source; in its window if one is set."""
    data, data_dir = config.data, config.paths.data_dir
    if collected is not None:
        return select_training_rows(collected.frame, collected.source, data, data_dir)
    if (table := streamed_table(config)) is not None:  # Parquet past compute.stream_above_rows
        return ingest_table(table, data, data_dir, engine)
    ingested = ingest_data(data, data_dir)
    if data.window is None:
        return ingested
    return select_training_rows(ingested.frame, ingested.source, data, data_dir)
