"""A run's stand-alone exports price raw rows as `houseprice predict` does, and load only intact."""

from __future__ import annotations

import builtins
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from houseprice import exports, layout, registry, storage
from houseprice.config import build_config
from houseprice.errors import ModelLoadError
from houseprice.model import load_model, load_run_model
from houseprice.runs import utc_now
from houseprice.tasks import export as export_task
from houseprice.tasks.export import build_onnx_model
from houseprice.tasks.features import build_feature_set
from houseprice.tasks.record import model_checksums
from houseprice.trainers import (
    tensorflow_export,
    tensorflow_trainer,
    torch_export,
    torch_trainer,
)
from tests.fakes import train_result

MODELS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "models.md"


def _write_completed_run(artifacts: Path, features, fits: dict, selected: str) -> layout.RunPaths:
    """What the retrain flow writes for its models, exports and manifest (tasks/train.py,
    tasks/export.py, tasks/record.py), without Prefect; then the run becomes champion."""
    run = layout.create_run(artifacts)
    prep = features.preprocessor
    torch_fit, tf_fit = fits["torch"], fits["tensorflow"]
    storage.write_with_atomic(
        run.model_file("torch"), lambda p: torch_trainer.save_torch_model(torch_fit, p)
    )
    storage.write_with_atomic(
        run.model_file("tensorflow"), lambda p: tensorflow_trainer.save_keras_model(tf_fit, p)
    )
    storage.write_with_atomic(
        run.trainer_export("torch"), lambda p: torch_export.export_torch_model(torch_fit, prep, p)
    )
    storage.write_with_atomic(
        run.trainer_export("tensorflow"),
        lambda p: tensorflow_export.export_tensorflow_model(tf_fit, prep, p),
    )
    onnx_model = build_onnx_model(fits[selected], prep)
    storage.write_bytes_atomic(run.onnx_export, onnx_model.SerializeToString())
    holders = {"torch": "torch", "tensorflow": "tensorflow", "onnx": selected}
    storage.write_json_atomic(run.export_signature, exports.build_signature(prep, holders))
    storage.write_json_atomic(run.preprocessing, prep.to_dict())
    storage.write_json_atomic(run.model_manifest, model_checksums(run))
    storage.write_json_atomic(run.metrics, {"run_id": run.run_id, "selected_model": selected})
    status = {"run_id": run.run_id, "status": "completed", "started_at": utc_now()}
    storage.write_json_atomic(run.status, {**status, "finished_at": utc_now()})
    registry.promote(artifacts, run.run_id, selected, "test")
    return run


@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory):
    """A completed champion run on the bundled Ames data, log target, both trainers for real.

    TensorFlow's fit is the champion, so the torch program (torch's own fit) differs from
    `predict` in the last digits only, as in a real run.
    """
    artifacts = tmp_path_factory.mktemp("artifacts")
    config = build_config({"features": {"log_target": True}})
    features = build_feature_set(pd.read_parquet(storage.BUNDLED_DATA), config)
    settings = config.training
    fits = {
        "torch": torch_trainer.train_torch(features.training, settings.torch, 0),
        "tensorflow": tensorflow_trainer.train_tensorflow(
            features.training, settings.tensorflow, 0
        ),
    }
    run = _write_completed_run(artifacts, features, fits, selected="tensorflow")
    return artifacts, run


@pytest.fixture(scope="module")
def awkward_rows() -> pd.DataFrame:
    """The bundled data with unseen categories and missing numbers and categories mixed in."""
    frame = pd.read_parquet(storage.BUNDLED_DATA)
    frame["Lot_Frontage"] = frame["Lot_Frontage"].astype("float64")
    frame.loc[frame.index[::7], "Lot_Frontage"] = np.nan
    frame.loc[frame.index[1::7], "Neighborhood"] = "Atlantis"
    frame.loc[frame.index[2::7], "Neighborhood"] = None
    frame.loc[frame.index[3::7], "Garage_Type"] = "Hangar for a Zeppelin, extra wide"
    return frame


@pytest.mark.parametrize("kind", sorted(exports.EXPORTS))
def test_each_export_prices_the_bundled_data_like_houseprice_predict(
    bundled_run, awkward_rows, kind
):
    artifacts, run = bundled_run
    champion = load_model(artifacts)
    score = exports.load_export(artifacts, run.run_id, kind)
    prices = score(exports.raw_columns(awkward_rows, champion.preprocessor))
    assert prices.shape == (len(awkward_rows),) and prices.dtype == np.float64
    np.testing.assert_allclose(prices, champion.predict(awkward_rows), rtol=1e-6)
    # And to the last digits, the fit it says it holds.
    holder = storage.read_json(run.export_signature)["fitted_by"][kind]
    own = load_run_model(artifacts, run.run_id, holder).predict(awkward_rows)
    np.testing.assert_allclose(prices, own, rtol=1e-12)


def test_signature_lists_every_raw_column_once_and_each_exports_fit(bundled_run):
    artifacts, run = bundled_run
    signature = storage.read_json(run.export_signature)
    prep = load_model(artifacts).preprocessor
    names = [column["name"] for column in signature["inputs"]]
    assert names == prep.numeric_features + prep.categorical_features
    assert signature["fitted_by"] == {
        "torch": "torch",
        "tensorflow": "tensorflow",
        "onnx": "tensorflow",
    }
    assert signature["output"] == "price" and signature["log_target"] is True


