"""Bad data never becomes a model, and never a price: one small file per class of bad input.

Each case builds its file in the test and checks the exit code (or the error the command maps to
one), that the message names the culprit, and that no model, snapshot or champion was written.
Stages are run directly where a whole flow isn't needed; the few flow cases share the session's
Prefect server.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import pickle
import re
import subprocess
import urllib.error
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from houseprice import datasets, layout, registry, storage
from houseprice.chunks import frame_table
from houseprice.cli import main
from houseprice.config import build_config
from houseprice.errors import TransientSourceError
from houseprice.flows.engine import LocalEngine
from houseprice.runs import recorded_run
from houseprice.tasks.ingest import (
    SourceError,
    is_transient_error,
    read_source,
    resolve_feature_kinds,
)
from tests.conftest import make_houses, save_torch_champion, small_config
from tests.fakes import completed_run

ALL_COLUMNS = {"numeric_features": [], "categorical_features": [], "features": []}


# ---------------------------------------------------------------------------------------------
# Helpers.


def _write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _houses_csv(path: Path, rows: int = 60, **changes) -> Path:
    frame = make_houses(rows=rows, seed=1)
    for column, values in changes.items():
        frame[column] = values
    frame.to_csv(path, index=False)
    return path


def _config(tmp_path: Path, source: Path, **data):
    values = {
        "data": {"source": str(source), "target": "price", "min_rows": 10, **ALL_COLUMNS, **data},
        "paths": {"data_dir": str(tmp_path / "data"), "artifacts_dir": str(tmp_path / "art")},
    }
    return build_config(values)


def _training_refusal(tmp_path: Path, source: Path, **data) -> str:
    """Run ingest → validate → features → train as the flow does; return the refusal message."""
    from houseprice.tasks.features import build_feature_set, check_finite_features
    from houseprice.tasks.suites import build_expectation_suite
    from houseprice.tasks.validate import DataValidationError, run_validation
    from houseprice.trainers.common import check_fit
    from houseprice.trainers.torch_trainer import train_torch

    config = _config(tmp_path, source, **data)
    try:
        frame = read_source(config.data.source, config.data.separator, config.data.notation)
        typed = resolve_feature_kinds(frame, config.data)
        report = run_validation(frame, build_expectation_suite(typed))
        if not report.success:
            raise DataValidationError(report)
        config = config.model_copy(update={"data": typed})
        features = build_feature_set(frame, config)
        check_finite_features(features)
        check_fit(train_torch(features.training, config.training.torch, 0), features.training)
    except Exception as error:  # the flow fails with it, and `retrain` exits 1
        assert not (tmp_path / "data").exists() and not (tmp_path / "art").exists()
        return str(error)
    pytest.fail(f"{source.name} was accepted for training")


def _nothing_kept(data_dir: Path, artifacts_dir: Path) -> None:
    """No snapshot, no model file in any run, no champion."""
    assert not datasets.snapshots_dir(data_dir).exists() or not any(
        datasets.snapshots_dir(data_dir).iterdir()
    )
    for run in layout.runs_dir(artifacts_dir).glob("*/model/*"):
        assert run.suffix not in {".pt", ".keras"}, run
    assert registry.read_champion(artifacts_dir) is None


# ---------------------------------------------------------------------------------------------
# Files that cannot be read as a table: refused at once, naming the file, never retried.


def _corrupt_parquet(path: Path) -> Path:
    make_houses(rows=40).to_parquet(path, index=False)
    raw = bytearray(path.read_bytes())
    raw[len(raw) - 20] ^= 0xFF  # two flipped bytes in the footer's metadata
    raw[len(raw) - 19] ^= 0xFF
    return _write(path, bytes(raw))


UNREADABLE = [
    ("missing", lambda p: p / "absent.csv", "source not found: .*absent.csv"),
    ("empty", lambda p: _write(p / "empty.csv", b""), "cannot read .*empty.csv"),
    ("header-only", lambda p: _write(p / "h.csv", "area,price\n"), "h.csv holds no rows"),
    ("garbage", lambda p: _write(p / "g.csv", bytes(range(256)) * 8), "g.csv.*not UTF-8"),
    ("corrupt-parquet", lambda p: _corrupt_parquet(p / "c.parquet"), "c.parquet.*corrupt"),
    ("wrong-type", lambda p: _write(p / "t.xlsx", b"PK"), "unsupported file type '.xlsx'"),
    (
        "latin-1",
        lambda p: _write(p / "l.csv", "area,price,town\n1,2,Orléans\n".encode("latin-1")),
        "l.csv.*not UTF-8.*save it as UTF-8",
    ),
    (
        "utf-16",
        lambda p: _write(p / "u.csv", "area,price\n1,2\n".encode("utf-16")),
        "u.csv.*not UTF-8",
    ),
    (
        "semicolons",
        lambda p: _write(p / "s.csv", "area;price\n1;2\n3;4\n"),
        r"s.csv looks semicolon-delimited.*pass --separator ';'",
    ),
    (
        "tabs",
        lambda p: _write(p / "tab.csv", "area\tprice\n1\t2\n"),
        r"tab.csv looks tab-delimited.*--separator '\\t'",
    ),
    (
        "duplicate-header",
        lambda p: _write(p / "d.csv", "area,area,price\n1,2,3\n"),
        r"d.csv: duplicate column names \['area'\]",
    ),
    (
        "empty-header",
        lambda p: _write(p / "e.csv", "area,,price\n1,2,3\n"),
        "e.csv: empty column names at positions 2",
    ),
]


@pytest.mark.parametrize(
    ("make", "message"), [c[1:] for c in UNREADABLE], ids=[c[0] for c in UNREADABLE]
)
def test_unreadable_files_are_refused_at_once_naming_the_file(tmp_path, make, message):
    with pytest.raises(SourceError, match=message) as caught:
        read_source(str(make(tmp_path)))
    assert not is_transient_error(caught.value)  # Prefect's retry condition says no


def test_a_separator_that_is_named_reads_the_file(tmp_path):
    frame = read_source(str(_write(tmp_path / "s.csv", "area;price\n1;2\n3;4\n")), ";")
    assert list(frame.columns) == ["area", "price"] and frame["price"].tolist() == [2, 4]


def test_a_refused_connection_is_not_retried_and_its_error_names_the_url():
    url = "http://127.0.0.1:9/sales.csv"  # the discard port: connection refused at once
    with pytest.raises(OSError, match=r"cannot download http://127.0.0.1:9/sales.csv") as caught:
        read_source(url)
    assert not is_transient_error(caught.value)  # was retried for 42 s: the answer stays no
    from houseprice.failures import UNREACHABLE, classify_failure

    failure = classify_failure(caught.value)
    assert (failure.kind, failure.exit_code) == (UNREACHABLE, 1)
    assert "cannot download http://127.0.0.1:9/sales.csv" in failure.message


@pytest.mark.parametrize(
    "cause",
    [TimeoutError("timed out"), ConnectionResetError(errno.ECONNRESET, "reset by peer")],
    ids=["timeout", "reset"],
)
def test_a_timeout_or_a_reset_connection_is_still_retried(cause):
    try:
        try:
            raise urllib.error.URLError(cause)
        except urllib.error.URLError as error:
            raise TransientSourceError(f"cannot download http://x/s.csv: {cause}") from error
    except TransientSourceError as wrapped:
        wrapped.__cause__.__context__ = cause  # as urllib raises it: during the socket error
        assert is_transient_error(wrapped)


@pytest.mark.parametrize("kind", ["fifo", "link-loop"])
@pytest.mark.parametrize("where", ["file", "in-a-folder"])
def test_a_fifo_or_a_link_loop_is_refused_not_retried_or_waited_on(tmp_path, kind, where):
    folder = tmp_path / "folder"
    folder.mkdir()
    _houses_csv(folder / "a.csv")
    path = (folder if where == "in-a-folder" else tmp_path) / "b.csv"
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block until a writer comes: forever
    else:
        path.symlink_to(path.name)
    source = folder if where == "in-a-folder" else path
    expected = "not a regular file" if kind == "fifo" else "loop of symbolic links"
    with pytest.raises(SourceError, match=expected) as caught:
        read_source(str(source))
    assert str(path) in str(caught.value) and not is_transient_error(caught.value)


def test_a_list_typed_parquet_column_is_refused_naming_it(tmp_path):
    frame = make_houses(rows=20).assign(tags=[[1, 2]] * 20)  # a Parquet list column
    frame.to_parquet(tmp_path / "l.parquet")
    with pytest.raises(SourceError, match=r"columns \['tags'\] hold lists or records"):
        read_source(str(tmp_path / "l.parquet"))


def test_a_missing_source_exits_2_before_any_server_or_folder(tmp_path, capsys):
    data, artifacts = tmp_path / "data", tmp_path / "art"
    argv = ["retrain", "--source", str(tmp_path / "absent.csv"), "--target", "price"]
    code = main([*argv, "--data-dir", str(data), "--artifacts-dir", str(artifacts)])
    assert code == 2
    assert "source not found" in capsys.readouterr().err
    assert not data.exists() and not artifacts.exists()


@pytest.mark.parametrize(("flag", "field"), [("--target", "target"), ("--source", "source")])
def test_an_empty_target_or_source_is_refused_not_defaulted(flag, field, capsys):
    assert main(["retrain", flag, ""]) == 2
    error = capsys.readouterr().err
    assert field in error and ("at least 1 character" in error or "empty" in error)


# ---------------------------------------------------------------------------------------------
# Cells: text in numbers, missing values, absurd numbers, degenerate columns.


def _spoilt_area(rows: int = 120) -> list[object]:
    area = [float(a) for a in make_houses(rows=rows, seed=1)["area"]]
    area[5], area[17] = "1,200", "1,350"
    return area


def test_text_in_a_numeric_column_is_refused_in_all_columns_mode(tmp_path):
    # 120 distinct values: the identifier rule took this column for ids and trained without it.
    source = _houses_csv(tmp_path / "h.csv", rows=120, area=_spoilt_area())
    message = _training_refusal(tmp_path, source)
    assert "'area' holds numbers except in 2 rows (rows 5, 17), e.g. ['1,200', '1,350']" in message


def test_text_in_a_numeric_column_is_refused_with_named_features(tmp_path):
    source = _houses_csv(tmp_path / "h.csv", rows=120, area=_spoilt_area())
    message = _training_refusal(tmp_path, source, features=["area", "year"])
    assert "'area' holds numbers except in 2 rows" in message


def test_text_in_the_target_is_refused_naming_the_cells(tmp_path):
    prices = make_houses(rows=60, seed=1)["price"].astype(object)
    prices[3] = "250,000"
    message = _training_refusal(tmp_path, _houses_csv(tmp_path / "h.csv", price=prices))
    assert "'price' holds numbers except in 1 rows (rows 3), e.g. ['250,000']" in message


@pytest.mark.parametrize("token", ["n/a", "NA", "", "null", " N/A "])
def test_missing_tokens_read_as_missing_in_every_format(tmp_path, token):
    area = [str(a) for a in make_houses(rows=20, seed=1)["area"]]
    area[2] = token
    csv = _houses_csv(tmp_path / "h.csv", rows=20, area=area)
    frame = read_source(str(csv))
    assert pd.api.types.is_float_dtype(frame["area"])  # a number column with one gap
    assert frame["area"].isna().tolist() == [i == 2 for i in range(20)]
    pd.DataFrame({"hood": ["North", token, "South"], "price": [1.0, 2.0, 3.0]}).to_parquet(
        tmp_path / "h.parquet"
    )
    assert read_source(str(tmp_path / "h.parquet"))["hood"].isna().tolist() == [0, 1, 0]


def test_missing_target_values_are_refused_naming_the_target(tmp_path):
    prices = make_houses(rows=60, seed=1)["price"].astype(object)
    prices[[4, 9]] = None
    message = _training_refusal(tmp_path, _houses_csv(tmp_path / "h.csv", price=prices))
    assert "expect_column_values_to_not_be_null on 'price': 2 of 60 values are null" in message


def test_a_mostly_empty_named_feature_fails_validation(tmp_path):
    area = make_houses(rows=60, seed=1)["area"].where(lambda a: a.index % 2 == 0)
    source = _houses_csv(tmp_path / "h.csv", area=area)
    message = _training_refusal(tmp_path, source, features=["area", "year"])
    assert "on 'area': 30 of 60 values are null" in message


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("price", 0.0, r"'price': 1 of 60 values outside \(0"),
        ("price", -5.0, r"'price': 1 of 60 values outside \(0"),
        ("price", 1e300, r"'price': 1 of 60 values exceed ±1e\+15 in magnitude"),
        ("area", 1e300, r"'area': 1 of 60 values exceed ±1e\+15 in magnitude"),
        ("area", float("inf"), r"'area': 1 of 60 values are infinite"),
        ("year", float("-inf"), r"'year': 1 of 60 values are infinite"),
    ],
    ids=["zero-price", "negative-price", "overflowing-price", "overflowing-area", "inf", "-inf"],
)
def test_absurd_numbers_are_refused_naming_the_column(tmp_path, column, value, message):
    values = make_houses(rows=60, seed=1)[column].astype("float64")
    values[7] = value
    text = _training_refusal(tmp_path, _houses_csv(tmp_path / "h.csv", **{column: values}))
    assert pd.Series([text]).str.contains(message).all(), text


def test_a_constant_target_is_refused_before_any_model_is_saved(tmp_path):
    message = _training_refusal(tmp_path, _houses_csv(tmp_path / "h.csv", price=150_000.0))
    assert "scaled target is constant" in message


def test_non_finite_weights_or_a_zero_loss_never_pass_the_fit_check():
    from houseprice.trainers.common import DegenerateFitError, TrainingData, check_fit
    from tests.fakes import train_result

    rng = np.random.default_rng(0)
    data = TrainingData(rng.normal(size=(20, 2)), rng.normal(size=20), np.zeros((2, 2)), np.ones(2))
    fit = train_result("torch", [np.inf, 0.0], 0.0)
    with pytest.raises(DegenerateFitError, match="non-finite weights"):
        check_fit(fit, data)
    fit.weights, fit.train_loss = np.zeros(2), [0.0]
    with pytest.raises(DegenerateFitError, match="loss 0 on a varying target"):
        check_fit(fit, data)


def test_an_overflowing_spread_is_refused_after_scaling(tmp_path):
    from houseprice.tasks.features import build_feature_set, check_finite_features

    frame = make_houses(rows=40, seed=1)
    frame.loc[:9, "area"] = 1e200  # past a limit raised to 1e150; squared, it overflows
    config = small_config(tmp_path, data={"max_abs_value": 1e150})
    with pytest.raises(ValueError, match=r"features \['area'\] are not finite after scaling"):
        check_finite_features(build_feature_set(frame, config))


def test_constant_and_collinear_features_are_refused_when_named_and_dropped_otherwise(tmp_path):
    from houseprice.tasks.features import (
        AliasedFeatureError,
        build_feature_set,
        check_finite_features,
    )
    from houseprice.trainers.common import check_fit
    from houseprice.trainers.torch_trainer import train_torch

    frame = make_houses(rows=80, seed=1)
    frame = frame.assign(flat=7.0, area_twice=frame["area"] * 2)
    config = small_config(
        tmp_path, data={"numeric_features": ["area", "year", "flat", "area_twice"]}
    )
    with pytest.raises(AliasedFeatureError, match=r"\['area_twice', 'flat'\]"):
        build_feature_set(frame, config)
    features = build_feature_set(frame, config, features_listed=False)  # all-columns mode
    assert set(features.preprocessor.dropped_columns) == {"flat", "area_twice"}
    check_finite_features(features)
    fit = train_torch(features.training, config.training.torch, 0)
    check_fit(fit, features.training)
    assert np.isfinite(fit.weights).all()


# ---------------------------------------------------------------------------------------------
# All-columns mode: leaks, row numbers and mostly-empty columns are left out, with a warning.


def _auto_columns(tmp_path: Path, frame: pd.DataFrame, **data):
    frame.to_csv(tmp_path / "h.csv", index=False)
    config = _config(tmp_path, tmp_path / "h.csv", **data)
    skipped: dict[str, str] = {}
    typed = resolve_feature_kinds(read_source(str(tmp_path / "h.csv")), config.data, skipped)
    return typed, skipped


def test_all_columns_mode_leaves_out_leaks_row_numbers_and_empty_columns(tmp_path):
    frame = make_houses(rows=200, seed=1)
    frame = frame.assign(
        lprice=np.log(frame["price"]),
        price_per_area=frame["price"] / frame["area"],
        row=np.arange(1, 201),
        basement=frame["area"].where(frame.index % 10 == 0),
        doubled=frame["price"] * 2 + 1,
    )
    typed, skipped = _auto_columns(tmp_path, frame)
    assert typed.numeric_features == ["area", "year"]
    assert typed.categorical_features == ["hood"]
    assert "made from the target 'price'" in skipped["lprice"]
    assert "made from the target" in skipped["price_per_area"]
    assert "Spearman +1.000" in skipped["doubled"]
    assert "row number" in skipped["row"]
    assert "90% empty" in skipped["basement"]


def test_naming_a_left_out_column_with_features_uses_it(tmp_path):
    frame = make_houses(rows=200, seed=1).assign(row=np.arange(1, 201))
    typed, skipped = _auto_columns(tmp_path, frame, features=["area", "row"])
    assert typed.numeric_features == ["area", "row"] and not skipped


def test_a_name_only_sharing_letters_with_the_target_is_kept(tmp_path):
    from houseprice.columns import named_after_target

    assert named_after_target("log_Sale_Price", "Sale_Price")
    assert named_after_target("lprice", "price")
    assert not named_after_target("year", "y")
    assert not named_after_target("Sale_Type", "Sale_Price")


def test_a_wide_file_logs_a_summary_not_a_line_per_column(tmp_path, monkeypatch):
    from prefect.logging import disable_run_logger

    import houseprice.tasks.ingest

    rng = np.random.default_rng(0)
    frame = make_houses(rows=120, seed=1)
    ids = {f"id_{i:04d}": [f"k{i}-{r}" for r in range(120)] for i in range(200)}
    numbers = {f"x_{i:04d}": rng.normal(size=120) for i in range(200)}
    frame = pd.concat([frame, pd.DataFrame(ids), pd.DataFrame(numbers)], axis=1)
    frame.to_parquet(tmp_path / "wide.parquet")
    records: list[logging.LogRecord] = []
    logger = logging.getLogger("test-wide")
    monkeypatch.setattr(logger, "handle", records.append)
    monkeypatch.setattr(houseprice.tasks.ingest, "get_run_logger", lambda: logger)
    data = _config(tmp_path, tmp_path / "wide.parquet").data
    with disable_run_logger():
        result = houseprice.tasks.ingest.ingest_data.fn(data, tmp_path / "data")
    assert len(result.data.numeric_features) == 202  # area, year and the 200 x columns
    assert len(records) < 10
    assert max(len(record.getMessage()) for record in records) < 400
    assert any("200 (id_0000, id_0001" in record.getMessage() for record in records)
    assert not (tmp_path / "data").exists()  # nothing stored before validation


def _stage_log_lines(tmp_path: Path, columns: int, monkeypatch) -> list[str]:
    """The lines logged by ingest, validate and features for a file with this many x columns.

    Half the x columns are copies of the other half (doubled), so even the narrow file has
    aliased columns to drop; the wide one also has more columns than training rows.
    """
    from prefect.logging import disable_run_logger

    import houseprice.tasks.features
    import houseprice.tasks.ingest
    import houseprice.tasks.validate

    rng = np.random.default_rng(0)
    half = {f"x_{i:04d}": rng.normal(size=60) for i in range(columns // 2)}
    copies = {f"x_{i + columns // 2:04d}": 2 * x for i, x in enumerate(half.values())}
    frame = pd.concat([make_houses(rows=60, seed=1), pd.DataFrame(half | copies)], axis=1)
    frame.to_csv(tmp_path / f"wide{columns}.csv", index=False)
    config = _config(tmp_path, tmp_path / f"wide{columns}.csv")
    messages: list[str] = []
    logger = logging.getLogger(f"test-lines-{columns}")
    monkeypatch.setattr(logger, "handle", lambda record: messages.append(record.getMessage()))
    for module in (houseprice.tasks.ingest, houseprice.tasks.validate, houseprice.tasks.features):
        monkeypatch.setattr(module, "get_run_logger", lambda: logger)
    run = layout.RunPaths("test-run", tmp_path / f"run{columns}")
    with disable_run_logger():
        ingested = houseprice.tasks.ingest.ingest_data.fn(config.data, tmp_path / "data")
        table = frame_table(ingested.frame, "wide", 1_000_000)
        houseprice.tasks.validate.validate_table(table, ingested.data, run, LocalEngine())
        config = config.model_copy(update={"data": ingested.data})
        features = houseprice.tasks.features.build_features.fn(ingested.frame, config, False)
    assert len(features.preprocessor.dropped_columns) >= columns // 2
    return [line for message in messages for line in message.splitlines()]


def test_ten_times_the_columns_log_no_more_lines(tmp_path, monkeypatch):
    narrow = _stage_log_lines(tmp_path, 12, monkeypatch)
    wide = _stage_log_lines(tmp_path, 120, monkeypatch)
    assert len(wide) == len(narrow) < 15
    assert max(len(line) for line in wide) < 300
    assert any("design columns, their coefficients cannot" in line for line in wide), wide


# ---------------------------------------------------------------------------------------------
# Run ids and champion.json: names, never paths.


def _fake_champion(artifacts: Path) -> str:
    return completed_run(artifacts, metrics={"selected_model": "torch"}, promote="test").run_id


@pytest.mark.parametrize(
    "run_id",
    ["../../../elsewhere/runs/20260101T000000Z-abc123", "..", "/etc", "run-1", ""],
    ids=["traversal", "dot-dot", "absolute", "not-the-format", "empty"],
)
def test_path_like_run_ids_are_refused_by_promote_and_predict(tmp_path, run_id, capsys):
    artifacts = tmp_path / "art"
    champion = _fake_champion(artifacts)
    elsewhere = tmp_path / "elsewhere" / "runs" / "20260101T000000Z-abc123"
    elsewhere.mkdir(parents=True)
    assert main(["promote", run_id, "--artifacts-dir", str(artifacts), "--wait", "0"]) == 1
    assert "is not a run id" in capsys.readouterr().err
    argv = ["predict", "--input", "x.csv", "--output", str(tmp_path / "o.csv")]
    assert main([*argv, "--artifacts-dir", str(artifacts), "--run", run_id]) == 1
    assert "is not a run id" in capsys.readouterr().err
    assert registry.read_champion(artifacts).run_id == champion
    assert not (tmp_path / "o.csv").exists()


def test_a_champion_json_pointing_outside_the_artifacts_is_refused(tmp_path, capsys):
    artifacts = tmp_path / "art"
    _fake_champion(artifacts)
    record = storage.read_json(registry.champion_path(artifacts))
    record.update(run_id="../../elsewhere", model_path="runs/../../elsewhere/model/x.pt")
    storage.write_json_atomic(registry.champion_path(artifacts), record)
    argv = ["predict", "--input", "x.csv", "--output", str(tmp_path / "o.csv")]
    assert main([*argv, "--artifacts-dir", str(artifacts)]) == 1
    assert "champion.json is unreadable" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Scoring: absurd inputs are refused, gaps are counted, a price is always a usable number.


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """A real champion (torch, trained on 200 houses) made without the flow: fast."""
    return save_torch_champion(tmp_path_factory.mktemp("champion"))


def _predict(champion: Path, tmp_path: Path, frame: pd.DataFrame, *flags: str, out=None):
    frame.to_csv(tmp_path / "in.csv", index=False)
    output = out or tmp_path / "out.csv"
    argv = ["predict", "--input", str(tmp_path / "in.csv"), "--output", str(output)]
    return main([*argv, "--artifacts-dir", str(champion), *flags]), output


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("area", np.inf, r"'area' is infinite in rows 1"),
        ("area", 1e300, r"'area' exceeds ±1e\+15 in rows 1"),
        ("area", 2e14, r"price for rows 1 is not a usable number"),
    ],
    ids=["infinite-input", "overflowing-input", "absurd-price"],
)
def test_predict_refuses_absurd_inputs_and_never_writes_such_a_price(
    champion, tmp_path, capsys, column, value, message
):
    frame = make_houses(rows=4, seed=5)
    frame[column] = frame[column].astype("float64")
    frame.loc[1, column] = value
    code, output = _predict(champion, tmp_path, frame)
    assert code == 1
    assert pd.Series([capsys.readouterr().err]).str.contains(message).all()
    assert not output.exists()


def test_predict_refuses_text_in_a_numeric_column_naming_the_cells(champion, tmp_path, capsys):
    frame = make_houses(rows=40, seed=5).astype({"area": object})
    frame.loc[6, "area"] = "1,200"
    code, output = _predict(champion, tmp_path, frame)
    assert code == 1 and not output.exists()
    assert (
        "'area' holds numbers except in 1 rows (rows 6), e.g. ['1,200']" in capsys.readouterr().err
    )


def test_predict_counts_filled_gaps_and_refuses_too_many(champion, tmp_path, capsys):
    frame = make_houses(rows=10, seed=5)
    frame["area"] = frame["area"].where(frame.index >= 6)  # 6 of 10 empty
    code, output = _predict(champion, tmp_path, frame)
    assert code == 1 and not output.exists()
    assert "'area' 6 of 10 rows empty" in capsys.readouterr().err
    code, output = _predict(champion, tmp_path, frame, "--max-imputed-fraction", "1")
    assert code == 0 and pd.read_csv(output)["prediction"].notna().all()
    assert "filled with the training median: area 6" in capsys.readouterr().out


def test_predict_scores_unseen_categories_as_the_reference_and_says_so(champion, tmp_path, capsys):
    code, output = _predict(champion, tmp_path, make_houses(rows=5, seed=5).assign(hood="Mars"))
    assert code == 0 and len(pd.read_csv(output)) == 5
    assert "hood levels unseen in training" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Read-only and full disks: one line naming the path; nothing half-written left behind.


@contextlib.contextmanager
def _small_disk(folder: Path, size: str = "64k"):
    """A tmpfs of the given size at folder; skips the test where it cannot be mounted."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


