"""The flags that build a PipelineConfig, shared by `retrain` and `serve`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from houseprice.config import PipelineConfig, build_config
from houseprice.config_files import ConfigError, merge_nested, read_config_file

# Where `houseprice serve` looks for new files unless told otherwise (prefect.yaml agrees).
DEFAULT_LANDING_DIR = Path("data/landing")


def _comma_list(text: str) -> list[str]:
    """'a, b,,c' as ['a', 'b', 'c']."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_separator(text: str) -> str:
    """A separator as typed on a command line: '\\t' or 'tab' mean a tab."""
    return "\t" if text in {"\\t", "tab"} else text


def parse_fraction(text: str) -> float:
    """A number from 0 to 1, as argparse's type for a share of rows."""
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def parse_model_name(text: str) -> str:
    """A model name as argparse's type: refused (exit 2) unless it can name a folder."""
    from houseprice.model_names import ModelNameError, check_model_name

    try:
        return check_model_name(text)
    except ModelNameError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_model_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """--model NAME: which named model (and so which champion) a command is about."""
    parser.add_argument("--model", type=parse_model_name, metavar="NAME", help=help_text)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by every command that builds a PipelineConfig."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="YAML file with any part of the configuration (docs/configuration.md); "
        "flags win over it",
    )
    add_model_argument(
        parser,
        "the model this run trains, whose champion it competes with, e.g. sales-2026 "
        "(default: the source's file name and the target, e.g. sales-price; ames for the "
        "bundled data)",
    )
    parser.add_argument(
        "--source",
        help="the data: a CSV or Parquet file, a folder of them, an http(s) URL, or "
        "synthetic:rows=N,features=D (default: the bundled Ames house sales)",
    )
    parser.add_argument(
        "--target", help="the price column to predict (default: Sale_Price; price for synthetic)"
    )
    parser.add_argument(
        "--separator", help="field separator of CSV sources, e.g. ';' or '\\t' (default ',')"
    )
    parser.add_argument(
        "--thousands",
        choices=(",", ".", " ", "'"),
        help="thousands separator of numbers in the data, e.g. ',' to read 1,656 as 1656 "
        "(default: none; a column of such numbers is refused, naming it)",
    )
    parser.add_argument(
        "--decimal",
        choices=(".", ","),
        help="decimal mark of numbers in the data: ',' reads 1234,5 as 1234.5 (default '.')",
    )
    parser.add_argument(
        "--features",
        type=_comma_list,
        metavar="COLUMNS",
        help="columns to predict from, comma-separated; numbers are used as numbers, anything "
        "else as categories (default: the Ames columns for the bundled data, every usable "
        "column for another source)",
    )
    parser.add_argument(
        "--categorical",
        type=_comma_list,
        metavar="COLUMNS",
        help="which of --features are categories even though they hold numbers (zip codes)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where snapshots of the data are kept (default: data)",
    )
    parser.add_argument(
        "--artifacts-dir",
        type=Path,
        metavar="DIR",
        help="where runs, reports and the champion are kept (default: artifacts)",
    )
    parser.add_argument(
        "--engine",
        choices=("local", "dask"),
        help="where the work runs: this machine, a worker process per trainer; or a Dask "
        "cluster (see docs/scale.md, 'Running on a Dask cluster') (default: local)",
    )
    parser.add_argument(
        "--dask-address",
        metavar="ADDRESS",
        help="with --engine dask: the scheduler of a running cluster, e.g. tcp://host:8786 "
        "(default: start a local cluster for the run)",
    )
    parser.add_argument(
        "--dask-workers",
        type=int,
        metavar="N",
        help="with --engine dask: worker processes of the local cluster the run starts "
        "(default: 2)",
    )
    parser.add_argument(
        "--all-rows",
        action="store_true",
        help="fit on every row (split fractions 0): in-sample regression table, "
        "out-of-sample error by cross-validation",
    )


def config_values(args: argparse.Namespace) -> dict[str, Any]:
    """The YAML file's values (if any) with the flags applied over them; flags win."""
    file_values = read_config_file(args.config) if args.config is not None else {}
    data: dict[str, Any] = {}
    # `is not None`: an empty --target or --source is refused by the config, not ignored.
    if args.model is not None:
        data["model"] = args.model
    if args.source is not None:
        data["source"] = args.source
    if args.target is not None:
        data["target"] = args.target
    if args.separator is not None:
        data["separator"] = parse_separator(args.separator)
    for key in ("thousands", "decimal"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    if args.categorical is not None and args.features is None:
        raise ConfigError("--categorical says which of --features are categorical: add --features")
    if args.features is not None:
        categorical = args.categorical or []
        data["categorical_features"] = categorical
        data["numeric_features"] = []
        data["features"] = [f for f in (args.features or []) if f not in categorical]
    paths = {
        key: value
        for key, value in (("data_dir", args.data_dir), ("artifacts_dir", args.artifacts_dir))
        if value is not None
    }
    overrides: dict[str, Any] = {"data": data, "paths": paths, "compute": _compute(args)}
    if args.all_rows:
        overrides["split"] = {"validation_fraction": 0, "test_fraction": 0}
    values = merge_nested(file_values, overrides)
    _check_dask_flags(args, values.get("compute") or {})
    return values


def _compute(args: argparse.Namespace) -> dict[str, Any]:
    """The compute section's flags that were given."""
    flags = {
        "engine": args.engine,
        "dask_address": args.dask_address,
        "dask_workers": args.dask_workers,
    }
    return {key: value for key, value in flags.items() if value is not None}


def _check_dask_flags(args: argparse.Namespace, compute: dict[str, Any]) -> None:
    """Refuse Dask flags that would be ignored: without the Dask engine, or both cluster kinds."""
    given = [flag for flag in ("dask_address", "dask_workers") if getattr(args, flag) is not None]
    if given and compute.get("engine") != "dask":
        flag = "--" + given[0].replace("_", "-")
        raise ConfigError(f"{flag} applies to the Dask engine: add --engine dask")
    if len(given) == 2:
        raise ConfigError(
            "--dask-workers sizes the local cluster a run starts; with --dask-address the "
            "cluster is already running: give one of them"
        )


def config_from_arguments(args: argparse.Namespace) -> PipelineConfig:
    """Merge the YAML file (if any) with the flags; flags win.

    What depends on the source (its columns, a synthetic target) is left to the config's
    validators, so these flags give the config a YAML file or the Prefect form would.
    """
    return build_config(config_values(args))


def add_artifacts_argument(parser: argparse.ArgumentParser) -> None:
    """--artifacts-dir for the commands that only read and promote runs."""
    parser.add_argument(
        "--artifacts-dir",
        type=Path,
        default=Path("artifacts"),
        metavar="DIR",
        help="where runs and the champion are kept (default: %(default)s)",
    )
