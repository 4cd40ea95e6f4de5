"""Tests of the ground (houseprice/) and of pure stage logic import neither Prefect nor GX.

A test module that imports Prefect pays its import (seconds) and can quietly come to lean on the
session's Prefect harness; these stay plain functions on plain data.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The shared fixtures and fake builders, then the test modules of ground code and pure builders.
# (test_model_io and test_trainers are Prefect-free too, but importing torch and TensorFlow in
# one more interpreter would cost more than this check is worth.)
HARNESS_FREE = [
    "tests.conftest",
    "tests.fakes",
    "tests.test_config",
    "tests.test_storage",
    "tests.test_synthetic",
    "tests.test_registry",
    "tests.test_locking",
    "tests.test_suites",
]
ORCHESTRATION = ("prefect", "great_expectations")


def test_ground_and_pure_test_modules_import_no_prefect_or_great_expectations():
    code = (
        "import importlib, sys\n"
        f"for name in {HARNESS_FREE!r}:\n"
        "    before = {m.split('.')[0] for m in sys.modules}\n"
        "    importlib.import_module(name)\n"
        f"    for package in {ORCHESTRATION!r}:\n"
        "        if package in sys.modules and package not in before:\n"
        "            print(name, 'imports', package)\n"
    )
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "", done.stdout