def test_predict_to_a_read_only_folder_is_one_line(champion, tmp_path, capsys):
    with _small_disk(tmp_path / "ro") as folder:
        _read_only(folder)
        code, _ = _predict(champion, tmp_path, make_houses(rows=5), out=folder / "o.csv")
    assert code == 1
    assert "read-only file system" in capsys.readouterr().err


def test_promote_in_a_read_only_artifacts_folder_is_one_line(tmp_path, capsys):
    with _small_disk(tmp_path / "ro", "1m") as artifacts:
        run_id = _fake_champion(artifacts)
        _read_only(artifacts)
        assert main(["promote", run_id, "--artifacts-dir", str(artifacts), "--wait", "0"]) == 1
    assert "read-only file system" in capsys.readouterr().err


def test_predict_to_a_full_disk_names_the_file_and_leaves_nothing(champion, tmp_path, capsys):
    frame = pd.concat([make_houses(rows=50, seed=5)] * 60, ignore_index=True)  # ~150 KB of CSV
    with _small_disk(tmp_path / "full") as folder:
        code, output = _predict(champion, tmp_path, frame, out=folder / "o.csv")
        assert list(folder.iterdir()) == []  # not even the temporary file
    assert code == 1
    error = capsys.readouterr().err
    assert f"cannot write {output}: no space left on device" in error


