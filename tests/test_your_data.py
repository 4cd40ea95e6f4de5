"""docs/your-data.md stays true: its walkthrough's commands, run in order in an empty folder."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC = (REPO_ROOT / "docs" / "your-data.md").read_text()


def walkthrough_commands() -> list[str]:
    """The `houseprice` lines of the first bash block under '## Walkthrough', in order."""
    (block,) = re.findall(r"## Walkthrough.*?```bash\n(.*?)```", DOC, flags=re.S)[:1]
    return [line.strip() for line in block.splitlines() if line.startswith("houseprice ")]


def _write_sales(folder: Path, rows: int = 300, seed: int = 0) -> None:
    """sales.csv (price, sqft, beds, zip) and listings.csv (the same columns but price)."""
    rng = np.random.default_rng(seed)
    sqft = rng.uniform(700, 3500, rows).round()
    beds = rng.integers(1, 6, rows)
    zips = rng.choice([50010, 50014, 50012], rows)
    price = 40_000 + 120 * sqft + 8_000 * beds + (zips == 50014) * 25_000
    price = price + rng.normal(0, 10_000, rows)
    sales = pd.DataFrame({"price": price.round(), "sqft": sqft, "beds": beds, "zip": zips})
    sales.to_csv(folder / "sales.csv", index=False)
    sales.drop(columns="price").head(5).to_csv(folder / "listings.csv", index=False)


def test_the_walkthrough_lists_train_predict_history_promote_in_that_order():
    verbs = [command.split()[1] for command in walkthrough_commands()]
    assert verbs == ["retrain", "predict", "history", "promote", "predict"]


@pytest.mark.e2e  # runs the houseprice command, a Prefect server included, in new processes
def test_the_walkthrough_runs_in_an_empty_folder_and_predict_uses_the_new_champion(tmp_path):
    _write_sales(tmp_path)
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("PREFECT_API_URL", None)
    run_id = None
    for command in walkthrough_commands():
        argv = shlex.split(command.replace("RUN_ID", run_id or "RUN_ID"))
        result = subprocess.run(
            [sys.executable, "-m", "houseprice.cli", *argv[1:]],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, (command, result.stdout[-3000:], result.stderr[-3000:])
        if argv[1] == "retrain":
            (run_id,) = re.findall(r"runs/(\d{8}T\d{6}Z-[0-9a-f]{6})", result.stdout)[:1]
            assert "(model sales-price)" in result.stdout
        if argv[1] == "predict":
            assert f"scored by the champion of model sales-price (run {run_id}/" in result.stdout
            priced = pd.read_csv(tmp_path / "priced.csv")
            assert len(priced) == 5 and priced["model_id"].str.startswith(run_id).all()
    champion = tmp_path / "artifacts" / "models" / "sales-price" / "champion.json"
    assert run_id in champion.read_text()
