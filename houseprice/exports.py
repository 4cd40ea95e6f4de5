"""Stand-alone exports: a run's model as ONNX, a torch.export program and a TF SavedModel.

Each export takes the raw feature columns and returns prices: imputation, one-hot encoding,
scaling and the inverse target transform (log included) are inside, so serving needs neither
this package nor preprocessing.json. The input convention, the same for all three:

- a numeric column: float64, shape (rows,); NaN is a missing value (scored as the median);
- a categorical column: strings, shape (rows,), written as `category_strings` writes them
  (a missing value is "<missing>"; an unseen category scores as the reference level).
  torch tensors hold no strings, so the torch program takes each category as its UTF-8 bytes,
  a uint8 tensor (rows, any width) zero-padded on the right, which `utf8_bytes` makes.

`exports/signature.json` lists the columns, and which fit each export holds. The builders live
with their framework (tasks/trainers/*, tasks/export.py); this module holds the convention and
the checked loading, importing each runtime only when that export is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from houseprice import registry, storage
from houseprice.errors import ModelLoadError
from houseprice.preprocessing import MISSING_LEVEL, Preprocessor, category_strings

SIGNATURE_FORMAT = 1

Scorer = Callable[[dict[str, np.ndarray]], np.ndarray]  # raw columns → prices (rows,)


@dataclass(frozen=True)
class ExportSpec:
    """One export format: where a run keeps it and how to load it as a scorer."""

    kind: str
    path: Callable[[storage.RunPaths], Path]
    load: Callable[[Path], Scorer]


def raw_columns(frame: pd.DataFrame, preprocessor: Preprocessor) -> dict[str, np.ndarray]:
    """The exports' inputs from a frame: float64 numbers, categories as their strings."""
    columns = {
        name: pd.to_numeric(frame[name], errors="coerce").to_numpy("float64")
        for name in preprocessor.numeric_features
    }
    for name in preprocessor.categorical_features:
        columns[name] = category_strings(frame[name]).astype(object)
    return columns


def utf8_bytes(values: np.ndarray) -> np.ndarray:
    """Strings as a (rows, width) uint8 array of their UTF-8 bytes, zero-padded on the right."""
    encoded = np.char.encode(np.asarray(values, dtype=str), "utf-8")
    return encoded.view(np.uint8).reshape(len(encoded), encoded.dtype.itemsize)


def build_signature(preprocessor: Preprocessor, holders: dict[str, str | None]) -> dict[str, Any]:
    """signature.json: the input columns, the output, and which fit each export holds."""
    inputs = [
        {"name": name, "kind": "numeric", "dtype": "float64", "missing": "NaN"}
        for name in preprocessor.numeric_features
    ]
    inputs += [
        {
            "name": name,
            "kind": "categorical",
            "dtype": "string (torch: uint8 UTF-8 bytes, rows × width, zero-padded)",
            "missing": MISSING_LEVEL,
            "reference_level": preprocessor.reference_levels[name],
            "levels": preprocessor.levels[name],
        }
        for name in preprocessor.categorical_features
    ]
    return {
        "format": SIGNATURE_FORMAT,
        "inputs": inputs,
        "output": "price",
        "log_target": preprocessor.log_target,
        "fitted_by": holders,
    }


def _load_onnx(path: Path) -> Scorer:
    try:
        import onnxruntime
    except ImportError:
        raise ModelLoadError(
            "scoring the ONNX export needs onnxruntime: pip install onnxruntime"
        ) from None
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types for each way a file is broken
        raise ModelLoadError(f"cannot load ONNX export from {path}: {error}") from None
    return lambda columns: session.run(None, columns)[0]


def _load_torch(path: Path) -> Scorer:
    import torch

    from tasks.trainers.torch_trainer import load_torch_export

    program = load_torch_export(path)

    def score(columns: dict[str, np.ndarray]) -> np.ndarray:
        tensors = {
            name: torch.tensor(values if values.dtype != object else utf8_bytes(values))
            for name, values in columns.items()
        }
        return program(tensors).numpy()

    return score


def _load_tensorflow(path: Path) -> Scorer:
    from tasks.trainers.tensorflow_trainer import load_tensorflow_export

    restored = load_tensorflow_export(path)
    return lambda columns: restored.serve(columns).numpy()


EXPORTS = {
    spec.kind: spec
    for spec in (
        ExportSpec("onnx", lambda run: run.onnx_export, _load_onnx),
        ExportSpec("torch", lambda run: run.torch_export, _load_torch),
        ExportSpec("tensorflow", lambda run: run.tensorflow_export, _load_tensorflow),
    )
}


def export_files(path: Path) -> list[Path]:
    """The files of an export: the file itself, or every file in a SavedModel folder."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def verify_export(run: storage.RunPaths, path: Path) -> None:
    """Refuse an export whose files differ from the manifest: changed, missing or added."""
    from houseprice.model import verify_checksums

    try:
        recorded = storage.read_json(run.model_manifest)
    except (OSError, ValueError):
        raise ModelLoadError(f"run {run.run_id} has no readable model manifest") from None
    name = str(path.relative_to(run.root))
    expected = {entry for entry in recorded if entry == name or entry.startswith(name + "/")}
    if not expected:
        raise ModelLoadError(f"{path} is not listed in the run's model manifest")
    found = {str(p.relative_to(run.root)) for p in export_files(path)} if path.exists() else set()
    if added := sorted(found - expected):
        raise ModelLoadError(f"export {path} holds files the run did not write: {added}")
    verify_checksums(run, [run.root / entry for entry in sorted(expected)])


def load_export(artifacts_dir: Path | str, run_id: str, kind: str) -> Scorer:
    """A completed run's export as a function of raw columns, checked against the manifest."""
    if kind not in EXPORTS:
        raise ValueError(f"unknown export {kind!r}; expected one of {sorted(EXPORTS)}")
    run = registry.require_completed(Path(artifacts_dir), run_id)
    path = EXPORTS[kind].path(run)
    verify_export(run, path)
    return EXPORTS[kind].load(path)