def test_a_run_that_fills_the_disk_removes_its_folder_and_says_so(tmp_path):
    config = small_config(tmp_path)
    run = layout.create_run(config.paths.artifacts_dir)
    with pytest.raises(OSError) as caught, recorded_run(run, config, lambda *a: None):
        raise OSError(errno.ENOSPC, "No space left on device", str(run.model_file("torch")))
    assert not run.root.exists()
    assert f"removed this run's folder {run.root}" in "\n".join(caught.value.__notes__)


# ---------------------------------------------------------------------------------------------
# Through the whole command: the flow stops, and keeps no model, snapshot or champion.


@pytest.mark.slow
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"area": _spoilt_area()}, "'area' holds numbers except in 2 rows"),
        ({"price": [1e300] + [150_000.0] * 119}, "exceed ±1e+15"),
    ],
    ids=["all-columns-text-in-numbers", "overflowing-price"],
)
def test_retrain_on_bad_data_exits_1_and_keeps_nothing(
    tmp_path, prefect_harness, capsys, changes, message
):
    source = _houses_csv(tmp_path / "h.csv", rows=120, **changes)
    data, artifacts = tmp_path / "data", tmp_path / "art"
    argv = ["retrain", "--source", str(source), "--target", "price"]
    assert main([*argv, "--data-dir", str(data), "--artifacts-dir", str(artifacts)]) == 1
    assert message in capsys.readouterr().err
    _nothing_kept(data, artifacts)


