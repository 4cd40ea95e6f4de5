"""PyTorch's stand-alone export: raw columns in, price out, as a torch.export program (.pt2).

Imports torch, numpy and the trainers' common module only.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from houseprice.exports import Scorer, input_names, utf8_bytes
from houseprice.trainers.common import (
    TrainResult,
    check_zip_archive,
    describe_load_failure,
    export_view,
)

if TYPE_CHECKING:
    from houseprice.preprocessing import Preprocessor


class _PriceProgram(torch.nn.Module):
    """Raw columns → price: impute, one-hot, scale, the linear model, then the inverse target.

    Categories arrive as UTF-8 bytes (rows, width) since tensors hold no strings. Each column is
    cut or zero-padded to one width, which has room for the longest level plus a zero byte, so a
    longer string can never pass for a level. torch.export pays ~20 ms per traced operation, so
    all categorical columns are compared with all levels at once, in 8-byte words.
    """

    def __init__(self, result: TrainResult, prep: Preprocessor) -> None:
        super().__init__()
        names = input_names(prep)  # the inputs' export names, as in signature.json
        self.numeric = [names[c] for c in prep.numeric_features]
        self.categorical = [names[c] for c in prep.categorical_features]
        as_tensor = functools.partial(torch.tensor, dtype=torch.float64)
        medians = [prep.medians[c] for c in prep.numeric_features]
        self.register_buffer("medians", as_tensor(medians))
        words, positions = _level_words([prep.levels[c] for c in prep.categorical_features])
        self.register_buffer("level_words", words)  # (columns, most levels, words)
        self.register_buffer("level_positions", positions)  # design order in the flat table
        self.width = words.shape[2] * 8
        self.register_buffer("means", as_tensor(prep.means))
        self.register_buffer("scales", as_tensor(prep.scales))
        self.register_buffer("weight", as_tensor(np.asarray(result.weights))[None])
        self.register_buffer("bias", as_tensor([result.bias]))
        self.target_mean, self.target_scale = prep.price_offset, prep.target_scale
        self.log_target = prep.log_target

    def forward(self, columns: dict[str, torch.Tensor]) -> torch.Tensor:
        blocks = []
        if self.numeric:
            numbers = torch.stack([columns[c] for c in self.numeric], dim=1)
            blocks.append(torch.where(torch.isnan(numbers), self.medians, numbers))
        if self.positions_count:
            pad = torch.nn.functional.pad  # a negative pad cuts: any width in, self.width out
            cut = [pad(columns[c], (0, self.width - columns[c].shape[1])) for c in self.categorical]
            words = torch.stack(cut, dim=1).view(torch.int64)  # (rows, columns, words)
            same = (words[:, :, None, :] == self.level_words[None]).all(dim=3)
            flat = same.reshape(same.shape[0], -1).index_select(1, self.level_positions)
            blocks.append(flat.to(torch.float64))
        design = (torch.cat(blocks, dim=1) - self.means) / self.scales
        # F.linear, as torch.nn.Linear in the saved model, so both round alike.
        scaled = torch.nn.functional.linear(design, self.weight, self.bias)[:, 0]
        values = scaled * self.target_scale + self.target_mean
        return torch.exp(values) if self.log_target else values

    @property
    def positions_count(self) -> int:
        return int(self.level_positions.shape[0])


def _level_words(levels: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each column's levels as zero-padded UTF-8 in int64 words, and their flat design order.

    Rows past a column's own levels hold 0xFF bytes, which UTF-8 never contains: they match
    nothing.
    """
    if not levels:  # no categorical column: nothing to compare (an empty table has no words)
        return torch.zeros((0, 1, 1), dtype=torch.int64), torch.zeros(0, dtype=torch.int64)
    encoded = [[level.encode("utf-8") for level in column] for column in levels]
    longest = max([0, *(len(code) for column in encoded for code in column)])
    width = 8 * (longest // 8 + 1)  # room for at least one zero byte after the longest level
    most = max([1, *(len(column) for column in encoded)])
    table = np.full((len(levels), most, width), 0xFF, dtype=np.uint8)
    positions = []
    for index, column in enumerate(encoded):
        for row, code in enumerate(column):
            table[index, row] = 0
            table[index, row, : len(code)] = np.frombuffer(code, dtype=np.uint8)
            positions.append(index * most + row)
    words = torch.from_numpy(table).view(torch.int64)
    return words, torch.tensor(positions, dtype=torch.int64)


def export_torch_model(result: TrainResult, prep: Preprocessor, path: Path) -> None:
    """Export raw columns → price with torch.export (.pt2): any rows, any category width."""
    result, prep = export_view(result, prep)
    module = _PriceProgram(result, prep).eval()
    rows = torch.export.Dim("rows")
    example, shapes = {}, {}
    for column in module.numeric:
        example[column] = torch.zeros(2, dtype=torch.float64)
        shapes[column] = {0: rows}
    for index, column in enumerate(module.categorical):
        example[column] = torch.zeros(2, 3, dtype=torch.uint8)
        shapes[column] = {0: rows, 1: torch.export.Dim(f"width_{index}")}
    program = torch.export.export(module, (example,), dynamic_shapes=(shapes,))
    torch.export.save(program, path)


def load_torch_export(path: Path) -> torch.nn.Module:
    """Load a .pt2 from export_torch_model: a module mapping a dict of raw columns to prices."""
    check_zip_archive("torch export", Path(path))
    export_logger = logging.getLogger("torch.export")
    level = export_logger.level
    export_logger.setLevel(logging.ERROR)  # it logs a traceback before raising; we explain instead
    try:
        return torch.export.load(path).module()
    except Exception as error:  # a broken archive fails deep inside the deserializer
        raise describe_load_failure("torch export", path, error) from None
    finally:
        export_logger.setLevel(level)


def torch_export_scorer(path: Path) -> Scorer:
    """The .pt2 program as a function of raw columns (categories as strings) to prices."""
    program = load_torch_export(path)

    def score(columns: dict[str, np.ndarray]) -> np.ndarray:
        tensors = {
            name: torch.tensor(values if values.dtype != object else utf8_bytes(values))
            for name, values in columns.items()
        }
        return program(tensors).numpy()

    return score
