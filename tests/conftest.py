"""Shared fixtures: small frames, configs that write under tmp_path, one Prefect harness."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import houseprice  # noqa: F401  (environment defaults before Prefect is imported)

# Each test session gets its own Prefect home, so runs never touch ~/.prefect or each other.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="houseprice-prefect-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
# An explicit heartbeat frequency makes each flow run wait on the heartbeat thread at exit.
os.environ.pop("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", None)

import numpy as np
import pandas as pd
import pytest

from houseprice.config import DataConfig, PipelineConfig, build_config
from houseprice.synthetic import SyntheticSpec, make_synthetic_data
from houseprice.trainers.common import TrainingData

NEIGHBORHOODS = ["North", "South", "East"]


def houses_config(**changes) -> DataConfig:
    """A DataConfig for make_houses' table (area, year, hood, price); changes override fields."""
    values = {
        "source": "houses.csv",
        "target": "price",
        "numeric_features": ["area", "year"],
        "categorical_features": ["hood"],
        "min_rows": 10,
    }
    return DataConfig(**{**values, **changes})


def make_houses(rows: int = 20, seed: int = 0) -> pd.DataFrame:
    """Houses whose price is an exact linear function of the features plus small noise."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(600, 3000, rows).round()
    year = rng.integers(1950, 2020, rows)
    neighborhood = np.array(NEIGHBORHOODS)[np.arange(rows) % 3]
    premium = pd.Series(neighborhood).map({"North": 0.0, "South": 15000.0, "East": -8000.0})
    price = 20000 + 95.0 * area + 300.0 * (year - 1950) + premium.to_numpy()
    price = price + rng.normal(0, 2000, rows)
    return pd.DataFrame({"area": area, "year": year, "hood": neighborhood, "price": price.round(2)})


def write_houses_folder(
    folder: Path, rows: int = 6_000, files: int = 3, row_group: int = 1_000
) -> Path:
    """make_houses' rows as a folder of Parquet files in small row groups (a streamed source).

    Every 97th area is missing, so imputation is part of what streaming must reproduce.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    houses = make_houses(rows=rows, seed=5)
    houses.loc[houses.index % 97 == 0, "area"] = np.nan
    per_file = rows // files
    for index in range(files):
        part = houses.iloc[index * per_file : (index + 1) * per_file].reset_index(drop=True)
        table = pa.Table.from_pandas(part, preserve_index=False)
        pq.write_table(table, folder / f"part-{index}.parquet", row_group_size=row_group)
    return folder


def save_torch_champion(root: Path, frame: pd.DataFrame | None = None, **sections) -> Path:
    """A real champion (torch, trained on make_houses' 200 rows or frame) made without the flow.

    sections change small_config's; returns the artifacts folder. Fast: no Prefect, no TensorFlow.
    """
    from houseprice import layout, registry, storage
    from houseprice.runs import COMPLETED
    from houseprice.tasks.features import build_feature_set
    from houseprice.trainers.torch_trainer import save_torch_model, train_torch

    config = small_config(root, **sections)
    frame = make_houses(rows=200, seed=3) if frame is None else frame
    features = build_feature_set(frame, config)
    result = train_torch(features.training, config.training.torch, 0)
    artifacts = config.paths.artifacts_dir
    run = layout.create_run(artifacts)
    storage.write_with_atomic(run.model_file("torch"), lambda path: save_torch_model(result, path))
    storage.write_json_atomic(run.preprocessing, features.preprocessor.to_dict())
    files = (run.preprocessing, run.model_file("torch"))
    manifest = {str(p.relative_to(run.root)): storage.file_sha256(p) for p in files}
    storage.write_json_atomic(run.model_manifest, manifest)
    storage.write_json_atomic(run.metrics, {"selected_model": "torch"})
    storage.write_json_atomic(run.status, {"run_id": run.run_id, "status": COMPLETED})
    registry.promote(artifacts, run.run_id, "torch", "test")
    return artifacts


# A streamed run's compute section for write_houses_folder: every chunk one row group.
STREAMED = {"stream_above_rows": 0, "chunk_rows": 1_000}