# ---------------------------------------------------------------------------------------------
# The same column rules for landing files, and summaries instead of a line per column.


def test_a_landing_file_with_text_in_numbers_is_refused_naming_the_cells(tmp_path):
    from houseprice.tasks.collect import check_landing_file

    source = _houses_csv(tmp_path / "day.csv", rows=40, area=_spoilt_area(40))
    check = check_landing_file(source, {"name": "unused", "expectations": []})
    assert check.reason and "'area' holds numbers except in 2 rows (rows 5, 17)" in check.reason


def test_drift_logs_one_line_per_reason_however_many_columns(tmp_path, monkeypatch):
    from prefect.logging import disable_run_logger

    import houseprice.tasks.drift
    from houseprice.config import DataConfig, PathsConfig, SplitConfig
    from tests.test_drift import _champion, _check

    paths = PathsConfig(data_dir=tmp_path / "data", artifacts_dir=tmp_path / "artifacts")
    _champion(paths, make_houses(rows=200), SplitConfig())
    new = make_houses(rows=200, seed=1)
    new = pd.concat([new, pd.DataFrame({f"x{i:03d}": np.ones(200) for i in range(300)})], axis=1)
    data = DataConfig(
        target="price", numeric_features=["area", *new.columns[4:]], categorical_features=[]
    )
    messages: list[str] = []
    logger = logging.getLogger("test-drift")
    monkeypatch.setattr(logger, "handle", lambda record: messages.append(record.getMessage()))
    monkeypatch.setattr(houseprice.tasks.drift, "get_run_logger", lambda: logger)
    with disable_run_logger():
        report = _check(paths, new, data)
    assert len(report.not_comparable) == 300
    assert len(messages) <= 3
    assert any("300 (x000, x001, x002, x003, x004, …)" in message for message in messages)


