"""Any column name works end to end: retrain, exports, predict, and pages that never run it."""

from __future__ import annotations

import keyword
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from houseprice import exports, layout, storage
from houseprice.exports import export_names
from houseprice.model import load_model
from tests.conftest import make_houses, small_config

# What TensorFlow accepts as a signature's input name (tensorflow/python/framework/ops.py).
TF_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*")

PWNED = "<img src=x onerror=\"document.title='pwned'\">"
SCRIPT = "<script>alert(1)</script>"
LONG = "surface habitable du rez-de-chaussée, mesurée " * 8  # 376 characters
AREA, HOOD = "Lot Area", "Quartier é"
YEAR = '1st year\nbuilt ("quoted"), ok?'
TARGET = "Sale Price ($)"
AWKWARD = [AREA, YEAR, PWNED, SCRIPT, LONG, HOOD]


def test_export_names_are_identifiers_that_keep_a_readable_slug():
    names = export_names(["Lot Area", "Quartier é", "1st year", PWNED, "___", "Zoning ☃"])
    assert names == {
        "Lot Area": "f0_lot_area",
        "Quartier é": "f1_quartier_e",
        "1st year": "f2_1st_year",
        PWNED: "f3_img_src_x_onerror_document_title_pwned",
        "___": "f4",
        "Zoning ☃": "f5_zoning",
    }


def test_export_names_stay_unique_valid_and_short_whatever_the_columns():
    columns = [*AWKWARD, "lot_area", "LOT-AREA", "lot area ", "", "é", "1" * 500, "a\0b", "🙂"]
    names = export_names(columns)
    assert list(names) == columns and len(set(names.values())) == len(columns)
    for name in names.values():
        assert TF_NAME.fullmatch(name) and name.isidentifier() and not keyword.iskeyword(name)
        assert len(name) <= 48, name


def test_export_names_depend_only_on_position_and_name():
    assert export_names(["b", "a"]) == export_names(["b", "a"]) != export_names(["a", "b"])


def test_a_markdown_table_keeps_an_awkward_name_in_its_cell_as_text():
    from houseprice.tasks.reporting.text import Table

    lines = Table.of(["feature", "psi"], [[YEAR + " | x", 0.5], [SCRIPT, 0.1]]).markdown()
    assert len(lines) == 4  # header, rule, one line per row: no name broke a row
    assert lines[2] == '| 1st year built ("quoted"), ok? \\| x | 0.5 |'
    assert lines[3] == "| &lt;script&gt;alert(1)&lt;/script&gt; | 0.1 |"


def awkward_houses(rows: int, seed: int) -> pd.DataFrame:
    """make_houses with awkward names, and three noise columns whose names are HTML or long."""
    houses = make_houses(rows=rows, seed=seed)
    rng = np.random.default_rng(seed)
    noise = {name: rng.normal(0, 1, rows).round(3) for name in (PWNED, SCRIPT, LONG)}
    renamed = houses.rename(columns={"area": AREA, "year": YEAR, "hood": HOOD, "price": TARGET})
    return renamed.assign(**noise)


@pytest.fixture(scope="module")
def awkward_run(tmp_path_factory, prefect_harness):
    """One real retrain on a CSV whose headers are every kind of awkward name."""
    from houseprice.flows.retrain import retrain

    root = tmp_path_factory.mktemp("names")
    source = root / "houses.csv"
    awkward_houses(rows=300, seed=4).to_csv(source, index=False)
    data = {
        "source": str(source),
        "target": TARGET,
        "numeric_features": [AREA, YEAR, PWNED, SCRIPT, LONG],
        "categorical_features": [HOOD],
    }
    config = small_config(root, data=data)
    folder = Path(retrain(config))
    return config, layout.RunPaths(folder.name, folder)


