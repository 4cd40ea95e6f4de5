"""The retrain flow's data stages for a source past one machine's memory: chunks in, small out.

A Parquet source with more rows than compute.stream_above_rows is read in chunks of whole row
groups (houseprice/chunks.py) and never held whole. Each stage maps a per-chunk function over the
chunks with flows/engine.py's map_chunks (in this process under the local engine, as tasks on the
cluster under Dask) and combines their small results here:

- ingest: rows and schema from the Parquet metadata, the columns typed from the first chunk, the
  snapshot's hash over the files' bytes;
- validate: the suite on each chunk, the results merged as one (tasks/validate.py);
- features, three passes: (A) each row's part from its content hash (every column, as split_data
  hashes them, so a row lands in the same part as on the in-memory path), the training rows'
  category counts and median samples; (B) the encoded training design's sums and cross-products,
  for scaling and the aliasing check, with each chunk's training and validation rows encoded to
  scratch files and its test rows returned (at most split.max_held_out_rows in all); (C) each
  scratch file scaled into the design file the trainers read. The source is read twice.

A per-chunk function reads its chunk itself, so a worker gets a file name and row groups, never
rows. Everything after features takes the FeatureSet the in-memory path makes, with the training
rows as DesignFiles instead of arrays.

The stages that map are plain functions called by the flow, not tasks: a task mapped from inside
another task would run on that task's thread pool, not on the flow's cluster.
"""

from __future__ import annotations

import operator
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import datasets, storage
from houseprice.chunks import Chunk, ChunkedTable, parquet_rows, plan_chunks, read_chunk
from houseprice.config import DataConfig, PipelineConfig
from houseprice.flows.engine import fold_chunks, map_chunks, on_dask
from houseprice.layout import RunPaths
from houseprice.preprocessing import Preprocessor, refuse_non_finite
from houseprice.tasks.evaluate import Evaluation, evaluate_on_disk
from houseprice.tasks.features import (
    FeatureSet,
    log_features,
    refuse_overflowed_scaling,
    refuse_redundant_features,
)
from houseprice.tasks.ingest import IngestResult, resolve_feature_decision, typed_data_config
from houseprice.tasks.split import DataSplit, PartCuts, assign_parts, part_cuts, row_positions
from houseprice.tasks.streamed_features import (
    ChunkProfile,
    EncodedStatistics,
    combine_encoded,
    combine_profiles,
    encode_chunk,
    finish_preprocessor,
    profile_chunk,
    scale_encoded,
    start_preprocessor,
)
from houseprice.tasks.validate import ValidationReport, announce_validation
from houseprice.tasks.validate_chunks import (
    finish_chunked_validation,
    start_chunked_validation,
    validate_chunk,
)
from houseprice.trainers.common import TrainResult
from houseprice.trainers.design import DesignFiles


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


@task(name="ingest-data-streamed", cache_policy=NO_CACHE)
def ingest_streamed(table: ChunkedTable, data: DataConfig, data_dir: Path) -> IngestResult:
    """Shape from the Parquet metadata, columns typed from the first chunk, snapshot hashed."""
    log = get_run_logger()
    first = read_chunk(table.chunks[0])  # typing reads one chunk; validation reads them all
    snapshot = datasets.plan_file_snapshot(table, data_dir)
    log.info(
        "ingest: %d rows x %d columns in %d chunks from %s (streamed; snapshot %s once validated)",
        table.rows, len(table.columns), len(table.chunks), data.source,
        snapshot.content_hash[:12],
    )  # fmt: skip
    decision = resolve_feature_decision(first, data)
    for line in decision.left_out_summary():  # one line per rule, however wide the file
        log.warning("ingest: columns left out as %s (judged on the first chunk)", line)
    return IngestResult(first, snapshot, data.source, typed_data_config(data, decision), table)


@task(name="store-snapshot-streamed", cache_policy=NO_CACHE)
def store_streamed_snapshot(ingested: IngestResult, data_dir: Path) -> datasets.Snapshot:
    """Keep the validated source files as data/snapshots/<sha256>/ (once per content)."""
    snapshot = datasets.store_file_snapshot(ingested.snapshot, ingested.table, data_dir)
    get_run_logger().info("snapshot %s stored: %s", snapshot.content_hash[:12], snapshot.path)
    return snapshot


def validate_chunk_file(item: tuple[Chunk, int], suite: dict[str, Any]) -> dict[str, Any]:
    """GX's trimmed result on one chunk, its rows labelled by their place in the whole data."""
    chunk, start = item
    frame = read_chunk(chunk)
    frame.index = pd.RangeIndex(start, start + len(frame))  # failures name the data's rows
    return validate_chunk(frame, suite)


def validate_streamed(ingested: IngestResult, run: RunPaths) -> ValidationReport:
    """Check every chunk against the suite (all columns) and merge the results as one."""
    table = ingested.table
    suite = start_chunked_validation(ingested.data, None)
    announce_validation(table.rows, len(table.columns), suite)
    starts = np.cumsum([0, *(chunk.rows for chunk in table.chunks[:-1])]).tolist()
    items = list(zip(table.chunks, starts, strict=True))
    results = map_chunks(partial(validate_chunk_file, suite=suite), items, "validate")
    return finish_chunked_validation(results, suite, run)


class _Labelled(NamedTuple):
    """One chunk and the file of its rows' parts (TRAIN, VALIDATION, TEST): sent to a worker."""

    chunk: Chunk
    labels_file: str  # int8 .npy, one label per row


