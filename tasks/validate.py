"""Validate: check the ingested frame against a Great Expectations suite before training on it.

The bundled Ames data has a curated suite in data/ames_suite.json (GX's own suite JSON, the source
of truth; `python -m tasks.validate` regenerates it from `build_bundled_suite`). Every source also
gets the checks its DataConfig implies, so overriding the features on bundled data is still checked.
"""

from __future__ import annotations

import copy
import logging
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from houseprice import storage
from houseprice.config import BUNDLED_SOURCE, DataConfig

if TYPE_CHECKING:
    from types import ModuleType

    from great_expectations.data_context import AbstractDataContext

# Dtypes that count as numeric: numpy names, pandas' nullable dtypes (GX resolves these by class
# name), and Python int/float, which GX checks value by value when a column has object dtype.
NUMERIC_TYPES = [
    *(f"{kind}{bits}" for kind in ("int", "uint") for bits in (8, 16, 32, 64)),
    *(f"float{bits}" for bits in (16, 32, 64)),
    *(f"{kind}{bits}Dtype" for kind in ("Int", "UInt") for bits in (8, 16, 32, 64)),
    "Float32Dtype",
    "Float64Dtype",
    "int",
    "float",
]
# A between-check over the whole float64 range passes every finite value and fails ±inf.
FINITE_BOUND = sys.float_info.max
FAILURE_SAMPLE_SIZE = 5
DOCS_SITE = "run"

_BETWEEN = "expect_column_values_to_be_between"
_NOT_NULL = "expect_column_values_to_not_be_null"
_TYPE_LIST = "expect_column_values_to_be_in_type_list"
_EXISTS = "expect_column_to_exist"
_COLUMN_SET = "expect_table_columns_to_match_set"


@dataclass
class ExpectationFailure:
    """One failed expectation: what was checked, on which column, and a few offending values."""

    expectation_type: str
    column: str | None
    sample: list[Any]  # up to FAILURE_SAMPLE_SIZE distinct bad values, or the observed value
    description: str  # one line, e.g. "3 of 2930 values outside [1, None], e.g. [-5.0]"

    def __str__(self) -> str:
        on = f" on {self.column!r}" if self.column and self.expectation_type != _EXISTS else ""
        return f"{self.expectation_type}{on}: {self.description}"


