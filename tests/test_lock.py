"""The install is locked: the locks pin what pyproject.toml asks for, and `make` installs them."""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def read_lock(name: str) -> dict[str, str]:
    """Canonical package name → pinned version."""
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        if line and not line.startswith("#"):
            package, version = line.split("==")
            pins[canonicalize_name(package)] = version
    return pins


def unmet_requirements(requirements: list[str], lock: dict[str, str]) -> list[str]:
    """Each requirement that the lock leaves out or pins outside its range."""
    unmet = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker and not requirement.marker.evaluate():
            continue
        version = lock.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            unmet.append(f"{text} (locked: {version})")
    return unmet


def test_lock_pins_every_requirement_of_the_project_and_its_dev_and_mlflow_extras():
    extras = PROJECT["optional-dependencies"]
    requirements = PROJECT["dependencies"] + extras["dev"] + extras["mlflow"]
    unmet = unmet_requirements(requirements, read_lock("requirements.lock"))
    assert not unmet, f"requirements.lock is stale, run `make lock`: {unmet}"


def test_gpu_lock_is_the_cpu_lock_plus_the_gpu_extra():
    cpu, gpu = read_lock("requirements.lock"), read_lock("requirements-gpu.lock")
    changed = {
        name: (version, gpu.get(name)) for name, version in cpu.items() if gpu.get(name) != version
    }
    assert not changed, f"run `make lock`: the GPU lock differs on {changed}"
    unmet = unmet_requirements(PROJECT["optional-dependencies"]["gpu"], gpu)
    assert not unmet, f"requirements-gpu.lock is stale, run `make lock`: {unmet}"
    assert set(gpu) - set(cpu), "the GPU lock adds nothing"


def test_unmet_requirements_names_a_missing_and_an_out_of_range_package():
    lock = {"numpy": "1.26.4"}
    assert unmet_requirements(["numpy>=2.0,<3", "pandas>=3"], lock) == [
        "numpy>=2.0,<3 (locked: 1.26.4)",
        "pandas>=3 (locked: None)",
    ]


@pytest.mark.skipif(
    Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
    reason="checks the environment `make` builds from the lock (this repository's .venv)",
)
def test_this_environment_has_exactly_the_locked_versions():
    wrong = {}
    for name, locked in read_lock("requirements.lock").items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != locked:
            wrong[name] = f"locked {locked}, installed {installed}"
    assert not wrong, f"reinstall from the lock (rm -r .venv; make setup): {wrong}"
