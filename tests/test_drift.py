"""Drift: PSI and KS are ~0 on the same data, large on shifted data, and agree with the formulas.

Both sides are profiles folded over chunks; the chunked twins fold the same rows in one chunk
and in many and expect the same profile, and the direct computations on whole arrays (below)
are the reference the profiles must reproduce.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from prefect.logging import disable_run_logger

from houseprice import datasets, layout, medians, registry, storage
from houseprice.champion import ChampionRun, RunBasis, load_champion
from houseprice.config import DataConfig, DriftConfig, PathsConfig, SplitConfig
from houseprice.drift_profile import STORED_POINTS, DriftProfile
from houseprice.flows.engine import LocalEngine
from houseprice.folds import fold_frames, frame_pieces
from houseprice.tasks.drift import (
    EMPTY_SHARE,
    categorical_psi,
    check_drift,
    compare_profiles,
    ks_statistic,
    measure_drift,
    min_rows_for_psi,
    numeric_psi,
    profile_ks,
)
from houseprice.tasks.drift_profiles import (
    DriftProfileFold,
    TrainingRows,
    champion_profile,
    profiled_features,
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


def _reference(paths: PathsConfig, champion: ChampionRun | None, data: DataConfig = DATA):
    """The champion's training profile as the flow gets it (stored, else from its snapshot)."""
    with disable_run_logger():
        return champion_profile(champion, data, paths, 1_000, LocalEngine())


def test_drift_without_a_champion_or_its_settings_is_not_checked(tmp_path):
    paths = PathsConfig(data_dir=tmp_path / "data", artifacts_dir=tmp_path / "artifacts")
    new = fold_frames(DriftProfileFold(profiled_features(DATA)), [make_houses(rows=100)])
    cases = {
        "not checked: no champion yet": None,
        "not checked: while parsing a flow sequence": in_memory_champion(
            problem="while parsing a flow sequence"
        ),
        "not checked: 'split'": in_memory_champion({"drift": {}}),
        "not checked: no data snapshot abc123": in_memory_champion(
            {"split": SplitConfig().model_dump()}
        ),
    }
    for note, champion in cases.items():
        reference = _reference(paths, champion)
        with disable_run_logger():
            report = check_drift.fn(new, reference, DATA, DriftConfig())
        assert not report.checked and report.note.startswith(note), (note, report.note)
        assert report.champion_run_id is None


def test_the_training_profile_is_the_profile_of_split_datas_training_rows():
    # The reference: split the whole frame in memory, then profile its training part.
    houses = make_houses(rows=600, seed=4)
    houses.loc[houses.index % 7 == 0, "area"] = np.nan
    split = SplitConfig(seed=7)
    features = profiled_features(DATA)
    expected = fold_frames(DriftProfileFold(features), [split_data(houses, split).train])
    training = DriftProfileFold(features, TrainingRows.of(split, len(houses)))
    for pieces in ([houses], frame_pieces(houses, 101)):
        got = fold_frames(training, pieces)
        assert got.rows == expected.rows < 600
        assert got.to_dict()["features"] == expected.to_dict()["features"]


def _check(paths: PathsConfig, current: pd.DataFrame, data: DataConfig = DATA):
    """The drift stage as the flow runs it: the champion loaded once, then compared."""
    champion = load_champion(paths.artifacts_dir)
    new = fold_frames(DriftProfileFold(profiled_features(data)), [current])
    reference = _reference(paths, champion, data)
    with disable_run_logger():
        return check_drift.fn(new, reference, data, DriftConfig())


def test_without_a_champion_drift_is_not_checked_and_says_so(tmp_path):
    paths = PathsConfig(data_dir=tmp_path / "data", artifacts_dir=tmp_path / "artifacts")
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
    report = _check(paths, shifted)
    assert report.checked and report.champion_run_id == run_id
    assert report.reference_rows == len(split_data(trained_on, split).train) < 300
    assert report.drifted == ["year"]


def test_a_champion_trained_on_other_columns_is_compared_on_the_shared_ones(tmp_path):
    paths = PathsConfig(data_dir=tmp_path / "data", artifacts_dir=tmp_path / "artifacts")
    _champion(paths, make_houses(rows=300, seed=0), SplitConfig())
    data = DATA.model_copy(update={"numeric_features": ["area", "year", "garage"]})
    report = _check(paths, make_houses(rows=100).assign(garage=2.0), data)
    assert report.checked and set(report.scores) == {"area", "year", "hood"}
    assert report.not_comparable == {"garage": "not in the champion's training rows"}


def test_a_champion_with_a_damaged_config_leaves_drift_unchecked(tmp_path):
    paths = PathsConfig(data_dir=tmp_path / "data", artifacts_dir=tmp_path / "artifacts")
    run_id = _champion(paths, make_houses(rows=300, seed=0), SplitConfig())
    layout.open_run(paths.artifacts_dir, run_id).config.write_text("split: [unclosed\n")
    report = _check(paths, make_houses(rows=100))
    assert not report.checked and report.note.startswith("not checked: while parsing")


