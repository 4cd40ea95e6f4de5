"""The retrain flow's worker processes: started at flow start, warmed, and let go early.

A trainer runs in a process of its own (each framework holds the GIL while it computes), and a
fresh process spends seconds importing Prefect and its framework before it can train. Here
each worker starts when the flow starts and imports what its task will need while ingest and
validation run in the flow's process, so the train stage finds it ready. A task goes to the
worker warmed for it (by task name); any other task goes to the least busy worker.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from prefect.logging import get_logger
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner

logger = get_logger("houseprice.workers")
# True in a worker process. Prefect enters a copy of the flow's task runner there too, for tasks
# that a task would submit: that copy must not start workers of its own before one is needed.
_in_worker = False


def _warm_worker(modules: Sequence[str]) -> None:
    """Run first in each worker process: exit fast later, then import what its task needs."""
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


def _started() -> int:
    return os.getpid()


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
        self._slots: list[ProcessPoolTaskRunner] = []
        self._routes: dict[str, int] = {}
        self._pending: list[list[Future[Any]]] = []

    def duplicate(self) -> TrainingWorkers:
        """A fresh runner with the same settings (Prefect enters a copy per flow run)."""
        return type(self)(self.max_workers, self.preload, self.route)

    def __enter__(self) -> TrainingWorkers:
        super().__enter__()
        self._open(self.max_workers, self.preload)
        return self

    def start_workers(self, preload: Mapping[str, Sequence[str]]) -> None:
        """Start one worker per route now, each importing its modules; before any task only."""
        self._close_idle()
        self._open(max(len(preload), 1), {k: tuple(v) for k, v in preload.items()})

    def _open(self, workers: int, preload: Mapping[str, tuple[str, ...]]) -> None:
        # One single-process pool per worker, so that a task reaches the worker warmed for it.
        names = list(preload)[:workers]
        for index in range(workers):
            modules = preload[names[index]] if index < len(names) else ()
            slot = ProcessPoolTaskRunner(1, initializer=_warm_worker, initargs=(modules,))
            self._slots.append(slot.__enter__())
            self._pending.append([])
        self._routes = {name: index for index, name in enumerate(names)}
        if preload and not _in_worker:
            for slot in self._slots:
                _spawn_now(slot)

    def __exit__(self, *exc_info: Any) -> None:
        self._close_idle(*exc_info)
        super().__exit__(*exc_info)

    def _close_idle(self, *exc_info: Any) -> None:
        """Close every pool; a worker with no task in it is stopped rather than waited for."""
        for index, slot in enumerate(self._slots):
            if all(future.done() for future in self._pending[index]):
                # Idle, or still importing for a run that failed before training: waiting for
                # TensorFlow to load would only delay the failure's report.
                _stop_processes(slot)
            slot.__exit__(*(exc_info or (None, None, None)))
        self._slots, self._pending, self._routes = [], [], {}

    def cancel_all(self) -> None:
        """Cancel what has not started and stop the workers (Prefect calls it on cancellation)."""
        for slot in self._slots:
            slot.cancel_all()

    def _slot_for(self, task_name: str) -> int:
        if task_name in self._routes:
            return self._routes[task_name]
        busy = [sum(not f.done() for f in futures) for futures in self._pending]
        return busy.index(min(busy))

    def submit(
        self,
        task: Any,
        parameters: dict[str, Any],
        wait_for: Iterable[Any] | None = None,
        dependencies: dict[str, Any] | None = None,
    ) -> Any:
        """Run the task in the worker warmed for it, else in the least busy one."""
        if not self._slots:
            raise RuntimeError("Task runner is not started")
        index = self._slot_for(self.route(task.name, parameters) if self.route else task.name)
        future = self._slots[index].submit(task, parameters, wait_for, dependencies)
        self._pending[index].append(future.wrapped_future)
        return future

    def release_workers(self) -> None:
        """Let the idle workers exit now, while the later stages run in the flow's process.

        Otherwise they exit when the flow ends: seconds between the last task and the end of
        the run.
        """
        for slot in self._slots:
            if slot._executor is not None:  # Prefect keeps the pool there, and no other way in
                slot._executor.shutdown(wait=False)


def _stop_processes(slot: ProcessPoolTaskRunner) -> None:
    """Terminate the slot's worker processes (SIGTERM); the pool then reaps them."""
    pool = slot._executor
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _spawn_now(slot: ProcessPoolTaskRunner) -> None:
    """Start the slot's worker process now; a pool otherwise starts it at the first task."""
    if slot._executor is not None:
        slot._executor.submit(_started)


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