def test_a_validation_error_lists_twenty_failures_and_counts_the_rest():
    from houseprice.tasks.expectation_failures import ExpectationFailure
    from houseprice.tasks.validate import DataValidationError, ValidationReport

    failures = [ExpectationFailure("expect_x", f"c{i:03d}", [], "bad") for i in range(300)]
    error = DataValidationError(ValidationReport(False, "s", 300, 0, 300, failures))
    lines = str(error).splitlines()
    assert len(lines) == 22
    expected = "  - and 280 more failures, on columns 280 (c020, c021, c022, c023, c024, …)"
    assert lines[-1] == expected


@pytest.mark.parametrize(("typed", "separator"), [(";", ";"), ("\\t", "\t"), ("tab", "\t")])
def test_the_separator_flag_reaches_the_config(typed, separator):
    from houseprice.cli import build_parser, config_from_arguments

    args = build_parser().parse_args(["retrain", "--source", "x.csv", "--separator", typed])
    assert config_from_arguments(args).data.separator == separator


# ---------------------------------------------------------------------------------------------
# Numbers in another notation, dates and near-identifiers: never typed by a silent guess.


def _notation_csv(tmp_path: Path, cells: list[str], rows: int = 300) -> Path:
    """make_houses' table with area written as the given cells, cycled."""
    frame = make_houses(rows=rows, seed=1)
    frame["price"] = frame["price"].round().astype(int)  # no decimal mark to disagree with area
    frame["area"] = [cells[i % len(cells)].format(a=int(a)) for i, a in enumerate(frame["area"])]
    frame.to_csv(tmp_path / "n.csv", index=False)
    return tmp_path / "n.csv"


