"""Drift: PSI and KS are ~0 on the same data, large on shifted data, and agree with the formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from prefect.logging import disable_run_logger

from houseprice import datasets, layout, registry, storage
from houseprice.champion import ChampionRun, RunBasis, load_champion
from houseprice.config import DataConfig, DriftConfig, PathsConfig, SplitConfig
from houseprice.tasks.drift import (
    EMPTY_SHARE,
    categorical_psi,
    check_drift,
    drift_from_champion,
    ks_statistic,
    measure_drift,
    min_rows_for_psi,
    numeric_psi,
)
from houseprice.tasks.features import split_data
from houseprice.tasks.promote import drift_block_reason
from tests.conftest import make_houses
from tests.fakes import completed_run

DATA = DataConfig(target="price", numeric_features=["area", "year"], categorical_features=["hood"])


def test_identical_data_has_no_drift():
    houses = make_houses(rows=400, seed=0)
    report = measure_drift(houses, houses, DATA, DriftConfig())
    assert report.checked and report.drifted == []
    assert report.scores == pytest.approx({"area": 0, "year": 0, "hood": 0}, abs=1e-12)
    assert report.ks == pytest.approx({"area": 0, "year": 0})


def test_shifted_area_is_flagged_by_psi_and_ks():
    reference = make_houses(rows=400, seed=0)
    bigger = make_houses(rows=200, seed=1).assign(area=lambda f: f["area"] + 800)
    report = measure_drift(reference, bigger, DATA, DriftConfig())
    assert report.scores["area"] > 0.25 and report.ks["area"] > 0.3
    assert report.drifted == ["area"]
    payload = report.to_dict()
    assert payload["threshold"] == 0.25 and payload["drifted"] == ["area"]
    assert payload["scores"]["area"] == report.scores["area"]


def test_a_shift_in_category_shares_is_flagged():
    reference = make_houses(rows=300, seed=0)
    mostly_north = make_houses(rows=300, seed=1).assign(hood=["North"] * 250 + ["South"] * 50)
    report = measure_drift(reference, mostly_north, DATA, DriftConfig())
    assert report.scores["hood"] > 0.25 and report.drifted == ["hood"]


def test_features_missing_on_one_side_or_of_another_kind_are_listed_not_compared():
    # The champion trained before `garage` existed, with `lot` since dropped, `zip` as text
    # and `year` as numbers; a crash here would stop the whole retrain at the drift stage.
    reference = make_houses(rows=300, seed=0).assign(lot=1.0, zip=["a", "b", "c"] * 100)
    current = make_houses(rows=200, seed=1).assign(
        area=lambda f: f["area"] + 800, garage=1.0, zip=np.arange(200) % 3 * 1.0
    )
    current["year"] = current["year"].astype(str)
    data = DataConfig(
        target="price",
        numeric_features=["area", "garage", "lot", "zip"],
        categorical_features=["hood", "year"],
    )
    report = measure_drift(reference, current, data, DriftConfig())
    assert report.checked and set(report.scores) == {"area", "hood"} and set(report.ks) == {"area"}
    assert report.not_comparable == {
        "garage": "not in the champion's training rows",
        "lot": "not in the new rows",
        "zip": "categorical for the champion, numeric now",
        "year": "numeric for the champion, categorical now",
    }
    assert report.note.endswith("PSI above it: area; not comparable: garage, lot, zip, year")
    payload = report.to_dict()
    assert payload["not_comparable"] == report.not_comparable and payload["drifted"] == ["area"]
    # The gate reads scores only: a feature left out neither blocks nor counts as stable.
    assert drift_block_reason(report, DriftConfig()).startswith("drift blocks promotion: area")


def test_a_feature_that_fails_to_score_is_listed_and_the_others_are_still_scored():
    houses = make_houses(rows=200, seed=0).assign(area="big")  # text where numbers are listed
    report = measure_drift(houses, houses, DATA, DriftConfig())
    assert report.checked and set(report.scores) == {"year", "hood"}
    assert report.not_comparable["area"].startswith("could not be scored: ")
    assert "'big'" in report.not_comparable["area"]


def test_whole_number_codes_with_a_gap_are_the_same_levels_as_without():
    # New rows with one missing zip read as floats (50010.0); the model's encoder sees 50010.
    codes = pd.Series([50010, 50011, 50012, 50013] * 50)
    with_gap = codes.astype("float64").mask(codes.index == 0)
    as_nullable_ints = codes.astype("Int64").mask(codes.index == 0)
    psi = categorical_psi(codes, with_gap, bins=10)
    assert psi == pytest.approx(categorical_psi(codes, as_nullable_ints, bins=10)) and psi < 0.1


def test_too_few_new_rows_are_not_scored():
    houses = make_houses(rows=400, seed=0)
    assert min_rows_for_psi(10, 0.25) == 80
    report = measure_drift(houses, houses.head(79), DATA, DriftConfig())
    assert not report.checked and report.scores == {}
    assert "79 new rows, fewer than the 80 a PSI needs" in report.note
    assert measure_drift(houses, houses.head(80), DATA, DriftConfig()).checked


def test_at_the_minimum_size_sampling_noise_stays_below_the_threshold():
    # The reason for the minimum: same distribution, no drift, yet small samples score high.
    rng = np.random.default_rng(0)
    reference = rng.normal(size=2000)
    needed = min_rows_for_psi(10, 0.25)
    at_minimum = [numeric_psi(reference, rng.normal(size=needed), 10) for _ in range(200)]
    assert np.mean(at_minimum) == pytest.approx(0.25 / 2, rel=0.2)
    assert np.quantile(at_minimum, 0.9) < 0.25
    smaller = [numeric_psi(reference, rng.normal(size=needed // 4), 10) for _ in range(200)]
    assert np.median(smaller) > 0.25


def test_psi_matches_the_formula_on_hand_counted_bins():
    # Reference quartiles split 1..8 into [1,2] [3,4] [5,6] [7,8]; current puts 3 of 4 in the top.
    reference, current = np.arange(1.0, 9.0), np.array([1.0, 7.0, 8.0, 8.0])
    expected = np.array([0.25, 0.25, 0.25, 0.25])
    actual = np.array([0.25, EMPTY_SHARE, EMPTY_SHARE, 0.75])
    by_hand = float(np.sum((actual - expected) * np.log(actual / expected)))
    assert numeric_psi(reference, current, bins=4) == pytest.approx(by_hand)
    levels = pd.Series(["a", "a", "b", "b"])
    shifted = pd.Series(["a", "a", "a", "b"])
    by_hand = (0.75 - 0.5) * np.log(0.75 / 0.5) + (0.25 - 0.5) * np.log(0.25 / 0.5)
    assert categorical_psi(levels, shifted, bins=10) == pytest.approx(by_hand)


def test_ks_matches_a_brute_force_cdf_gap():
    rng = np.random.default_rng(3)
    reference, current = rng.normal(size=50), rng.normal(0.5, 1, size=30)
    grid = np.concatenate([reference, current])
    gaps = [abs((reference <= x).mean() - (current <= x).mean()) for x in grid]
    assert ks_statistic(reference, current) == pytest.approx(max(gaps))


def in_memory_champion(
    config: dict | None = None, run_id: str = "champion-run", problem: str | None = None
) -> ChampionRun:
    """A champion built without files: its record, and its run's settings unless problem."""
    record = registry.Champion(run_id, "torch", f"runs/{run_id}/torch_model.pt", "then", "test")
    basis = None if problem else RunBasis(run_id, None, None, config or {}, "abc123")
    return ChampionRun(record, basis, None, problem, "no model in this test")


