"""Scale benchmark: the retrain flow beside the plain script a user might write instead.

    python -m benchmarks.scale --rows 1000000 [--features 20] [--engine local|dask]
        [--dask-address tcp://host:8786] [--peer auto|yes|no]

The data is a partitioned Parquet dataset of known-answer synthetic rows (one file per million
rows), written once under data/bench/ (ignored by git) and reused by later calls. Then, each in
a process of its own, it runs:

- the retrain flow (`houseprice retrain --source <that folder> --target price`), in temporary
  data and artifacts folders, with a Prefect home of the benchmark's own (warmed by the floor
  run, so the figures leave out the first-start database migration);
- the same flow (same engine) on the first 1,000 rows: the memory floor (server, workers,
  frameworks; on Dask the cluster's workers too);
- the peer: pandas reads the dataset, splits 70/15/15 at random and fits numpy.linalg.lstsq
  (numpy rather than scikit-learn's LinearRegression, which uses the same LAPACK solver, so
  the project gains no dependency for a benchmark). It holds the data several times over, so
  with `--peer auto` it is skipped (peer_s null, the reason printed) when 3 x the raw size is
  more than the memory available: an out-of-memory kill would take the machine's other work
  with it.

Memory is the resident set of the whole process tree (the flow, its Prefect server and its
training workers), sampled from /proc every 0.1 s. The last line printed is one JSON object:
rows, features, engine, raw_mb, flow_s, flow_peak_rss_mb, floor_rss_mb, floor_s, peer_s,
peer_peak_rss_mb, one_pass_s (one streamed pass over the same files: pyarrow batches and XᵀX,
warm cache), flow_to_one_pass, flow_to_peer, stage_s (per stage, from the run's lineage.json)
and coef_max_rel_diff (the trainers' coefficients against the least-squares reference's, in
price units).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROWS_PER_PART = 1_000_000
FLOOR_ROWS = 1_000
BENCH_DIR = Path("data") / "bench"
SAMPLE_SECONDS = 0.1

# One streamed pass over the same files, the floor of any pass-based fit: pyarrow record batches
# in, XᵀX (with the target and an intercept) summed; run twice, the second timed (warm cache).
ONE_PASS = """
import sys, time
import numpy as np, pyarrow.dataset as ds
for attempt in range(2):
    started = time.perf_counter()
    total = None
    for batch in ds.dataset(sys.argv[1], format="parquet").to_batches(batch_size=1_000_000):
        block = np.column_stack([c.to_numpy(zero_copy_only=False) for c in batch.columns])
        block = np.column_stack([block.astype("float64"), np.ones(len(block))])
        gram = block.T @ block
        total = gram if total is None else total + gram
