"""The houseprice command: flags build the config; bad input gives one line and a non-zero exit."""

import http.server
import json
import logging
import os
import re
import sys
import threading
from dataclasses import replace
from functools import partial
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from houseprice import layout, registry, storage
from houseprice.cli import (
    EXIT_CHECK,
    EXIT_FAILED,
    EXIT_KEPT,
    EXIT_PROMOTED,
    EXIT_REFUSED,
    build_parser,
    config_from_arguments,
    main,
    read_outcome,
)
from houseprice.console import (
    FORMATTER_VARIABLE,
    HANDLER_VARIABLE,
    BriefConsoleHandler,
    BriefFormatter,
    brief_prefect_console,
)
from houseprice.locking import retrain_lock
from houseprice.model import load_model
from houseprice.tasks.drift import DriftReport
from tests.conftest import make_houses, save_torch_champion
from tests.fakes import completed_run


def _config(*argv):
    return config_from_arguments(build_parser().parse_args(["retrain", *argv]))


def test_defaults_are_the_bundled_data():
    config = _config()
    assert config.data.source == "bundled"
    assert "Gr_Liv_Area" in config.data.numeric_features


def test_features_flag_replaces_the_default_columns():
    config = _config(
        "--source", "x.csv", "--target", "price", "--features", "sqft,zip", "--categorical", "zip"
    )
    assert config.data.features == ["sqft"]
    assert config.data.categorical_features == ["zip"]
    assert config.data.numeric_features == []


def test_another_source_without_features_uses_all_its_columns():
    config = _config("--source", "x.csv", "--target", "price")
    assert config.data.feature_columns == []  # resolved from the data at ingest


def test_synthetic_source_predicts_price_by_default():
    assert _config("--source", "synthetic:rows=100").data.target == "price"


def test_config_file_and_flags_merge(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "data:\n  source: x.csv\n  target: price\n  numeric_features: [a]\nsplit:\n  seed: 9\n"
    )
    config = _config("--config", str(path), "--artifacts-dir", str(tmp_path / "out"))
    assert config.data.numeric_features == ["a"]  # the file's columns are kept
    assert config.split.seed == 9
    assert config.paths.artifacts_dir == tmp_path / "out"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["retrain", "--config", "/nonexistent.yaml"], "config file not found"),
        (["retrain", "--target", "Gr_Liv_Area"], "also listed as a feature"),
    ],
)
def test_bad_configuration_exits_2_naming_the_problem(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # refused before anything is written; if not, nothing escapes
    assert main(argv) == 2
    assert list(tmp_path.iterdir()) == []
    assert message in capsys.readouterr().err


def test_predict_without_a_champion_is_one_clear_line(tmp_path, capsys):
    houses = tmp_path / "in.csv"
    houses.write_text("area,year,hood\n1000,2000,North\n")
    code = main(
        [
            "predict",
            "--input",
            str(houses),
            "--output",
            str(tmp_path / "o.csv"),
            "--artifacts-dir",
            str(tmp_path),
        ]
    )
    assert code == 1
    assert "no champion" in capsys.readouterr().err


def test_categorical_without_features_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["retrain", "--source", "x.csv", "--categorical", "zip"]) == 2
    assert list(tmp_path.iterdir()) == []
    assert "add --features" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# What `retrain` says at the end, and its exit codes (without running the flow).


def _completed_run(artifacts, run_id, *, within=True, drift_score=0.01, promoted=True):
    """A run folder holding what a completed run leaves for the closing lines to read."""
    check = {"test_rmse_ratio": 1.0 if within else 1.2, "train_mse_ratio": 1.0}
    check |= {"tolerance": 0.001, "within_tolerance": within}
    reason = "first champion: passes the absolute limits" if promoted else "no evidence it beats"
    metrics = {
        "reference_check": {"torch": check, "tensorflow": {**check, "within_tolerance": True}},
        "drift": DriftReport(True, 0.25, "", scores={"area": drift_score}).to_dict(),
        "promotion": {"promoted": promoted, "reason": reason, "framework": "torch"},
        "selected_model": "torch",
        "torch": {"test": {"rmse": 20123.4, "r2": 0.91}},
    }
    run = completed_run(artifacts, run_id, metrics=metrics, promote=reason if promoted else None)
    storage.write_json_atomic(run.validation, {"success": True, "failed": 0, "evaluated": 9})
    return run


