"""The retrain flow's worker processes: started at flow start, warmed, and let go early.

A trainer runs in a process of its own (each framework holds the GIL while it computes), and a
fresh process spends seconds importing Prefect and its framework before it can train. Here
each worker starts when the flow starts and imports what its task will need while ingest and
validation run in the flow's process, so the train stage finds it ready. A task goes to the
worker warmed for it (by task name); any other task goes to the least busy worker.

Each worker is Prefect's public ProcessPoolTaskRunner with one process, so that a task reaches
the worker warmed for it. Prefect has no public way to start a pool's process before a task
arrives, to learn its process, or to let a pool go without waiting for it; so a worker starts
on a first, empty task (`worker_started`), reports its process id through shared memory handed
to its initializer, and is let go in a thread of its own. tests/test_workers.py pins each of
these behaviours.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from prefect import task
from prefect.logging import get_logger
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner

logger = get_logger("houseprice.workers")
# True in a worker process. Prefect enters a copy of the flow's task runner there too, for tasks
# that a task would submit: that copy must not start workers of its own before one is needed.
_in_worker = False


def _warm_worker(modules: Sequence[str], process_id: Any) -> None:
    """Run first in each worker process: say which it is, exit fast later, import its modules."""
    process_id.value = os.getpid()  # first, so that a failed run can stop it while it imports
    # A worker that has loaded torch or TensorFlow spends 1-2 s of CPU at exit in the garbage
    # collector's passes over millions of objects, while the flow's process renders the report.
    # Registered before those imports, this runs last (atexit runs hooks in reverse order) and
    # leaves the teardown to plain reference counting: 0.1-0.2 s.
    atexit.register(gc.freeze)
    global _in_worker
    _in_worker = True
    started = time.perf_counter()
    gc.disable()  # hundreds of passes over what the imports create, all of it long-lived
    try:
        loaded = [name for name in modules if _import_quietly(name)]
    finally:
        gc.freeze()
        gc.enable()
    if loaded:
        seconds = time.perf_counter() - started
        logger.info("worker ready: %s loaded in %.1f s", ", ".join(loaded), seconds)


def _import_quietly(name: str) -> bool:
    """Import a module; on failure log why and go on."""
    try:  # what needs it imports it again, and fails with its own error
        importlib.import_module(name)
    except Exception:
        logger.warning("could not preload %s", name, exc_info=True)
        return False
    return True


# The pool starts its process for the first task it is given, and this one is submitted as the
# worker opens: it does nothing itself, and its process imports the worker's modules first.
@task(name="start-worker")
def worker_started() -> int:
    """The worker's process id: a first task, so that its process starts now."""
    return os.getpid()


@dataclass
class _Worker:
    """One single-process pool, its process id once started (0 before), and its tasks."""

    pool: ProcessPoolTaskRunner
    process_id: Any  # a multiprocessing Value("q"), set by the worker's initializer
    tasks: list[Future[Any]] = field(default_factory=list)
    closing: threading.Thread | None = None  # set once release_workers let it go

    def stop(self) -> None:
        """Terminate the worker's process (SIGTERM), if it is a live child of this one."""
        for process in multiprocessing.active_children():
            if process.pid == self.process_id.value:
                process.terminate()


