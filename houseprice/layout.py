"""Run folders under artifacts/runs/<run_id>/: every file a run writes, by name, and run ids."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from houseprice.errors import InputError
from houseprice.trainers import TrainerSpec, get_trainer


@dataclass(frozen=True)
class RunPaths:
    """Every file a run writes, by name."""

    run_id: str
    root: Path

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def lineage(self) -> Path:
        return self.root / "lineage.json"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def status(self) -> Path:
        """Written last: a run without it (or with status != completed) is not usable."""
        return self.root / "run.json"

    @property
    def validation(self) -> Path:
        return self.root / "validation" / "result.json"

    @property
    def design_dir(self) -> Path:
        """Streamed runs only: the scaled design, one .npy per chunk; removed when the run ends."""
        return self.root / DESIGN_DIR

    def design_chunk(self, part: str, index: int) -> Path:
        """A chunk's scratch file: part is train, validation, encoded-... (unscaled) or labels."""
        return self.design_dir / f"{part}-{index:05d}.npy"

    @property
    def data_docs(self) -> Path:
        return self.root / "validation" / "data_docs"

    @property
    def data_docs_static(self) -> Path:
        """Data Docs' styles and scripts, one folder shared by every run (artifacts/...)."""
        return self.root.parent.parent / DATA_DOCS_STATIC

    @property
    def preprocessing(self) -> Path:
        return self.root / "model" / "preprocessing.json"

    @property
    def drift_profile(self) -> Path:
        """Per feature, counts of the training rows: what later runs' drift compares with."""
        return self.root / "model" / "drift_profile.json"

    @property
    def model_manifest(self) -> Path:
        """SHA-256 of each model file, written once they are all in place."""
        return self.root / "model" / "manifest.json"

    def model_file(self, trainer: str | TrainerSpec) -> Path:
        """A trainer's saved model, named by its spec (houseprice/trainers/__init__.py)."""
        return self.root / "model" / _spec(trainer).model_file

    def linear_weights(self, framework: str) -> Path:
        """The saved model's weights and bias as JSON, for scoring with numpy alone."""
        return self.root / "model" / f"{framework}_linear.json"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def onnx_export(self) -> Path:
        return self.exports / "model.onnx"

    def trainer_export(self, trainer: str | TrainerSpec) -> Path:
        """A trainer's stand-alone export (a file or a folder); ValueError if it has none."""
        spec = _spec(trainer)
        if spec.export_file is None:
            raise ValueError(f"trainer {spec.name!r} has no stand-alone export")
        return self.exports / spec.export_file

    @property
    def export_signature(self) -> Path:
        """The raw input columns the exports take, and which fit each export holds."""
        return self.exports / "signature.json"


def _spec(trainer: str | TrainerSpec) -> TrainerSpec:
    """A trainer's spec from its name (a spec is passed where the registry may not hold it)."""
    return trainer if isinstance(trainer, TrainerSpec) else get_trainer(trainer)


# A streamed run's scratch folder, inside its run folder (RunPaths.design_dir).
DESIGN_DIR = "design"

# Under the artifacts folder, beside runs/: Data Docs assets, one subfolder per version.
DATA_DOCS_STATIC = "data_docs_static"


def runs_dir(artifacts_dir: Path) -> Path:
    """Folder holding one subfolder per run."""
    return Path(artifacts_dir) / "runs"


# What new_run_id makes: UTC start time, then six hex digits.
RUN_ID_PATTERN = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")


class RunIdError(InputError, ValueError):
    """A run id that is not one (a path, a typo): it could name a folder outside the runs."""


def check_run_id(run_id: str) -> str:
    """run_id when it has the format new_run_id makes ('20261126T041133Z-900c4e'), else raise."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise RunIdError(
            f"{run_id!r} is not a run id: expected the form 20261126T041133Z-900c4e "
            "(see `houseprice history`)"
        )
    return run_id


def run_folder(artifacts_dir: Path, run_id: str) -> Path:
    """A run's folder, refusing any name that could resolve outside artifacts/runs/."""
    runs = runs_dir(artifacts_dir)
    name = str(run_id)
    if not name or name in {".", ".."} or "/" in name or "\\" in name or "\0" in name:
        raise RunIdError(f"{run_id!r} is not a run id: it must be a folder name under {runs}")
    folder = runs / name
    if folder.resolve().parent != runs.resolve():  # e.g. a symlink pointing elsewhere
        raise RunIdError(f"run {run_id!r} resolves outside {runs}")
    return folder


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: UTC timestamp plus random suffix."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def create_run(artifacts_dir: Path, run_id: str | None = None) -> RunPaths:
    """Create a fresh run folder; refuses to reuse an existing one."""
    run_id = run_id or new_run_id()
    root = run_folder(artifacts_dir, run_id)
    root.parent.mkdir(parents=True, exist_ok=True)
    root.mkdir(exist_ok=False)
    return RunPaths(run_id, root)


def open_run(artifacts_dir: Path, run_id: str) -> RunPaths:
    """Paths of an existing run; raises FileNotFoundError when there is no such run."""
    root = run_folder(artifacts_dir, run_id)
    if not root.is_dir():
        raise FileNotFoundError(f"no run {run_id!r} under {runs_dir(artifacts_dir)}")
    return RunPaths(run_id, root)