def test_a_promoted_pass_exits_0_and_names_verdict_promotion_champion_report(tmp_path):
    run = _completed_run(tmp_path, "20260101T000000Z-aaaaaa")
    outcome = read_outcome(run.root, tmp_path)
    assert outcome.exit_code == EXIT_PROMOTED == 0
    run_line, verdict, promotion, champion, report = outcome.lines()
    assert run_line == f"run:       {run.root}"
    assert verdict.startswith("verdict:   PASS: PyTorch and TensorFlow match the least-squares")
    assert promotion == "promotion: promoted (PyTorch): first champion: passes the absolute limits"
    assert champion.startswith("champion:  20260101T000000Z-aaaaaa/torch (this run), since 20")
    assert report == f"report:    {run.report}"


def test_a_kept_champion_exits_3_and_names_the_champion(tmp_path):
    _completed_run(tmp_path, "20260101T000000Z-aaaaaa")
    run = _completed_run(tmp_path, "20260102T000000Z-bbbbbb", promoted=False)
    outcome = read_outcome(run.root, tmp_path)
    assert outcome.exit_code == EXIT_KEPT == 3
    assert outcome.decision == "not promoted (PyTorch): no evidence it beats"
    assert outcome.champion.startswith("20260101T000000Z-aaaaaa/torch, since ")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"within": False}, "CHECK: PyTorch test RMSE is 20.0000% off the least-squares"),
        ({"drift_score": 0.4}, "CHECK: drift above threshold in area."),
    ],
)
def test_a_check_exits_4_even_when_a_model_was_promoted(tmp_path, change, reason):
    run = _completed_run(tmp_path, "20260101T000000Z-aaaaaa", **change)
    outcome = read_outcome(run.root, tmp_path)
    assert outcome.exit_code == EXIT_CHECK == 4
    assert outcome.verdict.startswith(reason)
    assert outcome.promoted  # said on its own line; the exit code asks for a look first


def test_exit_codes_are_distinct_and_documented_in_the_usage_page_and_help():
    from houseprice.failures import EXIT_BUG, EXIT_INTERRUPTED

    codes = [EXIT_PROMOTED, EXIT_FAILED, EXIT_REFUSED, EXIT_KEPT, EXIT_CHECK, EXIT_BUG]
    codes.append(EXIT_INTERRUPTED)
    assert len(set(codes)) == len(codes)
    usage = (Path(__file__).resolve().parent.parent / "docs" / "usage.md").read_text()
    help_text = build_parser()._subparsers._group_actions[0].choices["retrain"].format_help()
    for code in codes:
        assert re.search(rf"^\| `{code}` \|", usage, flags=re.M), code
        assert re.search(rf"^  {code}  ", help_text, flags=re.M), code


# ---------------------------------------------------------------------------------------------
# history


