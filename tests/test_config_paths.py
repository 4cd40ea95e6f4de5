"""One input, one config: the CLI, a YAML file, a deployment in prefect.yaml and the Prefect form.

Each case gives the same choice of data section through every path a person can take and
asserts the configs are equal, and that they are the config the case expects: the defaults
that depend on the source come from the config's validators, not from one of the paths.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools import validate

from houseprice.cli import build_parser, config_from_arguments
from houseprice.cli.schedule import serve_config
from houseprice.config import (
    DEFAULT_CATEGORICAL_FEATURES,
    DEFAULT_NUMERIC_FEATURES,
    PipelineConfig,
    load_config,
    merge_nested,
)
from houseprice.data_config import SYNTHETIC_PREFIX, SYNTHETIC_TARGET
from houseprice.flows.retrain import retrain
from houseprice.flows.serve import served_parameters

REPO_ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = "synthetic:rows=200,features=3,seed=1"
NO_COLUMNS = {"numeric_features": [], "categorical_features": [], "features": []}

# (name, command line, the same choice as the data section, what the data section must hold)
CASES = [
    (
        "another CSV source with only a target starts from all its columns",
        ["retrain", "--source", "houses.csv", "--target", "price"],
        {"source": "houses.csv", "target": "price"},
        {"target": "price", **NO_COLUMNS},
    ),
    (
        "a synthetic source predicts price from all its columns",
        ["retrain", "--source", SYNTHETIC],
        {"source": SYNTHETIC},
        {"target": SYNTHETIC_TARGET, **NO_COLUMNS},
    ),
    (
        "an explicit target wins over the synthetic default",
        ["retrain", "--source", SYNTHETIC, "--target", "x01"],
        {"source": SYNTHETIC, "target": "x01"},
        {"target": "x01", **NO_COLUMNS},
    ),
    (
        "landing mode on the bundled data keeps the sale year's range open",
        ["serve", "--landing-dir", "data/landing"],
        {"landing_dir": "data/landing"},
        {
            "landing_dir": Path("data/landing"),
            "time_column": "Year_Sold",
            "numeric_features": DEFAULT_NUMERIC_FEATURES,
        },
    ),
    (
        "explicit features on another source: the lists not given are empty",
        [
            "retrain",
            "--source",
            "h.csv",
            "--target",
            "price",
            "--features",
            "area,hood",
            "--categorical",
            "hood",
        ],
        {
            "source": "h.csv",
            "target": "price",
            "features": ["area"],
            "categorical_features": ["hood"],
        },
        {"numeric_features": [], "categorical_features": ["hood"], "features": ["area"]},
    ),
    (
        "explicit features on the bundled data replace the Ames columns",
        ["retrain", "--features", "Gr_Liv_Area,Neighborhood", "--categorical", "Neighborhood"],
        {
            "numeric_features": [],
            "categorical_features": ["Neighborhood"],
            "features": ["Gr_Liv_Area"],
        },
        {"target": "Sale_Price", "numeric_features": [], "features": ["Gr_Liv_Area"]},
    ),
    (
        "a config that keeps the source keeps the Ames defaults",
        ["retrain", "--separator", ";"],
        {"separator": ";"},
        {
            "target": "Sale_Price",
            "numeric_features": DEFAULT_NUMERIC_FEATURES,
            "categorical_features": DEFAULT_CATEGORICAL_FEATURES,
            "time_column": None,
        },
    ),
]


def _from_flags(argv: list[str]) -> PipelineConfig:
    """The `houseprice` command's config for these flags."""
    args = build_parser().parse_args(argv)
    return serve_config(args) if args.command == "serve" else config_from_arguments(args)


def _from_yaml_file(data: dict[str, Any], folder: Path) -> tuple[PipelineConfig, PipelineConfig]:
    """A YAML file holding the data section, read directly and by `houseprice retrain --config`."""
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({"data": data}))
    command = "serve" if "landing_dir" in data else "retrain"
    return load_config(path), _from_flags([command, "--config", str(path)])


def _nightly(document: dict[str, Any]) -> dict[str, Any]:
    """The nightly retrain deployment of a prefect.yaml document."""
    (nightly,) = [d for d in document["deployments"] if d["name"] == "nightly"]
    return nightly


