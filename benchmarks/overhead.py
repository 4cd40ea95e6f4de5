"""Where a person's time goes: `houseprice retrain` on the bundled data, `predict`, imports.

    python -m benchmarks.overhead [--prefect-home DIR] [--repeats N]

Runs the real commands in subprocesses, in a temporary folder, with a warm PREFECT_HOME (its
database prepared first, and not timed), and times what a person waits for: the retrain's wall
time and the CPU time of its processes, the temporary server's start-up, each stage
(lineage.json), the time from the last task to the process's exit, the longest stretch without
a line on the terminal, `predict` of 20 rows, and the import of houseprice.model. The last
line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import houseprice  # noqa: F401  (environment defaults before Prefect is imported)
from houseprice import storage
from houseprice.cli.terminal import EXIT_KEPT, EXIT_PROMOTED

REPO_ROOT = Path(__file__).resolve().parents[1]
# Any line a task logs (the terminal no longer shows routine "Finished in state Completed()").
TASK_LINE = re.compile(r"\| Task run '[^']*' - ")
PREDICT_ROWS = 20


def _command() -> list[str]:
    """The installed console command beside this interpreter, else its module."""
    script = Path(sys.executable).with_name("houseprice")
    return [str(script)] if script.exists() else [sys.executable, "-m", "houseprice.cli"]


def _environment(prefect_home: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PREFECT_HOME": str(prefect_home),
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("PREFECT_API_URL", None)
    return env


def _children_cpu() -> float:
    """User+system CPU seconds of this process's finished children (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_lines(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, float, list, float]:
    """Run a command; return its exit code, wall seconds, (seconds, line) per line, CPU seconds.

    The CPU is that of the whole process tree (the command, its Prefect server, its workers):
    on 2 cores it bounds the wall time from below, and it moves far less than the wall time
    when other work shares the machine.
    """
    lines: list[tuple[float, str]] = []
    cpu_before = _children_cpu()
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

    def collect(stream) -> None:
        for line in stream:
            lines.append((time.perf_counter() - started, line.rstrip("\n")))

    streams = (process.stdout, process.stderr)
    readers = [threading.Thread(target=collect, args=(stream,)) for stream in streams]
    for reader in readers:
        reader.start()
    code = process.wait()
    wall = time.perf_counter() - started
    for reader in readers:
        reader.join()
    return code, wall, sorted(lines), _children_cpu() - cpu_before


def longest_silence(lines: list[tuple[float, str]], wall: float) -> float:
    """The longest stretch with no line on the terminal, from start to exit."""
    stamps = [0.0, *(t for t, _ in lines), wall]
    return max(b - a for a, b in itertools.pairwise(stamps))


def server_start_seconds(prefect_home: Path) -> float:
    """Start and stop the temporary server once; migrates a new database first (not timed)."""
    os.environ["PREFECT_HOME"] = str(prefect_home)
    from houseprice.prefect_server import TemporaryServer

    timings = []
    for _ in range(2):  # the first may build the database: only the second is a warm start
        server = TemporaryServer(lambda message: print(message, file=sys.stderr))
        started = time.perf_counter()
        server.start()
        server.announce()
        server.wait_ready()
        timings.append(time.perf_counter() - started)
        server.stop()
    return timings[-1]


def measure_retrain(env: dict[str, str], work: Path) -> dict[str, object]:
    """One `houseprice retrain` on the bundled data into work/artifacts."""
    argv = [*_command(), "retrain", "--data-dir", str(work / "data")]
    argv += ["--artifacts-dir", str(work / "artifacts")]
    code, wall, lines, cpu = timed_lines(argv, env, work)
    if code not in (EXIT_PROMOTED, EXIT_KEPT):  # a later run keeps the first one's champion
        sys.exit("retrain failed:\n" + "\n".join(line for _, line in lines[-40:]))
    last_task = max((t for t, line in lines if TASK_LINE.search(line)), default=wall)
    runs = sorted((work / "artifacts" / "runs").glob("*/lineage.json"))
    stages = json.loads(runs[-1].read_text())["stage_seconds"]
    return {
        "retrain_s": round(wall, 2),
        "retrain_cpu_s": round(cpu, 2),
        "stage_s": stages,
        "last_task_to_exit_s": round(wall - last_task, 2),
        "longest_silence_s": round(longest_silence(lines, wall), 2),
        "terminal_lines": len(lines),
    }


def measure_predict(env: dict[str, str], work: Path) -> float:
    """Wall seconds of `houseprice predict` for 20 bundled rows with the champion."""
    import pandas as pd

    rows = work / "rows.csv"
    pd.read_parquet(storage.BUNDLED_DATA).head(PREDICT_ROWS).to_csv(rows, index=False)
    argv = [*_command(), "predict", "--input", str(rows), "--output", str(work / "out.csv")]
    code, wall, lines, _ = timed_lines(
        [*argv, "--artifacts-dir", str(work / "artifacts")], env, work
    )
    if code != 0:
        sys.exit("predict failed:\n" + "\n".join(line for _, line in lines))
    return round(wall, 2)


def measure_model_import(env: dict[str, str]) -> dict[str, object]:
    """Seconds to import houseprice.model in a fresh interpreter, and which heavy modules came."""
    code = (
        "import time; t = time.perf_counter(); import houseprice.model; "
        "t = time.perf_counter() - t; import sys, json; "
        "print(json.dumps([t, sorted(m for m in ('prefect', 'great_expectations', 'torch', "
        "'tensorflow') if m in sys.modules)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    seconds, heavy = json.loads(out.strip().splitlines()[-1])
    return {"model_import_s": round(seconds, 2), "model_import_pulls_in": heavy}


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, measure, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefect-home", type=Path, help="reuse this PREFECT_HOME (warm)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="retrains in a row (the first has no champion)"
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="houseprice-overhead-") as folder:
        work = Path(folder)
        prefect_home = args.prefect_home or work / "prefect-home"
        env = _environment(prefect_home)
        server_start = server_start_seconds(prefect_home)
        figures: dict[str, object] = {"server_start_s": round(server_start, 2)}
        retrains = [measure_retrain(env, work) for _ in range(args.repeats)]
        figures.update(retrains[0])
        if len(retrains) > 1:
            figures["later_retrains"] = retrains[1:]
        figures["predict_20_rows_s"] = measure_predict(env, work)
        figures.update(measure_model_import(env))
    figures["cpus"] = os.cpu_count()
    figures["load_average_before"] = round(load_before, 2)
    figures["load_average_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
