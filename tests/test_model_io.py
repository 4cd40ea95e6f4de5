"""Saved, loaded and exported models predict exactly what the model in memory predicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import torch

from houseprice import exports, storage
from houseprice.config import FeatureConfig
from houseprice.errors import ModelLoadError
from houseprice.preprocessing import Preprocessor
from houseprice.tasks.features import fit_preprocessor
from houseprice.trainers import (
    tensorflow_export,
    tensorflow_trainer,
    torch_export,
    torch_trainer,
)
from houseprice.trainers.common import TrainResult
from tests.conftest import houses_config, make_houses
from tests.fakes import train_result


@pytest.fixture
def result() -> TrainResult:
    """A fitted-looking model with 4 features and awkward (non-round) numbers."""
    rng = np.random.default_rng(0)
    return train_result("torch", rng.normal(size=4), 0.123456789, train_loss=[0.5], val_loss=[0.6])


@pytest.fixture
def rows() -> np.ndarray:
    """Seven rows to predict, an odd batch size unlike the export's example input."""
    return np.random.default_rng(1).normal(size=(7, 4))


@pytest.fixture
def prep() -> Preprocessor:
    """Two numeric columns and one categorical with two levels besides its reference: d = 4."""
    return Preprocessor(
        target="price",
        numeric_features=["area", "year"],
        categorical_features=["hood"],
        medians={"area": 1500.0, "year": 1990.0},
        levels={"hood": ["South", "Zoë's"]},
        reference_levels={"hood": "North"},
        means=[1600.0, 1985.0, 0.3, 0.2],
        scales=[400.0, 20.0, 0.45, 0.4],
        log_target=True,
        target_mean=12.0,
        target_scale=0.4,
    )


@pytest.fixture
def raw() -> pd.DataFrame:
    """Seven raw rows: a missing number, a missing and an unseen category, non-ASCII text."""
    return pd.DataFrame(
        {
            "area": [1200.0, np.nan, 2500.0, 800.0, 1500.0, 1000.0, 3000.0],
            "year": [1960, 2001, 1999, 1950, 2010, 1975, 1988],
            "hood": ["North", "South", "Zoë's", None, "Elsewhere, a much longer name", "S", "Zoë"],
        }
    )


def _prices(result: TrainResult, prep: Preprocessor, frame: pd.DataFrame) -> np.ndarray:
    return prep.inverse_target(result.predict(prep.transform(frame)))


def _truncate(path, keep=0.5):
    payload = path.read_bytes()
    path.write_bytes(payload[: int(len(payload) * keep)])


def test_torch_state_dict_round_trip(tmp_path, result, rows):
    torch_trainer.save_torch_model(result, tmp_path / "model.pt")
    model = torch_trainer.load_torch_model(tmp_path / "model.pt")
    assert isinstance(model, torch.nn.Linear) and model.in_features == 4
    with torch.no_grad():
        predicted = model(torch.from_numpy(rows)).numpy()[:, 0]
    np.testing.assert_allclose(predicted, result.predict(rows), rtol=1e-12)


def test_torch_export_prices_raw_rows_like_the_preprocessor_and_model(tmp_path, result, prep, raw):
    torch_export.export_torch_model(result, prep, tmp_path / "model.pt2")
    score = exports.EXPORTS["torch"].load(tmp_path / "model.pt2")
    for batch in (raw, raw[:1], raw[raw.hood.str.len() < 3]):  # any rows, any byte width
        predicted = score(exports.raw_columns(batch, prep))
        np.testing.assert_allclose(predicted, _prices(result, prep, batch), rtol=1e-12)


def _damage(path, damage: str, garbage: bytes) -> None:
    """Break a saved model file the way disks and people do: cut short, overwritten, deleted."""
    if damage == "truncated":
        _truncate(path)
    elif damage == "garbage":
        path.write_bytes(garbage)
    else:
        path.unlink()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing"])
def test_broken_torch_files_raise_model_load_error(tmp_path, result, damage):
    path = tmp_path / "model.pt"
    torch_trainer.save_torch_model(result, path)
    _damage(path, damage, garbage=b"not a model at all" * 10)
    with pytest.raises(ModelLoadError, match=r"cannot load torch model from .*model\.pt"):
        torch_trainer.load_torch_model(path)


@pytest.mark.parametrize(
    ("state", "problem"),
    [
        ({"weight": torch.zeros(2, 4), "bias": torch.zeros(2)}, r"weight \(1, d\)"),
        ({"weight": torch.zeros(1, 4)}, "'weight' and 'bias'"),
        ({"weight": torch.full((1, 4), float("nan")), "bias": torch.zeros(1)}, "NaN"),
    ],
)
def test_wrong_torch_state_raises_model_load_error(tmp_path, state, problem):
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(ModelLoadError, match=problem):
        torch_trainer.load_torch_model(tmp_path / "model.pt")


