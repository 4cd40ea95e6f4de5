"""Where the work runs: config.compute.engine picks this process (and its trainer workers) or a
Dask cluster through prefect-dask.

The flow makes the run's Engine once (run_engine) and hands it to every data stage; a stage
folds its chunks with engine.fold (houseprice/folds.py) and never asks which engine it has.
LocalEngine folds in this process, on threads where the work releases the GIL; DaskEngine sends
each chunk's per_chunk to the cluster as a task and folds the small partials here, in chunk
order, as they arrive. map_chunks and fold_chunks are the older form, for stages not yet written
as folds: they guess the engine from the flow run's task runner.

prefect_dask (and distributed with it, ~0.5 s of imports) is imported only when a run asks for
the Dask engine, so the local engine and the CLI never pay for it.
"""

from __future__ import annotations

import importlib
import logging
import pickle
import reprlib
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from prefect import Flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import MissingContextError

from houseprice.chunks import Chunk, ChunkedTable, FrameChunk, read_rows
from houseprice.config import ComputeConfig
from houseprice.folds import Engine, Fold

if TYPE_CHECKING:
    from prefect_dask import DaskTaskRunner

Item = TypeVar("Item")
Result = TypeVar("Result")
Partial = TypeVar("Partial")
FlowType = TypeVar("FlowType", bound=Flow)

# An item is named in errors and logs by a short repr: a path or a row range, never a whole array.
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 120


class ChunkError(RuntimeError):
    """One item of a map_chunks call failed; the message names the stage and the item.

    Its cause (the user's error, say) stays attached across a Dask worker's pickling, so the
    command still reports it as what it is (houseprice/failures.py reads the cause).
    """

    def __reduce__(self) -> tuple[Any, ...]:
        try:
            cause = pickle.loads(pickle.dumps(self.__cause__))
        except Exception:  # an unpicklable cause: the message still names it
            cause = None
        return _chunk_error_with_cause, (self.args, cause)


def _chunk_error_with_cause(args: tuple[Any, ...], cause: BaseException | None) -> ChunkError:
    error = ChunkError(*args)
    error.__cause__ = cause
    return error


def dask_task_runner(compute: ComputeConfig) -> DaskTaskRunner:
    """The Dask task runner for this config: the scheduler at its address, else a LocalCluster.

    The LocalCluster starts at the run's first task and closes with the run. Its workers are
    processes started from this interpreter in this folder, so they import houseprice from the
    same environment and read relative paths as the flow does. One thread each: a trainer sets
    its framework's own thread count, and two tasks in one process would fight over the GIL.
    """
    from prefect_dask import DaskTaskRunner

    # distributed logs each scheduler, nanny and connection start and stop at INFO: dozens of
    # lines per run among the stages'. Its warnings (a worker lost, restarted) still show.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if compute.dask_address:
        return DaskTaskRunner(address=compute.dask_address)
    cluster = {"n_workers": compute.dask_workers, "threads_per_worker": 1, "processes": True}
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=cluster)


def on_dask() -> bool:
    """Whether the current flow run's tasks go to a Dask cluster (not from inside a task)."""
    module = sys.modules.get("prefect_dask.task_runners")
    if module is None:  # never imported, so no runner of this process can be one
        return False
    if TaskRunContext.get() is not None:  # a task (on a worker, maybe) maps in its own process
        return False
    return isinstance(getattr(FlowRunContext.get(), "task_runner", None), module.DaskTaskRunner)


def warm_dask_workers(modules: Sequence[str]) -> None:
    """Start the run's cluster now and have every worker import modules, without waiting.

    The cluster would otherwise start at the first task, and each worker import Great
    Expectations, torch and TensorFlow (seconds each) inside the first task that needs them;
    this way both overlap with ingest, as the local engine's trainer workers do.
    """
    runner = getattr(FlowRunContext.get(), "task_runner", None)
    if on_dask() and runner is not None:
        runner.client.run(import_modules, list(modules), wait=False)


async def import_modules(modules: list[str]) -> None:
    """On a worker: import each module in a thread of its own, and return at once.

    A coroutine because distributed runs only those without waiting; the imports go to a
    thread so the worker's event loop (its heartbeats) never stalls on them. A task that
    imports one of them meanwhile waits on Python's import lock, then finds it loaded.
    """
    threading.Thread(target=_import_all, args=(modules,), daemon=True).start()


def _import_all(modules: list[str]) -> None:
    for module in modules:
        importlib.import_module(module)


def on_dask_engine(flow: FlowType, compute: ComputeConfig) -> FlowType:
    """The flow with the Dask engine's task runner, to call as a subflow of the running flow.

    Its failure hooks are dropped: the calling run fails with it and alerts once (with_options
    keeps the hooks when given empty lists, hence the assignment).
    """
    subflow = flow.with_options(task_runner=dask_task_runner(compute))
    subflow.on_failure_hooks, subflow.on_crashed_hooks = [], []
    return subflow


def fold_chunk(fold: Fold[Partial, Any], chunk: Chunk | FrameChunk) -> Partial:
    """Where the chunk is worked on: read its rows (the fold's columns) and take their partial."""
    return fold.per_chunk(read_rows(chunk, fold.columns))


class LocalEngine:
    """Folds in this process: chunk after chunk, or `threads` at once where threads help."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads

    def fold(self, fold: Fold[Any, Result], table: ChunkedTable) -> Result:
        """fold's result over every chunk of table."""
        threads = self.threads if fold.threads_help else 1
        return _fold_table(fold, table, threads, on_cluster=False)


class DaskEngine:
    """Folds on the flow's Dask cluster: a task per chunk, the partials combined here."""

    def fold(self, fold: Fold[Any, Result], table: ChunkedTable) -> Result:
        """fold's result over every chunk of table; only partials come back from the workers."""
        return _fold_table(fold, table, 1, on_cluster=True)