print(f"{time.perf_counter() - started:.3f}")
"""

# The peer, as a user would write it; run with `python -c PEER <dataset folder>`.
PEER = """
import json, sys, time
import numpy as np, pandas as pd
started = time.perf_counter()
frame = pd.read_parquet(sys.argv[1])
order = np.random.default_rng(0).permutation(len(frame))
train = frame.iloc[order[: int(0.7 * len(frame))]]
test = frame.iloc[order[int(0.85 * len(frame)) :]]
x = train.drop(columns="price").to_numpy(dtype="float64")
design = np.column_stack([x, np.ones(len(x))])
solution = np.linalg.lstsq(design, train["price"].to_numpy(dtype="float64"), rcond=None)[0]
x_test = test.drop(columns="price").to_numpy(dtype="float64")
error = x_test @ solution[:-1] + solution[-1] - test["price"].to_numpy()
rmse = float(np.sqrt(np.mean(error**2)))
print(json.dumps({"seconds": time.perf_counter() - started, "test_rmse": rmse}))
"""


def dataset_dir(rows: int, features: int) -> Path:
    """Where the dataset of this size lives (reused across calls)."""
    return BENCH_DIR / f"synthetic-{rows}x{features}"


def write_dataset(rows: int, features: int, seed: int = 0) -> Path:
    """Write the partitioned dataset unless it is there already; return its folder.

    Each part is drawn from its own seeded generator with the same coefficients, so memory is
    bounded by one part and the data is the same whoever generates it.
    """
    folder = dataset_dir(rows, features)
    done = folder / "_complete"
    if done.exists():
        return folder
    import pandas as pd

    from houseprice import storage

    rng = np.random.default_rng(seed)
    # Correlated columns in very different units (areas, counts, years), each moving the price by
    # about 20,000/sqrt(features) per standard deviation: prices stay far above zero.
    mixing = rng.standard_normal((features, features)) / np.sqrt(features) + np.eye(features)
    scales = rng.uniform(1, 1000, features)
    coefficients = rng.uniform(-1, 1, features) * 20_000 / (scales * np.sqrt(features))
    intercept = 200_000 - 3.0 * scales @ coefficients  # the mean price is 200,000
    names = [f"x{i:02d}" for i in range(1, features + 1)]
    for index, start in enumerate(range(0, rows, ROWS_PER_PART)):
        count = min(ROWS_PER_PART, rows - start)
        part_rng = np.random.default_rng([seed, index + 1])
        x = (part_rng.standard_normal((count, features)) @ mixing + 3.0) * scales
        price = intercept + x @ coefficients + part_rng.normal(0, 10_000, count)
        frame = pd.DataFrame(x, columns=names).assign(price=price)
        storage.write_parquet_atomic(folder / f"part-{index:05d}.parquet", frame)
        print(f"wrote {folder}/part-{index:05d}.parquet ({start + count:,} of {rows:,} rows)")
    done.touch()
    return folder


def _children(pid: int) -> list[int]:
    """Direct children of pid, from /proc (every thread's children file)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree_rss_mb(pid: int) -> float:
    """Resident memory of pid and all its descendants, in MB."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
        pending += _children(current)
    return total / 1e6


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run command; return its wall seconds, peak process-tree RSS (MB) and its output."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peak = 0.0
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    while process.poll() is None:
        peak = max(peak, tree_rss_mb(process.pid))
        time.sleep(SAMPLE_SECONDS)
    reader.join()
    seconds = time.perf_counter() - started
    text = "".join(output)
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {process.returncode}:\n{text[-3000:]}")
    return seconds, peak, text


def run_flow(
    source: Path, workdir: Path, env: dict[str, str], engine: list[str] | None = None
) -> dict[str, Any]:
    """Retrain on source in fresh folders under workdir: wall, peak RSS, stages, coefficients."""
    houseprice = Path(sys.executable).with_name("houseprice")
    artifacts = workdir / "artifacts"
    command = [str(houseprice), "retrain", "--source", str(source), "--target", "price"]
    command += engine or []
    command += ["--data-dir", str(workdir / "data"), "--artifacts-dir", str(artifacts)]
    seconds, peak, _ = run_measured(command, env)
    [run] = (artifacts / "runs").iterdir()
    lineage = json.loads((run / "lineage.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    return {
        "seconds": seconds,
        "peak_rss_mb": peak,
        "stage_s": lineage.get("stage_seconds", {}),
        "coef_max_rel_diff": coefficient_gap(metrics),
    }


def coefficient_gap(metrics: dict[str, Any]) -> float | None:
    """Largest relative difference between a trainer's coefficient and the reference's."""
    models = metrics.get("models", metrics)
    reference = (models.get("ols") or {}).get("coefficients")
    if not isinstance(reference, dict):
        return None
    gaps = []
    for name in ("torch", "tensorflow"):
        trained = (models.get(name) or {}).get("coefficients") or {}
        for term, value in reference.items():
            if isinstance(value, int | float) and isinstance(trained.get(term), int | float):
                gaps.append(abs(trained[term] - value) / max(abs(value), 1e-12))
    return max(gaps) if gaps else None


def floor_source(source: Path, workdir: Path) -> Path:
    """The first FLOOR_ROWS rows of the dataset, as a file of their own."""
    import pyarrow.parquet as pq

    first = sorted(source.glob("part-*.parquet"))[0]
    path = workdir / "floor.parquet"
    pq.write_table(pq.read_table(first).slice(0, FLOOR_ROWS), path)
    return path


def peer_skip_reason(choice: str, raw_mb: float) -> str | None:
    """Why the peer is not run (asked not to, or it would not fit in memory); None to run it."""
    if choice == "no":
        return "--peer no"
    available_mb = available_memory_mb()
    if choice == "auto" and 3 * raw_mb > available_mb:
        return f"it needs about {3 * raw_mb:,.0f} MB (3 x raw), {available_mb:,.0f} MB available"
    return None


def available_memory_mb() -> float:
    """MemAvailable from /proc/meminfo, in MB (infinite where the file is missing)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return float("inf")


def main(argv: list[str] | None = None) -> None:
    """Generate (once), run flow, floor and peer, print the figures and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to generate")
    parser.add_argument("--features", type=int, default=20, help="numeric feature columns")
    parser.add_argument("--engine", choices=["local", "dask"], default="local", help="engine")
    parser.add_argument("--dask-address", help="a running scheduler (default: a LocalCluster)")
    parser.add_argument("--peer", choices=["auto", "yes", "no"], default="auto", help="run it?")
    args = parser.parse_args(argv)
    source = write_dataset(args.rows, args.features)
    raw_mb = args.rows * (args.features + 1) * 8 / 1e6
    engine = ["--engine", args.engine]
    engine += ["--dask-address", args.dask_address] if args.dask_address else []
    with tempfile.TemporaryDirectory(prefix="houseprice-scale-") as temporary:
        workdir = Path(temporary)
        env = {**os.environ, "PREFECT_HOME": str(BENCH_DIR / "prefect-home")}
        env.pop("PREFECT_API_URL", None)
        (workdir / "floor").mkdir()
        floor = run_flow(floor_source(source, workdir), workdir / "floor", env, engine)
        print(f"floor ({FLOOR_ROWS} rows): {floor['seconds']:.1f} s, {floor['peak_rss_mb']:.0f} MB")
        (workdir / "flow").mkdir()
        flow = run_flow(source, workdir / "flow", env, engine)
        print(f"flow: {flow['seconds']:.1f} s, {flow['peak_rss_mb']:.0f} MB, {flow['stage_s']}")
        print(f"flow per million rows: {flow['seconds'] / args.rows * 1e6:.2f} s")
    peer_s = peer_peak = None
    if skip := peer_skip_reason(args.peer, raw_mb):
        print(f"peer skipped: {skip}")
    else:
        command = [sys.executable, "-c", PEER, str(source)]
        peer_s, peer_peak, _ = run_measured(command, dict(os.environ))
        print(f"peer (pandas + numpy lstsq): {peer_s:.1f} s, {peer_peak:.0f} MB")
    one_pass = subprocess.run(
        [sys.executable, "-c", ONE_PASS, str(source)], capture_output=True, text=True, check=True
    )
    one_pass_s = float(one_pass.stdout.strip().splitlines()[-1])
    print(f"one streamed pass (pyarrow batches + XᵀX, warm): {one_pass_s:.1f} s")
    summary = {
        "rows": args.rows,
        "features": args.features,
        "engine": args.engine,
        "raw_mb": round(raw_mb, 1),
        "flow_s": round(flow["seconds"], 2),
        "flow_peak_rss_mb": round(flow["peak_rss_mb"]),
        "floor_rss_mb": round(floor["peak_rss_mb"]),
        "floor_s": round(floor["seconds"], 2),
        "peer_s": None if peer_s is None else round(peer_s, 2),
        "peer_peak_rss_mb": None if peer_peak is None else round(peer_peak),
        "one_pass_s": round(one_pass_s, 2),
        "flow_to_one_pass": round(flow["seconds"] / one_pass_s, 1),
        "flow_to_peer": None if peer_s is None else round(flow["seconds"] / peer_s, 2),
        "stage_s": flow["stage_s"],
        "coef_max_rel_diff": flow["coef_max_rel_diff"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