NOTATION_CASES = [
    ("thousands", ["{a:,}"], "--thousands ','", {"thousands": ","}),
    ("decimal-comma", ["{a},5"], "--decimal ','", {"decimal": ","}),
]


@pytest.mark.parametrize(
    ("cells", "flag", "declared"),
    [c[1:] for c in NOTATION_CASES],
    ids=[c[0] for c in NOTATION_CASES],
)
@pytest.mark.parametrize("mode", ["named", "all-columns"])
def test_numbers_in_another_notation_are_refused_or_read_when_declared(
    tmp_path, cells, flag, declared, mode
):
    # They became 1,500 one-hot levels (named) or were dropped as identifiers (all columns).
    source = _notation_csv(tmp_path, cells)
    named = {"features": ["area", "year"]} if mode == "named" else {}
    message = _training_refusal(tmp_path, source, **named)
    assert "'area' holds numbers except in" in message and f"pass {flag}" in message
    config = _config(tmp_path, source, **named, **declared)
    frame = read_source(str(source), ",", config.data.notation)
    assert pd.api.types.is_float_dtype(frame["area"])
    assert "area" in resolve_feature_kinds(frame, config.data).numeric_features


def test_a_quoted_decimal_comma_reads_with_a_comma_separator(tmp_path):
    _write(tmp_path / "q.csv", 'area,price\n"1234,5",1\n"12,25",2\n')
    frame = read_source(str(tmp_path / "q.csv"), ",", (None, ","))
    assert frame["area"].tolist() == [1234.5, 12.25]


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (["{a}"] * 4 + ["-"], r"60 are not numbers \(e.g. \['-'\]\)"),
        (["{a}"] * 4 + ["١٢٣٤"], "60 use digits other than 0-9"),
    ],
    ids=["dash-placeholders", "arabic-digits"],
)
def test_a_fifth_of_odd_cells_in_numbers_is_refused_naming_them(tmp_path, cells, message):
    source = _notation_csv(tmp_path, cells)
    assert re.search(message, _training_refusal(tmp_path, source, features=["area", "year"]))


def test_a_fifth_of_missing_tokens_in_numbers_reads_as_gaps(tmp_path):
    frame = read_source(str(_notation_csv(tmp_path, ["{a}"] * 4 + ["n/a"])))
    assert pd.api.types.is_float_dtype(frame["area"]) and frame["area"].isna().sum() == 60


def test_a_date_named_as_a_feature_is_refused_with_the_fractional_year_advice(tmp_path):
    sold = pd.date_range("2008-01-01", periods=300, freq="D").strftime("%Y-%m-%d").tolist()
    source = _houses_csv(tmp_path / "h.csv", rows=300, sold=sold)
    message = _training_refusal(tmp_path, source, features=["sold", "area"])
    assert "'sold' holds dates" in message and "2008.5" in message
    parquet = tmp_path / "h.parquet"
    read_source(str(source)).assign(sold=pd.to_datetime(sold)).to_parquet(parquet)
    assert "'sold' holds dates" in _training_refusal(tmp_path, parquet, features=["sold", "area"])


def test_a_named_category_with_a_level_per_row_is_refused_unless_declared(tmp_path):
    source = _houses_csv(tmp_path / "h.csv", rows=300, code=[f"k{i}" for i in range(300)])
    message = _training_refusal(tmp_path, source, features=["code", "area"])
    assert "'code' has 300 distinct values in 300 rows" in message and "--categorical" in message
    config = _config(tmp_path, source, features=["area"], categorical_features=["code"])
    typed = resolve_feature_kinds(read_source(str(source)), config.data)
    assert typed.categorical_features == ["code"]


def test_thousands_and_decimal_flags_reach_the_config_and_must_differ():
    from houseprice.cli.arguments import config_from_arguments
    from houseprice.cli.parser import build_parser

    args = build_parser().parse_args(["retrain", "--thousands", ".", "--decimal", ","])
    assert config_from_arguments(args).data.notation == (".", ",")
    with pytest.raises(ValueError, match="thousands and decimal are both ','"):
        build_config({"data": {"thousands": ",", "decimal": ","}})


# ---------------------------------------------------------------------------------------------
# Nothing lost: every file of a folder is read or named; rows that cannot be whole are refused.


def test_compressed_csv_files_in_a_folder_are_read(tmp_path):
    import bz2
    import gzip

    houses = make_houses(rows=30, seed=1)
    houses.iloc[:10].to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "b.csv.gz").write_bytes(
        gzip.compress(houses.iloc[10:20].to_csv(index=False).encode())
    )
    (tmp_path / "c.csv.bz2").write_bytes(
        bz2.compress(houses.iloc[20:].to_csv(index=False).encode())
    )
    frame = read_source(str(tmp_path))
    assert frame["price"].tolist() == houses["price"].tolist()