@dataclass
class ValidationReport:
    """Outcome of one suite run: verdict, counts, readable failures and GX's full result."""

    success: bool
    suite: str
    evaluated: int
    successful: int
    failed: int
    failures: list[ExpectationFailure] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)  # GX's result, JSON-safe
    docs_index: Path | None = None  # Data Docs index.html, when docs were built

    def summary(self) -> str:
        """One line: verdict and counts."""
        verdict = "passed" if self.success else "failed"
        return (
            f"suite {self.suite!r} {verdict}: {self.successful} of {self.evaluated} "
            f"expectations met, {self.failed} failed"
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything as strict JSON (infinities and NaN become strings)."""
        payload = asdict(self)
        payload["failures"] = [{**asdict(f), "message": str(f)} for f in self.failures]
        payload["docs_index"] = str(self.docs_index) if self.docs_index else None
        return _json_safe(payload)


class DataValidationError(RuntimeError):
    """The data failed its expectation suite; the message lists every failed expectation."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        lines = [f"data validation failed: {report.summary()}"]
        lines += [f"  - {failure}" for failure in report.failures]
        if report.docs_index:
            lines.append(f"Data Docs: {report.docs_index}")
        super().__init__("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# Suites, as GX suite JSON dicts: building them needs no GX import.


def build_expectation_suite(data: DataConfig, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """GX suite JSON: base's expectations (e.g. the bundled suite) plus those the config implies."""
    features = [*data.numeric_features, *data.categorical_features]
    # Rounded: 1 - 0.7 is 0.30000000000000004, which would fail a column exactly at the limit.
    mostly = round(1.0 - data.max_missing_fraction, 10)
    derived = [_expect("expect_table_row_count_to_be_between", min_value=data.min_rows)]
    derived += [
        _expect(_EXISTS, column=c)
        for c in dict.fromkeys([data.target, *features, *data.value_ranges])
    ]
    for column in [data.target, *data.numeric_features]:
        derived.append(_expect(_TYPE_LIST, column=column, type_list=NUMERIC_TYPES))
        derived.append(_finite(column))
    derived.append(_expect(_NOT_NULL, column=data.target))
    derived.append(_expect(_BETWEEN, column=data.target, min_value=0, strict_min=True))
    derived += [_expect(_NOT_NULL, column=c, mostly=mostly) for c in features]
    for column, (low, high) in data.value_ranges.items():
        if low is not None or high is not None:
            derived.append(_expect(_BETWEEN, column=column, min_value=low, max_value=high))
    suite = copy.deepcopy(base) if base else {"name": "houseprice", "meta": {}}
    suite["expectations"] = _dedupe([*suite.get("expectations", []), *derived])
    return suite


# Plausible ranges for Ames sales 2006-2010 (De Cock 2011), wide enough that only broken values
# fail: observed extremes are noted; areas are square feet.
_AMES_RANGES: dict[str, tuple[dict[str, Any], str]] = {
    "Sale_Price": ({"min_value": 5_000, "max_value": 2_000_000}, "observed $12,789-$755,000"),
    "Gr_Liv_Area": (
        {"min_value": 0, "strict_min": True, "max_value": 10_000},
        "observed 334-5,642",
    ),
    "First_Flr_SF": (
        {"min_value": 0, "strict_min": True, "max_value": 10_000},
        "observed 334-5,095",
    ),
    "Second_Flr_SF": ({"min_value": 0, "max_value": 5_000}, "0 means one storey"),
    "Total_Bsmt_SF": ({"min_value": 0, "max_value": 10_000}, "0 means no basement"),
    "Lot_Area": (
        {"min_value": 0, "strict_min": True, "max_value": 500_000},
        "max 215,245 (5 acres)",
    ),
    "Lot_Frontage": ({"min_value": 0, "max_value": 1_000}, "0 encodes 'not recorded' (490 rows)"),
    "Year_Built": ({"min_value": 1850, "max_value": 2030}, "observed 1872-2010"),
    "Year_Remod_Add": ({"min_value": 1850, "max_value": 2030}, "the assessor floors it at 1950"),
    "Year_Sold": ({"min_value": 2006, "max_value": 2010}, "the data set covers 2006-2010 sales"),
    "Mo_Sold": ({"min_value": 1, "max_value": 12}, "calendar month"),
    "Garage_Cars": ({"min_value": 0, "max_value": 10}, "observed 0-5"),
    "Garage_Area": ({"min_value": 0, "max_value": 3_000}, "observed 0-1,488"),
    "Full_Bath": ({"min_value": 0, "max_value": 8}, "observed 0-4"),
    "Half_Bath": ({"min_value": 0, "max_value": 5}, "observed 0-2"),
    "Bedroom_AbvGr": ({"min_value": 0, "max_value": 15}, "observed 0-8"),
    "TotRms_AbvGrd": ({"min_value": 1, "max_value": 25}, "observed 2-15"),
    "Fireplaces": ({"min_value": 0, "max_value": 8}, "observed 0-4"),
    "Latitude": ({"min_value": 41.9, "max_value": 42.1}, "Ames, Iowa; catches swapped coordinates"),
    "Longitude": ({"min_value": -93.8, "max_value": -93.5}, "Ames, Iowa; catches a lost sign"),
}
# Levels documented for the Ames data (as spelled in modeldata's release), so a recoded or
# misspelled level fails rather than silently becoming a new category.
# fmt: off
_AMES_LEVELS: dict[str, list[str]] = {
    "Neighborhood": [
        "Bloomington_Heights", "Blueste", "Briardale", "Brookside", "Clear_Creek",
        "College_Creek", "Crawford", "Edwards", "Gilbert", "Green_Hills", "Greens",
        "Iowa_DOT_and_Rail_Road", "Landmark", "Meadow_Village", "Mitchell", "North_Ames",
        "Northpark_Villa", "Northridge", "Northridge_Heights", "Northwest_Ames", "Old_Town",
        "Sawyer", "Sawyer_West", "Somerset", "South_and_West_of_Iowa_State_University",
        "Stone_Brook", "Timberland", "Veenker",
    ],
    "Bldg_Type": ["Duplex", "OneFam", "Twnhs", "TwnhsE", "TwoFmCon"],
    "Overall_Cond": [
        "Very_Poor", "Poor", "Fair", "Below_Average", "Average", "Above_Average", "Good",
        "Very_Good", "Excellent", "Very_Excellent",
    ],
    "House_Style": [
        "One_Story", "One_and_Half_Fin", "One_and_Half_Unf", "SFoyer", "SLvl", "Two_Story",
        "Two_and_Half_Fin", "Two_and_Half_Unf",
    ],
    "MS_Zoning": [
        "A_agr", "C_all", "Floating_Village_Residential", "I_all", "Residential_High_Density",
        "Residential_Low_Density", "Residential_Medium_Density",
    ],
    "Central_Air": ["N", "Y"],
    "Sale_Condition": ["Abnorml", "AdjLand", "Alloca", "Family", "Normal", "Partial"],
    # "WD " (warranty deed, the most common level) carries a trailing space in the release.
    "Sale_Type": ["COD", "CWD", "Con", "ConLD", "ConLI", "ConLw", "New", "Oth", "VWD", "WD "],
}
# fmt: on


def build_bundled_suite() -> dict[str, Any]:
    """The curated suite for data/ames.parquet; data/ames_suite.json is this, as GX wrote it."""
    expectations = [_expect("expect_table_row_count_to_be_between", min_value=2_930)]
    for column, (bounds, why) in _AMES_RANGES.items():
        expectations += [
            _expect(_EXISTS, column=column),
            _expect(_TYPE_LIST, column=column, type_list=NUMERIC_TYPES),
            _expect(_NOT_NULL, column=column),
            _finite(column),
            _expect(_BETWEEN, notes=why, column=column, **bounds),
        ]
    for column, levels in _AMES_LEVELS.items():
        expectations += [
            _expect(_EXISTS, column=column),
            _expect(_NOT_NULL, column=column),
            _expect("expect_column_values_to_be_in_set", column=column, value_set=levels),
        ]
    notes = (
        "Curated for data/ames.parquet (De Cock's Ames sales, 2,930 rows). This file is the source "
        "of truth; tasks/validate.py:build_bundled_suite regenerates it (python -m tasks.validate)."
    )
    return {"name": "ames", "expectations": expectations, "meta": {}, "notes": notes}


# ---------------------------------------------------------------------------------------------
# A suite learned from trusted data (landing mode keeps it in data/versions/suite.json).

# Bounds are the observed range widened by this share of it on each side: next year's slightly
# bigger house passes, a unit error (cents for dollars, m² for ft²) is off by far more.
LEARNED_RANGE_MARGIN = 0.1
# A column never seen at or below zero may fall to this share of its smallest value, no lower,
# however wide its range: a unit slip (hundreds of dollars for dollars, m² for ft²) lands far
# below it, while the range margin alone would let a skewed column such as price reach zero.
LEARNED_POSITIVE_FLOOR = 0.5
# A file may bring a few rows of a level never seen (a new neighborhood) without being refused;
# a larger share suggests a recoding, whose levels would silently become new categories.
LEARNED_NEW_LEVEL_SHARE = 0.1
# A column's null rate may rise by this much plus half its trusted rate before a file is
# refused: a common null varies more between small files (a 40-row Ames sample of a column
# 61% null often shows 70%), while a column that is never null may gain only a few.
LEARNED_NULL_HEADROOM = 0.05
# More distinct values than this is an identifier or free text, not a category worth listing.
LEARNED_MAX_LEVELS = 100
_IN_SET = "expect_column_values_to_be_in_set"
_ROW_COUNT = "expect_table_row_count_to_be_between"


def build_learned_suite(
    frame: pd.DataFrame, target: str, time_column: str | None = None
) -> dict[str, Any]:
    """GX suite JSON profiling trusted data: its columns, types, widened ranges, levels, nulls.

    The target keeps a floor above zero and the time column gets no upper bound (new data is
    newer by nature). Each learned bound notes what was observed, for the person who edits it.
    """
    columns = [str(column) for column in frame.columns]
    expectations = [_expect(_COLUMN_SET, column_set=columns, exact_match=True)]
    for column in columns:
        expectations += _learned_checks(frame[column], column, target, time_column)
    notes = (
        f"Learned from {len(frame):,} trusted rows by tasks/validate.py:build_learned_suite. "
        "Edit freely: landing files are validated against this file, which is never regenerated."
    )
    return {"name": "learned", "expectations": expectations, "meta": {}, "notes": notes}


def _learned_checks(
    values: pd.Series, column: str, target: str, time_column: str | None
) -> list[dict[str, Any]]:
    checks = [_learned_not_null(values, column, column == target)]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        checks += [_expect(_TYPE_LIST, column=column, type_list=NUMERIC_TYPES), _finite(column)]
        if values.notna().any():
            checks.append(_learned_range(values, column, column == target, column == time_column))
    elif not pd.api.types.is_datetime64_any_dtype(values):
        levels = sorted(values.dropna().unique().tolist(), key=str)
        if len(levels) <= LEARNED_MAX_LEVELS:
            checks.append(
                _expect(
                    _IN_SET,
                    notes=f"{len(levels)} levels seen; up to {LEARNED_NEW_LEVEL_SHARE:.0%} of a "
                    "file's values may be new ones",
                    column=column,
                    value_set=levels,
                    mostly=round(1 - LEARNED_NEW_LEVEL_SHARE, 10),
                )
            )
    return [check for check in checks if check is not None]


def _learned_not_null(values: pd.Series, column: str, is_target: bool) -> dict[str, Any] | None:
    if is_target:
        return _expect(_NOT_NULL, column=column)
    rate = float(values.isna().mean())
    # Floored to 4 digits (after rounding off float noise), so it is never stricter than meant.
    mostly = math.floor(round((1 - 1.5 * rate - LEARNED_NULL_HEADROOM) * 10_000, 6)) / 10_000
    if mostly <= 0:
        return None
    return _expect(
        _NOT_NULL, notes=f"{rate:.1%} null in trusted data", column=column, mostly=mostly
    )


def _learned_range(
    values: pd.Series, column: str, is_target: bool, open_ended: bool
) -> dict[str, Any]:
    low, high = float(values.min()), float(values.max())
    span = (high - low) or abs(high) or 1.0
    margin = LEARNED_RANGE_MARGIN * span
    # Rounded outward to 3 significant digits of the range, so the JSON reads well when edited.
    places = 2 - math.floor(math.log10(span))
    if pd.api.types.is_integer_dtype(values):
        places = min(places, 0)

    def outward(value: float, rounding: Any) -> float | int:
        rounded = round(rounding(value * 10.0**places) / 10.0**places, max(places, 0))
        return int(rounded) if places <= 0 else rounded

    min_value = outward(low - margin, math.floor)
    if low > 0:
        min_value = max(min_value, outward(low * LEARNED_POSITIVE_FLOOR, math.floor))
    max_value = None if open_ended else outward(high + margin, math.ceil)
    strict_min = None
    if low >= 0 and min_value <= 0:  # never seen negative: stays non-negative; a price positive
        min_value, strict_min = 0, (True if is_target else None)
    notes = f"observed {low:g} to {high:g}, widened by {LEARNED_RANGE_MARGIN:.0%} of the range"
    if low > 0:
        notes += f" but not below {LEARNED_POSITIVE_FLOOR:g}× the smallest value"
    if open_ended:
        notes += "; no upper bound on the time column, new rows are newer"
    return _expect(
        _BETWEEN,
        notes=notes,
        column=column,
        min_value=min_value,
        max_value=max_value,
        strict_min=strict_min,
    )


def build_landing_suite(data: DataConfig, learned: dict[str, Any]) -> dict[str, Any]:
    """The suite one landing file must pass: the learned suite plus the config's checks.

    The table's minimum row count is dropped: a file may hold one day's few sales, and the
    dataset they join is checked against the minimum before training.
    """
    suite = build_expectation_suite(data, learned)
    suite["expectations"] = [e for e in suite["expectations"] if e["type"] != _ROW_COUNT]
    return suite


def _expect(kind: str, notes: str | None = None, **kwargs: Any) -> dict[str, Any]:
    # None-valued kwargs are dropped so a config-derived copy equals the bundled one it duplicates.
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    return {"type": kind, "kwargs": kwargs, "meta": {"notes": notes} if notes else {}}


def _finite(column: str) -> dict[str, Any]:
    return _expect(_BETWEEN, column=column, min_value=-FINITE_BOUND, max_value=FINITE_BOUND)


def _dedupe(expectations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Compared with ==, not as JSON text: GX writes min_value 0 back as 0.0.
    kept: list[dict[str, Any]] = []
    for item in expectations:
        if not any(item["type"] == k["type"] and item["kwargs"] == k["kwargs"] for k in kept):
            kept.append(item)
    return kept


# ---------------------------------------------------------------------------------------------
# Running a suite with GX.


def run_validation(
    frame: pd.DataFrame, suite: dict[str, Any], docs_dir: Path | None = None
) -> ValidationReport:
    """Validate frame against a GX suite JSON dict; build Data Docs into docs_dir when given."""
    gx = _import_gx()
    context = _ephemeral_context(gx)
    gx_suite = context.suites.add(_load_suite(gx, suite))
    batch = (
        context.data_sources.add_pandas("houseprice")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("all rows")
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=gx_suite.name, data=batch, suite=gx_suite)
    )
    # SUMMARY: counts plus up to 20 offending values, without COMPLETE's index list of every row.
    result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    docs_index = _build_docs(context, docs_dir) if docs_dir is not None else None
    order = {expectation.id: i for i, expectation in enumerate(gx_suite.expectations)}
    return _summarize(result.to_json_dict(), order, set(frame.columns), docs_index)


def _import_gx() -> ModuleType:
    """great_expectations, imported on first use."""
    # Imported lazily: it takes ~2.5 s (measured), which every CLI command and flow import would
    # pay. At import it logs ~200 INFO lines about its own API docs; keep them out of our logs
    # unless someone configured its logger on purpose.
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    import great_expectations as gx

    return gx


def _ephemeral_context(gx: ModuleType) -> AbstractDataContext:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        # GX 1.24 has no analytics client left (nothing reads this flag or GX_ANALYTICS_ENABLED);
        # the documented opt-out is kept so a version that still has one stays quiet too.
        analytics_enabled=False,
        # Without this every run draws tqdm "Calculating Metrics" bars on stderr.
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _load_suite(gx: ModuleType, suite: dict[str, Any]) -> Any:
    loaded = gx.ExpectationSuite(**copy.deepcopy(suite))  # GX adds keys to what it is given
    # GX logs and drops an expectation of an unknown type instead of raising; refuse that.
    if len(loaded.expectations) != len(suite.get("expectations", [])):
        raise ValueError(
            f"suite {suite.get('name')!r}: some expectations are not valid GX expectations "
            "(see the error logged above)"
        )
    return loaded


def _build_docs(context: AbstractDataContext, docs_dir: Path) -> Path:
    """Render Data Docs into docs_dir (built beside it, then renamed into place)."""

    def build(folder: Path) -> None:
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(folder),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        context.add_data_docs_site(DOCS_SITE, site)
        context.build_data_docs(site_names=[DOCS_SITE])

    storage.write_with_atomic(Path(docs_dir), build)
    return Path(docs_dir) / "index.html"


# ---------------------------------------------------------------------------------------------
# Turning GX's result into readable failures.


def _summarize(
    result: dict[str, Any], order: dict[str, int], columns: set[str], docs_index: Path | None
) -> ValidationReport:
    entries = sorted(
        result["results"], key=lambda r: order.get(r["expectation_config"].get("id"), len(order))
    )
    failed = [entry for entry in entries if not entry["success"]]
    # Checks on a column whose type is wrong fail with GX exceptions; name the cause instead.
    mistyped = {
        entry["expectation_config"]["kwargs"].get("column")
        for entry in failed
        if entry["expectation_config"]["type"] == _TYPE_LIST
    }
    stats = result["statistics"]
    return ValidationReport(
        success=bool(result["success"]),
        suite=result.get("suite_name") or "",
        evaluated=stats["evaluated_expectations"],
        successful=stats["successful_expectations"],
        failed=stats["unsuccessful_expectations"],
        failures=[_describe_failure(entry, columns, mistyped) for entry in failed],
        result=_json_safe(result),
        docs_index=docs_index,
    )


def _describe_failure(
    entry: dict[str, Any], columns: set[str], mistyped: set[str | None]
) -> ExpectationFailure:
    kind = entry["expectation_config"]["type"]
    kwargs = entry["expectation_config"]["kwargs"]
    column = kwargs.get("column")
    outcome = entry.get("result") or {}
    sample = _sample(outcome)
    error = _exception_message(entry.get("exception_info"))
    if kind == _EXISTS:
        text = f"column {column!r} is missing"
    elif kind == _COLUMN_SET and not error:
        mismatched = (outcome.get("details") or {}).get("mismatched") or {}
        parts = [
            f"{key} {mismatched[key]}" for key in ("missing", "unexpected") if key in mismatched
        ]
        text = "columns differ from the suite's: " + ("; ".join(parts) or f"observed {sample}")
    elif column is not None and column not in columns:
        text = f"not evaluated, column {column!r} is missing"
    elif error and column in mistyped and kind != _TYPE_LIST:
        text = f"not evaluated, column {column!r} is not numeric"
    elif error:
        text = f"could not be evaluated: {error}"
    elif outcome.get("unexpected_count") is not None:
        text = _describe_unexpected(kind, kwargs, outcome, sample)
    else:
        text = _describe_observed(kind, kwargs, outcome.get("observed_value"))
    return ExpectationFailure(kind, column, sample, text)


def _describe_unexpected(
    kind: str, kwargs: dict[str, Any], outcome: dict[str, Any], sample: list[Any]
) -> str:
    counted = f"{outcome['unexpected_count']} of {outcome['element_count']} values"
    if kind == _NOT_NULL:
        allowed = 100 * (1 - kwargs.get("mostly", 1.0))
        percent = outcome.get("unexpected_percent") or 0.0  # None on an empty frame
        return f"{counted} are null ({percent:.1f}%, at most {allowed:g}% allowed)"
    if kind == _BETWEEN and kwargs.get("max_value") == FINITE_BOUND == -kwargs.get("min_value", 0):
        problem = "are infinite"
    elif kind == _BETWEEN:
        problem = f"outside {_bounds(kwargs)}"
    elif kind == _TYPE_LIST:
        problem = "are not numbers"
    elif kind == "expect_column_values_to_be_in_set":
        problem = "are not known levels"
    else:
        problem = "are unexpected"
    return f"{counted} {problem}, e.g. {sample}"


def _describe_observed(kind: str, kwargs: dict[str, Any], observed: Any) -> str:
    if kind == _TYPE_LIST:
        return f"column type is {observed}, expected a numeric type"
    if kind == "expect_table_row_count_to_be_between":
        return f"{observed} rows, outside {_bounds(kwargs)}"
    return f"observed {observed!r}"


def _bounds(kwargs: dict[str, Any]) -> str:
    low = "(" if kwargs.get("strict_min") else "["
    high = ")" if kwargs.get("strict_max") else "]"
    return f"{low}{kwargs.get('min_value')}, {kwargs.get('max_value')}{high}"


def _sample(outcome: dict[str, Any]) -> list[Any]:
    values = outcome.get("partial_unexpected_list")
    if not values:
        observed = outcome.get("observed_value")
        return [] if observed is None else [observed]
    distinct: list[Any] = []
    for value in values:
        if value not in distinct:
            distinct.append(value)
    return distinct[:FAILURE_SAMPLE_SIZE]


def _exception_message(info: dict[str, Any] | None) -> str | None:
    # GX nests exceptions per metric ({metric_id: {...}}) or gives one flat record.
    records = [info] if info and "raised_exception" in info else list((info or {}).values())
    for record in records:
        if isinstance(record, dict) and record.get("raised_exception"):
            return str(record.get("exception_message", "")).strip() or "unknown error"
    return None


def _json_safe(value: Any) -> Any:
    """value with non-finite floats as strings, so the JSON stays strict (no Infinity/NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------------


# retries=0 stated, not defaulted: a failing suite is a fact about the data, so a retry cannot help,
# and an explicit value is not overridden by PREFECT_TASK_DEFAULT_RETRIES. No cache: a cached
# result would skip writing this run's validation files.
@task(name="validate-data", retries=0, cache_policy=NO_CACHE)
def validate_data(
    frame: pd.DataFrame,
    data: DataConfig,
    run: storage.RunPaths,
    learned: dict[str, Any] | None = None,
) -> ValidationReport:
    """Check the data against its expectation suite; stop the run if it fails."""
    # Landing mode passes the suite learned from its first version; bundled data has its own.
    base = learned
    if base is None and data.source == BUNDLED_SOURCE:
        base = storage.read_json(storage.BUNDLED_SUITE)
    report = run_validation(frame, build_expectation_suite(data, base), run.data_docs)
    storage.write_json_atomic(run.validation, report.to_dict())
    get_run_logger().info("%s; Data Docs: %s", report.summary(), report.docs_index)
    if not report.success:
        raise DataValidationError(report)
    return report


if __name__ == "__main__":  # regenerate data/ames_suite.json in GX's own format
    storage.write_json_atomic(
        storage.BUNDLED_SUITE, _import_gx().ExpectationSuite(**build_bundled_suite()).to_json_dict()
    )