def _from_deployment(data: dict[str, Any], folder: Path) -> PipelineConfig:
    """prefect.yaml's nightly deployment with this data section, as a worker's flow run reads it."""
    document = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
    _nightly(document)["parameters"] = {"config": {"data": data}}
    path = folder / "prefect.yaml"
    path.write_text(yaml.safe_dump(document))
    deployed = _nightly(yaml.safe_load(path.read_text()))
    # The server keeps the parameters as JSON; the flow run validates them on the worker.
    parameters = json.loads(json.dumps(deployed["parameters"]))
    return retrain.validate_parameters(parameters)["config"]


def _from_prefect_form(data: dict[str, Any]) -> PipelineConfig:
    """What the UI's run form submits: every field filled from the schema's defaults, edited."""
    schema = parameter_schema(retrain).model_dump()
    form = merge_nested(schema["properties"]["config"]["default"], {"data": data})
    submitted = json.loads(json.dumps({"config": form}))
    assert validate(submitted, schema) == []  # the server's check of a form against the schema
    return retrain.validate_parameters(submitted)["config"]


def _as_served(config: PipelineConfig) -> PipelineConfig:
    """The config as `houseprice serve` stores it: a deployment's parameters, defaults left out."""
    stored = json.loads(json.dumps(served_parameters(config)))
    return retrain.validate_parameters(stored)["config"]


@pytest.mark.parametrize(
    ("argv", "data", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_every_path_gives_the_same_config(argv, data, expected, tmp_path):
    flags = _from_flags(argv)
    from_file, from_flag_file = _from_yaml_file(data, tmp_path)
    configs = {
        "yaml": from_file,
        "--config": from_flag_file,
        "prefect.yaml": _from_deployment(data, tmp_path),
        "prefect form": _from_prefect_form(data),
        "served": _as_served(flags),
        "PipelineConfig": PipelineConfig.model_validate({"data": data}),
    }
    assert {path: config for path, config in configs.items() if config != flags} == {}
    assert {key: getattr(flags.data, key) for key in expected} == expected


def test_the_repositorys_nightly_deployment_needs_no_time_column_of_its_own():
    """prefect.yaml names Year_Sold for clarity; the config would choose it anyway."""
    config = _nightly(yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text()))["parameters"][
        "config"
    ]
    without = {**config, "data": {k: v for k, v in config["data"].items() if k != "time_column"}}
    assert PipelineConfig.model_validate(without) == PipelineConfig.model_validate(config)
    assert _from_flags(["serve"]) == PipelineConfig.model_validate(config)


def test_a_validated_config_validates_to_itself_whatever_is_left_out():
    """Dumped whole or without its defaults, a config reads back the same: the rules are stable."""
    for _, argv, _, _ in CASES:
        config = _from_flags(argv)
        for dumped in (
            config.model_dump(mode="json"),
            config.model_dump(mode="json", exclude_defaults=True),
        ):
            assert PipelineConfig.model_validate(dumped) == config, argv


def test_synthetic_defaults_agree_with_the_synthetic_data():
    from houseprice import synthetic

    assert (SYNTHETIC_PREFIX, SYNTHETIC_TARGET) == (
        synthetic.SOURCE_PREFIX,
        synthetic.TARGET_COLUMN,
    )
    assert SYNTHETIC_TARGET in synthetic.synthetic_frame_from_source(SYNTHETIC).columns


def test_columns_ingest_chose_are_kept_even_when_they_are_the_ames_lists():
    data = PipelineConfig.model_validate({"data": {"source": "ames_copy.csv"}}).data
    assert data.feature_columns == []  # all-columns mode: ingest types every column
    typed = data.with_typed_columns(DEFAULT_NUMERIC_FEATURES, DEFAULT_CATEGORICAL_FEATURES)
    assert typed.numeric_features == DEFAULT_NUMERIC_FEATURES
    assert typed.categorical_features == DEFAULT_CATEGORICAL_FEATURES
    with pytest.raises(ValueError, match="listed more than once"):
        data.with_typed_columns(["area"], ["area"])  # the section's checks still run