@pytest.fixture
def houses() -> pd.DataFrame:
    """A 20-row house table: area, year, hood (categorical) and price."""
    return make_houses()


def small_config(tmp_path, **sections) -> PipelineConfig:
    """A config for the small house table that writes only under tmp_path."""
    values = {
        "data": {
            "target": "price",
            "numeric_features": ["area", "year"],
            "categorical_features": ["hood"],
            "min_rows": 10,
        },
        "paths": {"data_dir": str(tmp_path / "data"), "artifacts_dir": str(tmp_path / "artifacts")},
    }
    for name, section in sections.items():
        values[name] = {**values.get(name, {}), **section}
    return build_config(values)


def _refuse_non_strict(constant: str):
    raise ValueError(f"{constant} is not JSON (strict parsers refuse it)")


def strict_json_problems(root) -> list[str]:
    """Each metrics.json under root that a strict JSON parser refuses, with the reason."""
    problems = []
    for path in sorted(Path(root).rglob("metrics.json")):
        try:
            json.loads(path.read_text(), parse_constant=_refuse_non_strict)
        except ValueError as error:
            problems.append(f"{path}: {error}")
    return problems


@pytest.fixture(scope="session", autouse=True)
def every_metrics_json_is_strict_json(tmp_path_factory):
    """After the session: every metrics.json the tests wrote parses as strict JSON (no NaN)."""
    yield
    problems = strict_json_problems(tmp_path_factory.getbasetemp())
    assert not problems, "metrics.json that strict JSON parsers refuse:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# Test groups: e2e (a real server or the houseprice command), slow (flow runs), else unit.
GROUPS = ("e2e", "slow")
_group_of: dict[str, str] = {}  # test id → its group
_group_times: dict[str, list[float]] = {}  # group → [seconds, tests run]


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: the marker added here counts there
def pytest_collection_modifyitems(items):
    """Note each test's group; one needing the Prefect harness runs flows: slow, unless e2e."""
    for item in items:
        group = next((g for g in GROUPS if item.get_closest_marker(g)), "unit")
        if group == "unit" and "prefect_harness" in item.fixturenames:
            item.add_marker(pytest.mark.slow)
            group = "slow"
        _group_of[item.nodeid] = group


def pytest_runtest_logreport(report):
    """Add each phase's time (set-up, call, tear-down) to its test's group."""
    seconds_and_count = _group_times.setdefault(_group_of.get(report.nodeid, "unit"), [0.0, 0])
    seconds_and_count[0] += report.duration
    seconds_and_count[1] += report.when == "call"


def pytest_terminal_summary(terminalreporter):
    """How long each group took, so a slow unit test or a slower flow shows up in `make test`."""
    if not _group_times:
        return
    terminalreporter.section("time per test group")
    for group in ("unit", *reversed(GROUPS)):
        if group in _group_times:
            seconds, count = _group_times[group]
            terminalreporter.write_line(f"{group:<5} {count:5d} tests {seconds:9.1f} s")


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for the whole session, started by the first test needing it.

    It takes ~9 s to start, so unit tests never request it (tests/test_harness_free.py).
    """
    from prefect.testing.utilities import prefect_test_harness

    # The session's PREFECT_HOME is new, so the server's first start runs every database
    # migration: on two busy cores that takes longer than the harness's default 30 s.
    with prefect_test_harness(server_startup_timeout=300):
        yield


def standardized_data(rows=3000, features=5, cond=30.0, noise=20_000.0, seed=0) -> TrainingData:
    """Synthetic data split 80/20 and z-scored with training statistics, as the pipeline does."""
    data = make_synthetic_data(SyntheticSpec(rows, features, cond, noise, seed))
    cut = rows * 4 // 5
    mean, scale = data.x[:cut].mean(axis=0), data.x[:cut].std(axis=0)
    y_mean, y_scale = data.y[:cut].mean(), data.y[:cut].std()
    x, y = (data.x - mean) / scale, (data.y - y_mean) / y_scale
    return TrainingData(x[:cut], y[:cut], x[cut:], y[cut:])
