"""The base every configuration section shares: strict keys and defaults the Prefect form shows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


def _schema_defaults(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Put each default_factory's value in the JSON schema, which pydantic leaves out.

    The Prefect UI fills a run form's empty fields from the schema's defaults: without this,
    list fields (the feature columns) and whole sections would show up blank.
    """
    properties = schema.get("properties", {})
    for name, field in model.model_fields.items():
        key = field.alias or name
        if field.default_factory is None or key not in properties:
            continue
        value = field.default_factory()  # type: ignore[call-arg]
        properties[key].setdefault(
            "default", value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        )


class Section(BaseModel):
    """Base for every section: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, json_schema_extra=_schema_defaults
    )