def run_engine(compute: ComputeConfig) -> Engine:
    """The engine the run's config names, for the flow to hand to its stages.

    Make it inside the run that executes the stages: under the Dask engine that is the subflow
    on the DaskTaskRunner (on_dask_engine), whose cluster receives the chunks' tasks.
    """
    if compute.engine == "dask":
        return DaskEngine()
    return LocalEngine(compute.local_threads)


def _fold_table(
    fold: Fold[Any, Result], table: ChunkedTable, threads: int, on_cluster: bool
) -> Result:
    total: list[Any] = []

    def add(partial_result: Any) -> None:
        total[:] = [fold.combine(total[0], partial_result) if total else partial_result]

    per_chunk = partial(fold_chunk, fold)
    _run_chunks(per_chunk, table.chunks, fold.name, threads, add, on_cluster)
    if not total:
        raise ValueError(f"{fold.name}: no chunks to fold")
    return fold.finish(total[0])


def _chunk_error(name: str, index: int, item: Any, error: BaseException) -> ChunkError:
    return ChunkError(
        f"{name}: item {index} ({_short.repr(item)}) failed: {type(error).__name__}: {error}"
    )


def _apply(function: Callable[[Item], Result], item: Item, index: int, name: str) -> Result:
    """function(item); an error names the stage and the item, and keeps the cause."""
    try:
        return function(item)
    except Exception as error:
        raise _chunk_error(name, index, item, error) from error


# Chunk results are small and read once by the flow, so nothing is persisted or cached (a cache
# keyed on the inputs would not see a chunk file's content change). A lost worker's task is
# rescheduled by distributed itself, so no retries here: a failing chunk fails the same way twice.
@task(task_run_name="{name} #{index}", persist_result=False, cache_policy=NO_CACHE)
def apply_to_chunk(function: Callable[[Any], Any], item: Any, index: int, name: str) -> Any:
    """Apply a stage's per-chunk function to one chunk."""
    return _apply(function, item, index, name)


def map_chunks(
    function: Callable[[Item], Result], items: Sequence[Item], name: str, threads: int = 1
) -> list[Result]:
    """[function(item) for item in items], as tasks over the cluster under the Dask engine.

    function must be a top-level (picklable) function of one item returning a small result;
    a failing item raises ChunkError naming it. Elsewhere (the local engine, or outside a flow)
    it runs in this process with no task per item, on up to `threads` items at once: worth it
    for work that releases the GIL (numpy, pyarrow), not for Python-bound work such as GX's.
    Results come back in the items' order either way.
    """
    results: list[Result] = []
    _run_chunks(function, items, name, threads, results.append, on_dask())
    return results


def fold_chunks(
    function: Callable[[Item], Result],
    items: Sequence[Item],
    name: str,
    fold: Callable[[Result, Result], Result],
    threads: int = 1,
) -> Result:
    """fold(...fold(r0, r1)..., rn) of map_chunks' results, each folded in as it arrives.

    For results that add up (statistics, samples): the flow then holds one running total, not
    one result per chunk, however many chunks there are.
    """
    total: list[Result] = []

    def add(result: Result) -> None:
        total[:] = [fold(total[0], result) if total else result]

    _run_chunks(function, items, name, threads, add, on_dask())
    if not total:
        raise ValueError(f"{name}: no chunks to fold")
    return total[0]


def _run_chunks(
    function: Callable[[Item], Result],
    items: Sequence[Item],
    name: str,
    threads: int,
    consume: Callable[[Result], None],
    on_cluster: bool,
) -> None:
    """Run function on every item (see map_chunks) and hand each result to consume, in order."""
    items = list(items)
    progress = _Progress(name, len(items))
    if not items or not on_cluster:
        if threads > 1 and len(items) > 1:
            _map_threads(function, items, name, threads, progress, consume)
            return
        for index, item in enumerate(items):
            consume(_apply(function, item, index, name))
            progress.done(index + 1)
        return
    futures = apply_to_chunk.map(unmapped(function), items, range(len(items)), unmapped(name))
    for index, (item, future) in enumerate(zip(items, futures, strict=True)):
        try:
            result = future.result()  # in order; the first failure raises
        except ChunkError:
            raise
        except Exception as error:  # the cluster's own: KilledWorker, a lost scheduler, ...
            raise _chunk_error(name, index, item, error) from error
        consume(result)
        progress.done(index + 1)


def _map_threads(
    function: Callable[[Item], Result],
    items: list[Item],
    name: str,
    threads: int,
    progress: _Progress,
    consume: Callable[[Result], None],
) -> None:
    """The local loop on a pool of threads; the first failure cancels what has not run."""
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
    try:
        pending = deque(
            pool.submit(_apply, function, item, index, name) for index, item in enumerate(items)
        )
        done = 0
        while pending:  # popped once consumed, so a folded result is not kept
            consume(pending.popleft().result())
            done += 1
            progress.done(done)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# Seconds between progress lines of a long map: a person sees it moving, a short one is quiet.
PROGRESS_EVERY_S = 5.0


class _Progress:
    """Logs 'name: k of n chunks' at most every PROGRESS_EVERY_S, and never for a quick map."""

    def __init__(self, name: str, total: int) -> None:
        self.name, self.total = name, total
        self.started = self.last = time.perf_counter()

    def done(self, count: int) -> None:
        now = time.perf_counter()
        if now - self.last >= PROGRESS_EVERY_S and count < self.total:
            self.last = now
            _logger().info(
                "%s: %d of %d chunks done in %.0f s",
                self.name,
                count,
                self.total,
                now - self.started,
            )


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """The run's logger inside a flow or task, else this module's."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)
