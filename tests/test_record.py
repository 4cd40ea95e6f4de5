"""Record: metrics.json holds the scores, how each trainer ran and the decision; the manifest
holds a checksum of every file a loader reads, so a changed file is refused."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
from prefect.logging import disable_run_logger

from houseprice import layout, storage
from houseprice.config import EvaluationConfig
from houseprice.errors import ModelLoadError
from houseprice.tasks.evaluate import evaluate_models
from houseprice.tasks.features import build_feature_set
from houseprice.tasks.promote import PromotionDecision
from houseprice.tasks.record import build_metrics, model_checksums, record_metrics
from tests.conftest import make_houses, small_config, strict_json_problems
from tests.fakes import TRAINERS, exact_results

RUN_ID, SNAPSHOT = "20260101T000000Z-abcdef", "cd" * 32
DECISION = PromotionDecision(True, "first champion: passes the absolute limits", "torch")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """Features of 200 houses, a three-epoch result per trainer at the optimum, its evaluation."""
    features = build_feature_set(
        make_houses(rows=200, seed=2), small_config(tmp_path_factory.mktemp("record"))
    )
    results = exact_results(features, train_loss=[3.0, 2.0, 1.5], val_loss=[3.1, 2.2, 1.6])
    return features, results, evaluate_models(features, results, EvaluationConfig())


def test_metrics_name_the_run_its_data_its_model_and_the_decision(evaluated):
    _, results, evaluation = evaluated
    metrics = build_metrics(RUN_ID, SNAPSHOT, evaluation, results, DECISION)
    assert (metrics["run_id"], metrics["snapshot"]) == (RUN_ID, SNAPSHOT)
    assert metrics["selected_model"] == "torch"
    assert metrics["promotion"] == DECISION.to_dict()
    scores = evaluation.metrics_payload()
    for key, value in scores.items():  # every score, untouched, besides the training summary
        kept = {k: v for k, v in metrics[key].items() if k != "training"}
        assert kept == value, key


def test_each_trainer_is_summed_up_by_its_final_losses_without_weights_or_curves(evaluated):
    _, results, evaluation = evaluated
    metrics = build_metrics(RUN_ID, SNAPSHOT, evaluation, results, DECISION)
    for name in TRAINERS:
        training = metrics[name]["training"]
        assert not {"weights", "bias", "train_loss", "val_loss"} & set(training)
        assert (training["final_train_loss"], training["final_val_loss"]) == (1.5, 1.6)
        assert (training["device"], training["optimizer"], training["epochs"]) == ("cpu", "cg", 1)
        assert "null_reasons" not in training


def test_a_fit_without_validation_rows_says_why_its_final_validation_loss_is_null(
    evaluated, tmp_path
):
    features, _, evaluation = evaluated
    full_sample = exact_results(features, val_loss=[math.nan])
    metrics = build_metrics(RUN_ID, SNAPSHOT, evaluation, full_sample, DECISION)
    training = metrics["torch"]["training"]
    assert training["null_reasons"] == {"final_val_loss": "no validation rows (full-sample fit)"}
    no_curves = exact_results(features, train_loss=[], val_loss=[])
    unrecorded = build_metrics(RUN_ID, SNAPSHOT, evaluation, no_curves, DECISION)["torch"]
    assert unrecorded["training"]["final_train_loss"] is None
    storage.write_json_atomic(tmp_path / "metrics.json", metrics)
    assert strict_json_problems(tmp_path) == []
    written = storage.read_json(tmp_path / "metrics.json")
    assert written["torch"]["training"]["final_val_loss"] is None


def _run_with_model_files(tmp_path) -> layout.RunPaths:
    """A run holding placeholder files wherever a finished run keeps model and export files."""
    run = layout.create_run(tmp_path, RUN_ID)
    for index, path in enumerate(
        [
            run.model_file("torch"),
            run.model_file("tensorflow"),
            run.linear_weights("torch"),  # tensorflow's left out: a model may have none
            run.onnx_export,
            run.export_signature,
            run.trainer_export("tensorflow") / "saved_model.pb",
            run.trainer_export("tensorflow") / "variables" / "variables.index",
        ]
    ):
        storage.write_bytes_atomic(path, f"file {index}".encode())
    storage.write_bytes_atomic(run.exports / ".model.onnx.tmp" / "part", b"an export in progress")
    return run


def test_checksums_cover_every_file_a_loader_reads_and_no_write_in_progress(tmp_path):
    run = _run_with_model_files(tmp_path)
    storage.write_json_atomic(run.preprocessing, {"target": "price"})
    checksums = model_checksums(run)
    assert sorted(checksums) == [
        "exports/model.onnx",
        "exports/signature.json",
        "exports/tensorflow_savedmodel/saved_model.pb",
        "exports/tensorflow_savedmodel/variables/variables.index",
        "model/preprocessing.json",
        "model/tensorflow.keras",
        "model/torch_linear.json",
        "model/torch_state_dict.pt",
    ]
    for name, digest in checksums.items():  # computed here a second way
        assert digest == hashlib.sha256((run.root / name).read_bytes()).hexdigest(), name


def test_record_writes_preprocessing_manifest_and_metrics_that_loaders_check(evaluated, tmp_path):
    from houseprice.model import verify_checksums

    features, results, evaluation = evaluated
    run = _run_with_model_files(tmp_path)
    metrics = build_metrics(RUN_ID, SNAPSHOT, evaluation, results, DECISION)
    with disable_run_logger():
        record_metrics.fn(run, features.preprocessor, metrics)
    assert storage.read_json(run.preprocessing) == json.loads(
        json.dumps(features.preprocessor.to_dict())
    )
    manifest = storage.read_json(run.model_manifest)
    assert manifest == model_checksums(run)
    assert manifest["model/preprocessing.json"] == storage.file_sha256(run.preprocessing)
    assert storage.read_json(run.metrics)["selected_model"] == "torch"
    assert strict_json_problems(run.root) == []
    files = [run.root / name for name in manifest]
    verify_checksums(run, files)  # as recorded: accepted
    payload = bytearray(run.model_file("torch").read_bytes())
    payload[-1] ^= 0xFF
    run.model_file("torch").write_bytes(bytes(payload))
    with pytest.raises(ModelLoadError, match="does not match the checksum"):
        verify_checksums(run, files)
