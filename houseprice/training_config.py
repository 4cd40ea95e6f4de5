"""The training section of the config: one TrainerConfig per trainer, plus the shared seed.

`training` is a mapping from registered trainer name (houseprice/trainers/) to its settings,
so a plug-in trainer is configured like a built-in one, and refused, naming the field, when its
name is unknown or it cannot use the device asked for.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from houseprice import trainers as trainer_registry
from houseprice.config_base import Section as _Section


class TrainerConfig(_Section):
    """Settings for one trainer; every trainer shares this shape."""

    # Full-batch conjugate gradient reaches the least-squares optimum in about d passes,
    # whatever the conditioning; Adam and SGD are the tutorial's mini-batch recipes.
    optimizer: Literal["cg", "adam", "sgd"] = Field(
        "cg",
        description="cg: full-batch conjugate gradient, reaches the exact optimum; "
        "adam/sgd: mini-batch recipes.",
    )
    learning_rate: float | None = Field(
        None,
        gt=0,
        description="Step size for adam/sgd; empty picks Adam 0.01, SGD 0.05. CG needs none.",
    )
    # CG converges in about d + 3 epochs (23 at 20 features, measured); the cap binds Adam/SGD.
    max_epochs: int = Field(200, ge=1, description="Most passes over the training rows.")
    batch_size: int = Field(1024, ge=1, description="Rows per step for adam/sgd.")
    l2: float = Field(0.0, ge=0, description="Ridge penalty l2 * |w|^2 added to the MSE cost.")
    # CG can stall one epoch on collinear features, then take a big step; 1e-12 leaves float64
    # CG within about 1e-12 of the least-squares MSE.
    tolerance: float = Field(
        1e-12,
        ge=0,
        description="Stop once two epochs in a row improve the cost by less than this fraction.",
    )
    # Off by default: the goal is the least-squares optimum, which early stopping would miss.
    early_stopping_patience: int | None = Field(
        None,
        ge=1,
        description="Stop after this many epochs without a better validation loss (off if empty).",
    )
    # Each trainer accepts only the devices its spec lists (houseprice/trainers/).
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="auto: CUDA, else MPS (torch only), else CPU."
    )
    # One thread each: the trainers run side by side and must not fight over the cores.
    threads: int = Field(1, ge=1, description="CPU threads this trainer may use.")
    # float64 keeps badly-conditioned problems exact; float32 is faster on GPUs.
    dtype: Literal["float32", "float64"] = Field(
        "float64", description="Floating-point precision of training."
    )


def _trainer_properties(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Show each default trainer's section in the JSON schema, so the Prefect form has it.

    The other sections' hook (config_base) fills default_factory fields; this one has none.
    """
    settings = schema.get("additionalProperties") or {}
    for name in trainer_registry.default_trainers():
        schema.setdefault("properties", {})[name] = {
            **settings,
            "default": TrainerConfig().model_dump(mode="json"),
            "description": f"The {trainer_registry.trainer_label(name)} trainer's settings.",
        }


class TrainingConfig(_Section):
    """Settings per trainer (a mapping: trainer name → TrainerConfig), plus the seed they share.

    The keys are registered trainer names (houseprice/trainers/); each one listed trains, and
    the default trainers (torch and tensorflow) train whether listed or not. Read one trainer's
    settings as `training.torch` or `training.trainers["torch"]`.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra=_trainer_properties)
    __pydantic_extra__: dict[str, TrainerConfig] = Field(init=False)

    seed: int = Field(0, description="Seed for initial weights and mini-batch shuffling.")

    @model_validator(mode="before")
    @classmethod
    def _add_default_trainers(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        return {**{name: {} for name in trainer_registry.default_trainers()}, **values}

    @model_validator(mode="after")
    def _check_trainers(self) -> TrainingConfig:
        errors = []
        for name, settings in self.trainers.items():
            try:
                spec = trainer_registry.get_trainer(name)
            except trainer_registry.UnknownTrainerError as error:
                errors.append(_field_error((name,), str(error), settings))
                continue
            if settings.device not in spec.devices:
                where = " and ".join(trainer_registry.trainers_for_device(settings.device))
                message = f"device {settings.device!r} is available for {where} only"
                errors.append(_field_error((name, "device"), message, settings.device))
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

    @property
    def trainers(self) -> dict[str, TrainerConfig]:
        """Each configured trainer's settings, in registration order (torch first)."""
        extra = self.__pydantic_extra__ or {}
        order = {name: index for index, name in enumerate(trainer_registry.trainer_names())}
        return dict(sorted(extra.items(), key=lambda item: order.get(item[0], len(order))))


def _field_error(loc: tuple[str, ...], message: str, value: Any) -> InitErrorDetails:
    """One validation error at loc (below the section), reported like pydantic's own."""
    return InitErrorDetails(
        type=PydanticCustomError("value_error", "{message}", {"message": message}),
        loc=loc,
        input=value,
    )
