"""Champions per model: names, coexisting champions, predict's choice, promote's checksum check."""

from __future__ import annotations

import pandas as pd
import pytest

from houseprice import registry
from houseprice.cli import main
from houseprice.config import build_config
from houseprice.model_names import (
    DEFAULT_MODEL,
    ModelNameError,
    check_model_name,
    derive_model_name,
)
from tests.fakes import completed_run, loadable_run

RUN_A, RUN_B, RUN_C = (f"2026010{day}T000000Z-{day * 6}" for day in "123")


@pytest.mark.parametrize(
    ("source", "target", "name"),
    [
        ("bundled", "Sale_Price", "ames"),
        ("bundled", "Lot_Area", "ames-lot_area"),
        ("data/Sales 2026.csv", "price", "sales-2026-price"),
        ("/srv/drop/", "Price", "drop-price"),
        ("https://example.org/x/sales.parquet?v=2", "price", "sales-price"),
        ("synthetic:rows=500,features=3", "price", "synthetic-price"),
    ],
)
def test_the_default_model_name_comes_from_the_source_and_target(source, target, name):
    assert derive_model_name(source, target) == check_model_name(name)


@pytest.mark.parametrize("name", ["Sales", "a/b", "..", "", "-x", "x" * 65])
def test_a_model_name_that_cannot_name_a_folder_is_refused(name):
    with pytest.raises(ModelNameError, match="not a model name"):
        check_model_name(name)


def test_the_config_names_its_model_or_derives_it():
    assert build_config({}).data.model_name == DEFAULT_MODEL
    derived = build_config({"data": {"source": "sales.csv", "target": "price"}})
    assert derived.data.model_name == "sales-price"
    assert build_config({"data": {"model": "mine"}}).data.model_name == "mine"


def test_a_bad_model_flag_is_refused_with_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["history", "--model", "Bad/Name", "--artifacts-dir", str(tmp_path)])
    assert stopped.value.code == 2
    assert "not a model name" in capsys.readouterr().err


def test_champions_of_two_models_coexist(tmp_path):
    loadable_run(tmp_path, RUN_A, model="alpha", promote="first")
    loadable_run(tmp_path, RUN_B, model="beta", promote="first")
    assert registry.champion_models(tmp_path) == ["alpha", "beta"]
    assert registry.read_champion(tmp_path, "alpha").run_id == RUN_A
    assert registry.read_champion(tmp_path, "beta").run_id == RUN_B
    with pytest.raises(registry.RegistryError, match=r"\(alpha, beta\): name one with --model"):
        registry.read_champion(tmp_path)


def test_a_run_of_model_b_does_not_challenge_model_as_champion(tmp_path):
    from prefect.logging import disable_run_logger

    from houseprice.tasks.champion import apply_promotion, load_champion
    from houseprice.tasks.promote import PromotionDecision

    loadable_run(tmp_path, RUN_A, model="alpha", promote="first")
    run_b = loadable_run(tmp_path, RUN_B, model="beta")
    with disable_run_logger():
        assert load_champion.fn(tmp_path, "beta") is None  # beta has none: A is not its rival
        decision = PromotionDecision(True, "first champion", "torch")
        apply_promotion.fn(decision, run_b, tmp_path)
    assert registry.read_champion(tmp_path, "alpha").run_id == RUN_A  # untouched
    assert registry.read_champion(tmp_path, "beta").run_id == RUN_B
    assert [e["model"] for e in registry.read_history(tmp_path)] == ["beta"]
    assert registry.latest_completed_run(tmp_path, "alpha") == RUN_A


def test_a_champion_from_before_named_models_is_read_in_place_then_moved(tmp_path):
    completed_run(tmp_path, RUN_A, promote="old")  # no config.yaml: the default model
    registry.champion_path(tmp_path).rename(registry.legacy_champion_path(tmp_path))
    assert registry.read_champion(tmp_path, DEFAULT_MODEL).run_id == RUN_A  # still works
    note = registry.migrate_legacy_champion(tmp_path)
    assert "champions are kept per model now" in note and "'ames'" in note
    assert not registry.legacy_champion_path(tmp_path).exists()
    assert registry.read_champion(tmp_path, DEFAULT_MODEL).run_id == RUN_A
    assert registry.migrate_legacy_champion(tmp_path) is None