def test_history_fits_80_columns_and_shows_a_failed_runs_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    _completed_run(tmp_path, "20260101T000000Z-aaaaaa")
    failed = layout.create_run(tmp_path, "20260102T000000Z-bbbbbb")
    # A run that failed after its gate wrote metrics: history shows the error, not the decision.
    storage.write_json_atomic(failed.metrics, {"promotion": {"promoted": True, "reason": "x"}})
    error = "DataValidationError: data validation failed: suite 'houseprice' failed\n  - detail"
    storage.write_json_atomic(
        failed.status,
        {"status": "failed", "error": error, "failed_stage": "validate", "started_at": "t"},
    )
    assert main(["history", "--artifacts-dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert max(map(len, listing.splitlines())) <= 80, listing
    assert "failed in stage validate: DataValidationError: data validation failed" in listing
    assert "- detail" not in listing and "promoted: x" not in listing
    assert "current champions:\n  ames: 20260101T000000Z-aaaaaa/torch" in listing


def test_history_shows_a_killed_run_once_its_lock_is_gone(tmp_path, capsys):
    run = layout.create_run(tmp_path, "20260101T000000Z-dead00")
    storage.write_json_atomic(run.status, {"run_id": run.run_id, "status": "running"})
    with retrain_lock(tmp_path, tmp_path, 0, print):  # a live retrain: still running
        assert registry.list_runs(tmp_path)[0]["status"] == "running"
    # The holder died (the kernel drops its flock): the record still says running.
    assert registry.list_runs(tmp_path)[0]["status"] == "killed"
    assert main(["history", "--artifacts-dir", str(tmp_path)]) == 0
    assert "killed: stopped before it finished" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# The terminal: no tracebacks for a user's error, help for a user, a version.


def _record(message, exc_info=None):
    return logging.LogRecord("prefect.task_runs", logging.ERROR, __file__, 1, message, (), exc_info)


def test_prefect_failure_records_lose_their_traceback_on_the_terminal():
    try:
        raise ValueError("bad data\n  - price: -5")
    except ValueError as error:
        record = _record("Task run failed with exception: %r", sys.exc_info())
        record.args = (error,)
    text = BriefFormatter(format="%(levelname)s | %(message)s").format(record)
    assert "\n" not in text and "Traceback" not in text
    # The reason is printed once, by the command at the end: Prefect's line names the class.
    assert (
        text == "ERROR | Task run failed with exception: ValueError (the reason follows at the end)"
    )
    state = _record(
        "Finished in state Failed('Flow run encountered an exception: ValueError: bad')"
    )
    assert (
        BriefFormatter(format="%(message)s").format(state) == "Finished in state Failed: ValueError"
    )
    other = _record("Task run failed with exception: %r", sys.exc_info())
    other.args = (RuntimeError("line one\nline two"),)
    other.msg = "Could not write %r"
    assert BriefFormatter(format="%(message)s").format(other).endswith("line one …")
    plain = BriefFormatter(format="%(message)s").format(_record("stage train: done"))
    assert plain == "stage train: done"


def test_brief_console_reaches_worker_processes_and_is_undone(monkeypatch):
    monkeypatch.delenv(FORMATTER_VARIABLE, raising=False)
    monkeypatch.delenv(HANDLER_VARIABLE, raising=False)
    with brief_prefect_console(verbose=False):
        assert os.environ[FORMATTER_VARIABLE] == "houseprice.console.BriefFormatter"
        assert os.environ[HANDLER_VARIABLE] == "houseprice.console.BriefConsoleHandler"
    assert FORMATTER_VARIABLE not in os.environ and HANDLER_VARIABLE not in os.environ
    with brief_prefect_console(verbose=True):
        assert FORMATTER_VARIABLE not in os.environ


def test_the_brief_console_leaves_out_routine_completions_but_not_failures():
    handler = BriefConsoleHandler()
    assert not handler.filter(_record("Finished in state Completed()"))
    assert handler.filter(_record("Finished in state Failed('Task run encountered an error')"))
    assert handler.filter(_record("stage train: done in 3.19 s"))


def test_a_users_error_is_one_line_and_verbose_adds_the_traceback(tmp_path, capsys):
    argv = [
        "predict",
        "--input",
        str(tmp_path / "missing.csv"),
        "--output",
        str(tmp_path / "o.csv"),
    ]
    assert main([*argv, "--artifacts-dir", str(tmp_path)]) == 1
    quiet = capsys.readouterr().err
    assert len(quiet.splitlines()) == 1 and "Traceback" not in quiet
    assert main([*argv, "--artifacts-dir", str(tmp_path), "--verbose"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_help_describes_commands_and_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["promote", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # as read, whatever the wrapping
    assert "RUN_ID the run to promote" in text
    assert "(default: 3600)" in text and "(default: artifacts)" in text
    for command in ("retrain", "predict", "history", "promote", "serve"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        page = capsys.readouterr().out
        assert max(map(len, page.splitlines())) <= 100, command
        assert all(action.help for action in _actions(command)), command


def _actions(command):
    parser = build_parser()._subparsers._group_actions[0].choices[command]
    return [action for action in parser._actions if action.dest != "help"]


def test_version_comes_from_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"houseprice {metadata.version('houseprice')}"


# ---------------------------------------------------------------------------------------------
# predict guards its prices: rows outside the training range are flagged, or refused (--strict).


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """A torch champion trained on make_houses' 200 rows: area 600-3,000, year 1950-2019."""
    return save_torch_champion(tmp_path_factory.mktemp("champion"))


def _absurd_houses():
    """Five houses: rows 1-3 have a negative area, an impossible year, and 1e12 sq ft."""
    frame = make_houses(rows=5, seed=5).astype({"area": "float64", "year": "float64"})
    frame.loc[1, "area"] = -20_000.0
    frame.loc[2, "year"] = 3020.0
    frame.loc[3, ["area", "year"]] = [1e12, 1200.0]
    return frame


def _predict_cli(champion, tmp_path, frame, *flags):
    frame.to_csv(tmp_path / "in.csv", index=False)
    output = tmp_path / "out.csv"
    argv = ["predict", "--input", str(tmp_path / "in.csv"), "--output", str(output)]
    return main([*argv, "--artifacts-dir", str(champion), *flags]), output


def test_predict_flags_rows_outside_the_training_range_and_counts_them(champion, tmp_path, capsys):
    code, output = _predict_cli(champion, tmp_path, _absurd_houses())
    assert code == 0
    flags = pd.read_csv(output, keep_default_na=False)["out_of_range"].tolist()
    assert flags == ["", "area", "year", "area, year", ""]
    assert "5 rows scored by" in (out := capsys.readouterr().out)
    assert "; 3 outside the training range (column out_of_range)" in out


def test_predict_strict_refuses_rows_outside_the_training_range_naming_them(
    champion, tmp_path, capsys
):
    code, output = _predict_cli(champion, tmp_path, _absurd_houses(), "--strict")
    assert code == EXIT_REFUSED and not output.exists()
    error = capsys.readouterr().err
    assert "rows 1 (area), 2 (year), 3 (area, year) are outside the training range" in error
    assert "area: 0 to" in error  # never negative in training: below zero is out of range
    code, output = _predict_cli(champion, tmp_path, make_houses(rows=5, seed=5), "--strict")
    assert code == 0 and output.exists()


def test_a_model_saved_without_training_ranges_still_predicts_with_a_note(tmp_path, capsys):
    artifacts = save_torch_champion(tmp_path)
    run = layout.open_run(artifacts, registry.read_champion(artifacts).run_id)
    saved = storage.read_json(run.preprocessing)
    del saved["training_ranges"]  # as written before ranges were kept
    storage.write_json_atomic(run.preprocessing, saved)
    manifest = storage.read_json(run.model_manifest)
    manifest["model/preprocessing.json"] = storage.file_sha256(run.preprocessing)
    storage.write_json_atomic(run.model_manifest, manifest)
    code, output = _predict_cli(artifacts, tmp_path, _absurd_houses(), "--strict")
    assert code == 0
    assert "out_of_range" not in pd.read_csv(output).columns
    out = capsys.readouterr().out
    assert "saved before training ranges were kept" in out and "outside the training" not in out


def test_predict_reads_an_http_input_as_retrain_reads_its_source(champion, tmp_path, capsys):
    make_houses(rows=6, seed=5).to_csv(tmp_path / "houses.csv", index=False)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/houses.csv"
        output = tmp_path / "out.csv"
        argv = ["predict", "--input", url, "--output", str(output)]
        code = main([*argv, "--artifacts-dir", str(champion)])
    finally:
        server.shutdown()
    assert code == 0, capsys.readouterr().err
    assert len(pd.read_csv(output)) == 6


@pytest.mark.parametrize(
    ("estimate", "note"),
    [
        ("median", r"note: prices estimate the median price .* the mean is 1\.0\d+ times it"),
        ("mean", r"note: prices estimate the mean price: .* smearing factor 1\.0\d+"),
    ],
)
def test_predict_with_a_log_target_says_whether_prices_are_medians_or_means(
    tmp_path, capsys, estimate, note
):
    features = {"log_target": True, "log_target_estimate": estimate}
    artifacts = save_torch_champion(tmp_path, features=features)
    model = load_model(artifacts)
    houses = make_houses(rows=5, seed=5)
    code, output = _predict_cli(artifacts, tmp_path, houses)
    assert code == 0 and re.search(note, capsys.readouterr().out)
    # The mean is the median times the factor; the median is exp of the predicted log price.
    prep = model.preprocessor
    medians = replace(prep, log_target_estimate="median").inverse_target(
        model.forward(prep.transform(houses))
    )
    factor = prep.smearing_factor if estimate == "mean" else 1.0
    assert pd.read_csv(output)["prediction"].to_numpy() == pytest.approx(factor * medians, rel=1e-9)


@pytest.mark.slow
def test_retrain_with_a_copy_of_the_price_as_a_feature_names_the_leak_in_one_line(
    tmp_path, prefect_harness, capsys
):
    houses = make_houses(rows=120, seed=8)
    houses.assign(price_copy=houses.price * 1.0001).to_csv(tmp_path / "h.csv", index=False)
    argv = ["retrain", "--source", str(tmp_path / "h.csv"), "--target", "price"]
    argv += ["--features", "area,year,price_copy", "--data-dir", str(tmp_path / "data")]
    assert main([*argv, "--artifacts-dir", str(tmp_path / "art")]) == EXIT_FAILED
    error = capsys.readouterr().err
    assert "features 'price_copy' (R² 1.000000) explain the target 'price'" in error
    assert "bug" not in error and "Traceback" not in error


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_predict_scores_a_file_in_chunks_as_it_scores_it_whole(
    champion, tmp_path, monkeypatch, suffix
):
    import houseprice.tasks.scoring as scoring

    frame = make_houses(rows=50, seed=8).astype({"area": "float64"})
    frame.loc[[3, 31], "area"] = np.nan  # a gap in two chunks: ints in some, floats in others
    frame.loc[44, "area"] = -5.0  # out of range in the last chunk
    source = tmp_path / f"in{suffix}"
    if suffix == ".csv":
        frame.to_csv(source, index=False)
    else:
        frame.to_parquet(source, index=False, row_group_size=7)
    results = {}
    for rows in (1_000, 7):
        monkeypatch.setattr(scoring, "PREDICT_CHUNK_ROWS", rows)
        output = tmp_path / f"out-{rows}{suffix}"
        argv = ["predict", "--input", str(source), "--output", str(output)]
        assert main([*argv, "--artifacts-dir", str(champion)]) == 0
        results[rows] = (pd.read_csv if suffix == ".csv" else pd.read_parquet)(output)
    whole, chunked = results[1_000], results[7]
    assert len(chunked) == 50
    np.testing.assert_allclose(chunked["prediction"], whole["prediction"], rtol=1e-12)
    assert chunked["out_of_range"].fillna("").tolist() == whole["out_of_range"].fillna("").tolist()


def test_predict_in_chunks_judges_the_share_of_gaps_on_the_whole_input(
    champion, tmp_path, monkeypatch, capsys
):
    import houseprice.tasks.scoring as scoring

    monkeypatch.setattr(scoring, "PREDICT_CHUNK_ROWS", 10)
    frame = make_houses(rows=40, seed=9).astype({"area": "float64"})
    frame.loc[:9, "area"] = np.nan  # the first chunk all gaps, the input a quarter
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    argv = ["predict", "--input", str(tmp_path / "gaps.csv"), "--output", str(tmp_path / "o.csv")]
    assert main([*argv, "--artifacts-dir", str(champion)]) == 0
    assert "40 rows scored" in capsys.readouterr().out
    frame.loc[:29, "area"] = np.nan  # three quarters: refused, and nothing written
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    argv[-1] = str(tmp_path / "refused.csv")
    assert main([*argv, "--artifacts-dir", str(champion)]) == 1
    assert "'area' 30 of 40 rows empty" in capsys.readouterr().err
    assert not (tmp_path / "refused.csv").exists()


def test_a_refusal_in_a_later_chunk_names_the_inputs_rows(champion, tmp_path, monkeypatch, capsys):
    import houseprice.tasks.scoring as scoring

    monkeypatch.setattr(scoring, "PREDICT_CHUNK_ROWS", 10)
    frame = make_houses(rows=30, seed=9).astype({"area": "object"})
    frame.loc[25, "area"] = "big"
    frame.to_csv(tmp_path / "text.csv", index=False)
    output = tmp_path / "o.csv"
    argv = ["predict", "--input", str(tmp_path / "text.csv"), "--output", str(output)]
    assert main([*argv, "--artifacts-dir", str(champion)]) == 1
    assert "in rows 21-30 of the input" in capsys.readouterr().err
    assert not output.exists()


def test_history_skips_corrupt_lines_and_files_with_a_warning_naming_each(tmp_path, capsys):
    _completed_run(tmp_path, "20260101T000000Z-aaaaaa")
    history = registry.history_path(tmp_path)
    history.write_bytes(b'["not", "an object"]\n{"torn": \n\xff\xfe\n')
    entry = {"event": "decision", "run_id": "20260101T000000Z-aaaaaa", "framework": "torch"}
    registry.append_history(tmp_path, {**entry, "promoted": True, "reason": "first champion"})
    broken = layout.create_run(tmp_path, "20260102T000000Z-bbbbbb")
    broken.status.write_text("{not json")
    broken.metrics.write_text("[1, 2]")  # JSON, but no record
    assert main(["history", "--artifacts-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "20260101T000000Z-aaaaaa/torch" in out and "20260102T000000Z-bbbbbb" in out
    warnings = err.splitlines()
    assert len(warnings) == 5 and all(
        w.startswith("houseprice: warning: skipped ") for w in warnings
    )
    for number in (1, 2, 3):
        assert any(f"{history} line {number}: " in w for w in warnings), err
    assert any(str(broken.status) in w for w in warnings)
    assert any(str(broken.metrics) in w for w in warnings)


def test_history_into_a_closed_pipe_exits_quietly(tmp_path):
    import subprocess

    _completed_run(tmp_path, "20260101T000000Z-aaaaaa")
    entry = {"run_id": "20260101T000000Z-aaaaaa", "framework": "torch", "promoted": True}
    lines = [json.dumps({**entry, "time": "t", "reason": "x" * 100}) for _ in range(3000)]
    registry.history_path(tmp_path).write_text("\n".join(lines) + "\n")  # past a pipe's buffer
    command = f"{sys.executable} -m houseprice.cli history --artifacts-dir {tmp_path} | head -1"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.startswith("run ") and done.stdout.count("\n") == 1
    assert done.stderr == "" and done.returncode == 141  # as shells report SIGPIPE
