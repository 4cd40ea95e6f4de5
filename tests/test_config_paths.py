"""One input, one config: the CLI, a YAML file, a deployment in prefect.yaml and the Prefect form.

Each case gives the same choice of data (or compute) section through every path a person can
take and asserts the configs are equal, and that they are the config the case expects: the defaults
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

# (name, command line, the same choice as the compute section, what the compute section must hold)
COMPUTE_CASES = [
    (
        "the Dask engine on a local cluster of the default size",
        ["retrain", "--engine", "dask"],
        {"engine": "dask"},
        {"engine": "dask", "dask_address": None, "dask_workers": 2},
    ),
    (
        "the Dask engine on a running cluster",
        ["retrain", "--engine", "dask", "--dask-address", "tcp://scheduler:8786"],
        {"engine": "dask", "dask_address": "tcp://scheduler:8786"},
        {"engine": "dask", "dask_address": "tcp://scheduler:8786"},
    ),
    (
        "the Dask engine on a local cluster of four workers, served",
        ["serve", "--engine", "dask", "--dask-workers", "4"],
        {"engine": "dask", "dask_workers": 4},
        {"engine": "dask", "dask_address": None, "dask_workers": 4},
    ),
    (
        "the local engine said out loud",
        ["retrain", "--engine", "local"],
        {"engine": "local"},
        {"engine": "local", "dask_address": None},
    ),
]


def _from_flags(argv: list[str]) -> PipelineConfig:
    """The `houseprice` command's config for these flags."""
    args = build_parser().parse_args(argv)
    return serve_config(args) if args.command == "serve" else config_from_arguments(args)


def _from_yaml_file(
    sections: dict[str, Any], folder: Path, command: str
) -> tuple[PipelineConfig, PipelineConfig]:
    """A YAML file holding the sections, read directly and by `houseprice <command> --config`."""
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(sections))
    return load_config(path), _from_flags([command, "--config", str(path)])


def _nightly(document: dict[str, Any]) -> dict[str, Any]:
    """The nightly retrain deployment of a prefect.yaml document."""
    (nightly,) = [d for d in document["deployments"] if d["name"] == "nightly"]
    return nightly


def _from_deployment(sections: dict[str, Any], folder: Path) -> PipelineConfig:
    """prefect.yaml's nightly deployment with these sections, as a worker's flow run reads it."""
    document = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
    _nightly(document)["parameters"] = {"config": sections}
    path = folder / "prefect.yaml"
    path.write_text(yaml.safe_dump(document))
    deployed = _nightly(yaml.safe_load(path.read_text()))
    # The server keeps the parameters as JSON; the flow run validates them on the worker.
    parameters = json.loads(json.dumps(deployed["parameters"]))
    return retrain.validate_parameters(parameters)["config"]


def _from_prefect_form(sections: dict[str, Any]) -> PipelineConfig:
    """What the UI's run form submits: every field filled from the schema's defaults, edited."""
    schema = parameter_schema(retrain).model_dump()
    form = merge_nested(schema["properties"]["config"]["default"], sections)
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
    assert _paths_that_differ(flags, argv[0], {"data": data}, tmp_path) == {}
    assert {key: getattr(flags.data, key) for key in expected} == expected


@pytest.mark.parametrize(
    ("argv", "compute", "expected"),
    [case[1:] for case in COMPUTE_CASES],
    ids=[case[0] for case in COMPUTE_CASES],
)
def test_every_path_gives_the_same_engine(argv, compute, expected, tmp_path):
    flags = _from_flags(argv)
    assert _paths_that_differ(flags, argv[0], {"compute": compute}, tmp_path) == {}
    assert {key: getattr(flags.compute, key) for key in expected} == expected


def _paths_that_differ(
    flags: PipelineConfig, command: str, sections: dict[str, Any], folder: Path
) -> dict[str, PipelineConfig]:
    """The config each other path gives for the same sections, where it is not the flags' one."""
    if command == "serve":  # landing mode, which `serve` is in by default, said in the sections
        sections = merge_nested({"data": {"landing_dir": "data/landing"}}, sections)
    from_file, from_flag_file = _from_yaml_file(sections, folder, command)
    configs = {
        "yaml": from_file,
        "--config": from_flag_file,
        "prefect.yaml": _from_deployment(sections, folder),
        "prefect form": _from_prefect_form(sections),
        "served": _as_served(flags),
        "PipelineConfig": PipelineConfig.model_validate(sections),
    }
    return {path: config for path, config in configs.items() if config != flags}


@pytest.mark.parametrize(
    ("argv", "refused"),
    [
        (["retrain", "--dask-address", "tcp://scheduler:8786"], "--dask-address applies to"),
        (["retrain", "--engine", "local", "--dask-workers", "3"], "--dask-workers applies to"),
        (
            ["retrain", "--engine", "dask", "--dask-workers", "3", "--dask-address", "tcp://s:1"],
            "give one of them",
        ),
        (["retrain", "--engine", "dask", "--dask-address", "scheduler:8786"], "tcp://host:8786"),
    ],
)
def test_dask_flags_that_would_be_ignored_or_are_malformed_are_refused(argv, refused):
    from houseprice.config import ConfigError

    with pytest.raises(ConfigError, match=refused):
        _from_flags(argv)


def test_a_config_file_that_names_the_dask_engine_takes_the_address_flag(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"compute": {"engine": "dask"}}))
    config = _from_flags(["retrain", "--config", str(path), "--dask-address", "tcp://s:8786"])
    assert (config.compute.engine, config.compute.dask_address) == ("dask", "tcp://s:8786")


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