def test_drift_without_a_champion_or_its_settings_is_not_checked():
    houses = make_houses(rows=100)
    report = drift_from_champion(houses, None, None, DATA, DriftConfig())
    assert not report.checked and report.note == "not checked: no champion yet"
    unreadable = in_memory_champion(problem="while parsing a flow sequence")
    report = drift_from_champion(houses, unreadable, None, DATA, DriftConfig())
    assert report.note == "not checked: while parsing a flow sequence"
    no_split = in_memory_champion({"drift": {}})
    report = drift_from_champion(houses, no_split, houses, DATA, DriftConfig())
    assert not report.checked and report.note == "not checked: 'split'"
    assert report.champion_run_id is None


def test_drift_from_an_in_memory_champion_uses_its_own_split_of_its_rows():
    trained_on, split = make_houses(rows=300, seed=0), SplitConfig(seed=7)
    champion = in_memory_champion({"split": split.model_dump()})
    shifted = make_houses(rows=100, seed=1).assign(year=lambda f: f["year"] + 40)
    report = drift_from_champion(shifted, champion, trained_on, DATA, DriftConfig())
    assert report.checked and report.champion_run_id == "champion-run"
    assert report.reference_rows == len(split_data(trained_on, split).train) < 300
    assert report.drifted == ["year"]


