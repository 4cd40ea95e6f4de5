"""`retrain` refuses a bad command before Prefect starts: one line, exit 2, no run folder.

Each case goes through the command's entry point with Prefect's temporary server made to fail
the test if it starts; the happy cases call the check itself, which must let them through.
"""

from __future__ import annotations

import http.server
import os
import socket
import threading
from pathlib import Path

import pytest

from houseprice import prefect_server
from houseprice.cli import main
from houseprice.config import build_config
from houseprice.preflight import closest_column, retrain_problem
from tests.conftest import make_houses


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder holding sales.csv and sales.parquet (sqft, lot, zip, price), as the cwd."""
    houses = make_houses(rows=40).rename(columns={"area": "sqft", "year": "lot", "hood": "zip"})
    houses.to_csv(tmp_path / "sales.csv", index=False)
    houses.to_parquet(tmp_path / "sales.parquet", index=False)
    monkeypatch.chdir(tmp_path)  # relative names in messages, and anything written lands here
    return tmp_path


@pytest.fixture(autouse=True)
def no_server(monkeypatch):
    """Prefect's temporary server must not start: starting it fails the test."""

    def start(self):
        pytest.fail("Prefect's temporary server was started")

    monkeypatch.setattr(prefect_server.TemporaryServer, "start", start)


