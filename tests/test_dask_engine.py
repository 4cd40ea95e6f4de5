"""The Dask engine: map_chunks on a cluster as in a loop, and the retrain flow on Dask giving the
local engine's model and artifacts, through a killed worker, with nothing left running after.

One LocalCluster (two worker processes) serves the whole module; the run with no address starts
and closes its own, which is what the leak check is about.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from prefect import flow

from houseprice import layout, storage
from houseprice.config import ComputeConfig
from houseprice.flows.engine import (
    ChunkError,
    dask_task_runner,
    map_chunks,
    on_dask,
    on_dask_engine,
)
from houseprice.model import load_run_model
from tests import killed_trainer
from tests.conftest import STREAMED, make_houses, small_config, write_houses_folder

# Great Expectations names a validation's Data Docs page by the time it ran.
TIME_STAMP = re.compile(r"\d{8}T\d{6}\.\d+Z")


def square_with_pid(x: int) -> tuple[int, int]:
    """x squared, and the process that squared it."""
    return x * x, os.getpid()


def refuse_three(x: int) -> int:
    """x, unless it is 3."""
    if x == 3:
        raise ValueError("three is not allowed")
    return x


def sum_squares_in_one_process(xs: list[int]) -> tuple[int, set[int]]:
    """The sum of the squares of xs, mapped from inside a chunk; and the processes that squared."""
    squares = map_chunks(square_with_pid, xs, "inner")
    return sum(value for value, _ in squares), {pid for _, pid in squares}


def kill_own_worker_at_two(x: int) -> int:
    """x, but item 2 kills the Dask worker process it runs in (never the test's own process)."""
    if x == 2 and killed_trainer.in_dask_worker():
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def _children() -> set[psutil.Process]:
    """This process's descendants, but multiprocessing's resource tracker.

    The standard library starts that one helper at a process's first spawn and keeps it until
    the process exits: it belongs to no run.
    """
    return {
        child
        for child in psutil.Process().children(recursive=True)
        if "resource_tracker" not in " ".join(_cmdline(child))
    }


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:  # gone since it was listed
        return []


def _gone_within(processes: set[psutil.Process], seconds: float = 15.0) -> set[psutil.Process]:
    """Those of processes still running after seconds (closing a worker may take a few)."""
    deadline = time.monotonic() + seconds
    alive = {p for p in processes if p.is_running()}
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = {p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE}
    return alive


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One LocalCluster for the module; its worker processes inherit the kill marker's path."""
    from distributed import LocalCluster

    marker = tmp_path_factory.mktemp("kill") / "killed"
    os.environ[killed_trainer.MARKER_ENV] = str(marker)
    before = _children()
    try:
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as local:
            yield local
    finally:
        os.environ.pop(killed_trainer.MARKER_ENV, None)
    assert _gone_within(_children() - before) == set()


# ---------------------------------------------------------------------------------------------
# map_chunks


def test_map_chunks_outside_a_flow_is_a_plain_loop_in_order():
    assert map_chunks(square_with_pid, [3, 1, 2], "square") == [
        (x * x, os.getpid()) for x in (3, 1, 2)
    ]
    assert map_chunks(square_with_pid, [], "square") == []
    assert not on_dask()


def test_map_chunks_names_the_item_that_failed_and_keeps_its_cause():
    with pytest.raises(
        ChunkError, match=r"refuse: item 3 \(3\) failed: ValueError: three"
    ) as error:
        map_chunks(refuse_three, [0, 1, 2, 3, 4], "refuse")
    assert isinstance(error.value.__cause__, ValueError)


def test_map_chunks_on_local_threads_keeps_the_order_and_names_a_failure():
    import time

    def slow_square(x: int) -> int:
        time.sleep(0.01 * (5 - x))  # later items finish first
        return x * x

    assert map_chunks(slow_square, [0, 1, 2, 3, 4], "square", threads=3) == [0, 1, 4, 9, 16]
    with pytest.raises(ChunkError, match=r"refuse: item 3 \(3\) failed: ValueError: three"):
        map_chunks(refuse_three, [0, 1, 2, 3, 4], "refuse", threads=2)


def test_fold_chunks_folds_each_result_in_order_locally_and_on_threads():
    import operator

    from houseprice.flows.engine import fold_chunks

    for threads in (1, 3):
        folded = fold_chunks(lambda x: (x,), range(6), "tuple", operator.add, threads)
        assert folded == (0, 1, 2, 3, 4, 5)
    with pytest.raises(ValueError, match="no chunks"):
        fold_chunks(abs, [], "nothing", operator.add)


def test_a_long_map_logs_its_progress(monkeypatch, caplog):
    from houseprice.flows import engine

    monkeypatch.setattr(engine, "PROGRESS_EVERY_S", 0.0)
    with caplog.at_level("INFO", logger=engine.__name__):
        map_chunks(abs, [-1, -2, -3], "absolute")
    assert [r.getMessage().split(" in ")[0] for r in caplog.records] == [
        "absolute: 1 of 3 chunks done",
        "absolute: 2 of 3 chunks done",
    ]


def test_the_runner_connects_to_an_address_or_starts_a_local_cluster():
    remote = dask_task_runner(ComputeConfig(engine="dask", dask_address="tcp://s:8786"))
    assert (remote.address, remote.cluster_kwargs) == ("tcp://s:8786", {})
    local = dask_task_runner(ComputeConfig(engine="dask", dask_workers=3))
    assert local.address is None
    assert local.cluster_kwargs == {"n_workers": 3, "threads_per_worker": 1, "processes": True}


def test_the_flow_on_the_dask_engine_is_the_same_flow_alerting_once_from_its_caller():
    from houseprice.flows.retrain import retrain

    subflow = on_dask_engine(retrain, ComputeConfig(engine="dask", dask_workers=3))
    assert (subflow.name, subflow.fn) == (retrain.name, retrain.fn)
    assert subflow.task_runner.cluster_kwargs["n_workers"] == 3
    assert retrain.on_failure_hooks and retrain.on_crashed_hooks  # the caller's run alerts
    assert subflow.on_failure_hooks == subflow.on_crashed_hooks == []


def test_on_the_cluster_map_chunks_gives_the_loops_results_in_order(cluster, prefect_harness):
    items = [5, 3, 8, 1, 9, 2]

    @flow(task_runner=dask_task_runner(ComputeConfig(dask_address=cluster.scheduler_address)))
    def mapped() -> tuple[bool, list[tuple[int, int]]]:
        return on_dask(), map_chunks(square_with_pid, items, "square")

    on_cluster, results = mapped()
    assert on_cluster
    in_a_loop = map_chunks(square_with_pid, items, "square")
    assert (
        [value for value, _ in results]
        == [value for value, _ in in_a_loop]
        == [25, 9, 64, 1, 81, 4]
    )
    assert os.getpid() not in {pid for _, pid in results}  # the workers squared them


def test_map_chunks_inside_a_chunk_on_the_cluster_loops_in_that_worker(cluster, prefect_harness):
    @flow(task_runner=dask_task_runner(ComputeConfig(dask_address=cluster.scheduler_address)))
    def nested() -> list[tuple[int, set[int]]]:
        return map_chunks(sum_squares_in_one_process, [[1, 2], [3]], "outer")

    (first, first_pids), (second, second_pids) = nested()
    assert (first, second) == (5, 9)
    assert len(first_pids) == len(second_pids) == 1  # each chunk's own worker, no tasks of its own
    assert os.getpid() not in first_pids | second_pids


def test_on_the_cluster_a_failing_item_fails_the_flow_naming_it(cluster, prefect_harness):
    @flow(task_runner=dask_task_runner(ComputeConfig(dask_address=cluster.scheduler_address)))
    def mapped() -> list[int]:
        return map_chunks(refuse_three, [0, 1, 2, 3, 4], "refuse")

    with pytest.raises(ChunkError, match=r"refuse: item 3 \(3\) failed: ValueError: three"):
        mapped()


def test_a_chunk_whose_workers_keep_dying_fails_the_flow_naming_it(cluster, prefect_harness):
    @flow(task_runner=dask_task_runner(ComputeConfig(dask_address=cluster.scheduler_address)))
    def mapped() -> list[int]:
        return map_chunks(kill_own_worker_at_two, [0, 1, 2, 3], "kill")

    # distributed reruns a task whose worker died on another worker, up to allowed-failures
    # (3) times, then gives up with KilledWorker; 0 here gives up at the first death.
    allowed, cluster.scheduler.allowed_failures = cluster.scheduler.allowed_failures, 0
    try:
        with pytest.raises(ChunkError, match=r"kill: item 2 \(2\) failed: KilledWorker"):
            mapped()
    finally:
        cluster.scheduler.allowed_failures = allowed
        cluster.wait_for_workers(2, timeout=60)  # the nanny restarts the killed one


# ---------------------------------------------------------------------------------------------
# The retrain flow on Dask


def _retrain_in(
    root: Path, training: dict | None = None, streamed: bool = False, **compute
) -> tuple[layout.RunPaths, float]:
    """One retrain of the houses under root (streamed: a Parquet folder in chunks); run, time."""
    from houseprice.flows.retrain import retrain

    if streamed:  # every per-chunk pass a task on the cluster, the statistics passes too
        source = write_houses_folder(root / "houses")
        compute = {**STREAMED, **compute}
    else:
        source = root / "houses.csv"
        make_houses(rows=400, seed=2).to_csv(source, index=False)
    sections = {"data": {"source": str(source)}, "compute": compute}
    if training:
        sections["training"] = training
    started = time.perf_counter()
    folder = Path(retrain(small_config(root, **sections)))
    return layout.RunPaths(folder.name, folder), time.perf_counter() - started


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, prefect_harness):
    return _retrain_in(tmp_path_factory.mktemp("local"), streamed=True)


