"""The one typed configuration of the pipeline.

`PipelineConfig` is the retrain flow's parameter: the Prefect UI renders it as a form, a YAML file
can hold it, and CLI flags override it. Each stage receives only its own section.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from houseprice import trainers as trainer_registry
from houseprice.columns import DEFAULT_MAX_ABS_VALUE

BUNDLED_SOURCE = "bundled"

# Defaults picked for the bundled Ames data (see data/README.md for why each one).
DEFAULT_NUMERIC_FEATURES = [
    "Gr_Liv_Area",
    "Lot_Area",
    "Year_Built",
    "Year_Remod_Add",
    "Total_Bsmt_SF",
    "Garage_Cars",
    "Full_Bath",
    "Bedroom_AbvGr",
    "Fireplaces",
]
DEFAULT_CATEGORICAL_FEATURES = ["Neighborhood", "Bldg_Type", "Overall_Cond"]


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


class _Section(BaseModel):
    """Base for every section: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, json_schema_extra=_schema_defaults
    )


class DataConfig(_Section):
    """Where the data comes from and which columns the model uses."""

    source: str = Field(
        BUNDLED_SOURCE,
        description="'bundled', a CSV/Parquet file, a folder of them, an http(s) URL, "
        "or 'synthetic:rows=N,features=D,...'.",
    )
    target: str = Field("Sale_Price", min_length=1, description="Column to predict (price).")
    numeric_features: list[str] = Field(
        default_factory=lambda: list(DEFAULT_NUMERIC_FEATURES),
        description="Columns used as numbers (gaps filled with the training median).",
    )
    categorical_features: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CATEGORICAL_FEATURES),
        description="Columns used as categories, one-hot encoded against the most frequent level.",
    )
    # When this and both lists above are empty, every column but the target is used.
    features: list[str] = Field(
        default_factory=list,
        description="Columns whose kind is read off the data: numbers are numeric, anything "
        "else categorical. With all three lists empty, every column but the target is used.",
    )
    # Fewer rows than this cannot support a train/validation/test split with stable metrics.
    min_rows: int = Field(30, ge=10, description="Fewest rows a run accepts.")
    # Feature values may be missing (numeric ones are imputed with the training median,
    # categorical ones become their own level), but a column mostly empty is a broken file.
    max_missing_fraction: float = Field(
        0.2, ge=0, le=1, description="Largest share of empty cells a feature column may have."
    )
    # See houseprice/columns.py for why 1e15.
    max_abs_value: float = Field(
        DEFAULT_MAX_ABS_VALUE,
        gt=0,
        le=1e150,
        description="Largest magnitude a target or numeric feature value may have; validation "
        "refuses larger ones (and predict refuses such inputs).",
    )
    separator: str = Field(
        ",",
        min_length=1,
        max_length=1,
        description="Field separator of CSV sources, e.g. ';' or a tab.",
    )
    value_ranges: dict[str, tuple[float | None, float | None]] = Field(
        default_factory=dict,
        description='Plausible ranges checked by validation, e.g. {"Year_Built": [1800, 2100]}; '
        "either bound may be null.",
    )
    # Scheduled mode: new files are validated one by one and appended to a versioned dataset.
    landing_dir: Path | None = Field(
        None,
        description="Landing folder for scheduled runs: CSV/Parquet files dropped here are "
        "validated one by one and appended to the dataset; `source` seeds its first version.",
    )
    time_column: str | None = Field(
        None, description="Column giving each sale's time (a year or a date), for `window`."
    )
    # Same units as the column: years for a year column, days for dates.
    window: float | None = Field(
        None,
        gt=0,
        description="Train only on rows within this much of the newest time_column value "
        "(years for a year column, days for dates).",
    )

    @model_validator(mode="after")
    def _check_window(self) -> DataConfig:
        if self.window is not None and self.time_column is None:
            raise ValueError("window needs time_column")
        return self

    @model_validator(mode="after")
    def _check_columns(self) -> DataConfig:
        listed = self.numeric_features + self.categorical_features + self.features
        duplicated = sorted({name for name in listed if listed.count(name) > 1})
        if duplicated:
            raise ValueError(f"features listed more than once: {duplicated}")
        if self.target in listed:
            raise ValueError(f"target {self.target!r} is also listed as a feature")
        if "intercept" in listed:  # metrics.json keeps the intercept beside the coefficients
            raise ValueError("a feature named 'intercept' would clash with the model's intercept")
        return self

    @property
    def feature_columns(self) -> list[str]:
        """Every configured feature column, typed or not."""
        return self.numeric_features + self.categorical_features + self.features

    @property
    def columns(self) -> list[str]:
        """The target plus every configured feature column."""
        return [self.target, *self.feature_columns]


