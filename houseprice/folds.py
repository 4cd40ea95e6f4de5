"""Stages as folds over chunks: per_chunk(rows) → partial, combine(a, b) → partial, finish(total).

A data stage is written once, as a Fold, whatever the data's size: a small frame is one chunk,
50M rows are fifty. An engine (flows/engine.py) reads each chunk where it runs it, applies
per_chunk there, combines the partials in chunk order as they arrive, and calls finish once, in
the flow. This is the shape of Dask's reductions (chunk / combine / aggregate), Spark's
treeAggregate and Deequ's mergeable metric states.

The contract a Fold keeps:
- per_chunk sees one chunk's rows, indexed by their positions in the whole table (so a failure
  names the data's row 7,301, not the chunk's row 3) and restricted to `columns` when given;
- partials are small and picklable (counts, sums, cross-products, GX's result counts), never
  rows: a cluster sends back what the flow folds, and the flow's memory does not grow with the
  chunks;
- combine is associative, so the result is the same for any chunking: `fold_frames` over one
  frame and over its pieces must agree (tests/test_folds.py is the chunked twin of a reference
  test). Engines combine in chunk order, so order-sensitive partials (the first 20 offending
  values) come out as the whole frame's.

This module is the ground: no Prefect, no engine. `fold_frames` is the reference fold every
engine must reproduce, and what a test or a one-frame caller uses directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import pandas as pd

if TYPE_CHECKING:
    from houseprice.chunks import ChunkedTable

Partial = TypeVar("Partial")
Result = TypeVar("Result", covariant=True)


@runtime_checkable
class Fold(Protocol[Partial, Result]):
    """One data stage over chunks; see the module's docstring for the contract."""

    name: str  # the stage, in progress lines, errors and task names
    columns: tuple[str, ...] | None  # what per_chunk reads; None: every column
    # Whether two chunks may run at once on threads of one process: worth it for numpy and
    # pyarrow work, which releases the GIL, not for Python-bound work such as GX's.
    threads_help: bool

    def per_chunk(self, rows: pd.DataFrame) -> Partial:
        """The partial of one chunk's rows."""
        ...

    def combine(self, first: Partial, second: Partial) -> Partial:
        """The partial of first's rows followed by second's."""
        ...

    def finish(self, total: Partial) -> Result:
        """The stage's typed result from the partial of every row."""
        ...


class Engine(Protocol):
    """What folds a stage's chunks: handed to the stage by the flow (flows/engine.py)."""

    def fold(self, fold: Fold[Any, Result], table: ChunkedTable) -> Result:
        """fold's result over every chunk of table."""
        ...


def select_columns(rows: pd.DataFrame, columns: Sequence[str] | None) -> pd.DataFrame:
    """The rows a fold reads: only its columns (those the chunk has), else all of them."""
    if columns is None:
        return rows
    return rows[[column for column in columns if column in rows.columns]]


def combine_all(fold: Fold[Partial, Any], partials: Iterable[Partial]) -> Partial:
    """The partials combined left to right (in chunk order); at least one is needed."""
    iterator = iter(partials)
    try:
        total = next(iterator)
    except StopIteration:
        raise ValueError(f"{fold.name}: no chunks to fold") from None
    for partial in iterator:
        total = fold.combine(total, partial)
    return total


def fold_frames(fold: Fold[Any, Result], frames: Iterable[pd.DataFrame]) -> Result:
    """The reference fold in this process: every engine must compute the same result.

    Each frame keeps its index, so give pieces of one table their positions in it.
    """
    partials = (fold.per_chunk(select_columns(frame, fold.columns)) for frame in frames)
    return fold.finish(combine_all(fold, partials))


def frame_pieces(frame: pd.DataFrame, rows: int) -> list[pd.DataFrame]:
    """frame in consecutive pieces of at most rows rows, each keeping its row labels."""
    if rows < 1:
        raise ValueError(f"a piece needs at least one row, got {rows}")
    return [frame.iloc[start : start + rows] for start in range(0, max(len(frame), 1), rows)]


@dataclass(frozen=True)
class Fused:
    """Several folds fed by one read of each chunk: the union of their columns, read once.

    Its partial and its result are tuples, one entry per fold, in the order given.
    """

    folds: tuple[Fold[Any, Any], ...]

    @property
    def name(self) -> str:
        return "+".join(fold.name for fold in self.folds)

    @property
    def columns(self) -> tuple[str, ...] | None:
        if any(fold.columns is None for fold in self.folds):
            return None
        return tuple(dict.fromkeys(column for fold in self.folds for column in fold.columns))

    @property
    def threads_help(self) -> bool:
        return all(fold.threads_help for fold in self.folds)

    def per_chunk(self, rows: pd.DataFrame) -> tuple[Any, ...]:
        return tuple(fold.per_chunk(select_columns(rows, fold.columns)) for fold in self.folds)

    def combine(self, first: tuple[Any, ...], second: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(
            fold.combine(a, b) for fold, a, b in zip(self.folds, first, second, strict=True)
        )

    def finish(self, total: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(fold.finish(part) for fold, part in zip(self.folds, total, strict=True))
