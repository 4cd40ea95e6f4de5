"""The split: which part each row belongs to, from its content alone (in memory or streamed).

A row's position in [0, 1) is a seeded hash of its values, so it depends on no other row: a
chunk's positions are the same whether it is hashed alone or inside the whole table. The cuts
between parts depend only on the split settings and the total row count, so every chunk of a
streamed table is split exactly as the whole table would be in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from houseprice.config import SplitConfig

TRAIN, VALIDATION, TEST = 0, 1, 2  # assign_parts' labels


def row_positions(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """Each row's position in [0, 1), from a seeded hash of its values (its index ignored)."""
    hash_key = f"{seed:016d}"[-16:]  # pandas wants exactly 16 characters
    row_hashes = pd.util.hash_pandas_object(
        comparable_values(frame), index=False, hash_key=hash_key
    ).to_numpy()
    return row_hashes / np.float64(2**64)  # uniform in [0, 1)


def comparable_values(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with dtype differences erased: numbers as float64, everything else as text.

    A merge that turns an int column into floats (one new row with a gap or a decimal) must
    not change which part a row hashes to; nor must a chunk whose ints happen to have no gap.
    """
    columns = {}
    for name, values in frame.items():
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        columns[name] = values.astype("float64") if numeric else values.astype("object").astype(str)
    return pd.DataFrame(columns, index=frame.index)


@dataclass(frozen=True)
class PartCuts:
    """Position intervals of the held-out parts: test [0, test_end), validation [start, end)."""

    test_end: float
    validation_start: float
    validation_end: float


def part_cuts(split: SplitConfig, total_rows: int) -> PartCuts:
    """The cuts for a table of total_rows rows, each held-out part capped at max_held_out_rows.

    A capped part keeps its start and narrows to cap / total_rows, so as the table grows its
    interval only shrinks: the rows it gives up go to training, and no row ever leaves training
    for a held-out part (a champion is never scored on rows it trained on).
    """
    test_width, validation_width = split.test_fraction, split.validation_fraction
    cap = split.max_held_out_rows
    if cap is not None and total_rows > 0:
        test_width = min(test_width, cap / total_rows)
        validation_width = min(validation_width, cap / total_rows)
    start = split.test_fraction
    return PartCuts(test_width, start, start + validation_width)


def assign_parts(positions: np.ndarray, cuts: PartCuts) -> np.ndarray:
    """Each position's part as int8: TRAIN, VALIDATION or TEST."""
    labels = np.full(len(positions), TRAIN, dtype=np.int8)
    labels[positions < cuts.test_end] = TEST
    in_validation = (cuts.validation_start <= positions) & (positions < cuts.validation_end)
    labels[in_validation] = VALIDATION
    return labels


@dataclass(frozen=True)
class PartRows:
    """Which of a chunk's rows belong to one part: picklable, for a fold's row selector."""

    seed: int
    cuts: PartCuts
    part: int  # TRAIN, VALIDATION or TEST

    def __call__(self, rows: pd.DataFrame) -> np.ndarray:
        return assign_parts(row_positions(rows, self.seed), self.cuts) == self.part


class DataSplit(NamedTuple):
    """Row subsets of one frame; together they hold every row exactly once."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def split_data(frame: pd.DataFrame, split: SplitConfig) -> DataSplit:
    """Split rows by a seeded hash of their content: same data and seed, same split.

    A row's part depends on its own content only (hash below test_fraction → test, and so on),
    so a row stays in its part when the file is reordered or grows: a champion is never scored
    on rows it trained on, and duplicated rows never straddle train and test. Held-out parts
    are capped at split.max_held_out_rows (part_cuts). On tiny data, where a part could come
    out empty, the parts are cut by hash rank instead.
    """
    if split.full_sample:  # fit on every row; nothing is held out
        empty = frame.iloc[:0].reset_index(drop=True)
        return DataSplit(frame.reset_index(drop=True), empty, empty.copy())
    if len(frame) < 3:
        raise ValueError(f"need at least 3 rows to split, got {len(frame)}")
    position = row_positions(frame, split.seed)
    labels = assign_parts(position, part_cuts(split, len(frame)))
    parts = [labels == TEST, labels == VALIDATION, labels == TRAIN]
    if min(part.sum() for part in parts) == 0:
        ranks = np.empty(len(frame), dtype=int)
        ranks[np.argsort(position, kind="stable")] = np.arange(len(frame))
        n_test = max(1, round(len(frame) * split.test_fraction))
        n_val_end = n_test + max(1, round(len(frame) * split.validation_fraction))
        parts = [ranks < n_test, (ranks >= n_test) & (ranks < n_val_end), ranks >= n_val_end]
    test, val, train = (frame[part].reset_index(drop=True) for part in parts)
    return DataSplit(train, val, test)
