"""Shared fixtures: small frames, configs that write under tmp_path, one Prefect harness."""

from __future__ import annotations

import os
import tempfile

import houseprice  # noqa: F401  (environment defaults before Prefect is imported)

# Each test session gets its own Prefect home, so runs never touch ~/.prefect or each other.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="houseprice-prefect-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
# An explicit heartbeat frequency makes each flow run wait on the heartbeat thread at exit.
os.environ.pop("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", None)

import numpy as np
import pandas as pd
import pytest

from houseprice.config import PipelineConfig, build_config
from houseprice.synthetic import SyntheticSpec, make_synthetic_data
from tasks.trainers.common import TrainingData

NEIGHBORHOODS = ["North", "South", "East"]


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


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for the whole session (it takes ~9 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    # Its default 30 s wait is too short for a busy 2-core machine (the same cause as issue 8's
    # first-run failure), which failed whole test sessions at random.
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