def test_a_champion_without_its_snapshot_leaves_drift_unchecked(tmp_path):
    paths = PathsConfig(data_dir=tmp_path / "data", artifacts_dir=tmp_path / "artifacts")
    _champion(paths, make_houses(rows=300, seed=0), SplitConfig())
    for snapshot in datasets.snapshots_dir(paths.data_dir).iterdir():
        snapshot.unlink()
    report = _check(paths, make_houses(rows=100))
    assert not report.checked and report.note.startswith("not checked: no data snapshot")


# ---------------------------------------------------------------------------------------------
# The profiles against the direct computation on whole arrays, and folded in one chunk or many.


def _direct_numeric_psi(reference: np.ndarray, current: np.ndarray, bins: int) -> float:
    """PSI over quantile bins of the whole reference array, sorted in memory (the reference)."""
    known = reference[~np.isnan(reference)]
    edges = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1]))
    size = len(edges) + 2

    def shares(values: np.ndarray) -> np.ndarray:
        codes = np.where(np.isnan(values), size - 1, np.searchsorted(edges, values, side="right"))
        return np.bincount(codes, minlength=size) / len(values)

    ref, cur = (np.maximum(shares(v), EMPTY_SHARE) for v in (reference, current))
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _direct_ks(reference: np.ndarray, current: np.ndarray) -> float:
    reference, current = (np.sort(v[~np.isnan(v)]) for v in (reference, current))
    pooled = np.concatenate([reference, current])
    gaps = (
        np.searchsorted(reference, pooled, side="right") / reference.size
        - np.searchsorted(current, pooled, side="right") / current.size
    )
    return float(np.max(np.abs(gaps)))


def _with_gaps(frame: pd.DataFrame, every: int) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[frame.index % every == 0, "area"] = np.nan
    frame.loc[frame.index % (every + 2) == 1, "hood"] = None
    return frame


def test_psi_and_ks_equal_the_direct_computation_on_whole_arrays():
    reference = _with_gaps(make_houses(rows=700, seed=0), 11)
    current = _with_gaps(make_houses(rows=300, seed=1), 5).assign(area=lambda f: f["area"] * 1.1)
    report = measure_drift(reference, current, DATA, DriftConfig(bins=7))
    for column in ("area", "year"):
        old, new = (f[column].astype("float64").to_numpy() for f in (reference, current))
        assert report.scores[column] == _direct_numeric_psi(old, new, 7), column
        assert report.ks[column] == _direct_ks(old, new), column


def test_a_profile_folded_in_one_chunk_or_many_gives_the_same_drift(monkeypatch):
    reference = _with_gaps(make_houses(rows=900, seed=0), 13)
    current = _with_gaps(make_houses(rows=500, seed=2), 7).assign(year=lambda f: f["year"] + 9)
    fold = DriftProfileFold(profiled_features(DATA))
    training = DriftProfileFold(profiled_features(DATA), TrainingRows.of(SplitConfig(), 900))

    def reports() -> set[str]:
        found = set()
        for rows in (1_000, 250, 97, 13):
            ref = fold_frames(training, frame_pieces(reference, rows))
            cur = fold_frames(fold, frame_pieces(current, rows))
            found.add(repr(compare_profiles(ref, cur, DATA, DriftConfig()).to_dict()))
        return found

    exact = reports()
    assert len(exact) == 1 and "'year'" in next(iter(exact))
    # Past MAX_DISTINCT values the counts become fixed ranges: still the same at every chunking.
    monkeypatch.setattr(medians, "MAX_DISTINCT", 50)
    assert len(reports()) == 1 and reports() != exact


def test_missing_as_the_most_frequent_level_is_one_bin_not_two():
    # Today's categorical PSI put <missing> among the kept levels and again as its own bin,
    # counting its share twice; it is one bin, beside the kept levels and the pooled others.
    reference = pd.Series([None] * 50 + ["a"] * 30 + ["b"] * 20)
    current = pd.Series([None] * 20 + ["a"] * 30 + ["b"] * 50)
    expected, actual = np.array([0.3, 0.2, 0.5]), np.array([0.3, 0.5, 0.2])
    by_hand = float(np.sum((actual - expected) * np.log(actual / expected)))
    assert categorical_psi(reference, current, bins=10) == pytest.approx(by_hand)


def test_a_stored_profile_keeps_a_thousand_points_and_ks_within_a_thousandth():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"area": rng.normal(1500, 300, 20_000), "year": 2000.0, "hood": "N"})
    frame.loc[:9, "area"] = np.inf  # survives strict JSON
    profile = fold_frames(DriftProfileFold(profiled_features(DATA)), [frame])
    stored = DriftProfile.from_dict(storage.read_json(_written(profile.stored().to_dict())))
    area = stored.features["area"]
    assert len(area.values) == STORED_POINTS and not area.exact and area.values[-1] == np.inf
    assert stored.features["year"].exact and stored.features["hood"].levels == {"N": 20_000}
    shifted = fold_frames(
        DriftProfileFold(profiled_features(DATA)), [frame.assign(area=frame["area"] + 30)]
    )
    exact = profile_ks(profile.features["area"], shifted.features["area"])
    assert abs(profile_ks(area, shifted.features["area"]) - exact) <= 1 / STORED_POINTS