class SplitConfig(_Section):
    """Deterministic train/validation/test split."""

    # 70/15/15: validation drives early stopping and model choice, test is touched only for metrics.
    # Both 0: a full-sample fit on every row (the textbook regression table); its out-of-sample
    # error then comes from cross-validation (evaluation.cv_folds).
    validation_fraction: float = Field(
        0.15,
        ge=0,
        lt=0.5,
        description="Share of rows for validation (model choice); 0 with test_fraction 0 "
        "fits on all rows.",
    )
    test_fraction: float = Field(
        0.15,
        ge=0,
        lt=0.5,
        description="Share of rows for the test metrics; 0 with validation_fraction 0 "
        "fits on all rows.",
    )
    seed: int = Field(42, description="Seed of the content hash that assigns rows to parts.")

    @model_validator(mode="after")
    def _both_or_neither(self) -> SplitConfig:
        if (self.validation_fraction == 0) != (self.test_fraction == 0):
            raise ValueError(
                "validation_fraction and test_fraction must both be 0 (fit on all rows, "
                "`--all-rows`) or both above 0"
            )
        return self

    @property
    def full_sample(self) -> bool:
        """True when every row is used for fitting and nothing is held out."""
        return self.validation_fraction == 0 and self.test_fraction == 0


class FeatureConfig(_Section):
    """Feature scaling and target transform."""

    # Standardizing makes gradient descent well-posed: one learning rate suits every feature.
    standardize: bool = Field(True, description="Z-score features and target before training.")
    # log(price) often fits better, but then coefficients are no longer in price units.
    log_target: bool = Field(False, description="Fit log(price) instead of price.")


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
    # Each trainer accepts only the devices its spec lists (houseprice/trainers.py).
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
    """Show each default trainer's section in the JSON schema, so the Prefect form has it."""
    _schema_defaults(schema, model)
    settings = schema.get("additionalProperties") or {}
    for name in trainer_registry.default_trainers():
        schema.setdefault("properties", {})[name] = {
            **settings,
            "default": TrainerConfig().model_dump(mode="json"),
            "description": f"The {trainer_registry.trainer_label(name)} trainer's settings.",
        }


class TrainingConfig(_Section):
    """Settings per trainer (a mapping: trainer name → TrainerConfig), plus the seed they share.

    The keys are registered trainer names (houseprice/trainers.py); each one listed trains, and
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


class EvaluationConfig(_Section):
    """How the trained models are judged."""

    reference_tolerance: float = Field(
        0.001,
        gt=0,
        description="How close (relative) each trainer's test RMSE must be to the exact "
        "least-squares reference for its model to be used.",
    )
    # A test part of 11 rows put R² at 0.47 for a model whose all-rows R² is 0.67: below about
    # 200 rows a single held-out part is too noisy to judge a model by.
    min_test_rows: int = Field(
        200,
        ge=1,
        description="Fewest test rows whose figures judge a model; with fewer (or a full-sample "
        "fit) repeated k-fold cross-validation does.",
    )
    cv_folds: int = Field(5, ge=2, le=20, description="Folds of the cross-validation.")
    # Repeats average out the luck of one fold assignment; above 3,000 rows fewer are run
    # (at least one), since one pass is already precise there and each refits everything.
    cv_repeats: int = Field(
        10, ge=1, le=100, description="Repetitions of the k-fold split, each freshly shuffled."
    )
    cv_seed: int = Field(0, description="Seed of the cross-validation's fold assignment.")


class PromotionConfig(_Section):
    """When a run's model replaces the champion (see README: "Champion and challenger")."""

    # R² 0.5 rejects models that explain little (shuffled labels score about 0).
    min_test_r2: float | None = Field(
        0.5, le=1, description="Lowest test R² a model may be promoted with (off if empty)."
    )
    max_test_rmse: float | None = Field(
        None, gt=0, description="Highest test RMSE, in price units, for promotion (off if empty)."
    )
    max_test_mape: float | None = Field(
        None, gt=0, description="Highest test MAPE (0.1 = 10%) for promotion (off if empty)."
    )
    # 0 means "better, beyond noise"; 0.01 accepts up to 1% worse.
    max_relative_rmse_change: float = Field(
        0.0,
        gt=-1,
        lt=1,
        description="The bootstrap interval's upper end of the challenger's relative RMSE "
        "change against the champion must be below this (0: better beyond noise).",
    )
    confidence: float = Field(
        0.95, gt=0.5, lt=1, description="Confidence level of that bootstrap interval."
    )
    bootstrap_samples: int = Field(
        2000, ge=100, le=100_000, description="Resamples of the paired bootstrap."
    )
    seed: int = Field(0, description="Seed of the bootstrap resampling.")


