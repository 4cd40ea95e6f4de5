"""Exact medians from mergeable counts: the same value whether the rows come whole or in chunks.

Imputation uses each numeric column's median over the training rows, and the fit must not
depend on how the rows were chunked. A sketch (t-digest, KLL) would give a median that moves with
the chunking; these counts do not:
- `ValueCounts`: every distinct present value and how often it occurs, sorted. Exact and small
  for the columns houses have (areas, years, rooms: thousands of distinct values at most).
- Past MAX_DISTINCT values the counts become `BucketCounts`: how many values fall in each of
  2¹⁶ fixed ranges of the float64 order (the top 16 bits of its order-preserving key), the same
  ranges for every chunk. The median's range is then known, and one more pass over the rows
  (`values_between`) collects just the values in it to finish exactly.
The median of an even count is the mean of the middle two, as pandas computes it.

Ground module: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Distinct values kept before switching to bucket counts: 200k values and counts are ~3 MB.
MAX_DISTINCT = 200_000
BUCKET_BITS = 16


@dataclass(frozen=True)
class ValueCounts:
    """Each distinct present (finite) value of a column and its count, values ascending."""

    values: np.ndarray  # float64
    counts: np.ndarray  # int64

    @classmethod
    def of(cls, values: np.ndarray) -> ValueCounts | BucketCounts:
        """The counts of a chunk's values (missing ones skipped)."""
        values = np.asarray(values, dtype="float64")
        present = values[~np.isnan(values)]
        distinct, counts = np.unique(present, return_counts=True)
        return _capped(cls(distinct, counts.astype("int64")))

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def __add__(self, other: ValueCounts | BucketCounts) -> ValueCounts | BucketCounts:
        if isinstance(other, BucketCounts):
            return other + self
        values = np.concatenate([self.values, other.values])
        counts = np.concatenate([self.counts, other.counts])
        distinct, where = np.unique(values, return_inverse=True)
        return _capped(ValueCounts(distinct, np.bincount(where, counts).astype("int64")))

    def __sub__(self, other: ValueCounts | BucketCounts) -> ValueCounts | BucketCounts:
        """The counts of these values less other's, which must be among them."""
        if isinstance(other, BucketCounts):
            return BucketCounts.of(np.repeat(self.values, self.counts)) - other
        where = np.searchsorted(self.values, other.values)
        counts = self.counts.copy()
        counts[where] -= other.counts
        kept = counts > 0
        return ValueCounts(self.values[kept], counts[kept])

    def median(self) -> float | None:
        """The median (None with no values)."""
        if not self.total:
            return None
        cumulative = np.cumsum(self.counts)
        low, high = _middle_ranks(self.total)
        return (self._at(cumulative, low) + self._at(cumulative, high)) / 2

    def _at(self, cumulative: np.ndarray, rank: int) -> float:
        """The value at a 0-based rank of the sorted values."""
        return float(self.values[np.searchsorted(cumulative, rank, side="right")])


@dataclass(frozen=True)
class BucketCounts:
    """How many present values fall in each fixed range of the float64 order."""

    counts: np.ndarray  # int64, 2**BUCKET_BITS

    @classmethod
    def of(cls, values: np.ndarray) -> BucketCounts:
        values = np.asarray(values, dtype="float64")
        buckets = _bucket(values[~np.isnan(values)])
        return cls(np.bincount(buckets, minlength=1 << BUCKET_BITS).astype("int64"))

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def __add__(self, other: ValueCounts | BucketCounts) -> BucketCounts:
        theirs = (
            other
            if isinstance(other, BucketCounts)
            else BucketCounts.of(np.repeat(other.values, other.counts))
        )
        return BucketCounts(self.counts + theirs.counts)

    def __sub__(self, other: ValueCounts | BucketCounts) -> BucketCounts:
        """The counts of these values less other's, which must be among them."""
        theirs = (
            other
            if isinstance(other, BucketCounts)
            else BucketCounts.of(np.repeat(other.values, other.counts))
        )
        return BucketCounts(self.counts - theirs.counts)

    def median_window(self) -> MedianWindow | None:
        """The range holding the middle value(s), and how many values lie below it."""
        if not self.total:
            return None
        cumulative = np.cumsum(self.counts)
        low, high = _middle_ranks(self.total)
        first = int(np.searchsorted(cumulative, low, side="right"))
        last = int(np.searchsorted(cumulative, high, side="right"))
        below = int(cumulative[first - 1]) if first else 0
        return MedianWindow(first, last, below, self.total)


@dataclass(frozen=True)
class MedianWindow:
    """Buckets first..last hold the median; `below` values precede them, of `total`."""

    first: int
    last: int
    below: int
    total: int

    def values_between(self, values: np.ndarray) -> np.ndarray:
        """A chunk's values inside the window (the second pass keeps only these)."""
        values = np.asarray(values, dtype="float64")
        present = values[~np.isnan(values)]
        bucket = _bucket(present)
        return np.sort(present[(bucket >= self.first) & (bucket <= self.last)])

    def median(self, inside: np.ndarray) -> float:
        """The exact median from every value inside the window (all chunks' values_between)."""
        inside = np.sort(np.asarray(inside, dtype="float64"))
        low, high = _middle_ranks(self.total)
        return (float(inside[low - self.below]) + float(inside[high - self.below])) / 2


def _middle_ranks(total: int) -> tuple[int, int]:
    """The 0-based ranks of the middle value(s): one for an odd count, two for an even."""
    return (total - 1) // 2, total // 2


def _capped(counts: ValueCounts) -> ValueCounts | BucketCounts:
    if len(counts.values) <= MAX_DISTINCT:
        return counts
    return BucketCounts.of(np.repeat(counts.values, counts.counts))


def _bucket(values: np.ndarray) -> np.ndarray:
    """Each value's bucket: the top bits of a key that sorts as the floats do."""
    bits = np.ascontiguousarray(values, dtype="float64").view("uint64")
    negative = (bits >> np.uint64(63)).astype(bool)
    # Negative floats sort backwards by their bits: flip all of them; positive: flip the sign.
    keys = np.where(negative, ~bits, bits | np.uint64(1 << 63))
    return (keys >> np.uint64(64 - BUCKET_BITS)).astype("int64")
