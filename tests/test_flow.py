"""The retrain flow under Prefect, end to end, on small data in a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from prefect.artifacts import Artifact

from houseprice import exports, layout, registry, storage
from houseprice.config import PipelineConfig
from houseprice.model import load_model, load_run_model
from houseprice.tasks.evaluate import regression_metrics
from houseprice.tasks.features import split_data
from houseprice.tasks.report import REPORT_ARTIFACT_KEY
from tests.conftest import make_houses, small_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A CSV of 400 houses and a config that writes only under a temporary folder."""
    root = tmp_path_factory.mktemp("flow")
    source = root / "houses.csv"
    make_houses(rows=400, seed=2).to_csv(source, index=False)
    return root, small_config(root, data={"source": str(source)})


@pytest.fixture(scope="module")
def first_run(workspace, prefect_harness):
    """One real flow run; several tests read what it left behind."""
    from houseprice.flows.retrain import retrain

    _, config = workspace
    folder = Path(retrain(config))
    return layout.RunPaths(folder.name, folder)


def test_run_folder_holds_every_artifact(first_run):
    for path in (
        first_run.metrics,
        first_run.report,
        first_run.validation,
        first_run.preprocessing,
        first_run.model_file("torch"),
        first_run.model_file("tensorflow"),
        first_run.model_manifest,
        first_run.lineage,
        first_run.onnx_export,
        first_run.trainer_export("torch"),
        first_run.trainer_export("tensorflow") / "saved_model.pb",
        first_run.export_signature,
    ):
        assert path.exists(), path
    assert (first_run.data_docs / "index.html").exists()
    assert json.loads(first_run.status.read_text())["status"] == "completed"
    assert first_run.report.read_text().count("data:image/png;base64,") >= 2


def test_the_flow_run_is_named_after_its_run_folder(first_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    named = FlowRunFilter(name=FlowRunFilterName(any_=[first_run.run_id]))
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=named)
    assert [run.name for run in runs] == [first_run.run_id]


def test_exports_are_in_the_manifest_and_price_raw_rows_like_their_models(first_run, workspace):
    root, config = workspace
    manifest = storage.read_json(first_run.model_manifest)
    assert {"exports/model.onnx", "exports/torch_program.pt2", "exports/signature.json"} <= set(
        manifest
    )
    assert "exports/tensorflow_savedmodel/saved_model.pb" in manifest
    houses = pd.read_csv(root / "houses.csv").head(40).assign(hood=["Uptown", None] * 20)
    held_by = storage.read_json(first_run.export_signature)["fitted_by"]
    artifacts = config.paths.artifacts_dir
    for kind in exports.EXPORTS:
        model = load_run_model(artifacts, first_run.run_id, held_by[kind])
        score = exports.load_export(artifacts, first_run.run_id, kind)
        prices = score(exports.raw_columns(houses, model.preprocessor))
        np.testing.assert_allclose(prices, model.predict(houses), rtol=1e-12, err_msg=kind)


def test_both_frameworks_match_least_squares(first_run):
    metrics = storage.read_json(first_run.metrics)
    ols_rmse = metrics["ols"]["test"]["rmse"]
    for framework in ("torch", "tensorflow"):
        assert set(metrics[framework]["test"]) == {"rmse", "mae", "r2", "mape"}
        assert metrics[framework]["test"]["rmse"] == pytest.approx(ols_rmse, rel=1e-3)
        assert metrics[framework]["coefficients"]["area"] == pytest.approx(95, rel=0.05)
        assert "intercept" in metrics[framework]["coefficients"]
        assert metrics["reference_check"][framework]["within_tolerance"]


def test_lineage_records_data_devices_versions_and_timings(first_run):
    lineage = storage.read_json(first_run.lineage)
    metrics = storage.read_json(first_run.metrics)
    assert lineage["snapshot"] == metrics["snapshot"]
    assert set(lineage["devices"]) == {"torch", "tensorflow"}
    assert {"prefect", "torch", "pandas"} <= set(lineage["packages"])
    assert {"ingest", "validate", "features", "train", "evaluate", "report"} <= set(
        lineage["stage_seconds"]
    )
    assert lineage["config"]["data"]["target"] == "price"


