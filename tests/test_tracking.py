"""MLflow tracking: optional, refused without the extra, and real when set.

Two retrains into a real MLflow store (SQLite under a temporary folder): the first is promoted,
the second (same data) is not. The store must hold both runs with their params, metrics, tags
and artifacts, and the alias 'champion' must name the first run's model, which MLflow's pyfunc
loader scores exactly as `houseprice predict` does. One e2e test does the same through
`mlflow server` on loopback.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from houseprice import layout, registry, storage
from houseprice.cli import main
from houseprice.config import ConfigError, build_config
from houseprice.model import load_model
from tests.conftest import make_houses, small_config
from tests.test_deployment import _free_port, _stop, _tail

MLFLOW_SERVER_START_TIMEOUT_S = 90


@pytest.fixture(scope="module")
def mlflow():
    return pytest.importorskip("mlflow", reason="the mlflow extra is not installed")


# ---------------------------------------------------------------------------------------------
# Without the extra: refused before anything runs.


@pytest.fixture
def mlflow_missing(monkeypatch):
    """An environment where `import mlflow` would fail."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "mlflow" else real_find_spec(name, *args),
    )


def test_an_mlflow_uri_without_mlflow_installed_is_refused_naming_the_extra(mlflow_missing):
    with pytest.raises(ConfigError) as refused:
        build_config({"tracking": {"mlflow_uri": "sqlite:///mlflow.db"}})
    assert "tracking.mlflow_uri" in str(refused.value)
    assert "pip install -e '.[mlflow]'" in str(refused.value)
    assert build_config({}).tracking.mlflow_uri is None  # off by default, nothing needed