def test_truncated_torch_export_raises_model_load_error(tmp_path, result, prep):
    torch_export.export_torch_model(result, prep, tmp_path / "model.pt2")
    _truncate(tmp_path / "model.pt2")
    with pytest.raises(ModelLoadError, match=r"model\.pt2"):
        torch_export.load_torch_export(tmp_path / "model.pt2")


def test_keras_round_trip(tmp_path, result, rows):
    tensorflow_trainer.save_keras_model(result, tmp_path / "model.keras")
    model = tensorflow_trainer.load_keras_model(tmp_path / "model.keras")
    predicted = model(rows).numpy()[:, 0]
    np.testing.assert_allclose(predicted, result.predict(rows), rtol=1e-12)


def test_tensorflow_export_prices_raw_rows_like_the_preprocessor_and_model(
    tmp_path, result, prep, raw
):
    tensorflow_export.export_tensorflow_model(result, prep, tmp_path / "saved")
    restored = tensorflow_export.load_tensorflow_export(tmp_path / "saved")
    for batch in (raw, raw[:1]):
        columns = {
            name: tf.constant(values) for name, values in exports.raw_columns(batch, prep).items()
        }
        predicted = restored.serve(columns).numpy()
        np.testing.assert_allclose(predicted, _prices(result, prep, batch), rtol=1e-12)
        served = restored.signatures["serving_default"](**columns)["output_0"].numpy()
        np.testing.assert_allclose(served, predicted, rtol=1e-15)


def test_onnx_export_prices_raw_rows_like_the_preprocessor_and_model(tmp_path, result, prep, raw):
    from houseprice.tasks.export import build_onnx_model

    (tmp_path / "model.onnx").write_bytes(build_onnx_model(result, prep).SerializeToString())
    score = exports.EXPORTS["onnx"].load(tmp_path / "model.onnx")
    for batch in (raw, raw[:1]):
        predicted = score(exports.raw_columns(batch, prep))
        np.testing.assert_allclose(predicted, _prices(result, prep, batch), rtol=1e-12)


def test_garbage_onnx_export_raises_model_load_error(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not a graph" * 10)
    with pytest.raises(ModelLoadError, match=r"cannot load ONNX export from .*model\.onnx"):
        exports.EXPORTS["onnx"].load(tmp_path / "model.onnx")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing"])
def test_broken_keras_files_raise_model_load_error(tmp_path, result, damage):
    path = tmp_path / "model.keras"
    tensorflow_trainer.save_keras_model(result, path)
    _damage(path, damage, garbage=b"\x00garbage" * 50)
    with pytest.raises(ModelLoadError, match=r"cannot load keras model from .*model\.keras"):
        tensorflow_trainer.load_keras_model(path)


def test_keras_model_of_the_wrong_shape_raises_model_load_error(tmp_path):
    import keras

    wide = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    wide.save(tmp_path / "model.keras")
    with pytest.raises(ModelLoadError, match="expected one Dense"):
        tensorflow_trainer.load_keras_model(tmp_path / "model.keras")


def test_broken_tensorflow_export_raises_model_load_error(tmp_path, result, prep):
    tensorflow_export.export_tensorflow_model(result, prep, tmp_path / "saved")
    (tmp_path / "saved" / "saved_model.pb").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="saved"):
        tensorflow_export.load_tensorflow_export(tmp_path / "saved")


class _Payload:
    """Stands for code an attacker pickled into a model file."""


def test_torch_file_with_a_pickled_object_is_refused(tmp_path):
    state = {"weight": torch.zeros(1, 4), "bias": torch.zeros(1), "extra": _Payload()}
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(ModelLoadError, match=r"model\.pt: it holds a .*_Payload object"):
        torch_trainer.load_torch_model(tmp_path / "model.pt")


def test_keras_file_with_code_in_it_is_refused(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x[:, :1] * 2)])
    model.save(tmp_path / "model.keras")
    with pytest.raises(ModelLoadError, match=r"model\.keras: .*Lambda"):
        tensorflow_trainer.load_keras_model(tmp_path / "model.keras")