class TrainingWorkers(TaskRunner):
    """Worker processes, each started early and warmed for the tasks that will be routed to it.

    preload maps a route (by default a task's name) to the modules its worker imports before
    the task arrives; route(task_name, parameters) gives a task's route, so that tasks of one
    name can go to different workers. Tasks with no worker of their own go to the least busy.
    """

    def __init__(
        self,
        max_workers: int = 2,
        preload: Mapping[str, Sequence[str]] | None = None,
        route: Callable[[str, dict[str, Any]], str] | None = None,
    ):
        super().__init__()
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")
        self.max_workers = max_workers
        self.preload = {name: tuple(modules) for name, modules in (preload or {}).items()}
        self.route = route
        self._workers: list[_Worker] = []
        self._routes: dict[str, int] = {}

    def duplicate(self) -> TrainingWorkers:
        """A fresh runner with the same settings (Prefect enters a copy per flow run)."""
        return type(self)(self.max_workers, self.preload, self.route)

    def __enter__(self) -> TrainingWorkers:
        super().__enter__()
        self._open(self.max_workers, self.preload)
        return self

    def start_workers(self, preload: Mapping[str, Sequence[str]]) -> None:
        """Start one worker per route now, each importing its modules; before any task only."""
        self._close()
        self._open(max(len(preload), 1), {k: tuple(v) for k, v in preload.items()})

    def _open(self, workers: int, preload: Mapping[str, tuple[str, ...]]) -> None:
        names = list(preload)[:workers]
        spawn = multiprocessing.get_context("spawn")  # the pools' own start method
        for index in range(workers):
            modules = preload[names[index]] if index < len(names) else ()
            process_id = spawn.Value("q", 0)
            pool = ProcessPoolTaskRunner(
                1, initializer=_warm_worker, initargs=(modules, process_id)
            )
            self._workers.append(_Worker(pool.__enter__(), process_id))
        self._routes = {name: index for index, name in enumerate(names)}
        if preload and not _in_worker:
            for worker in self._workers:
                worker.pool.submit(worker_started, {})

    def __exit__(self, *exc_info: Any) -> None:
        self._close(*exc_info)
        super().__exit__(*exc_info)

    def _close(self, *exc_info: Any) -> None:
        """Close every pool; a worker with no task in it is stopped rather than waited for."""
        for worker in self._workers:
            if worker.closing is not None:
                worker.closing.join()
                continue
            if all(future.done() for future in worker.tasks):
                # Idle, or still importing for a run that failed before training: waiting for
                # TensorFlow to load would only delay the failure's report.
                worker.stop()
            worker.pool.__exit__(*(exc_info or (None, None, None)))
        self._workers, self._routes = [], {}

    def cancel_all(self) -> None:
        """Cancel what has not started and stop the workers (Prefect calls it on cancellation)."""
        for worker in self._workers:
            if worker.closing is None:
                worker.pool.cancel_all()

    def process_ids(self) -> list[int]:
        """Each worker's process id; 0 for one whose process has not started yet."""
        return [worker.process_id.value for worker in self._workers]

    def _worker_for(self, route: str) -> _Worker:
        if route in self._routes:
            return self._workers[self._routes[route]]
        busy = [sum(not future.done() for future in w.tasks) for w in self._workers]
        return self._workers[busy.index(min(busy))]

    def submit(
        self,
        task: Any,
        parameters: dict[str, Any],
        wait_for: Iterable[Any] | None = None,
        dependencies: dict[str, Any] | None = None,
    ) -> Any:
        """Run the task in the worker warmed for it, else in the least busy one."""
        if not self._workers:
            raise RuntimeError("Task runner is not started")
        worker = self._worker_for(self.route(task.name, parameters) if self.route else task.name)
        future = worker.pool.submit(task, parameters, wait_for, dependencies)
        worker.tasks.append(future.wrapped_future)
        return future

    def release_workers(self) -> None:
        """Let the workers exit now, while the later stages run in the flow's process.

        Otherwise they exit when the flow ends: seconds between the last task and the end of
        the run. A pool waits for its process as it closes, so each closes in a thread.
        """
        for index, worker in enumerate(self._workers):
            if worker.closing is None:
                worker.closing = threading.Thread(
                    target=worker.pool.__exit__,
                    args=(None, None, None),
                    name=f"houseprice-release-{index}",
                    daemon=True,
                )
                worker.closing.start()


def import_in_background(*modules: str) -> threading.Thread:
    """Import modules in a daemon thread, so a stage that needs them later finds them loaded.

    Worth it while this process waits (for the Prefect server, say): an import is CPU work
    that holds the GIL, so it gains nothing beside other Python work in the same process.
    A later `import` of the same module waits for this one to finish (Python's import lock).
    """

    def load() -> None:
        for name in modules:
            _import_quietly(name)

    thread = threading.Thread(target=load, name="houseprice-preload", daemon=True)
    thread.start()
    return thread