def test_retrain_refuses_the_uri_before_running_anything(mlflow_missing, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("tracking: {mlflow_uri: 'http://127.0.0.1:5000'}\n")
    argv = ["retrain", "--config", str(config), "--artifacts-dir", str(tmp_path / "out")]
    assert main(argv) == 2
    assert ".[mlflow]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_uri_that_is_not_one_is_refused():
    with pytest.raises(ConfigError, match="not a tracking URI"):
        build_config({"tracking": {"mlflow_uri": "mlflow.db"}})


def test_config_and_metrics_flatten_into_mlflow_params_and_metrics():
    from houseprice.tracking import flatten_params, run_metrics

    params = flatten_params(build_config({}).model_dump(mode="json"))
    assert params["training.torch.optimizer"] == "cg"
    assert params["data.value_ranges"] == "{}" and params["tracking.mlflow_uri"] == "null"
    assert params["data.categorical_features"] == '["Neighborhood", "Bldg_Type", "Overall_Cond"]'
    scores = {"rmse": 2.0, "mae": 1.0, "r2": 0.9, "mape": 0.1}
    metrics = {
        "torch": {"test": scores, "validation": scores, "coefficients": {"a": 1.0}},
        "agreement": {"test": 1.0},
        "promotion": {"promoted": True},
    }
    logged = run_metrics(metrics)
    assert logged["torch.test.rmse"] == 2.0 and logged["torch.validation.r2"] == 0.9
    assert len(logged) == 8


# ---------------------------------------------------------------------------------------------
# A real local store: two retrains, one promoted.


@pytest.fixture(scope="module")
def tracked(mlflow, tmp_path_factory, request):
    """Two retrains logged to a SQLite store: the first promoted, the second (same data) not."""
    from houseprice.flows.retrain import retrain

    request.getfixturevalue("prefect_harness")  # only once mlflow is known to be installed

    root = tmp_path_factory.mktemp("tracked")
    source = root / "houses.csv"
    make_houses(rows=400, seed=2).to_csv(source, index=False)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    config = small_config(root, data={"source": str(source)}, tracking={"mlflow_uri": uri})
    first, second = (Path(retrain(config)).name for _ in range(2))
    return config, first, second


def _client(mlflow, config):
    uri = config.tracking.mlflow_uri
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _logged_runs(mlflow, config):
    """{houseprice run id: MLflow run} in the config's store."""
    client = _client(mlflow, config)
    experiment = client.get_experiment_by_name(config.tracking.experiment)
    runs = client.search_runs([experiment.experiment_id])
    return {run.data.tags["houseprice.run_id"]: run for run in runs}


@pytest.mark.slow
def test_each_retrain_is_an_mlflow_run_with_params_metrics_tags_and_artifacts(mlflow, tracked):
    config, first, second = tracked
    runs = _logged_runs(mlflow, config)
    assert set(runs) == {first, second}
    run = runs[first]
    metrics = storage.read_json(layout.open_run(config.paths.artifacts_dir, first).metrics)
    lineage = storage.read_json(layout.open_run(config.paths.artifacts_dir, first).lineage)
    assert run.info.status == "FINISHED" and run.info.run_name == first
    assert run.data.params["data.target"] == "price"
    assert run.data.params["tracking.mlflow_uri"] == config.tracking.mlflow_uri
    for model in ("torch", "tensorflow", "ols"):
        for split in ("test", "validation"):
            recorded = metrics[model][split]["rmse"]
            assert run.data.metrics[f"{model}.{split}.rmse"] == pytest.approx(recorded, rel=1e-12)
    tags = run.data.tags
    assert tags["houseprice.snapshot"] == metrics["snapshot"]
    assert tags["mlflow.source.git.commit"] == lineage["git"]["commit"]
    assert set(lineage["devices"]) == {"torch", "tensorflow"}
    assert tags["houseprice.device.torch"] == lineage["devices"]["torch"]
    assert (tags["houseprice.promoted"], runs[second].data.tags["houseprice.promoted"]) == (
        "True",
        "False",
    )
    store = Path(config.tracking.mlflow_uri.removeprefix("sqlite:///")).parent
    assert run.info.artifact_uri.startswith((store / "mlartifacts").as_uri())  # beside the store
    artifacts = {item.path for item in _client(mlflow, config).list_artifacts(run.info.run_id)}
    assert {"report.html", "metrics.json", "lineage.json", "validation"} <= artifacts
    validation = _client(mlflow, config).list_artifacts(run.info.run_id, "validation")
    assert [item.path for item in validation] == ["validation/result.json"]


@pytest.mark.slow
def test_champion_alias_names_the_promoted_run_not_the_later_one(mlflow, tracked):
    config, first, second = tracked
    client = _client(mlflow, config)
    versions = client.search_model_versions(f"name='{config.tracking.registered_model}'")
    by_run = {version.tags["houseprice.run_id"]: version for version in versions}
    assert set(by_run) == {first, second}  # every run's model is registered
    champion = client.get_model_version_by_alias(config.tracking.registered_model, "champion")
    assert champion.version == by_run[first].version
    assert registry.read_champion(config.paths.artifacts_dir).run_id == first


@pytest.mark.slow
def test_champion_pyfunc_scores_raw_columns_like_houseprice_predict(mlflow, tracked, tmp_path):
    config, first, _ = tracked
    frame = make_houses(rows=60, seed=9)
    frame.loc[0, "hood"] = "Uptown"  # unseen: scores as the reference level
    frame = frame.drop(columns="price")
    scored = tmp_path / "scored.csv"
    assert main(["predict", "--input", _csv(frame, tmp_path), "--output", str(scored),
                 "--artifacts-dir", str(config.paths.artifacts_dir)]) == 0  # fmt: skip
    expected = pd.read_csv(scored)["prediction"].to_numpy()
    uri = config.tracking.mlflow_uri
    mlflow.set_tracking_uri(uri)
    try:
        model = mlflow.pyfunc.load_model(f"models:/{config.tracking.registered_model}@champion")
    finally:
        mlflow.set_tracking_uri(None)
    inputs = model.metadata.get_input_schema().input_names()
    assert sorted(inputs) == ["area", "hood", "year"]
    prices = np.asarray(model.predict(frame), dtype=float)
    np.testing.assert_allclose(prices, expected, rtol=1e-6)
    assert load_model(config.paths.artifacts_dir).run_id == first


def _csv(frame: pd.DataFrame, folder: Path) -> str:
    path = folder / "houses.csv"
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.slow
def test_promote_command_moves_the_champion_alias(mlflow, tracked):
    config, first, second = tracked
    client = _client(mlflow, config)
    name = config.tracking.registered_model
    try:
        assert main(["promote", second, "--artifacts-dir", str(config.paths.artifacts_dir)]) == 0
        champion = client.get_model_version_by_alias(name, "champion")
        assert champion.tags["houseprice.run_id"] == second
    finally:  # put the first run back for the other tests of this module
        assert main(["promote", first, "--artifacts-dir", str(config.paths.artifacts_dir)]) == 0
    assert client.get_model_version_by_alias(name, "champion").tags["houseprice.run_id"] == first


@pytest.mark.slow
def test_an_unreachable_mlflow_server_is_a_warning_not_a_failure(mlflow, tracked, caplog):
    from houseprice.tasks.tracking import track_run_safely

    config, first, _ = tracked
    down = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    tracking = config.tracking.model_copy(update={"mlflow_uri": down, "max_retries": 0})
    run = layout.open_run(config.paths.artifacts_dir, first)
    started = time.monotonic()
    logger = logging.getLogger("houseprice.test")
    with caplog.at_level(logging.WARNING, logger="houseprice.test"):
        result = track_run_safely(run, config.model_copy(update={"tracking": tracking}), logger)
    assert result is None
    assert time.monotonic() - started < 30
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "houseprice.test"]
    assert down in warning and first in warning and "unaffected" in warning