class DriftConfig(_Section):
    """Drift between new data and the champion's training data, per feature."""

    # Population stability index: < 0.1 stable, 0.1–0.25 moderate, > 0.25 a major shift.
    max_psi: float = Field(
        0.25, gt=0, description="Population stability index above which a feature has drifted."
    )
    # A major shift in any feature stops promotion until a person has looked at the data.
    block_promotion: bool = Field(True, description="Refuse to promote when a feature drifted.")
    bins: int = Field(10, ge=2, le=100, description="Bins per numeric feature for the PSI.")


class PathsConfig(_Section):
    """The two folders the pipeline writes to."""

    data_dir: Path = Field(
        Path("data"), description="Snapshots, dataset versions, landing and quarantine."
    )
    artifacts_dir: Path = Field(
        Path("artifacts"), description="Run folders, the champion and promotion history."
    )


# The install line named wherever MLflow is asked for but missing.
MLFLOW_INSTALL = "pip install -e '.[mlflow]'"


class TrackingConfig(_Section):
    """Optional MLflow tracking and model registry, beside the run folders (README: "MLflow")."""

    # Off by default: champion.json is the source of truth; MLflow is a view for people who use it.
    mlflow_uri: str | None = Field(
        None,
        description="MLflow tracking URI, e.g. 'sqlite:///mlflow.db' (a local store) or "
        "'http://127.0.0.1:5000' (a server); empty: no MLflow. Needs the mlflow extra.",
    )
    experiment: str = Field(
        "houseprice", min_length=1, description="MLflow experiment each run is logged under."
    )
    registered_model: str = Field(
        "houseprice",
        min_length=1,
        description="Registered model holding each run's model; its alias 'champion' follows "
        "champion.json.",
    )
    # MLflow's own default retries for minutes; a tracking server that is down should cost
    # the nightly run seconds, then a warning.
    timeout_s: float = Field(
        10, gt=0, description="Seconds each request to an MLflow server may take."
    )
    max_retries: int = Field(
        1, ge=0, le=10, description="Retries of a failed request to an MLflow server."
    )

    @field_validator("mlflow_uri")
    @classmethod
    def _needs_mlflow(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if ":" not in value:
            raise ValueError(
                f"{value!r} is not a tracking URI: use sqlite:///path/mlflow.db or http(s)://host"
            )
        if importlib.util.find_spec("mlflow") is None:
            raise ValueError(f"MLflow is not installed; install the extra: {MLFLOW_INSTALL}")
        return value


class PipelineConfig(_Section):
    """Everything one retrain run needs."""

    data: DataConfig = Field(default_factory=DataConfig, description="Data source and columns.")
    split: SplitConfig = Field(default_factory=SplitConfig, description="Train/validation/test.")
    features: FeatureConfig = Field(
        default_factory=FeatureConfig, description="Scaling and target transform."
    )
    training: TrainingConfig = Field(
        default_factory=TrainingConfig, description="Trainer settings."
    )
    evaluation: EvaluationConfig = Field(
        default_factory=EvaluationConfig, description="Checks against least squares."
    )
    promotion: PromotionConfig = Field(
        default_factory=PromotionConfig, description="When a model becomes champion."
    )
    drift: DriftConfig = Field(default_factory=DriftConfig, description="Data drift checks.")
    paths: PathsConfig = Field(default_factory=PathsConfig, description="Output folders.")
    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig, description="Optional MLflow tracking and registry."
    )
    lock_timeout_s: float = Field(
        3600,
        ge=0,
        description="Seconds a run waits for another retrain on the same folders before failing.",
    )

    @model_validator(mode="after")
    def _check_split(self) -> PipelineConfig:
        if self.split.validation_fraction + self.split.test_fraction >= 0.8:
            raise ValueError(
                "split: validation_fraction + test_fraction must leave >= 20% to train"
            )
        if self.split.full_sample:
            for name, settings in self.training.trainers.items():
                if settings.early_stopping_patience is not None:
                    raise ValueError(
                        f"training.{name}.early_stopping_patience needs validation rows; "
                        "a full-sample fit (split fractions 0) has none"
                    )
        return self


class ConfigError(ValueError):
    """A configuration that was refused, with a message naming each bad field."""


def format_validation_error(error: ValidationError) -> str:
    """Render pydantic's errors as one 'field.path: message' line each."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "config"
        lines.append(f"{where}: {item['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def build_config(values: dict[str, Any]) -> PipelineConfig:
    """Validate a nested dict into a PipelineConfig, raising ConfigError that names the fields."""
    try:
        return PipelineConfig.model_validate(values)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error)) from None


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML config file into a nested dict, raising ConfigError on a bad file."""
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:  # a folder, no permission, binary file
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping, not {type(loaded).__name__}")
    return loaded or {}


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read a YAML config (or the defaults when path is None) and apply nested overrides."""
    values = read_config_file(path) if path is not None else {}
    return build_config(merge_nested(values, overrides or {}))


def merge_nested(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return base with overrides applied key by key, recursing into nested sections."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_nested(merged[key], value)
        else:
            merged[key] = value
    return merged
