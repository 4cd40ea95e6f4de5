"""The retrain flow's data stages for a source past one machine's memory: chunks in, small out.

A Parquet source with more rows than compute.stream_above_rows is read in chunks of whole row
groups (houseprice/chunks.py) and never held whole. Each stage maps a per-chunk function over the
chunks with flows/engine.py's map_chunks (in this process under the local engine, as tasks on the
cluster under Dask) and combines their small results here:

- ingest: rows and schema from the Parquet metadata, the columns typed by their profile folded
  over every chunk, the snapshot's hash over the files' bytes;
- validate: a fold like every other stage's (tasks/validate.py), for every source;
- features: two folds (tasks/features.py build_table_features): the preprocessor's exact
  statistics over the training rows, then the scaled design files the trainers read;

A per-chunk function reads its chunk itself, so a worker gets a file name and row groups, never
rows. Everything after features takes the FeatureSet the in-memory path makes, with the training
rows as DesignFiles instead of arrays.

The stages that map are plain functions called by the flow, not tasks: a task mapped from inside
another task would run on that task's thread pool, not on the flow's cluster.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import datasets
from houseprice.chunks import ChunkedTable, parquet_rows, plan_chunks, read_chunk
from houseprice.columns import ColumnJudgment
from houseprice.config import DataConfig, PipelineConfig
from houseprice.flows.engine import map_chunks, on_dask
from houseprice.folds import Engine
from houseprice.tasks.cross_validation import cross_validate_by
from houseprice.tasks.evaluate import Evaluation, add_cross_validation, evaluate_on_disk
from houseprice.tasks.features import FeatureSet
from houseprice.tasks.ingest import (
    ColumnProfileFold,
    IngestResult,
    resolve_feature_decision,
    typed_data_config,
)
from houseprice.trainers.common import TrainResult


def streamed_table(config: PipelineConfig) -> ChunkedTable | None:
    """The source's chunks when it is Parquet with more rows than the streaming threshold."""
    compute, data = config.compute, config.data
    # Landing mode reads its dataset version in memory, and a rolling window selects its rows
    # from the whole table (a time window is usually a small part of a long history).
    if data.landing_dir is not None or data.window is not None:
        return None
    rows = parquet_rows(data.source)
    if rows is None or rows <= compute.stream_above_rows:
        return None
    return plan_chunks(data.source, compute.chunk_rows)


def ingest_table(
    table: ChunkedTable, data: DataConfig, data_dir: Path, engine: Engine
) -> IngestResult:
    """A Parquet source read in place: its columns typed by their profile over every chunk."""
    judgments = engine.fold(ColumnProfileFold(data.notation), table)
    return ingest_streamed(table, data, data_dir, judgments)


@task(name="ingest-data-streamed", cache_policy=NO_CACHE)
def ingest_streamed(
    table: ChunkedTable,
    data: DataConfig,
    data_dir: Path,
    judgments: dict[str, ColumnJudgment],
) -> IngestResult:
    """Shape from the Parquet metadata, columns typed from every row's profile, snapshot hashed.

    The first chunk stands for the rows only where a rule ranks values (the leakage check's
    Spearman correlation, the row-number check).
    """
    log = get_run_logger()
    first = read_chunk(table.chunks[0])
    snapshot = datasets.plan_file_snapshot(table, data_dir)
    log.info(
        "ingest: %d rows x %d columns in %d chunks from %s (streamed; snapshot %s once validated)",
        table.rows, len(table.columns), len(table.chunks), data.source,
        snapshot.content_hash[:12],
    )  # fmt: skip
    decision = resolve_feature_decision(first, data, judgments)
    for line in decision.left_out_summary():  # one line per rule, however wide the file
        log.warning("ingest: columns left out as %s", line)
    return IngestResult(first, snapshot, data.source, typed_data_config(data, decision), table)


@task(name="store-snapshot-streamed", cache_policy=NO_CACHE)
def store_streamed_snapshot(ingested: IngestResult, data_dir: Path) -> datasets.Snapshot:
    """Keep the validated source files as data/snapshots/<sha256>/ (once per content)."""
    snapshot = datasets.store_file_snapshot(ingested.snapshot, ingested.table, data_dir)
    get_run_logger().info("snapshot %s stored: %s", snapshot.content_hash[:12], snapshot.path)
    return snapshot


def evaluate_on_disk_features(
    features: FeatureSet,
    results: list[TrainResult],
    config: PipelineConfig,
    table: ChunkedTable,
    engine: Engine,
) -> Evaluation:
    """Score the models with the training rows on disk: each pass over the files mapped.

    With fewer test rows than evaluation.min_test_rows (a full-sample fit, say), the models
    are judged by cross-validation folded over the table's chunks by the run's engine.
    """
    inputs = (features.training, features.x_test, features.y_test, features.preprocessor)
    settings = (results, config.evaluation, config.training)
    if on_dask():  # run in the flow, so that each file's pass becomes a task on the cluster
        evaluation = evaluate_on_disk.fn(*inputs, *settings, map_files=map_chunks)
    else:  # a loop in the task's process, with progress lines, on the local engine's threads
        local = partial(map_chunks, threads=config.compute.local_threads)
        evaluation = evaluate_on_disk(*inputs, *settings, map_files=local)
    if len(features.y_test) < config.evaluation.min_test_rows:
        penalties = {name: trainer.l2 for name, trainer in config.training.trainers.items()}
        fold = partial(engine.fold, table=table)
        validator = partial(
            cross_validate_by,
            fold,
            table.rows,
            config.data,
            config.features,
            settings=config.evaluation,
        )
        add_cross_validation(evaluation, results, penalties, lambda ls: validator(penalties=ls))
        summary = evaluation.cross_validation
        get_run_logger().info(
            "evaluate: %d test rows: judged by %d-fold cross-validation repeated %d times "
            "on all %d rows",
            len(features.y_test), summary["folds"], summary["repeats"], summary["rows"],
        )  # fmt: skip
    return evaluation
