"""MLflow tracking and registry: each finished run logged beside the run folders, if configured.

Optional (tracking.mlflow_uri, the `mlflow` extra) and one-way: the run folder and champion.json
remain what the pipeline uses, and MLflow mirrors them. Each run becomes an MLflow run (params:
the config, flattened; metrics per model and split; tags: snapshot, dataset version, git commit,
devices; artifacts: report, metrics, validation result, lineage) holding its selected model as a
pyfunc model, registered as a version of `tracking.registered_model`. The registered model's
alias `champion` is then set to the version of champion.json's model, so it follows every
promotion, by a run or by `houseprice promote`. mlflow is imported only here, and only when used.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from houseprice import datasets, layout, registry, storage
from houseprice.config import MLFLOW_INSTALL, PipelineConfig, TrackingConfig
from houseprice.trainers import get_trainer

CHAMPION_ALIAS = "champion"
# Tags naming the houseprice run and framework, on MLflow runs and on model versions.
RUN_TAG, FRAMEWORK_TAG = "houseprice.run_id", "houseprice.framework"
SPLITS = ("test", "validation")


class TrackingError(RuntimeError):
    """MLflow could not be used (not installed, or the run cannot be logged)."""


def _mlflow():
    try:
        import mlflow
    except ImportError:
        raise TrackingError(f"MLflow is not installed: {MLFLOW_INSTALL}") from None
    return mlflow


@contextlib.contextmanager
def mlflow_session(settings: TrackingConfig) -> Iterator[Any]:
    """Point MLflow at settings' store for the block (and only the block); yield a client.

    Environment variables rather than mlflow.set_tracking_uri: they are undone on exit, so the
    process is left as it was found.
    """
    mlflow = _mlflow()
    if settings.mlflow_uri is None:
        raise TrackingError("tracking.mlflow_uri is not set")
    values = {
        "MLFLOW_TRACKING_URI": settings.mlflow_uri,
        "MLFLOW_REGISTRY_URI": settings.mlflow_uri,
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(max(1, settings.timeout_s))),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(settings.max_retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        uri = settings.mlflow_uri
        yield mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def flatten_params(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config → {'training.torch.optimizer': 'cg', ...}; lists and nulls as JSON."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten_params(value, f"{name}."))
        else:
            flat[name] = value if isinstance(value, str) else json.dumps(value)
    return flat


def run_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """metrics.json's scores as MLflow metrics: 'torch.test.rmse', 'ols.validation.r2', ..."""
    logged = {}
    for model, section in metrics.items():
        if not isinstance(section, dict) or not all(split in section for split in SPLITS):
            continue  # agreement, promotion, drift, ...: not per-model scores
        for split in SPLITS:
            for name, value in section[split].items():
                if isinstance(value, int | float):
                    logged[f"{model}.{split}.{name}"] = float(value)
    return logged


def run_tags(run: layout.RunPaths, metrics: dict[str, Any], lineage: dict[str, Any]) -> dict:
    """Where the run came from: snapshot, dataset version, git commit, devices, decision."""
    git = lineage.get("git") or {}
    dataset = lineage.get("dataset") or {}
    promotion = metrics.get("promotion") or {}
    tags = {
        RUN_TAG: run.run_id,
        "houseprice.snapshot": lineage.get("snapshot") or metrics.get("snapshot"),
        "houseprice.dataset_version": dataset.get("version"),
        "mlflow.source.git.commit": git.get("commit"),
        "houseprice.git_dirty": git.get("dirty"),
        "houseprice.selected_model": metrics.get("selected_model"),
        "houseprice.promoted": promotion.get("promoted"),
        "houseprice.promotion_reason": promotion.get("reason"),
    }
    for framework, device in (lineage.get("devices") or {}).items():
        tags[f"houseprice.device.{framework}"] = device
    return {key: str(value) for key, value in tags.items() if value is not None}


def model_signature(run: layout.RunPaths):
    """Input schema: the raw feature columns, typed as in the data the run trained on.

    The types come from the run's snapshot (integers stay integers: MLflow will not turn an
    int64 column into a double one); without the snapshot, numbers are doubles, the rest strings.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    preprocessing = storage.read_json(run.preprocessing)
    lineage = storage.read_json(run.lineage)
    data_dir = Path(lineage["config"]["paths"]["data_dir"])  # as the run saw it
    trained = _snapshot_types(data_dir, lineage.get("snapshot"))
    inputs = [
        ColSpec(trained.get(name, "double"), name) for name in preprocessing["numeric_features"]
    ]
    inputs += [
        ColSpec(trained.get(name, "string"), name) for name in preprocessing["categorical_features"]
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([ColSpec("double", "price")]))


def _snapshot_types(data_dir: Path, content_hash: str | None) -> dict[str, str]:
    """MLflow column types of a stored snapshot, read from its Parquet schema alone."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = datasets.snapshots_dir(data_dir) / f"{content_hash}.parquet"
    if content_hash is None or not path.exists():
        return {}
    types = {}
    for field in pq.read_schema(path):
        if pa.types.is_integer(field.type):
            types[field.name] = "long"
        elif pa.types.is_floating(field.type):
            types[field.name] = "double"
        elif pa.types.is_boolean(field.type):
            types[field.name] = "boolean"
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            types[field.name] = "string"
    return types