def test_hive_partition_folders_are_read_with_their_keys_as_columns(tmp_path, caplog):
    houses = make_houses(rows=120, seed=1)
    for index, year in enumerate((2007, 2008, 2009)):
        folder = tmp_path / f"sold={year}"
        folder.mkdir()
        houses.iloc[index * 40 : (index + 1) * 40].to_parquet(folder / "part.parquet")
    houses.iloc[:5].to_csv(tmp_path / "notes.txt")
    (tmp_path / "archive").mkdir()
    with caplog.at_level(logging.WARNING):
        frame = read_source(str(tmp_path))
    assert (
        len(frame) == 120
        and frame["sold"].tolist() == [2007.0] * 40 + [2008.0] * 40 + [2009.0] * 40
    )
    assert "2 entries are not tables and were not read: archive/, notes.txt" in caplog.text


def test_rows_shorter_than_the_header_are_refused_with_their_lines(tmp_path):
    lines = ["area,year,hood,price"] + [f"{900 + i},2000,North,{100000 + i}" for i in range(40)]
    lines[7], lines[30] = "950,2001", "951,2002,South"
    message = _training_refusal(tmp_path, _write(tmp_path / "s.csv", "\n".join(lines) + "\n"))
    assert "s.csv: 2 rows have fewer fields than the header's 4 (lines 8, 31)" in message


def test_a_nul_byte_inside_a_value_is_refused_naming_the_column(tmp_path):
    lines = ["area,year,hood,price"] + [f"{900 + i},2000,North,{100000 + i}" for i in range(400)]
    lines[300] = "950,2001,No\x00rth,100"
    message = _training_refusal(tmp_path, _write(tmp_path / "z.csv", "\n".join(lines) + "\n"))
    assert "column 'hood' holds a NUL byte (\\x00) in 1 cells (rows 299)" in message


def test_a_few_rows_repeated_many_times_are_refused_with_counts(tmp_path):
    frame = pd.concat([make_houses(rows=5, seed=1)] * 600, ignore_index=True)
    frame.to_csv(tmp_path / "r.csv", index=False)
    message = _training_refusal(tmp_path, tmp_path / "r.csv")
    assert "5 distinct rows in 3,000" in message


# Every failure in one line (houseprice/failures.py): the flow replaced by one that raises, so
# each case runs the whole command's error path in milliseconds, run folder and all.


def _interrupted(signum: int) -> BaseException:
    from houseprice.failures import Terminated

    return Terminated(signum) if signum == 15 else KeyboardInterrupt()


def _chunk_error(cause: BaseException) -> BaseException:
    from houseprice.flows.engine import ChunkError

    try:
        raise ChunkError(f"validate: item 2 ('part-1.parquet') failed: {cause!r}") from cause
    except ChunkError as error:
        return error


def _dask_unreachable() -> BaseException:
    from distributed.comm.core import CommClosedError

    refused = CommClosedError("in <TCPConnector>: ConnectionRefusedError: [Errno 111] refused")
    error = OSError("Timed out trying to connect to tcp://127.0.0.1:1 after 30 s")
    error.__cause__ = refused
    return error


def _aliased() -> BaseException:
    from houseprice.tasks.features import AliasedFeatureError

    return AliasedFeatureError("features ['flat'] cannot be estimated (flat: constant)")


def _data_dir_a_file() -> BaseException:
    """What taking the retrain lock raises when --data-dir names a file."""
    import tempfile

    from houseprice.locking import retrain_lock

    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        data_dir.write_text("not a folder")
        try:
            with retrain_lock(data_dir, Path(folder) / "art", 0, print):
                pass
        except OSError as error:
            return error
    pytest.fail("a file as --data-dir was taken for a folder")


def _nested_enospc() -> BaseException:
    disk = OSError(errno.ENOSPC, "No space left on device", "/art/runs/x/design/part-0.npy")
    return _chunk_error(disk)


FAILURES = [
    # (id, the error the flow raises, exit code, what the one line says)
    ("closed-dask-address", _dask_unreachable, 1, "Timed out trying to connect to tcp://"),
    (
        "refused-url",
        lambda: TransientSourceError("cannot download http://127.0.0.1:9/s.csv: refused"),
        1,
        "cannot download http://127.0.0.1:9/s.csv",
    ),
    (
        "read-only-disk",
        lambda: OSError(errno.EROFS, "Read-only file system", "/art/runs/x/run.json"),
        1,
        "cannot write /art/runs/x/run.json: read-only file system",
    ),
    ("full-disk-in-a-chunk", _nested_enospc, 1, "no space left on device (free some space"),
    ("data-dir-is-a-file", _data_dir_a_file, 1, "file exists (a file stands where a folder"),
    ("constant-named-feature", _aliased, 1, "features ['flat'] cannot be estimated"),
    (
        "corrupt-page-in-a-chunk",
        lambda: _chunk_error(SourceError("cannot read part-1.parquet as parquet, corrupt")),
        1,
        "cannot read part-1.parquet as parquet, corrupt",
    ),
    (
        "corrupt-page-from-a-dask-worker",  # pickled on the way back: the cause must survive
        lambda: pickle.loads(pickle.dumps(_chunk_error(SourceError("part-1.parquet is corrupt")))),
        1,
        "part-1.parquet is corrupt",
    ),
    (
        "vanished-file-in-a-chunk",
        lambda: _chunk_error(FileNotFoundError(errno.ENOENT, "No such file", "/d/part-1.parquet")),
        1,
        "cannot use /d/part-1.parquet: no such file",
    ),
    ("sigterm", lambda: _interrupted(15), 143, "retrain interrupted in stage ingest: "),
    ("ctrl-c", lambda: _interrupted(2), 130, "retrain interrupted in stage ingest: "),
]