# ---------------------------------------------------------------------------------------------
# End to end: `mlflow server` on loopback.


@contextlib.contextmanager
def _mlflow_server(folder: Path):
    """`mlflow server` with its own SQLite store and artifact root, on a free loopback port."""
    port = _free_port()
    log = folder / "mlflow-server.log"
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
        "--artifacts-destination", str(folder / "server-artifacts"),
    ]  # fmt: skip
    # Without its job consumers (six more processes), which nothing here uses.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(log, "w") as output:
        server = subprocess.Popen(
            command,
            cwd=folder,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + MLFLOW_SERVER_START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"mlflow server exited {server.returncode}:\n{_tail(log)}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not up after {MLFLOW_SERVER_START_TIMEOUT_S} s")
            time.sleep(0.25)
        yield url
    finally:
        _stop(server)


@pytest.mark.e2e
def test_a_run_logged_to_an_mlflow_server_serves_the_champion(mlflow, tracked, tmp_path):
    from houseprice.tracking import log_run, sync_champion_alias

    config, first, _ = tracked
    run = layout.open_run(config.paths.artifacts_dir, first)
    with _mlflow_server(tmp_path) as url:
        tracking = config.tracking.model_copy(update={"mlflow_uri": url})
        served = config.model_copy(update={"tracking": tracking})
        mlflow_run_id = log_run(run, served)
        assert sync_champion_alias(config.paths.artifacts_dir, tracking) == "1"
        client = mlflow.MlflowClient(tracking_uri=url, registry_uri=url)
        logged = client.get_run(mlflow_run_id)
        assert logged.data.tags["houseprice.run_id"] == first
        assert "torch.test.rmse" in logged.data.metrics
        mlflow.set_tracking_uri(url)
        try:
            model = mlflow.pyfunc.load_model("models:/houseprice@champion")
        finally:
            mlflow.set_tracking_uri(None)
        frame = make_houses(rows=30, seed=4).drop(columns="price")
        expected = load_model(config.paths.artifacts_dir).predict(frame)
        np.testing.assert_allclose(np.asarray(model.predict(frame), float), expected, rtol=1e-6)
    assert list((tmp_path / "server-artifacts").rglob("preprocessing.json"))  # stored by it