def _written(payload: dict) -> object:
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "profile.json"
    storage.write_json_atomic(path, payload)
    assert "Infinity" not in path.read_text()
    return path


# ---------------------------------------------------------------------------------------------
# The champion's stored profile, and champions from before runs stored one.


def test_a_champion_from_before_is_profiled_from_its_snapshot_once_and_then_read_back(tmp_path):
    paths = PathsConfig(data_dir=tmp_path / "data", artifacts_dir=tmp_path / "artifacts")
    trained_on, split = make_houses(rows=300, seed=0), SplitConfig(seed=7)
    run = layout.open_run(paths.artifacts_dir, _champion(paths, trained_on, split))
    assert not run.drift_profile.exists()  # a run from before profiles were stored
    shifted = make_houses(rows=100, seed=1).assign(year=lambda f: f["year"] + 40)
    first = _check(paths, shifted)
    assert first.checked and first.drifted == ["year"]
    assert DriftProfile.from_dict(storage.read_json(run.drift_profile)).rows == len(
        split_data(trained_on, split).train
    )
    for snapshot in datasets.snapshots_dir(paths.data_dir).iterdir():
        snapshot.unlink()  # from now on only the stored profile can tell
    assert _check(paths, shifted).to_dict() == first.to_dict()


def test_a_damaged_stored_profile_is_ignored_and_never_overwritten(tmp_path):
    paths = PathsConfig(data_dir=tmp_path / "data", artifacts_dir=tmp_path / "artifacts")
    run = layout.open_run(
        paths.artifacts_dir, _champion(paths, make_houses(rows=300), SplitConfig())
    )
    run.drift_profile.write_text('{"format": 1, "rows": 3}')
    storage.write_json_atomic(run.model_manifest, {"model/drift_profile.json": "0" * 64})
    report = _check(paths, make_houses(rows=100, seed=1))
    assert report.checked and report.reference_rows > 200  # profiled from its snapshot
    assert run.drift_profile.read_text() == '{"format": 1, "rows": 3}'


def test_a_date_sorted_source_whose_late_rows_drift_is_detected_over_every_chunk(tmp_path):
    from houseprice.chunks import plan_chunks, read_rows
    from houseprice.tasks.drift_profiles import profile_run

    paths = PathsConfig(data_dir=tmp_path / "data", artifacts_dir=tmp_path / "artifacts")
    _champion(paths, make_houses(rows=2_000, seed=0), SplitConfig())
    # Sold in date order: the first half like the champion's rows, the later half larger.
    houses = make_houses(rows=4_000, seed=3)
    houses.loc[2_000:, "area"] += 900
    source = tmp_path / "sorted.parquet"
    houses.to_parquet(source, row_group_size=1_000)
    table = plan_chunks(str(source), 1_000)
    engine = LocalEngine()
    with disable_run_logger():
        profiles = profile_run(table, None, DATA, SplitConfig(), engine)
        reference = champion_profile(load_champion(paths.artifacts_dir), DATA, paths, 1_000, engine)
        report = check_drift.fn(profiles.new_rows, reference, DATA, DriftConfig())
    assert report.checked and report.current_rows == 4_000 and report.drifted == ["area"]
    first_chunk = measure_drift(
        make_houses(rows=2_000, seed=0), read_rows(table.chunks[0]), DATA, DriftConfig()
    )
    assert first_chunk.drifted == []  # what comparing the first chunk alone concluded


@pytest.mark.slow
def test_a_streamed_run_sees_drift_in_the_late_rows_of_a_date_sorted_source(
    tmp_path, prefect_harness
):
    from pathlib import Path

    from houseprice.flows.retrain import retrain
    from tests.conftest import STREAMED, small_config, write_houses_folder

    def run(source: Path) -> layout.RunPaths:
        data = {"source": str(source), "model": "houses"}  # one model, whatever the folder
        config = small_config(tmp_path, data=data, compute=STREAMED)
        folder = Path(retrain(config))
        return layout.RunPaths(folder.name, folder)

    champion = run(write_houses_folder(tmp_path / "then", rows=3_000, files=1))
    assert registry.read_champion(tmp_path / "artifacts", "houses").run_id == champion.run_id
    assert "model/drift_profile.json" in storage.read_json(champion.model_manifest)
    # Sold in date order: the first chunks like the champion's rows, the last ones larger.
    sorted_by_date = write_houses_folder(tmp_path / "now", rows=6_000, files=2)
    late = sorted_by_date / "part-1.parquet"
    pd.read_parquet(late).assign(area=lambda f: f["area"] + 900).to_parquet(
        late, row_group_size=1_000
    )
    drift = storage.read_json(run(sorted_by_date).metrics)["drift"]
    assert drift["checked"] and drift["current_rows"] == 6_000
    assert drift["drifted"] == ["area"] and drift["champion_run_id"] == champion.run_id
    assert drift["reference_rows"] == storage.read_json(champion.drift_profile)["rows"]