@pytest.mark.parametrize(
    ("framework", "save"),
    [
        ("torch", torch_trainer.save_torch_model),
        ("tensorflow", tensorflow_trainer.save_keras_model),
    ],
)
def test_numpy_scores_a_saved_model_as_its_framework_does(tmp_path, result, rows, framework, save):
    from houseprice.model import checked_linear_weights, framework_forward

    path = tmp_path / ("model.pt" if framework == "torch" else "model.keras")
    save(result, path)
    weights = checked_linear_weights(framework, path, rows)
    np.testing.assert_allclose(
        weights.forward(rows), framework_forward(framework, path)(rows), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_array_equal(weights.weights, result.weights)
    assert weights.bias == result.bias


def test_weights_that_score_unlike_the_framework_are_refused(tmp_path, result, rows, monkeypatch):
    from houseprice.model import checked_linear_weights

    path = tmp_path / "model.pt"
    torch_trainer.save_torch_model(result, path)
    read = torch_trainer.read_torch_model

    def read_wrong_weights(path):
        saved = read(path)
        return saved._replace(weights=saved.weights * (1 + 1e-6))

    monkeypatch.setattr(torch_trainer, "read_torch_model", read_wrong_weights)
    with pytest.raises(ModelLoadError, match=r"numpy scores .* differently from torch"):
        checked_linear_weights("torch", path, rows)


def test_linear_weights_round_trip_through_json_bit_for_bit(result):
    import json

    from houseprice.model import LinearWeights

    weights = LinearWeights(result.weights, result.bias)
    again = LinearWeights.from_dict(json.loads(json.dumps(weights.to_dict())), features=4)
    np.testing.assert_array_equal(again.weights, weights.weights)
    assert again.bias == weights.bias
    with pytest.raises(ValueError, match="4 finite weights"):
        LinearWeights.from_dict({"weights": [1.0, float("nan"), 0.0, 0.0], "bias": 0}, 4)
    with pytest.raises(ValueError, match="5 finite weights"):
        LinearWeights.from_dict(weights.to_dict(), features=5)


def test_importing_the_model_loader_imports_no_framework_prefect_or_gx():
    import subprocess
    import sys

    heavy = ("prefect", "great_expectations", "torch", "tensorflow", "keras")
    code = f"import sys, houseprice.model; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


def test_training_ranges_are_saved_with_the_model_and_old_files_load_without_them(tmp_path):
    houses = make_houses(rows=30)
    houses.loc[4, "area"] = np.nan  # imputed with the median: inside the range
    fitted = fit_preprocessor(houses, houses_config(), FeatureConfig())
    assert fitted.training_ranges == {
        "area": [houses.area.min(), houses.area.max()],
        "year": [float(houses.year.min()), float(houses.year.max())],
    }
    storage.write_json_atomic(tmp_path / "p.json", fitted.to_dict())
    assert Preprocessor.from_dict(storage.read_json(tmp_path / "p.json")) == fitted
    old = {k: v for k, v in fitted.to_dict().items() if k != "training_ranges"}
    assert Preprocessor.from_dict(old).training_ranges is None


def test_every_export_applies_the_smearing_factor_of_a_mean_estimate(tmp_path, result, prep, raw):
    from dataclasses import replace

    from houseprice.tasks.export import build_onnx_model

    mean = replace(prep, log_target_estimate="mean", smearing_factor=1.07)
    (tmp_path / "model.onnx").write_bytes(build_onnx_model(result, mean).SerializeToString())
    torch_export.export_torch_model(result, mean, tmp_path / "model.pt2")
    tensorflow_export.export_tensorflow_model(result, mean, tmp_path / "tf")
    expected = 1.07 * _prices(result, prep, raw)  # the median estimate, smeared
    np.testing.assert_allclose(_prices(result, mean, raw), expected, rtol=1e-12)
    for name, path in (("onnx", "model.onnx"), ("torch", "model.pt2"), ("tensorflow", "tf")):
        score = exports.EXPORTS[name].load(tmp_path / path)
        predicted = score(exports.raw_columns(raw, mean))
        np.testing.assert_allclose(predicted, expected, rtol=1e-12, err_msg=name)


def test_a_preprocessing_file_from_before_the_estimate_was_kept_gives_the_median(prep):
    old = {
        k: v
        for k, v in prep.to_dict().items()
        if k not in {"log_target_estimate", "smearing_factor"}
    }
    loaded = Preprocessor.from_dict(old)
    assert (loaded.estimate, loaded.smearing_factor, loaded.price_offset) == (
        "median",
        1.0,
        prep.target_mean,
    )


def test_a_model_without_numeric_features_has_ranges_to_check_all_empty():
    from houseprice.inputs import out_of_range_rows

    houses = make_houses(rows=30)
    fitted = fit_preprocessor(houses, houses_config(numeric_features=[]), FeatureConfig())
    assert fitted.training_ranges == {}  # known to be empty, unlike an older file's None
    assert out_of_range_rows(fitted, houses).tolist() == [""] * 30