def test_a_retrain_on_awkward_column_names_completes_and_predicts_by_those_names(awkward_run):
    config, run = awkward_run
    assert storage.read_json(run.status)["status"] == "completed"
    metrics = storage.read_json(run.metrics)
    assert metrics["torch"]["coefficients"][AREA] == pytest.approx(95, rel=0.05)
    model = load_model(config.paths.artifacts_dir)
    listings = awkward_houses(rows=30, seed=9).drop(columns=TARGET)
    prices = model.predict(listings)
    assert prices.shape == (30,) and np.isfinite(prices).all()


def test_every_export_scores_awkward_names_as_the_model_does(awkward_run):
    config, run = awkward_run
    artifacts = config.paths.artifacts_dir
    signature = storage.read_json(run.export_signature)
    assert [c["name"] for c in signature["inputs"]] == AWKWARD
    assert [c["input"] for c in signature["inputs"]] == list(export_names(AWKWARD).values())
    listings = awkward_houses(rows=30, seed=9).drop(columns=TARGET)
    listings.loc[listings.index[:4], HOOD] = ["Uptown", None, "Uptown", None]
    model = load_model(artifacts)
    expected = model.predict(listings)
    for kind in exports.EXPORTS:
        score = exports.load_export(artifacts, run.run_id, kind)
        prices = score(exports.raw_columns(listings, model.preprocessor))
        np.testing.assert_allclose(prices, expected, rtol=1e-6, err_msg=kind)


def test_the_onnx_inputs_carry_their_column_names(awkward_run):
    import onnx

    _, run = awkward_run
    graph = onnx.load(str(run.onnx_export)).graph
    assert {i.name: i.doc_string for i in graph.input} == {
        v: k for k, v in export_names(AWKWARD).items()
    }


# ---------------------------------------------------------------------------------------------
# The pages a person opens, in a real browser: no column name may run as a script, and the Data
# Docs must draw from local files alone.
CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does)",
)


def open_in_chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium on one local page, its console on stderr; it has no network of its own."""
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--virtual-time-budget=5000",  # the pages' own scripts (tables, tabs) run first
        *args,
        page.resolve().as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def console_problems(stderr: str) -> list[str]:
    """The page's script errors and failed loads, from Chromium's log."""
    return [
        line
        for line in stderr.splitlines()
        if "CONSOLE" in line or "Failed to load resource" in line or "net::ERR" in line
    ]


def run_pages(run: layout.RunPaths) -> list[Path]:
    """Every HTML page of a run: the report and each Data Docs page."""
    return [run.report, *sorted(run.data_docs.rglob("*.html"))]


@needs_chromium
def test_no_column_name_runs_as_a_script_in_any_page(awkward_run, tmp_path):
    _, run = awkward_run
    pages = run_pages(run)
    assert len(pages) >= 4  # the report, the Data Docs' index, its suite and its result
    for page in pages:
        opened = open_in_chromium(page, tmp_path / "profile", "--dump-dom")
        title = re.search(r"<title>(.*?)</title>", opened.stdout, flags=re.S)
        assert title is None or "pwned" not in title.group(1), page
        if page.name != "index.html":  # the Data Docs' index lists suites, not columns
            # The names are there, as text: escaped in the DOM, never an element.
            assert "&lt;img src=x onerror=" in opened.stdout, page
        assert '<img src="x"' not in opened.stdout and "<script>alert" not in opened.stdout
        assert not console_problems(opened.stderr), (page, console_problems(opened.stderr))


@needs_chromium
def test_the_data_docs_render_styled_from_local_files_alone(awkward_run, tmp_path):
    _, run = awkward_run
    result_page = next(run.data_docs.glob("validations/**/*.html"))
    for page in (run.data_docs / "index.html", result_page):
        opened = open_in_chromium(page, tmp_path / "profile", "--dump-dom")
        assert not console_problems(opened.stderr), (page, console_problems(opened.stderr))
        # bootstrap-table ran (jQuery, Bootstrap and the table library all loaded).
        assert 'class="bootstrap-table' in opened.stdout, page
    shot = run.root / "data_docs.png"  # left in the run folder for a person to look at
    open_in_chromium(
        result_page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,900"
    )
    assert shot.stat().st_size > 20_000  # a styled page; an unstyled one is mostly white