def test_the_signature_names_each_trainer_whose_task_wrote_an_export_registered_here_or_not(
    bundled_run, tmp_path, monkeypatch
):
    # The ONNX task runs in a worker process, where a plug-in trainer may not be registered:
    # what its training task wrote, not the registry, says which exports exist.
    monkeypatch.setattr(export_task, "get_run_logger", lambda: logging.getLogger(__name__))
    prep = load_model(bundled_run[0]).preprocessor
    run = layout.create_run(tmp_path / "artifacts")
    results = [
        train_result("torch", export_file="torch_program.pt2"),
        train_result("plug_in", export_file="plug_in.bin"),  # registered nowhere in this process
        train_result("numpy_cg"),  # no stand-alone export
    ]
    export_task.export_onnx.fn(run, prep, results, selected=None)
    signature = storage.read_json(run.export_signature)
    assert signature["fitted_by"] == {"torch": "torch", "plug_in": "plug_in"}


@pytest.fixture
def run_copy(bundled_run, tmp_path) -> layout.RunPaths:
    """A copy of the bundled run that a test may damage."""
    artifacts, run = bundled_run
    shutil.copytree(artifacts, tmp_path / "artifacts")
    return layout.open_run(tmp_path / "artifacts", run.run_id)


def _flip_last_byte(path: Path) -> None:
    payload = bytearray(path.read_bytes())
    payload[-1] ^= 1
    path.write_bytes(bytes(payload))


@pytest.mark.parametrize(
    ("kind", "damage", "message"),
    [
        ("onnx", lambda run: _flip_last_byte(run.onnx_export), "does not match the checksum"),
        ("torch", lambda run: run.trainer_export("torch").unlink(), "is missing"),
        (
            "tensorflow",
            lambda run: _flip_last_byte(
                run.trainer_export("tensorflow") / "variables" / "variables.index"
            ),
            "does not match the checksum",
        ),
        (
            "tensorflow",
            lambda run: (
                (run.trainer_export("tensorflow") / "assets").mkdir(exist_ok=True)
                or (run.trainer_export("tensorflow") / "assets" / "extra.txt").write_text("x")
            ),
            "holds files the run did not write",
        ),
    ],
    ids=["onnx-changed", "torch-deleted", "savedmodel-changed", "savedmodel-file-added"],
)
def test_an_export_changed_after_the_run_is_refused_on_load(run_copy, kind, damage, message):
    damage(run_copy)
    with pytest.raises(ModelLoadError, match=message):
        exports.load_export(run_copy.root.parent.parent, run_copy.run_id, kind)


def test_an_unknown_export_kind_is_refused_by_name(bundled_run):
    artifacts, run = bundled_run
    with pytest.raises(ValueError, match="unknown export 'pmml'"):
        exports.load_export(artifacts, run.run_id, "pmml")


def test_exports_of_an_all_numeric_model_with_dropped_columns_price_like_predict(tmp_path):
    from tests.conftest import make_houses, small_config
    from tests.fakes import exact_results

    frame = make_houses(rows=200, seed=3).drop(columns="hood")
    frame = frame.assign(flat=5.0, area_twice=frame["area"] * 2)  # both aliased: dropped
    config = small_config(
        tmp_path,
        data={
            "numeric_features": ["area", "year", "flat", "area_twice"],
            "categorical_features": [],
        },
    )
    features = build_feature_set(frame, config, features_listed=False)
    assert set(features.preprocessor.dropped_columns) == {"flat", "area_twice"}
    names = ("torch", "tensorflow")
    fits = dict(zip(names, exact_results(features, names), strict=True))
    run = _write_completed_run(tmp_path / "artifacts", features, fits, selected="torch")
    expected = load_model(tmp_path / "artifacts").predict(frame)
    prep = features.preprocessor
    for kind in sorted(exports.EXPORTS):
        score = exports.load_export(tmp_path / "artifacts", run.run_id, kind)
        np.testing.assert_allclose(score(exports.raw_columns(frame, prep)), expected, rtol=1e-9)


def _documented_snippets() -> str:
    """docs/models.md's serving snippets: a shared prelude, then one block per runtime."""
    section = MODELS_PAGE.read_text().split("## Serving the exports without houseprice")[1]
    section = re.split(r"\n#{1,3} ", section)[0]  # up to the next section or subsection
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _import_without_this_project(name, *args, **kwargs):
    if name.split(".")[0] in {"houseprice", "tasks", "flows"}:
        raise ImportError(f"a documented snippet imported {name}")
    return builtins.__import__(name, *args, **kwargs)


def test_documented_snippets_score_the_bundled_data_without_houseprice(
    bundled_run, tmp_path, monkeypatch
):
    artifacts, run = bundled_run
    prelude, *runtimes = _documented_snippets()
    assert len(runtimes) == 3
    shutil.copytree(run.exports, tmp_path / "exports")
    listings = pd.read_parquet(storage.BUNDLED_DATA).drop(columns="Sale_Price").head(50)
    listings.loc[listings.index[:3], "Misc_Feature"] = None
    listings.to_parquet(tmp_path / "listings.parquet")
    monkeypatch.chdir(tmp_path)
    expected = load_model(artifacts).predict(listings)
    for code in runtimes:  # each with no way to import this project
        namespace = {"__builtins__": {**vars(builtins), "__import__": _import_without_this_project}}
        exec(prelude + code, namespace)
        np.testing.assert_allclose(namespace["prices"], expected, rtol=1e-6)