def _retrain_raising(tmp_path: Path, monkeypatch, error: BaseException) -> tuple[int, Path]:
    """`houseprice retrain` whose flow starts a run and raises error in its first stage."""
    import houseprice.flows.alerts
    import houseprice.flows.retrain
    import houseprice.flows.workers
    import houseprice.prefect_server
    from houseprice.runs import start_run

    def flow(config):
        run = start_run(config)
        with recorded_run(run, config, lambda *a: None) as recorder, recorder.stage("ingest"):
            raise error

    @contextlib.contextmanager
    def no_server(notify):
        yield lambda: None

    monkeypatch.setattr(houseprice.flows.retrain, "retrain", flow)
    monkeypatch.setattr(houseprice.flows.alerts, "without_unused_alerts", lambda flow: flow)
    monkeypatch.setattr(houseprice.prefect_server, "temporary_api", no_server)
    monkeypatch.setattr(houseprice.flows.workers, "import_in_background", lambda *m: None)
    source = _houses_csv(tmp_path / "h.csv")
    artifacts = tmp_path / "art"
    argv = ["retrain", "--source", str(source), "--target", "price"]
    code = main([*argv, "--data-dir", str(tmp_path / "data"), "--artifacts-dir", str(artifacts)])
    return code, artifacts


@pytest.mark.parametrize(
    ("make", "code", "line"), [c[1:] for c in FAILURES], ids=[c[0] for c in FAILURES]
)
def test_each_failure_is_one_line_with_its_exit_code_and_never_a_bug(
    tmp_path, monkeypatch, capsys, make, code, line
):
    exit_code, _ = _retrain_raising(tmp_path, monkeypatch, make())
    error = capsys.readouterr().err
    assert exit_code == code, error
    assert "looks like a bug" not in error and "Traceback" not in error, error
    said = [text for text in error.splitlines() if text.startswith("houseprice: retrain")]
    assert len(said) == 1 and line in said[0], error  # the message once, in one line


def test_a_genuine_bug_prints_the_traceback_and_says_so(tmp_path, monkeypatch, capsys):
    exit_code, _ = _retrain_raising(tmp_path, monkeypatch, RuntimeError("a stage's own mistake"))
    error = capsys.readouterr().err
    assert exit_code == 70
    assert "Traceback" in error and 'RuntimeError("a stage\'s own mistake")' not in error
    assert "houseprice: this looks like a bug; the traceback is above" in error
    assert "retrain failed in stage ingest: RuntimeError: a stage's own mistake" in error


def test_a_run_that_fills_the_disk_is_removed_and_the_command_says_so(
    tmp_path, monkeypatch, capsys
):
    exit_code, artifacts = _retrain_raising(tmp_path, monkeypatch, _nested_enospc())
    error = capsys.readouterr().err
    assert exit_code == 1 and "no space left on device" in error
    assert list(layout.runs_dir(artifacts).iterdir()) == []  # the folder is gone ...
    assert "run:" not in error  # ... and not named as if it were there


@pytest.mark.parametrize("signum", [15, 2], ids=["sigterm", "ctrl-c"])
def test_an_interrupted_run_is_marked_killed_and_history_says_how(
    tmp_path, monkeypatch, capsys, signum
):
    _, artifacts = _retrain_raising(tmp_path, monkeypatch, _interrupted(signum))
    capsys.readouterr()
    (run,) = registry.list_runs(artifacts)
    assert run["status"] == "killed" and run["failed_stage"] == "ingest"
    assert main(["history", "--artifacts-dir", str(artifacts)]) == 0
    expected = "stopped by SIGTERM" if signum == 15 else "interrupted (Ctrl-C)"
    assert run["error"] == expected
    assert f"killed in stage ingest: {expected}" in capsys.readouterr().out


# Through the real flow: the README's own refusal, and a streamed run's chunk errors.


def _retrain_cli(tmp_path: Path, source: Path, *flags: str, compute: dict | None = None) -> int:
    """`houseprice retrain` on source into tmp_path's data/ and art/; compute via a config file."""
    argv = ["retrain", "--source", str(source), "--target", "price", *flags]
    if compute:
        tmp_path.mkdir(parents=True, exist_ok=True)
        (tmp_path / "c.yaml").write_text(f"compute: {compute}\n".replace("'", ""))
        argv += ["--config", str(tmp_path / "c.yaml")]
    return main(
        [*argv, "--data-dir", str(tmp_path / "data"), "--artifacts-dir", str(tmp_path / "art")]
    )


def _said_once(error: str, needle: str) -> None:
    """needle on exactly one line of stderr, the command's own, and no word of a bug."""
    assert "looks like a bug" not in error and "Traceback" not in error, error
    lines = [line for line in error.splitlines() if needle in line]
    assert len(lines) == 1 and lines[0].startswith("houseprice: retrain failed"), error


@pytest.mark.slow
def test_retrain_refuses_a_constant_named_feature_in_one_line(tmp_path, prefect_harness, capsys):
    source = _houses_csv(tmp_path / "h.csv", rows=120, flat=7.0)
    assert _retrain_cli(tmp_path, source, "--features", "area,year,flat") == 1
    _said_once(capsys.readouterr().err, "features ['flat'] cannot be estimated")
    assert registry.read_champion(tmp_path / "art") is None


@pytest.mark.slow
def test_streamed_chunk_errors_are_the_users_and_a_full_disk_removes_the_run(
    tmp_path, prefect_harness, capsys, monkeypatch
):
    import houseprice.chunks
    from tests.conftest import STREAMED, write_houses_folder

    source = write_houses_folder(tmp_path / "houses", rows=3_000)
    read_chunk = houseprice.chunks.read_chunk

    def vanishing(chunk, *args):  # the second file goes away after the run planned its chunks
        if chunk.index == 2:
            Path(chunk.path).unlink(missing_ok=True)
        return read_chunk(chunk, *args)

    # Every stage's fold reads its chunks through houseprice.chunks.read_rows.
    monkeypatch.setattr(houseprice.chunks, "read_chunk", vanishing)
    assert _retrain_cli(tmp_path / "vanished", source, compute=STREAMED) == 1
    _said_once(capsys.readouterr().err, "part-2.parquet")
    monkeypatch.undo()

    source = write_houses_folder(tmp_path / "houses", rows=3_000)

    def full_disk(path, array):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(storage, "write_scratch_array", full_disk)
    assert _retrain_cli(tmp_path / "full", source, compute=STREAMED) == 1
    error = capsys.readouterr().err
    _said_once(error, "no space left on device")
    assert list(layout.runs_dir(tmp_path / "full" / "art").iterdir()) == []