@pytest.fixture(scope="module")
def dask_run(tmp_path_factory, prefect_harness, local_run):
    """A run that starts its own LocalCluster; the processes it started, still running after."""
    before = _children()
    run = _retrain_in(tmp_path_factory.mktemp("dask"), streamed=True, engine="dask", dask_workers=2)
    return run, _gone_within(_children() - before)


def _files(run: layout.RunPaths) -> set[str]:
    """Every file under the data and artifacts folders; run id and time stamps as <run>, <time>."""
    root = run.root.parents[2]  # <root>/artifacts/runs/<run>
    return {
        TIME_STAMP.sub("<time>", str(path.relative_to(root)).replace(run.run_id, "<run>"))
        for path in root.rglob("*")
        if path.is_file() and path.name != "houses.csv"
    }


def _coefficients(run: layout.RunPaths, framework: str) -> np.ndarray:
    fit = json.loads(run.linear_weights(framework).read_text())
    return np.append(fit["weights"], fit["bias"])


@pytest.mark.slow
def test_on_dask_the_flow_fits_the_local_engines_coefficients(local_run, dask_run):
    (local, local_s), ((on_dask_run, dask_s), _) = local_run, dask_run
    print(f"retrain wall time: local {local_s:.1f} s, dask {dask_s:.1f} s")
    frameworks = storage.read_json(local.lineage)["devices"]
    assert set(frameworks) == {"torch", "tensorflow"}
    for framework in frameworks:
        np.testing.assert_allclose(
            _coefficients(on_dask_run, framework),
            _coefficients(local, framework),
            rtol=1e-9,
            atol=1e-12,  # the bias is 0 up to rounding in the scaled space
            err_msg=framework,
        )
    assert storage.read_json(on_dask_run.status)["status"] == "completed"