def _predict(tmp_path, frame: pd.DataFrame, *flags: str) -> int:
    frame.to_csv(tmp_path / "in.csv", index=False)
    argv = ["predict", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o.csv")]
    return main([*argv, "--artifacts-dir", str(tmp_path / "art"), *flags])


def test_predict_picks_the_champion_whose_columns_the_file_has_and_says_which(tmp_path, capsys):
    artifacts = tmp_path / "art"
    loadable_run(artifacts, RUN_A, model="alpha", columns=("sqft",), promote="first")
    loadable_run(artifacts, RUN_B, model="beta", columns=("rooms",), weight=2.0, promote="first")
    assert _predict(tmp_path, pd.DataFrame({"rooms": [3.0]})) == 0
    out = capsys.readouterr().out
    assert f"scored by the champion of model beta (run {RUN_B}/torch)" in out
    assert pd.read_csv(tmp_path / "o.csv")["prediction"].tolist() == [6.0]


def test_predicts_mismatch_message_names_the_models_that_fit(tmp_path, capsys):
    artifacts = tmp_path / "art"
    loadable_run(artifacts, RUN_A, model="alpha", columns=("sqft",), promote="first")
    loadable_run(artifacts, RUN_B, model="beta", columns=("rooms",), promote="first")
    assert _predict(tmp_path, pd.DataFrame({"rooms": [3.0]}), "--model", "alpha") == 1
    err = capsys.readouterr().err
    assert f"the champion of model 'alpha' (run {RUN_A}/torch) cannot score" in err
    assert "lacks the model's columns ['sqft']" in err
    assert f"beta (champion run {RUN_B}: --model beta)" in err and "--run RUN_ID" in err
    assert not (tmp_path / "o.csv").exists()


def test_predict_refuses_to_guess_between_champions_that_both_fit(tmp_path, capsys):
    artifacts = tmp_path / "art"
    loadable_run(artifacts, RUN_A, model="alpha", promote="first")
    loadable_run(artifacts, RUN_B, model="beta", promote="first")
    assert _predict(tmp_path, pd.DataFrame({"sqft": [3.0]})) == 1
    err = capsys.readouterr().err
    assert "several fit these columns: name one with --model" in err
    assert _predict(tmp_path, pd.DataFrame({"sqft": [3.0]}), "--model", "alpha") == 0


def _promote(artifacts, run_id, *flags):
    return main(["promote", run_id, "--artifacts-dir", str(artifacts), "--wait", "0", *flags])


@pytest.mark.parametrize(
    "damage",
    [
        lambda run: run.linear_weights("torch").write_text('{"weights": [1e9], "bias": 0}'),
        lambda run: run.preprocessing.write_text("{}"),
        lambda run: run.model_file("torch").unlink(),
    ],
    ids=["weights-modified", "preprocessing-modified", "model-deleted"],
)
def test_promote_refuses_a_tampered_run_and_leaves_the_champion(tmp_path, capsys, damage):
    loadable_run(tmp_path, RUN_A, promote="first")
    before = registry.champion_path(tmp_path, "houses-price").read_bytes()
    damage(loadable_run(tmp_path, RUN_B))
    assert _promote(tmp_path, RUN_B) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused, the champion is unchanged" in err[0], err
    assert registry.champion_path(tmp_path, "houses-price").read_bytes() == before
    assert [e["run_id"] for e in registry.read_history(tmp_path)] == []


def test_promote_refuses_a_run_of_another_model_and_puts_one_in_its_own_slot(tmp_path, capsys):
    loadable_run(tmp_path, RUN_A, model="alpha", promote="first")
    loadable_run(tmp_path, RUN_B, model="beta")
    assert _promote(tmp_path, RUN_B, "--model", "alpha") == 2
    assert "trained as model 'beta', not 'alpha'" in capsys.readouterr().err
    assert _promote(tmp_path, RUN_B) == 0
    assert f"champion of beta: {RUN_B}/torch" in capsys.readouterr().out
    assert registry.read_champion(tmp_path, "alpha").run_id == RUN_A


def test_history_shows_each_runs_model_and_filters_by_model(tmp_path, capsys):
    loadable_run(tmp_path, RUN_A, model="alpha", promote="first")
    loadable_run(tmp_path, RUN_B, model="beta", promote="first")
    assert main(["history", "--artifacts-dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert f"{RUN_A} alpha" in listing and f"{RUN_B} beta" in listing
    assert f"  alpha: {RUN_A}/torch" in listing and f"  beta: {RUN_B}/torch" in listing
    assert main(["history", "--model", "beta", "--artifacts-dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert RUN_A not in listing and f"  beta: {RUN_B}/torch" in listing


def test_a_bad_model_name_is_the_users_error_not_a_bug():
    from houseprice.failures import classify_failure
    from houseprice.model_names import check_model_name

    with pytest.raises(ValueError) as raised:
        check_model_name("Bad/Name")
    failure = classify_failure(raised.value)
    assert failure.exit_code != 70 and "looks like a bug" not in failure.message