class _Profiled(NamedTuple):
    """Pass A's result, folded over the chunks: the profile so far, and each chunk's labels."""

    profile: ChunkProfile
    labels_files: tuple[str, ...]

    def __add__(self, other: _Profiled) -> _Profiled:
        return _Profiled(
            combine_profiles([self.profile, other.profile]), self.labels_files + other.labels_files
        )


def profile_chunk_file(
    chunk: Chunk, data: DataConfig, seed: int, cuts: PartCuts, run: RunPaths
) -> _Profiled:
    """Pass A on one chunk: its profile, and its rows' parts (hashed over every column) saved.

    The labels go to a scratch file rather than back to the flow: one byte a row would make the
    flow's memory grow with the data.
    """
    frame = read_chunk(chunk)
    labels = assign_parts(row_positions(frame, seed), cuts)
    path = storage.write_scratch_array(run.design_chunk("labels", chunk.index), labels)
    return _Profiled(profile_chunk(frame, labels, data), (str(path),))


class _Encoded(NamedTuple):
    """Pass B's result for one chunk: statistics, its encoded blocks' files, its test rows."""

    statistics: EncodedStatistics
    files: tuple[str | None, str | None]  # train, validation (None: the chunk has no such rows)
    test_rows: pd.DataFrame


def encode_chunk_file(
    item: _Labelled, columns: list[str], prep: Preprocessor, run: RunPaths
) -> _Encoded:
    """Pass B on one chunk: its training rows' statistics; its rows encoded, to scratch files."""
    labels = np.load(item.labels_file, allow_pickle=False)
    encoded = encode_chunk(read_chunk(item.chunk, columns), labels, prep)
    files = tuple(
        str(
            storage.write_scratch_array(
                run.design_chunk(f"encoded-{part}", item.chunk.index), block
            )
        )
        if len(block)
        else None
        for part, block in (("train", encoded.train), ("validation", encoded.validation))
    )
    return _Encoded(encoded.statistics, files, encoded.test_rows)


def scale_chunk_file(encoded_file: str, prep: Preprocessor) -> str:
    """Pass C on one encoded file: scaled in place of it, under the design file's name.

    Safe to run twice (a cluster reruns a finished task whose worker died holding its result):
    once the encoded file has made way for the design file, the design file is the answer.
    """
    path = Path(encoded_file)
    design = path.with_name(path.name.replace("encoded-", ""))
    if not path.exists() and design.exists():
        return str(design)
    storage.write_scratch_array(design, scale_encoded(np.load(path, allow_pickle=False), prep))
    path.unlink(missing_ok=True)
    return str(design)


def used_columns(data: DataConfig) -> list[str]:
    """The columns passes B and C read: the target and the typed features."""
    return list(dict.fromkeys([data.target, *data.numeric_features, *data.categorical_features]))


def build_streamed_features(
    table: ChunkedTable, config: PipelineConfig, run: RunPaths, features_listed: bool
) -> FeatureSet:
    """Split, fit scaling and encoding on the training rows, and write the design, by chunk."""
    data, cuts = config.data, part_cuts(config.split, table.rows)
    seed, threads = config.split.seed, config.compute.local_threads  # numpy, pyarrow: threads
    profile_one = partial(profile_chunk_file, data=data, seed=seed, cuts=cuts, run=run)
    profiled = fold_chunks(profile_one, table.chunks, "profile", operator.add, threads)
    items = [
        _Labelled(chunk, labels)
        for chunk, labels in zip(table.chunks, profiled.labels_files, strict=True)
    ]
    prep = start_preprocessor(profiled.profile, data, config.features)
    columns = used_columns(data)
    encode_one = partial(encode_chunk_file, columns=columns, prep=prep, run=run)
    encoded = map_chunks(encode_one, items, "encode", threads)
    prep = finish_preprocessor(
        prep, combine_encoded(e.statistics for e in encoded), config.features
    )
    refuse_overflowed_scaling(prep)
    train_rows = sum(e.statistics.rows for e in encoded)
    if features_listed:
        refuse_redundant_features(prep, train_rows)
    train_files = [e.files[0] for e in encoded if e.files[0]]
    validation_files = [e.files[1] for e in encoded if e.files[1]]
    scaled = map_chunks(
        partial(scale_chunk_file, prep=prep), [*train_files, *validation_files], "scale", threads
    )
    design = DesignFiles(
        train_files=tuple(scaled[: len(train_files)]),
        validation_files=tuple(scaled[len(train_files) :]),
        train_rows=train_rows,
        validation_rows=table.rows - train_rows - sum(len(e.test_rows) for e in encoded),
        features=len(prep.feature_names),
    )
    test = pd.concat([e.test_rows for e in encoded], ignore_index=True)
    x_test = prep.transform(test)
    refuse_non_finite(prep.feature_names, ~np.isfinite(x_test).all(axis=0))
    empty = test.iloc[:0]
    feature_set = FeatureSet(
        prep,
        design,
        x_test,
        test[data.target].astype("float64").to_numpy(),
        DataSplit(empty, empty.copy(), test),
        config,
    )
    log_features(feature_set)
    return feature_set


def evaluate_on_disk_features(
    features: FeatureSet, results: list[TrainResult], config: PipelineConfig
) -> Evaluation:
    """Score the models with the training rows on disk: each pass over the files mapped."""
    inputs = (features.training, features.x_test, features.y_test, features.preprocessor)
    settings = (results, config.evaluation, config.training)
    if on_dask():  # run in the flow, so that each file's pass becomes a task on the cluster
        return evaluate_on_disk.fn(*inputs, *settings, map_files=map_chunks)
    # A loop in the task's process, with progress lines, on the local engine's threads.
    local = partial(map_chunks, threads=config.compute.local_threads)
    return evaluate_on_disk(*inputs, *settings, map_files=local)
