"""The split: positions from row content, cuts capped per held-out part, labels per row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pydantic
import pytest

from houseprice.config import SplitConfig
from houseprice.tasks.features import DataSplit as FeaturesDataSplit
from houseprice.tasks.features import split_data as features_split_data
from houseprice.tasks.split import (
    TEST,
    TRAIN,
    VALIDATION,
    DataSplit,
    PartCuts,
    assign_parts,
    part_cuts,
    row_positions,
    split_data,
)
from tests.conftest import make_houses


def test_features_still_exports_the_split():
    assert features_split_data is split_data and FeaturesDataSplit is DataSplit


def test_positions_are_the_seeded_content_hash_split_data_always_used():
    frame = make_houses(50)
    hashes = pd.util.hash_pandas_object(
        frame.astype({"year": "float64"}), index=False, hash_key=f"{42:016d}"
    ).to_numpy()
    np.testing.assert_array_equal(row_positions(frame, 42), hashes / np.float64(2**64))
    assert ((row_positions(frame, 42) >= 0) & (row_positions(frame, 42) < 1)).all()
    assert not np.array_equal(row_positions(frame, 42), row_positions(frame, 43))


def test_positions_of_a_frame_are_the_positions_of_its_pieces():
    frame = make_houses(100, seed=3)
    pieces = [frame.iloc[:17], frame.iloc[17:60], frame.iloc[60:]]
    # A piece read from another file may carry ints where the whole has floats: same positions.
    pieces[1] = pieces[1].astype({"year": "float64"})
    joined = np.concatenate([row_positions(piece, 7) for piece in pieces])
    np.testing.assert_array_equal(joined, row_positions(frame, 7))


def test_uncapped_cuts_are_the_fractions():
    split = SplitConfig(validation_fraction=0.2, test_fraction=0.1, max_held_out_rows=None)
    assert part_cuts(split, 10**9) == PartCuts(0.1, 0.1, 0.1 + 0.2)
    assert part_cuts(SplitConfig(), 1000) == PartCuts(0.15, 0.15, 0.15 + 0.15)


def test_capped_cuts_keep_their_start_and_narrow():
    split = SplitConfig(max_held_out_rows=1_000)
    cuts = part_cuts(split, 20_000)
    assert cuts == PartCuts(0.05, 0.15, 0.15 + 0.05)


def test_labels_follow_the_cuts():
    positions = np.array([0.0, 0.04, 0.05, 0.14, 0.15, 0.19, 0.2, 0.99])
    labels = assign_parts(positions, PartCuts(0.05, 0.15, 0.2))
    expected = [TEST, TEST, TRAIN, TRAIN, VALIDATION, VALIDATION, TRAIN, TRAIN]
    assert labels.dtype == np.int8 and labels.tolist() == expected


def _rows(count: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"id": np.arange(count), "x": rng.normal(size=count)})


def test_the_cap_holds_each_held_out_part_near_its_size():
    split = SplitConfig(max_held_out_rows=1_000)
    parts = split_data(_rows(20_000), split)
    assert 850 < len(parts.test) < 1_150 and 850 < len(parts.validation) < 1_150
    assert len(parts.train) + len(parts.validation) + len(parts.test) == 20_000


def test_growing_data_moves_rows_only_into_training():
    split = SplitConfig(max_held_out_rows=1_000)
    grown = _rows(40_000)
    positions = row_positions(grown, split.seed)
    before = assign_parts(positions[:20_000], part_cuts(split, 20_000))
    after = assign_parts(positions, part_cuts(split, 40_000))[:20_000]
    moved = before != after
    assert moved.any() and (after[moved] == TRAIN).all()
    assert ((before == TRAIN) <= (after == TRAIN)).all()


def test_below_the_cap_the_split_is_the_uncapped_split():
    frame = _rows(2_000)
    capped = split_data(frame, SplitConfig(max_held_out_rows=1_000))
    uncapped = split_data(frame, SplitConfig(max_held_out_rows=None))
    for mine, theirs in zip(capped, uncapped, strict=True):
        pd.testing.assert_frame_equal(mine, theirs)


def test_the_cap_must_be_at_least_a_thousand_rows_or_none():
    assert SplitConfig(max_held_out_rows=None).max_held_out_rows is None
    assert SplitConfig().max_held_out_rows == 1_000_000
    with pytest.raises(pydantic.ValidationError, match="max_held_out_rows"):
        SplitConfig(max_held_out_rows=999)


def test_a_full_sample_assigns_every_row_to_training():
    split = SplitConfig(validation_fraction=0, test_fraction=0)
    labels = assign_parts(row_positions(_rows(50), 0), part_cuts(split, 50))
    assert (labels == TRAIN).all()
