"""The data section: where the rows come from, the columns used, and what the source implies.

The source-dependent defaults are validators here, not rules of the command line, so a YAML file,
a deployment's parameters, the Prefect UI's form and the `houseprice` flags give one config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from houseprice.columns import DEFAULT_MAX_ABS_VALUE
from houseprice.config_base import Section
from houseprice.model_names import check_model_name, derive_model_name

BUNDLED_SOURCE = "bundled"

# Defaults picked for the bundled Ames data (see data/README.md for why each one).
DEFAULT_TARGET = "Sale_Price"
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
# The sale year keeps growing: in landing mode the suite learned from the first data leaves its
# upper bound open, so next year's sales are not quarantined as out of range.
BUNDLED_TIME_COLUMN = "Year_Sold"
# As in houseprice.synthetic (kept apart so that module needs numpy only; a test checks they agree).
SYNTHETIC_PREFIX = "synthetic:"
SYNTHETIC_TARGET = "price"
# Validation context key: the columns were chosen (by ingest, from the data), not defaulted.
_COLUMNS_CHOSEN = "columns_chosen"


def source_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """The data section's values with the defaults that depend on its source filled in.

    Read by value, not by which keys were given: the Prefect UI's form submits every field
    filled with the schema's defaults, and a deployment keeps only values that differ from them.
    So a column list equal to the Ames default counts as unset for another source (list the
    Ames columns under `features` to use them there), as does the target `Sale_Price` for
    synthetic data (which has no such column) and an empty time column in landing mode.
    """
    source = values.get("source", BUNDLED_SOURCE)
    if not isinstance(source, str):
        return values  # the field's own validation names the problem
    filled = dict(values)
    if source != BUNDLED_SOURCE:
        # Another source starts from all its columns, not the Ames ones it lacks.
        for key, default in (
            ("numeric_features", DEFAULT_NUMERIC_FEATURES),
            ("categorical_features", DEFAULT_CATEGORICAL_FEATURES),
        ):
            if filled.get(key, default) == default:
                filled[key] = []
    synthetic = source.startswith(SYNTHETIC_PREFIX)
    if synthetic and filled.get("target", DEFAULT_TARGET) == DEFAULT_TARGET:
        filled["target"] = SYNTHETIC_TARGET
    landing = filled.get("landing_dir") is not None
    if source == BUNDLED_SOURCE and landing and filled.get("time_column") is None:
        filled["time_column"] = BUNDLED_TIME_COLUMN
    return filled


class DataConfig(Section):
    """Where the data comes from and which columns the model uses."""

    source: str = Field(
        BUNDLED_SOURCE,
        description="'bundled', a CSV/Parquet file, a folder of them, an http(s) URL, "
        "or 'synthetic:rows=N,features=D,...'.",
    )
    # Each model has its own champion: runs on other data must not compete with this one.
    model: str | None = Field(
        None,
        description="Name of the model this run trains (its champion slot), e.g. sales-2026; "
        "default: derived from the source's name and the target (`ames` for the bundled data).",
    )
    target: str = Field(
        DEFAULT_TARGET,
        min_length=1,
        description="Column to predict (price); `price` for a synthetic source.",
    )
    numeric_features: list[str] = Field(
        default_factory=lambda: list(DEFAULT_NUMERIC_FEATURES),
        description="Columns used as numbers (gaps filled with the training median); "
        "the Ames columns for the bundled data, none for another source.",
    )
    categorical_features: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CATEGORICAL_FEATURES),
        description="Columns used as categories, one-hot encoded against the most frequent "
        "level; the Ames columns for the bundled data, none for another source.",
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
    # Numbers written with grouped thousands ('1,656') or a decimal comma ('1234,5') are read
    # only when declared: guessed, '1,656' could be 1656 or 1.656.
    thousands: Literal[",", ".", " ", "'"] | None = Field(
        None,
        description="Thousands separator of numbers written as text, e.g. ',' for 1,656 "
        "(default: none; such cells are refused, naming the column).",
    )
    decimal: Literal[".", ","] = Field(
        ".", description="Decimal mark of numbers written as text: '.' or ',' (1234,5)."
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
        None,
        description="Column giving each sale's time (a year or a date), for `window`; "
        "Year_Sold for the bundled data in landing mode.",
    )
    # Same units as the column: years for a year column, days for dates.
    window: float | None = Field(
        None,
        gt=0,
        description="Train only on rows within this much of the newest time_column value "
        "(years for a year column, days for dates).",
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_source_defaults(cls, values: Any, info: ValidationInfo) -> Any:
        if not isinstance(values, dict) or (info.context or {}).get(_COLUMNS_CHOSEN):
            return values
        return source_defaults(values)

    @model_validator(mode="after")
    def _check_model(self) -> DataConfig:
        if self.model is not None:
            check_model_name(self.model)
        return self

    @property
    def model_name(self) -> str:
        """The model this run trains: the one named, else derived from the source and target."""
        return self.model or derive_model_name(self.source, self.target)

    @model_validator(mode="after")
    def _check_window(self) -> DataConfig:
        if self.window is not None and self.time_column is None:
            raise ValueError("window needs time_column")
        return self

    @model_validator(mode="after")
    def _check_notation(self) -> DataConfig:
        if self.thousands == self.decimal:
            raise ValueError(f"thousands and decimal are both {self.decimal!r}")
        return self

    @property
    def notation(self) -> tuple[str | None, str]:
        """(thousands separator or None, decimal mark), as houseprice.columns reads numbers."""
        return self.thousands, self.decimal

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

    def with_typed_columns(self, numeric: list[str], categorical: list[str]) -> DataConfig:
        """This section with every feature typed as given, its checks run again.

        The source's defaults stay out of it: these columns were chosen, even where they
        happen to equal the Ames lists.
        """
        values = self.model_dump()
        values.update(numeric_features=numeric, categorical_features=categorical, features=[])
        return DataConfig.model_validate(values, context={_COLUMNS_CHOSEN: True})

    @property
    def feature_columns(self) -> list[str]:
        """Every configured feature column, typed or not."""
        return self.numeric_features + self.categorical_features + self.features

    @property
    def columns(self) -> list[str]:
        """The target plus every configured feature column."""
        return [self.target, *self.feature_columns]
