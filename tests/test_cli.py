"""The houseprice command: flags build the config; bad input gives one line and a non-zero exit."""

import pytest

from houseprice.cli import build_parser, config_from_arguments, main


def _config(*argv):
    return config_from_arguments(build_parser().parse_args(["retrain", *argv]))


def test_defaults_are_the_bundled_data():
    config = _config()
    assert config.data.source == "bundled"
    assert "Gr_Liv_Area" in config.data.numeric_features


def test_features_flag_replaces_the_default_columns():
    config = _config(
        "--source", "x.csv", "--target", "price", "--features", "sqft,zip", "--categorical", "zip"
    )
    assert config.data.features == ["sqft"]
    assert config.data.categorical_features == ["zip"]
    assert config.data.numeric_features == []


def test_another_source_without_features_uses_all_its_columns():
    config = _config("--source", "x.csv", "--target", "price")
    assert config.data.feature_columns == []  # resolved from the data at ingest


def test_synthetic_source_predicts_price_by_default():
    assert _config("--source", "synthetic:rows=100").data.target == "price"


def test_config_file_and_flags_merge(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "data:\n  source: x.csv\n  target: price\n  numeric_features: [a]\nsplit:\n  seed: 9\n"
    )
    config = _config("--config", str(path), "--artifacts-dir", str(tmp_path / "out"))
    assert config.data.numeric_features == ["a"]  # the file's columns are kept
    assert config.split.seed == 9
    assert config.paths.artifacts_dir == tmp_path / "out"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["retrain", "--config", "/nonexistent.yaml"], "config file not found"),
        (["retrain", "--target", "Gr_Liv_Area"], "also listed as a feature"),
    ],
)
def test_bad_configuration_exits_2_naming_the_problem(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_predict_without_a_champion_is_one_clear_line(tmp_path, capsys):
    houses = tmp_path / "in.csv"
    houses.write_text("area,year,hood\n1000,2000,North\n")
    code = main(
        [
            "predict",
            "--input",
            str(houses),
            "--output",
            str(tmp_path / "o.csv"),
            "--artifacts-dir",
            str(tmp_path),
        ]
    )
    assert code == 1
    assert "no champion" in capsys.readouterr().err


def test_categorical_without_features_is_refused(capsys):
    assert main(["retrain", "--source", "x.csv", "--categorical", "zip"]) == 2
    assert "add --features" in capsys.readouterr().err