def _requirements(framework: str) -> list[str]:
    """What loading the model needs; given explicitly, so MLflow never guesses by importing."""
    names = ["houseprice", "mlflow", "numpy", "pandas"]
    names += get_trainer(framework).packages[:1]  # what reads its model: torch, tensorflow-cpu
    pins = []
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            pins.append(f"{name}=={metadata.version(name)}")
    return pins


def log_model_version(run: layout.RunPaths, framework: str, settings: TrackingConfig) -> str:
    """Log one framework's model into the active MLflow run; register it; return the version."""
    mlflow = _mlflow()
    from houseprice.mlflow_model import ARTIFACT_KEY, HousePriceMlflowModel, stage_model_folder

    with tempfile.TemporaryDirectory(prefix="houseprice-mlflow-") as staging:
        folder = stage_model_folder(run, framework, Path(staging) / ARTIFACT_KEY)
        info = mlflow.pyfunc.log_model(
            name=f"{framework}_model",
            python_model=HousePriceMlflowModel(run.run_id, framework),
            artifacts={ARTIFACT_KEY: str(folder)},
            signature=model_signature(run),
            pip_requirements=_requirements(framework),
            registered_model_name=settings.registered_model,
        )
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    client.set_model_version_tag(settings.registered_model, version, RUN_TAG, run.run_id)
    client.set_model_version_tag(settings.registered_model, version, FRAMEWORK_TAG, framework)
    return version


def log_run(run: layout.RunPaths, config: PipelineConfig) -> str:
    """Log a finished run (params, metrics, tags, artifacts, its model); return its MLflow id."""
    mlflow = _mlflow()
    settings = config.tracking
    metrics = storage.read_json(run.metrics)
    lineage = storage.read_json(run.lineage)
    tags = run_tags(run, metrics, lineage)
    with mlflow_session(settings) as client:
        experiment_id = _experiment_id(client, settings)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run.run_id, tags=tags) as now:
            mlflow.log_params(flatten_params(config.model_dump(mode="json")))
            mlflow.log_metrics(run_metrics(metrics))
            for path in (run.report, run.metrics, run.lineage, run.config):
                mlflow.log_artifact(str(path))
            if run.validation.exists():
                mlflow.log_artifact(str(run.validation), artifact_path="validation")
            if metrics.get("selected_model"):
                log_model_version(run, metrics["selected_model"], settings)
            return now.info.run_id


def _experiment_id(client: Any, settings: TrackingConfig) -> str:
    """The id of settings' experiment, created on first use."""
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is not None:
        return experiment.experiment_id
    location = artifact_location(settings.mlflow_uri)
    return client.create_experiment(settings.experiment, artifact_location=location)


def artifact_location(uri: str) -> str | None:
    """Artifacts of a local SQLite store go beside it (mlartifacts/ next to the .db file).

    MLflow's default is ./mlruns in whatever folder the process started in; a server picks
    its own (None).
    """
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///"))  # sqlite:////abs/x.db -> /abs/x.db
    return (database.resolve().parent / "mlartifacts").as_uri()


def find_model_version(client: Any, settings: TrackingConfig, run_id: str, framework: str):
    """The registered version holding run_id's framework model, or None."""
    name = settings.registered_model.replace("'", "\\'")
    for version in client.search_model_versions(f"name='{name}'"):
        tags = version.tags or {}
        if tags.get(RUN_TAG) == run_id and tags.get(FRAMEWORK_TAG) == framework:
            return version
    return None


def _mlflow_run_of(client: Any, settings: TrackingConfig, run_id: str) -> str | None:
    """The MLflow run logged for a houseprice run, if there is one."""
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is None:
        return None
    found = client.search_runs(
        [experiment.experiment_id], f"tags.`{RUN_TAG}` = '{run_id}'", max_results=1
    )
    return found[0].info.run_id if found else None


def sync_champion_alias(
    artifacts_dir: Path, settings: TrackingConfig, model: str | None = None
) -> str | None:
    """Point the alias 'champion' at champion.json's model (registering it if need be).

    Returns the version now under the alias, or None when there is no champion yet. A champion
    never registered (promoted before MLflow was set up, or another framework than the run's
    selected one) is logged into its run's MLflow run, or a new one, first.
    """
    mlflow = _mlflow()
    champion = registry.read_champion(Path(artifacts_dir), model)  # settings name its MLflow model
    if champion is None:
        return None
    with mlflow_session(settings) as client:
        version = find_model_version(client, settings, champion.run_id, champion.framework)
        if version is None:
            run = registry.require_completed(Path(artifacts_dir), champion.run_id)
            existing = _mlflow_run_of(client, settings, champion.run_id)
            with mlflow.start_run(
                run_id=existing,
                experiment_id=None if existing else _experiment_id(client, settings),
                run_name=None if existing else champion.run_id,
                tags=None if existing else {RUN_TAG: champion.run_id},
            ):
                number = log_model_version(run, champion.framework, settings)
        else:
            number = str(version.version)
        client.set_registered_model_alias(settings.registered_model, CHAMPION_ALIAS, number)
        return number


def recorded_settings(artifacts_dir: Path, run_ids: list[str]) -> TrackingConfig | None:
    """The tracking settings the first of run_ids with MLflow configured was run with."""
    for run_id in run_ids:
        try:
            values = storage.read_yaml(layout.open_run(artifacts_dir, run_id).config)
        except (OSError, ValueError):
            continue
        section = values.get("tracking") or {}
        if section.get("mlflow_uri"):
            return TrackingConfig.model_validate(section)  # raises if mlflow is missing
    return None
