"""Config: defaults are valid, bad values are refused naming the field, YAML and flags merge."""

from pathlib import Path

import pytest

from houseprice.config import ConfigError, PipelineConfig, build_config, load_config


def test_defaults_are_valid_and_round_trip():
    config = PipelineConfig()
    assert build_config(config.model_dump(mode="json")) == config
    assert config.training.torch.optimizer == "cg"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"split": {"test_fraction": 0.7}}, "split.test_fraction"),
        ({"training": {"torch": {"learning_rate": -1}}}, "training.torch.learning_rate"),
        ({"training": {"tensorflow": {"device": "mps"}}}, "training.tensorflow"),
        ({"data": {"target": "area", "numeric_features": ["area"]}}, "data"),
        ({"data": {"numeric_features": ["a", "a"]}}, "data"),
        ({"training": {"torch": {"optimiser": "cg"}}}, "training.torch.optimiser"),
        ({"split": {"validation_fraction": 0.45, "test_fraction": 0.45}}, "split"),
    ],
)
def test_bad_values_are_refused_naming_the_field(values, field):
    with pytest.raises(ConfigError) as caught:
        build_config(values)
    assert field in str(caught.value)


def test_yaml_file_with_overrides(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("data:\n  target: price\n  min_rows: 50\nsplit:\n  seed: 7\n")
    config = load_config(path, {"data": {"min_rows": 40}})
    assert (config.data.target, config.data.min_rows, config.split.seed) == ("price", 40, 7)
    assert config.data.numeric_features  # untouched keys keep their defaults


def test_missing_or_malformed_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)


def test_paths_are_paths():
    config = build_config({"paths": {"data_dir": "/tmp/x"}})
    assert config.paths.data_dir == Path("/tmp/x")


def _fields(model: type, prefix: str = ""):
    """Every (dotted name, field) of a pydantic model, nested sections included."""
    for name, field in model.model_fields.items():
        yield prefix + name, field
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            yield from _fields(annotation, f"{prefix}{name}.")


def test_every_config_field_explains_itself_in_the_prefect_form():
    undescribed = [name for name, field in _fields(PipelineConfig) if not field.description]
    assert undescribed == []


def test_list_and_section_defaults_fill_the_prefect_form():
    """Prefect's UI fills a form's empty fields from the schema's defaults, lists included."""
    from prefect.utilities.callables import parameter_schema

    from houseprice.flows.retrain import retrain

    schema = parameter_schema(retrain).model_dump()
    definitions = schema["definitions"]
    data = definitions["DataConfig"]["properties"]
    assert data["numeric_features"]["default"] == PipelineConfig().data.numeric_features
    assert data["categorical_features"]["default"] == PipelineConfig().data.categorical_features
    assert data["features"]["default"] == [] and data["value_ranges"]["default"] == {}
    torch = definitions["TrainingConfig"]["properties"]["torch"]["default"]
    assert torch == PipelineConfig().training.torch.model_dump(mode="json")
    missing = [
        f"{section}.{name}"
        for section, definition in definitions.items()
        for name, field in definition.get("properties", {}).items()
        if "default" not in field and name in _required_free(section)
    ]
    assert missing == []


def _required_free(section: str) -> set[str]:
    """The fields of a config section that have a default (all of them, today)."""
    import houseprice.config as config

    model = getattr(config, section)
    return {name for name, field in model.model_fields.items() if not field.is_required()}
