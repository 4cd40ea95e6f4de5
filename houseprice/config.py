"""The one typed configuration of the pipeline.

`PipelineConfig` is the retrain flow's parameter: the Prefect UI renders it as a form, a YAML file
can hold it, and CLI flags override it. Each stage receives only its own section. The data
section, with its source-dependent defaults, is in houseprice/data_config.py, the training section
(settings per trainer) in houseprice/training_config.py; reading YAML files and naming bad fields
in houseprice/config_files.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

# As _Section: the sections below keep the name they had before the base moved out.
from houseprice.config_base import Section as _Section
from houseprice.config_files import (
    ConfigError,
    format_validation_error,
    merge_nested,
    read_config_file,
)

# Re-exported: the data section and its defaults are part of this module's interface.
from houseprice.data_config import (
    BUNDLED_SOURCE as BUNDLED_SOURCE,
)
from houseprice.data_config import (
    DEFAULT_CATEGORICAL_FEATURES as DEFAULT_CATEGORICAL_FEATURES,
)
from houseprice.data_config import (
    DEFAULT_NUMERIC_FEATURES as DEFAULT_NUMERIC_FEATURES,
)
from houseprice.data_config import DataConfig

# Re-exported: the training section (a mapping of trainer settings) is in its own module.
from houseprice.training_config import TrainerConfig as TrainerConfig
from houseprice.training_config import TrainingConfig


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
    # A million held-out rows estimate a linear model's RMSE to about 0.1%; past that, more
    # held-out rows only cost memory (they are kept in memory for evaluation and the gate) and
    # leave less to train on. Above 6.7M rows the cut shrinks so each part keeps at most this
    # many; the rows freed go to training, so a row once in training stays there as data grows.
    max_held_out_rows: int | None = Field(
        1_000_000,
        ge=1_000,
        description="Most rows in each of the validation and test parts (None: no cap).",
    )

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
    # exp of a predicted log price estimates the median price, below the mean for right-skewed
    # prices; "mean" applies Duan's smearing factor, mean(exp(residual)) on the training rows,
    # which assumes no particular error distribution. Median by default: what runs gave before.
    log_target_estimate: Literal["median", "mean"] = Field(
        "median",
        description="With log_target: predict the median price (exp of the log) or the mean "
        "(times Duan's smearing factor).",
    )

    @model_validator(mode="after")
    def _estimate_needs_log_target(self) -> FeatureConfig:
        if self.log_target_estimate == "mean" and not self.log_target:
            raise ValueError(
                "features.log_target_estimate: mean applies only with features.log_target: true "
                "(a price fitted directly already estimates the mean)"
            )
        return self


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
    """When a run's model replaces the champion (see docs/models.md, "Champion and challenger")."""

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
    """Optional MLflow tracking and model registry, beside the run folders (docs/models.md)."""

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


class ComputeConfig(_Section):
    """Where the work runs: in this process and its trainer workers, or on a Dask cluster."""

    # local: the flow process streams the chunks and one worker process per trainer trains.
    # dask: per-chunk work (validation, statistics, training passes) fans out to a
    # dask.distributed cluster through prefect-dask; without an address the run starts a
    # LocalCluster and closes it at the end.
    engine: Literal["local", "dask"] = Field("local", description="local or dask.")
    dask_address: str | None = Field(
        None,
        description="Scheduler of a running Dask cluster, e.g. tcp://host:8786; "
        "none: start a LocalCluster for the run.",
    )
    dask_workers: int = Field(
        2, ge=1, le=256, description="Worker processes of the LocalCluster a run starts."
    )
    # Past this many rows a Parquet source is read in chunks and never held whole; below it the
    # in-memory path is simpler and as fast. 0 streams every Parquet source.
    stream_above_rows: int = Field(
        2_000_000, ge=0, description="Stream a Parquet source with more rows than this."
    )
    # One chunk is held at a time (per worker): about chunk_rows x columns x 8 bytes, a few
    # times over while it is encoded. Chunks follow the files' row groups.
    chunk_rows: int = Field(
        1_000_000, ge=1_000, description="Rows per streamed chunk (whole row groups)."
    )
    # The local engine's flow process works on this many chunks at once where the work is numpy
    # and pyarrow (they release the GIL): splitting, encoding, scaling. Each holds a chunk in
    # memory. Validation (Great Expectations, Python-bound) takes one chunk at a time.
    local_threads: int = Field(
        2, ge=1, le=64, description="Chunks the local engine works on at once."
    )

    @field_validator("dask_address")
    @classmethod
    def _scheduler_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if "://" not in value:
            raise ValueError(f"{value!r} is not a scheduler address: use tcp://host:8786")
        return value.strip()


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
    compute: ComputeConfig = Field(
        default_factory=ComputeConfig, description="Engine (local or Dask) and streaming."
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


def build_config(values: dict[str, Any]) -> PipelineConfig:
    """Validate a nested dict into a PipelineConfig, raising ConfigError that names the fields."""
    try:
        return PipelineConfig.model_validate(values)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, PipelineConfig)) from None


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read a YAML config (or the defaults when path is None) and apply nested overrides."""
    values = read_config_file(path) if path is not None else {}
    return build_config(merge_nested(values, overrides or {}))