def test_first_run_is_champion_and_predict_reproduces_its_metrics(first_run, workspace, tmp_path):
    root, config = workspace
    champion = registry.read_champion(config.paths.artifacts_dir)
    assert champion.run_id == first_run.run_id
    frame = pd.read_csv(root / "houses.csv")
    test_rows = split_data(frame, config.split).test
    predictions = load_model(config.paths.artifacts_dir).predict(test_rows)
    recorded = storage.read_json(first_run.metrics)[champion.framework]["test"]
    reproduced = regression_metrics(test_rows["price"].to_numpy(dtype=float), predictions)
    assert reproduced.rmse == pytest.approx(recorded["rmse"], rel=1e-6)
    assert reproduced.r2 == pytest.approx(recorded["r2"], rel=1e-6)


def test_the_champion_scores_with_numpy_and_older_runs_with_their_framework(
    first_run, workspace, tmp_path
):
    import shutil
    import subprocess
    import sys

    root, config = workspace
    test_rows = split_data(pd.read_csv(root / "houses.csv"), config.split).test
    numpy_scored = load_model(config.paths.artifacts_dir).predict(test_rows)
    # A run from before the weights were recorded as JSON: its framework scores it.
    copy = tmp_path / "artifacts"
    shutil.copytree(config.paths.artifacts_dir, copy)
    champion = registry.read_champion(copy)
    layout.open_run(copy, champion.run_id).linear_weights(champion.framework).unlink()
    np.testing.assert_allclose(load_model(copy).predict(test_rows), numpy_scored, rtol=1e-9)
    # Loading the champion (with the weights) imports neither framework nor Prefect.
    code = (
        "import sys; from houseprice.model import load_model; "
        f"load_model({str(config.paths.artifacts_dir)!r}); "
        "print(sorted(m for m in ('prefect', 'torch', 'tensorflow') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.stdout.strip() == "[]", loaded.stderr


def _config_file(config: PipelineConfig, folder: Path) -> str:
    """config as a YAML file for `houseprice retrain --config`."""
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return str(path)


def test_second_run_on_the_same_data_does_not_promote_on_noise(
    first_run, workspace, tmp_path, capsys
):
    from houseprice.cli import EXIT_KEPT, main

    _, config = workspace
    assert main(["retrain", "--config", _config_file(config, tmp_path)]) == EXIT_KEPT
    closing = capsys.readouterr().out.splitlines()[-5:]
    assert [line.split(":")[0] for line in closing] == [
        "run",
        "verdict",
        "promotion",
        "champion",
        "report",
    ]
    second = storage.read_json(Path(closing[0].split(maxsplit=1)[1], "metrics.json"))
    assert second["promotion"]["promoted"] is False
    assert "no evidence" in second["promotion"]["reason"]
    assert closing[1].startswith("verdict:   PASS: ")
    assert closing[2].startswith("promotion: not promoted (") and "no evidence" in closing[2]
    assert closing[3].startswith(f"champion:  {first_run.run_id}/")
    assert registry.read_champion(config.paths.artifacts_dir).run_id == first_run.run_id


def test_shuffled_prices_are_not_promoted_and_the_report_says_why(first_run, workspace):
    from houseprice.flows.retrain import retrain

    root, config = workspace
    shuffled = make_houses(rows=400, seed=2)
    shuffled["price"] = np.random.default_rng(1).permutation(shuffled["price"].to_numpy())
    shuffled.to_csv(root / "shuffled.csv", index=False)
    data = config.data.model_copy(update={"source": str(root / "shuffled.csv")})
    folder = retrain(config.model_copy(update={"data": data}))
    metrics = storage.read_json(f"{folder}/metrics.json")
    assert metrics["promotion"]["promoted"] is False
    assert "below the minimum" in metrics["promotion"]["reason"]
    report = Path(folder, "report.html").read_text()
    assert "below the minimum" in report
    assert registry.read_champion(config.paths.artifacts_dir).run_id == first_run.run_id


def test_failing_suite_stops_before_training(tmp_path, prefect_harness, capsys):
    """Through the command: one reason, no traceback, exit 1, and a report of the failure."""
    from houseprice.cli import EXIT_FAILED, main

    frame = make_houses(rows=60)
    frame.loc[3, "price"] = -5.0
    frame.to_csv(tmp_path / "bad.csv", index=False)
    config = small_config(tmp_path, data={"source": str(tmp_path / "bad.csv")})
    assert main(["retrain", "--config", _config_file(config, tmp_path)]) == EXIT_FAILED
    terminal = capsys.readouterr()
    assert "Traceback" not in terminal.out + terminal.err
    reason, *details = terminal.err.splitlines()
    assert reason.startswith("houseprice: retrain failed in stage validate: data validation")
    assert any("'price'" in line and "-5.0" in line for line in details)
    (run_folder,) = layout.runs_dir(config.paths.artifacts_dir).iterdir()
    run = layout.RunPaths(run_folder.name, run_folder)
    assert f"report:    {run.report}" in details
    status = json.loads(run.status.read_text())
    assert status["status"] == "failed" and status["failed_stage"] == "validate"
    assert run.validation.exists()
    page = run.report.read_text()
    assert "FAILED in stage validate" in page and "<td>price</td><td>-5</td>" in page
    assert Artifact.get(REPORT_ARTIFACT_KEY).data.startswith("**FAILED in stage validate")
    assert not run.model_file("torch").exists() and not run.model_file("tensorflow").exists()
    assert registry.read_champion(config.paths.artifacts_dir) is None
    from houseprice.cli import main

    assert main(["history", "--artifacts-dir", str(config.paths.artifacts_dir)]) == 0
    listing = capsys.readouterr().out
    assert "failed" in listing and "DataValidationError" in listing and "none yet" in listing


def test_cli_predict_writes_prices_and_model_id(first_run, workspace, tmp_path, capsys):
    from houseprice.cli import main

    root, config = workspace
    artifacts = str(config.paths.artifacts_dir)
    output = tmp_path / "scored.parquet"
    assert (
        main(
            [
                "predict",
                "--input",
                str(root / "houses.csv"),
                "--output",
                str(output),
                "--artifacts-dir",
                artifacts,
            ]
        )
        == 0
    )
    scored = pd.read_parquet(output)
    assert len(scored) == 400 and scored["prediction"].notna().all()
    assert set(scored["model_id"]) == {
        f"{first_run.run_id}/{storage.read_json(first_run.metrics)['selected_model']}"
    }
    by_run = tmp_path / "by_run.csv"
    argv = [
        "predict",
        "--input",
        str(root / "houses.csv"),
        "--output",
        str(by_run),
        "--artifacts-dir",
        artifacts,
    ]
    assert main([*argv, "--run", first_run.run_id]) == 0
    assert len(pd.read_csv(by_run)) == 400


def test_cli_predict_refuses_bad_columns_and_tolerates_new_levels(
    first_run, workspace, tmp_path, capsys
):
    from houseprice.cli import main

    _, config = workspace
    artifacts = str(config.paths.artifacts_dir)
    houses = make_houses(rows=4).drop(columns=["year"])
    houses.to_csv(tmp_path / "missing.csv", index=False)
    argv = ["predict", "--output", str(tmp_path / "o.csv"), "--artifacts-dir", artifacts]
    assert main([*argv, "--input", str(tmp_path / "missing.csv")]) == 1
    assert "lacks the model's columns ['year']" in capsys.readouterr().err
    typed = make_houses(rows=4).astype({"area": str})
    typed.loc[0, "area"] = "big"
    typed.to_csv(tmp_path / "typed.csv", index=False)
    assert main([*argv, "--input", str(tmp_path / "typed.csv")]) == 1
    assert "'area' must be numeric" in capsys.readouterr().err
    unseen = make_houses(rows=4).assign(hood="Atlantis")
    unseen.to_csv(tmp_path / "unseen.csv", index=False)
    assert main([*argv, "--input", str(tmp_path / "unseen.csv")]) == 0
    assert "Atlantis" in capsys.readouterr().out


def test_cli_history_and_manual_promotion(first_run, workspace, tmp_path, capsys):
    import shutil

    from houseprice.cli import main

    _, config = workspace
    # On a copy: a promotion here must not change the champion history other tests read.
    copy = tmp_path / "artifacts"
    shutil.copytree(config.paths.artifacts_dir, copy)
    artifacts = str(copy)
    assert main(["history", "--artifacts-dir", artifacts]) == 0
    listing = capsys.readouterr().out
    assert first_run.run_id in listing and "current champion" in listing
    assert (
        main(
            [
                "promote",
                first_run.run_id,
                "--artifacts-dir",
                artifacts,
                "--reason",
                "rollback drill",
            ]
        )
        == 0
    )
    assert registry.read_history(copy)[-1]["event"] == "manual"
    assert main(["promote", "no-such-run", "--artifacts-dir", artifacts]) == 1


def test_tampered_champion_gives_a_clear_error(first_run, workspace, tmp_path):
    import shutil

    from houseprice.errors import ModelLoadError

    _, config = workspace
    copy = tmp_path / "artifacts"
    shutil.copytree(config.paths.artifacts_dir, copy)
    champion = registry.read_champion(copy)
    model_path = copy / champion.model_path
    model_path.write_bytes(model_path.read_bytes()[:-10])  # truncated
    with pytest.raises(ModelLoadError, match="checksum"):
        load_model(copy)


def test_readme_first_command_on_the_bundled_data(tmp_path, monkeypatch, prefect_harness, capsys):
    """`houseprice retrain` with every default, from a fresh folder: relative data/, artifacts/."""
    from houseprice.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["retrain"]) == 0  # completed, PASS, promoted
    closing = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines()[-5:])
    run_folder = tmp_path / closing["run"].strip()
    assert closing["verdict"].strip().startswith("PASS: ")
    assert closing["promotion"].strip().startswith("promoted (")
    assert closing["champion"].strip().startswith(f"{run_folder.name}/")
    assert closing["report"].strip() == str(
        Path("artifacts", "runs", run_folder.name, "report.html")
    )
    metrics = storage.read_json(run_folder / "metrics.json")
    reference_rmse = metrics["ols"]["test"]["rmse"]
    for framework in ("torch", "tensorflow"):  # the bar: within 0.1% of least squares
        assert metrics[framework]["test"]["rmse"] == pytest.approx(reference_rmse, rel=1e-3)
    assert (run_folder / "validation" / "data_docs" / "index.html").exists()
    champion = registry.read_champion(tmp_path / "artifacts")
    assert champion.run_id == run_folder.name
    # `houseprice predict` on the bundled data reproduces the champion's recorded test metrics.
    assert (
        main(["predict", "--input", str(storage.BUNDLED_DATA), "--output", "scored.parquet"]) == 0
    )
    scored = pd.read_parquet(tmp_path / "scored.parquet")
    houses = pd.read_parquet(storage.BUNDLED_DATA)
    test_houses = split_data(houses, PipelineConfig().split).test
    test_rows = test_houses.merge(scored, on=list(houses.columns), how="left")
    assert len(test_rows) == len(test_houses) and test_rows["prediction"].notna().all()
    recorded = metrics[champion.framework]["test"]
    reproduced = regression_metrics(
        test_rows["Sale_Price"].to_numpy(float), test_rows["prediction"].to_numpy()
    )
    assert reproduced.rmse == pytest.approx(recorded["rmse"], rel=1e-9)
    assert reproduced.mape == pytest.approx(recorded["mape"], rel=1e-9)
