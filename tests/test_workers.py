"""The retrain flow's workers: each task runs in the worker warmed for it."""

from __future__ import annotations

import os
import sys

from prefect import flow, task

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
