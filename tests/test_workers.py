"""The retrain flow's workers: each task runs in the worker warmed for it."""

from __future__ import annotations

import multiprocessing
import os
import sys
import time

from prefect import flow, task
from prefect.context import FlowRunContext

from houseprice.flows.workers import TrainingWorkers

# Standard-library modules that neither Prefect nor a fresh worker imports by itself.
PROBES = ("tabnanny", "wave")


def _probe() -> tuple[list[str], int]:
    return [name for name in PROBES if name in sys.modules], os.getpid()


@task(name="probe-tabnanny")
def probe_tabnanny() -> tuple[list[str], int]:
    """What this task's worker has loaded, and which process it is."""
    return _probe()


@task(name="probe-wave")
def probe_wave() -> tuple[list[str], int]:
    """What this task's worker has loaded, and which process it is."""
    return _probe()


def test_each_task_runs_in_the_worker_that_preloaded_its_modules(prefect_harness):
    # A module that cannot be imported is logged and skipped; the rest still load.
    preload = {"probe-tabnanny": ("no_such_module_here", "tabnanny"), "probe-wave": ("wave",)}

    @flow(task_runner=TrainingWorkers(max_workers=2, preload=preload))
    def probe_workers():
        first, second = probe_tabnanny.submit(), probe_wave.submit()
        return first.result(), second.result()

    (tabnanny_loaded, tabnanny_pid), (wave_loaded, wave_pid) = probe_workers()
    assert tabnanny_loaded == ["tabnanny"]
    assert wave_loaded == ["wave"]
    assert len({tabnanny_pid, wave_pid, os.getpid()}) == 3


def _wait_for(condition, timeout_s: float = 120.0) -> bool:
    """Whether condition() came true within timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _live_children() -> set[int]:
    return {process.pid for process in multiprocessing.active_children()}


# Prefect has no public way to start a ProcessPoolTaskRunner's process before a task: the workers
# submit a first, empty task for it. Pinned: the process starts with no task of the flow's own.
def test_start_workers_starts_each_process_before_any_task_arrives(prefect_harness):
    @flow(task_runner=TrainingWorkers(max_workers=1))
    def start_only():
        runner = FlowRunContext.get().task_runner
        runner.start_workers({"probe-tabnanny": ("tabnanny",), "probe-wave": ("wave",)})
        started = _wait_for(lambda: all(runner.process_ids()))
        return started, runner.process_ids(), _live_children()

    started, process_ids, children = start_only()
    assert started
    assert len(set(process_ids)) == 2
    assert set(process_ids) <= children


# A run that fails before training must not wait for a worker still importing its framework.
# Pinned: terminating the process of a ProcessPoolTaskRunner lets its exit return at once.
def test_a_worker_still_importing_is_stopped_rather_than_waited_for():
    runner = TrainingWorkers(max_workers=1, preload={"slow": ("tests.slow_import",)})
    with runner:
        assert _wait_for(lambda: all(runner.process_ids()))
        (process_id,) = runner.process_ids()
        closing = time.monotonic()
    assert time.monotonic() - closing < 60  # the import alone sleeps 120 s
    assert process_id not in _live_children()


# Pinned: a ProcessPoolTaskRunner closed in a thread of its own lets its process exit while
# the flow goes on.
def test_released_workers_exit_while_the_flow_goes_on(prefect_harness):
    @flow(task_runner=TrainingWorkers(max_workers=2))
    def train_then_release():
        first, second = probe_tabnanny.submit(), probe_wave.submit()
        process_ids = {first.result()[1], second.result()[1]}
        FlowRunContext.get().task_runner.release_workers()
        return process_ids, _wait_for(lambda: not process_ids & _live_children(), 60)

    process_ids, exited = train_then_release()
    assert len(process_ids) == 2
    assert exited