@pytest.mark.slow
def test_on_dask_the_flow_writes_every_artifact_the_local_engine_writes(local_run, dask_run):
    (local, _), ((on_dask_run, _), _) = local_run, dask_run
    assert _files(on_dask_run) == _files(local)


@pytest.mark.slow
def test_the_runs_own_cluster_and_its_processes_are_gone_after_it(dask_run):
    _, still_running = dask_run
    assert still_running == set()


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_its_training_rescheduled_to_the_same_model(
    cluster, prefect_harness, tmp_path
):
    marker = Path(os.environ[killed_trainer.MARKER_ENV])
    run, _ = _retrain_in(
        tmp_path,
        training={killed_trainer.NAME: {}},
        engine="dask",
        dask_address=cluster.scheduler_address,
    )
    killed_pid = int(marker.read_text())  # the kill happened, in a worker of the cluster
    assert not psutil.pid_exists(killed_pid) or psutil.Process(killed_pid).status() == "zombie"
    # No Prefect retry (the train task has none): distributed saw the worker die and ran the task
    # again in another worker process, and that fit is the model, the same as numpy's.
    metrics = storage.read_json(run.metrics)
    assert metrics[killed_trainer.NAME]["training"]["extras"]["pid"] != killed_pid
    assert storage.read_json(run.status)["status"] == "completed"
    np.testing.assert_allclose(
        _coefficients(run, killed_trainer.NAME), _coefficients(run, "torch"), rtol=1e-6, atol=1e-9
    )
    assert all(check["within_tolerance"] for check in metrics["reference_check"].values())
    # A finished training whose result died with the worker ran again: the files it rewrote
    # are still the ones the manifest's checksums were taken of.
    artifacts = run.root.parents[1]
    for framework in ("torch", "tensorflow", killed_trainer.NAME):
        load_run_model(artifacts, run.run_id, framework)
    cluster.wait_for_workers(2, timeout=60)  # the nanny started a new worker in its place
