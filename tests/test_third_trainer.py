"""A third trainer, added as one module plus its registration (tests/numpy_trainer.py), goes
through the whole retrain flow beside torch and TensorFlow with no other file changed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from houseprice import exports, layout, registry, storage
from houseprice.config import EvaluationConfig
from houseprice.model import load_model, load_run_model
from houseprice.tasks.evaluate import evaluate_models, fit_least_squares
from houseprice.tasks.features import build_feature_set
from houseprice.tasks.promote import select_run_model
from tests import numpy_trainer
from tests.conftest import make_houses, small_config

pytestmark = pytest.mark.slow

PLUG_IN = numpy_trainer.NAME


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory, prefect_harness):
    """One real flow run with the plug-in configured beside the two default trainers."""
    from houseprice.flows.retrain import retrain

    root = tmp_path_factory.mktemp("plugin")
    make_houses(rows=400, seed=2).to_csv(root / "houses.csv", index=False)
    config = small_config(root, data={"source": str(root / "houses.csv")}, training={PLUG_IN: {}})
    folder = Path(retrain(config))
    return config, layout.RunPaths(folder.name, folder), root / "houses.csv"


def test_configuring_the_plug_in_adds_it_to_the_default_trainers(tmp_path):
    config = small_config(tmp_path, training={PLUG_IN: {"max_epochs": 50}})
    assert list(config.training.trainers) == ["torch", "tensorflow", PLUG_IN]
    assert config.training.trainers[PLUG_IN].max_epochs == 50


def test_a_device_the_plug_in_does_not_support_is_refused(tmp_path):
    from houseprice.config import ConfigError

    with pytest.raises(ConfigError, match=rf"training\.{PLUG_IN}\.device: .*'cuda'.*torch and"):
        small_config(tmp_path, training={PLUG_IN: {"device": "cuda"}})


def test_the_flow_trains_and_records_it_beside_torch_and_tensorflow(plugin_run):
    _, run, _ = plugin_run
    assert set(storage.read_json(run.lineage)["devices"]) == {"torch", "tensorflow", PLUG_IN}
    manifest = storage.read_json(run.model_manifest)
    assert {f"model/{PLUG_IN}.json", f"model/{PLUG_IN}_linear.json"} <= set(manifest)
    metrics = storage.read_json(run.metrics)
    assert metrics[PLUG_IN]["training"]["stop_reason"] == "converged"
    assert storage.read_json(run.status)["status"] == "completed"


def test_it_matches_least_squares_and_agrees_with_every_other_trainer(plugin_run):
    _, run, _ = plugin_run
    metrics = storage.read_json(run.metrics)
    ols_rmse = metrics["ols"]["test"]["rmse"]
    assert metrics[PLUG_IN]["test"]["rmse"] == pytest.approx(ols_rmse, rel=1e-6)
    assert metrics["reference_check"][PLUG_IN]["within_tolerance"]
    pairs = {(pair["first"], pair["second"]): pair for pair in metrics["agreement"].values()}
    assert set(pairs) == {("torch", "tensorflow"), ("torch", PLUG_IN), ("tensorflow", PLUG_IN)}
    for pair in pairs.values():
        assert pair["rows"] == "test" and pair["relative_rms_diff"] < 1e-6, pair


def test_the_report_names_it(plugin_run):
    _, run, _ = plugin_run
    assert "numpy CG" in run.report.read_text()


def test_it_can_be_promoted_and_then_scores_as_the_champion(plugin_run, tmp_path, capsys):
    from houseprice.cli import main

    config, run, source = plugin_run
    artifacts = config.paths.artifacts_dir
    command = ["promote", run.run_id, "--framework", PLUG_IN, "--artifacts-dir", str(artifacts)]
    assert main(command) == 0
    champion = registry.read_champion(artifacts)
    assert (champion.run_id, champion.framework) == (run.run_id, PLUG_IN)
    houses = pd.read_csv(source).head(50)
    prices = load_model(artifacts).predict(houses)
    torch_prices = load_run_model(artifacts, run.run_id, "torch").predict(houses)
    np.testing.assert_allclose(prices, torch_prices, rtol=1e-6)
    # Without its weights JSON, the model is read by the plug-in's own reader.
    layout.open_run(artifacts, run.run_id).linear_weights(PLUG_IN).unlink()
    np.testing.assert_allclose(load_model(artifacts).predict(houses), prices, rtol=1e-12)
    assert main(["history", "--artifacts-dir", str(artifacts)]) == 0
    assert f"{run.run_id}/{PLUG_IN}" in capsys.readouterr().out
    # The ONNX export and signature serve whichever fit the run selected, the plug-in's included.
    held_by = storage.read_json(run.export_signature)["fitted_by"]
    assert PLUG_IN not in held_by  # it has no stand-alone export of its own
    assert set(held_by) == {"torch", "tensorflow", "onnx"}
    assert list(exports.EXPORTS) == ["onnx", "torch", "tensorflow"]


def test_the_gate_selects_it_when_it_alone_reaches_the_optimum(tmp_path):
    config = small_config(tmp_path, training={PLUG_IN: {}})
    features = build_feature_set(make_houses(rows=300), config)
    fit = numpy_trainer.train_numpy(features.training, config.training.trainers[PLUG_IN], 0)
    ols = fit_least_squares(features.training.x_train, features.training.y_train)
    np.testing.assert_allclose(fit.weights, ols.weights, rtol=1e-6, atol=1e-9)
    off = [replace(fit, framework=n, weights=fit.weights * 0.8) for n in ("torch", "tensorflow")]
    evaluation = evaluate_models(features, [*off, fit], EvaluationConfig())
    assert select_run_model(evaluation) == PLUG_IN
    assert len(evaluation.agreements) == 3


def test_registering_is_idempotent_but_a_name_is_never_taken_twice():
    from houseprice.trainers import get_trainer, register_trainer, trainer_names

    spec = get_trainer(PLUG_IN)
    assert register_trainer(spec) is spec  # its module imported again, e.g. in a worker
    with pytest.raises(ValueError, match="already registered"):
        register_trainer(replace(spec, label="another numpy trainer"))
    with pytest.raises(ValueError, match="other than"):
        register_trainer(replace(spec, name="seed"))
    assert trainer_names()[:2] == ["torch", "tensorflow"]