def _refused(argv: list[str], capsys) -> str:
    """Run `houseprice retrain argv`; assert exit 2, one line and no run folder; return it."""
    before = set(Path.cwd().rglob("*"))
    assert main(["retrain", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert set(Path.cwd().rglob("*")) == before  # no run folder, no data folder, no lock file
    return err


# ---------------------------------------------------------------------------------------------
# Column names.


def test_no_target_names_the_closest_column_and_the_default(workdir, capsys):
    err = _refused(["--source", "sales.csv"], capsys)
    assert "no column 'Sale_Price' in sales.csv; did you mean 'price'?" in err
    assert "columns: sqft, lot, zip, price" in err
    assert "--target" in err


def test_a_mistyped_feature_in_a_parquet_file(workdir, capsys):
    err = _refused(
        ["--source", "sales.parquet", "--target", "price", "--features", "sqft,lott"], capsys
    )
    assert "no column 'lott' in sales.parquet; did you mean 'lot'?" in err


def test_a_mistyped_categorical_column(workdir, capsys):
    argv = ["--source", "sales.csv", "--target", "price", "--features", "sqft,zp"]
    err = _refused([*argv, "--categorical", "zp"], capsys)
    assert "no column 'zp' in sales.csv; did you mean 'zip'?" in err


def test_several_mistyped_names_are_one_line(workdir, capsys):
    argv = ["--source", "sales.csv", "--target", "Price", "--features", "sqfeet"]
    err = _refused(argv, capsys)
    assert "'price' for 'Price'" in err and "'sqft' for 'sqfeet'" in err


def test_a_mistyped_target_in_a_yaml_config(workdir, capsys):
    (workdir / "c.yaml").write_text("data:\n  source: sales.csv\n  target: prise\n")
    err = _refused(["--config", "c.yaml"], capsys)
    assert "no column 'prise' in sales.csv; did you mean 'price'?" in err


def test_a_mistyped_key_in_a_yaml_config_names_the_known_one(workdir, capsys):
    (workdir / "c.yaml").write_text("data:\n  source: sales.csv\n  taget: price\n")
    assert main(["retrain", "--config", "c.yaml"]) == 2
    assert "data.taget: Extra inputs are not permitted; did you mean 'target'?" in (
        capsys.readouterr().err
    )


def test_the_bundled_data_and_synthetic_specs_are_checked_too(workdir, capsys):
    err = _refused(["--target", "SalePrice"], capsys)
    assert "in the bundled data; did you mean 'Sale_Price'?" in err
    assert "(74 in all)" in err  # a wide header is cut, not printed whole
    err = _refused(["--source", "synthetic:rows=100,features=3", "--features", "x1"], capsys)
    assert "did you mean 'x01'? columns: x01, x02, x03, price" in err
    assert "is not a number" in _refused(["--source", "synthetic:rows=1x"], capsys)


def test_closest_column_ignores_case_and_gives_up_on_strangers():
    assert closest_column("Sale_Price", ["sqft", "price"]) == "price"
    assert closest_column("bathrooms", ["sqft", "price"]) is None


# ---------------------------------------------------------------------------------------------
# The source's existence and kind.


def test_a_missing_source(workdir, capsys):
    assert "source not found: nope.csv" in _refused(["--source", "nope.csv"], capsys)


def test_a_fifo_is_refused_instead_of_read_forever(workdir, capsys):
    os.mkfifo(workdir / "pipe.csv")
    assert "pipe.csv is a FIFO" in _refused(["--source", "pipe.csv"], capsys)


def test_a_symlink_loop(workdir, capsys):
    os.symlink("loop.csv", workdir / "loop.csv")
    assert "loop.csv is a symlink loop" in _refused(["--source", "loop.csv"], capsys)


def test_a_folder_where_a_file_is_needed(workdir, capsys):
    (workdir / "parts").mkdir()
    assert "holds no .csv or .parquet files" in _refused(["--source", "parts"], capsys)
    (workdir / "parts" / "a.csv").mkdir()  # a folder named like a table
    assert "a.csv in source folder parts is a folder, not a file" in _refused(
        ["--source", "parts"], capsys
    )
    (workdir / "c").mkdir()
    assert "config file c is a folder" in _refused(["--config", "c"], capsys)


def test_a_file_of_another_kind_and_a_wrong_separator(workdir, capsys):
    (workdir / "sales.xlsx").write_bytes(b"PK\x03\x04")
    assert "unsupported file type '.xlsx'" in _refused(["--source", "sales.xlsx"], capsys)
    (workdir / "semi.csv").write_text("sqft;price\n1;2\n")
    err = _refused(["--source", "semi.csv", "--target", "price"], capsys)
    assert "pass --separator ';'" in err


# ---------------------------------------------------------------------------------------------
# The folders the run writes.


def test_a_data_dir_that_is_a_file(workdir, capsys):
    err = _refused(
        ["--source", "sales.csv", "--target", "price", "--data-dir", "sales.csv"], capsys
    )
    assert "--data-dir sales.csv is a file, not a folder" in err
    err = _refused(
        ["--source", "sales.csv", "--target", "price", "--artifacts-dir", "sales.csv/a"], capsys
    )
    assert "--artifacts-dir sales.csv/a cannot be made: sales.csv in its path is a file" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in any folder")
def test_an_unwritable_artifacts_folder(workdir, capsys):
    (workdir / "locked").mkdir(mode=0o555)
    argv = ["--source", "sales.csv", "--target", "price", "--artifacts-dir", "locked/art"]
    assert "cannot write in locked" in _refused(argv, capsys)


# ---------------------------------------------------------------------------------------------
# URLs: an unreachable one fails at once; a CSV's header is read from its first bytes.


@pytest.fixture
def web(workdir):
    """workdir served over HTTP on loopback; yields the base URL."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=workdir, **kwargs)

        def log_message(self, *args):  # the command's stderr must hold its one line only
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_url_fails_at_once(workdir, capsys):
    url = f"http://127.0.0.1:{_closed_port()}/sales.csv"
    assert f"cannot reach {url}" in _refused(["--source", url, "--target", "price"], capsys)


def test_a_url_csv_header_is_checked_and_a_404_refused(web, capsys):
    err = _refused(["--source", f"{web}/sales.csv"], capsys)
    assert "did you mean 'price'?" in err
    assert "HTTP 404" in _refused(["--source", f"{web}/absent.csv"], capsys)


# ---------------------------------------------------------------------------------------------
# What must still pass.


def _config(workdir: Path, **data):
    paths = {"data_dir": str(workdir / "data"), "artifacts_dir": str(workdir / "art")}
    return build_config({"data": data, "paths": paths})


def test_good_commands_pass_the_check(web, workdir):
    assert retrain_problem(_config(workdir)) is None  # the bundled data, its defaults
    assert retrain_problem(_config(workdir, source="sales.csv", target="price")) is None
    named = {"features": ["sqft"], "categorical_features": ["zip"]}
    assert (
        retrain_problem(_config(workdir, source="sales.parquet", target="price", **named)) is None
    )
    assert retrain_problem(_config(workdir, source=".", target="price")) is None  # a folder
    assert retrain_problem(_config(workdir, source="synthetic:rows=50,features=2")) is None
    for name in ("sales.csv", "sales.parquet"):
        assert retrain_problem(_config(workdir, source=f"{web}/{name}", target="price")) is None


def test_landing_mode_leaves_the_columns_to_collect(workdir):
    config = _config(workdir, source="sales.csv", landing_dir=str(workdir / "landing"))
    assert retrain_problem(config) is None