def _check(paths: PathsConfig, current: pd.DataFrame, data: DataConfig = DATA):
    """The drift task as the flow runs it: the champion loaded once, then compared."""
    champion = load_champion(paths.artifacts_dir)
    return check_drift.fn(current, data, DriftConfig(), champion, paths.data_dir)


def test_without_a_champion_drift_is_not_checked_and_says_so(tmp_path):
    paths = PathsConfig(data_dir=tmp_path / "data", artifacts_dir=tmp_path / "artifacts")
    with disable_run_logger():
        report = _check(paths, make_houses(rows=100))
    assert not report.checked and report.note == "not checked: no champion yet"


def _champion(paths: PathsConfig, frame: pd.DataFrame, split: SplitConfig) -> str:
    """A completed, promoted run that trained on frame with the given split settings."""
    run = completed_run(paths.artifacts_dir, "champion-run")
    snapshot = datasets.store_snapshot(frame, paths.data_dir)
    storage.write_json_atomic(run.lineage, {"snapshot": snapshot.content_hash})
    run.config.write_text(yaml.safe_dump({"split": split.model_dump()}))
    registry.promote(paths.artifacts_dir, run.run_id, "torch", "test")
    return run.run_id


def test_drift_compares_with_the_champions_training_part_only(tmp_path):
    paths = PathsConfig(data_dir=tmp_path / "data", artifacts_dir=tmp_path / "artifacts")
    trained_on, split = make_houses(rows=300, seed=0), SplitConfig(seed=7)
    run_id = _champion(paths, trained_on, split)
    shifted = make_houses(rows=100, seed=1).assign(year=lambda f: f["year"] + 40)
    with disable_run_logger():
        report = _check(paths, shifted)
    assert report.checked and report.champion_run_id == run_id
    assert report.reference_rows == len(split_data(trained_on, split).train) < 300
    assert report.drifted == ["year"]


def test_a_champion_trained_on_other_columns_is_compared_on_the_shared_ones(tmp_path):
    paths = PathsConfig(data_dir=tmp_path / "data", artifacts_dir=tmp_path / "artifacts")
    _champion(paths, make_houses(rows=300, seed=0), SplitConfig())
    data = DATA.model_copy(update={"numeric_features": ["area", "year", "garage"]})
    with disable_run_logger():
        report = _check(paths, make_houses(rows=100).assign(garage=2.0), data)
    assert report.checked and set(report.scores) == {"area", "year", "hood"}
    assert report.not_comparable == {"garage": "not in the champion's training rows"}


def test_a_champion_with_a_damaged_config_leaves_drift_unchecked(tmp_path):
    paths = PathsConfig(data_dir=tmp_path / "data", artifacts_dir=tmp_path / "artifacts")
    run_id = _champion(paths, make_houses(rows=300, seed=0), SplitConfig())
    layout.open_run(paths.artifacts_dir, run_id).config.write_text("split: [unclosed\n")
    with disable_run_logger():
        report = _check(paths, make_houses(rows=100))
    assert not report.checked and report.note.startswith("not checked: while parsing")


def test_a_champion_without_its_snapshot_leaves_drift_unchecked(tmp_path):
    paths = PathsConfig(data_dir=tmp_path / "data", artifacts_dir=tmp_path / "artifacts")
    _champion(paths, make_houses(rows=300, seed=0), SplitConfig())
    for snapshot in datasets.snapshots_dir(paths.data_dir).iterdir():
        snapshot.unlink()
    with disable_run_logger():
        report = _check(paths, make_houses(rows=100))
    assert not report.checked and report.note.startswith("not checked: no data snapshot")
