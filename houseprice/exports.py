"""Stand-alone exports: a run's model as ONNX, plus each trainer's own (torch.export, SavedModel).

Each export takes the raw feature columns and returns prices: imputation, one-hot encoding,
scaling and the inverse target transform (log included) are inside, so serving needs neither
this package nor preprocessing.json. The input convention, the same for all three:

- a numeric column: float64, shape (rows,); NaN is a missing value (scored as the median);
- a categorical column: strings, shape (rows,), written as `category_strings` writes them
  (a missing value is "<missing>"; an unseen category scores as the reference level).
  torch tensors hold no strings, so the torch program takes each category as its UTF-8 bytes,
  a uint8 tensor (rows, any width) zero-padded on the right, which `utf8_bytes` makes.

Column names may be anything a CSV header holds (spaces, accents, quotes, HTML, newlines), while
TensorFlow signatures and most serving stacks accept only identifiers. So each export names its
inputs `f<position>_<ascii slug>` (`input_names`), and signature.json maps each input back to
its column (`name`), as `raw_columns` does for a frame.

`exports/signature.json` lists the columns, and which fit each export holds. The builders live
with their framework (houseprice/trainers/*, tasks/export.py); this module holds the convention and
the checked loading, importing each runtime only when that export is loaded; a trainer's own
export format comes from its spec (houseprice/trainers/__init__.py).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from houseprice import layout, registry, storage
from houseprice.errors import ModelLoadError
from houseprice.preprocessing import MISSING_LEVEL, Preprocessor, category_strings
from houseprice.trainers import TrainerSpec, get_trainer, trainer_names

SIGNATURE_FORMAT = 2  # 2: each input has its export name ("input") beside its column name

# The slug keeps an input readable; the position alone keeps it unique ("Lot Area", "lot_area").
_SLUG_LENGTH = 40

Scorer = Callable[[dict[str, np.ndarray]], np.ndarray]  # raw columns → prices (rows,)


@dataclass(frozen=True)
class ExportSpec:
    """One export format: where a run keeps it and how to load it as a scorer."""

    kind: str
    path: Callable[[layout.RunPaths], Path]
    load: Callable[[Path], Scorer]


def export_names(columns: Sequence[str]) -> dict[str, str]:
    """Each column's input name in the exports: `f<position>_<ascii slug>`, e.g. `f0_lot_area`.

    TensorFlow accepts only `[A-Za-z0-9.][A-Za-z0-9_.\\-/]*` in a signature, and the position
    first makes every name a valid identifier in Python, C and ONNX tooling alike.
    """
    names = {}
    for position, column in enumerate(columns):
        ascii_name = unicodedata.normalize("NFKD", column).encode("ascii", "ignore").decode()
        slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")[:_SLUG_LENGTH]
        names[column] = f"f{position}_{slug}".rstrip("_")
    return names


def input_names(preprocessor: Preprocessor) -> dict[str, str]:
    """The exports' input name of each raw column, numeric columns first, as in the signature."""
    return export_names([*preprocessor.numeric_features, *preprocessor.categorical_features])


def raw_columns(frame: pd.DataFrame, preprocessor: Preprocessor) -> dict[str, np.ndarray]:
    """The exports' inputs from a frame, by input name: float64 numbers, categories as strings."""
    inputs = input_names(preprocessor)
    columns = {
        inputs[name]: pd.to_numeric(frame[name], errors="coerce").to_numpy("float64")
        for name in preprocessor.numeric_features
    }
    for name in preprocessor.categorical_features:
        columns[inputs[name]] = category_strings(frame[name]).astype(object)
    return columns


def utf8_bytes(values: np.ndarray) -> np.ndarray:
    """Strings as a (rows, width) uint8 array of their UTF-8 bytes, zero-padded on the right."""
    encoded = np.char.encode(np.asarray(values, dtype=str), "utf-8")
    return encoded.view(np.uint8).reshape(len(encoded), encoded.dtype.itemsize)


def build_signature(preprocessor: Preprocessor, holders: dict[str, str | None]) -> dict[str, Any]:
    """signature.json: the input columns, the output, and which fit each export holds."""
    names = input_names(preprocessor)
    inputs = [
        {
            "name": name,
            "input": names[name],
            "kind": "numeric",
            "dtype": "float64",
            "missing": "NaN",
        }
        for name in preprocessor.numeric_features
    ]
    inputs += [
        {
            "name": name,
            "input": names[name],
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


class _ExportKinds(Mapping[str, ExportSpec]):
    """ONNX, then each registered trainer's own export, read from the registry at each use.

    A trainer's export is read by its own module, imported only when that export is loaded.
    """

    def _kinds(self) -> dict[str, ExportSpec]:
        kinds = {"onnx": ExportSpec("onnx", lambda run: run.onnx_export, _load_onnx)}
        for name in trainer_names():
            spec = get_trainer(name)
            if spec.export_file is not None:
                kinds[name] = ExportSpec(
                    name,
                    functools.partial(_trainer_export_path, spec),
                    functools.partial(_load_trainer_export, spec),
                )
        return kinds

    def __getitem__(self, kind: str) -> ExportSpec:
        return self._kinds()[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds())

    def __len__(self) -> int:
        return len(self._kinds())


def _trainer_export_path(spec: TrainerSpec, run: layout.RunPaths) -> Path:
    return run.trainer_export(spec)


def _load_trainer_export(spec: TrainerSpec, path: Path) -> Scorer:
    return spec.function("read_export")(path)


EXPORTS = _ExportKinds()


def export_files(path: Path) -> list[Path]:
    """The files of an export: the file itself, or every file in a SavedModel folder."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def verify_export(run: layout.RunPaths, path: Path) -> None:
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
