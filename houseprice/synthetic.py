"""Known-answer house-price data: linear prices from correlated, differently-scaled features.

make_synthetic_data needs numpy only (benchmarks/gpu_check.py runs it on a bare GPU box); pandas
is imported lazily by the frame and Parquet helpers. The pipeline reads the source string
'synthetic:rows=N,features=D,cond=C,noise=S,seed=K' (every key optional) through
synthetic_frame_from_source; `python -m houseprice.synthetic` writes the same data to Parquet.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

SOURCE_PREFIX = "synthetic:"
TARGET_COLUMN = "price"
MEAN_PRICE = 200_000.0
# Spread of the noise-free price. With noise 10,000 the price's spread is about 32,000, so a
# negative price lies more than 6 standard deviations below the mean: it does not happen.
SIGNAL_SCALE = 30_000.0
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate; the defaults are also those of a bare 'synthetic:' source."""

    rows: int = 10_000
    features: int = 20
    cond: float = 1000.0  # condition number of the centered feature matrix, before scaling
    noise: float = 10_000.0  # standard deviation of the gaussian price noise, in price units
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rows < 2 or self.features < 1:
            raise ValueError(f"synthetic data needs rows >= 2 and features >= 1, got {self}")
        if self.rows <= self.features:
            raise ValueError(f"synthetic data needs more rows than features, got {self}")
        if not self.cond >= 1 or not self.noise >= 0:
            raise ValueError(f"synthetic data needs cond >= 1 and noise >= 0, got {self}")


@dataclass(frozen=True)
class SyntheticData:
    """Features x (rows, d) and prices y (rows,) with y = x @ coefficients + intercept + noise."""

    x: np.ndarray
    y: np.ndarray
    coefficients: np.ndarray  # (d,), price per unit of each feature
    intercept: float
    spec: SyntheticSpec

    @property
    def feature_names(self) -> list[str]:
        """Column names x01..xNN, zero-padded so they sort in feature order."""
        return feature_names(self.x.shape[1])


def feature_names(features: int) -> list[str]:
    """The feature columns of synthetic data with this many features: x01..xNN."""
    width = max(2, len(str(features)))
    return [f"x{index:0{width}d}" for index in range(1, features + 1)]


def make_synthetic_data(spec: SyntheticSpec) -> SyntheticData:
    """Draw the features, coefficients and noisy prices that spec describes."""
    rng = np.random.default_rng(spec.seed)
    mixing = _mixing_matrix(spec.features, spec.cond, rng)
    # Whitening makes the drawn columns exactly orthonormal (times sqrt(rows)), so the centered
    # features z @ mixing have exactly mixing's singular values, hence exactly the asked cond.
    z = rng.standard_normal((spec.rows, spec.features))
    z -= z.mean(axis=0)
    cholesky = np.linalg.cholesky(z.T @ z / spec.rows)
    centered = z @ np.linalg.solve(cholesky.T, mixing)
    del z
    scales = np.sqrt((mixing * mixing).sum(axis=0))  # each column's standard deviation
    means = 3.0 * scales  # like areas and counts: mostly positive
    x = np.add(centered, means, out=centered)
    # Each feature moves the price by a comparable amount per standard deviation.
    effects = rng.normal(size=spec.features)
    coefficients = effects / np.linalg.norm(effects) * SIGNAL_SCALE / scales
    intercept = MEAN_PRICE - float(means @ coefficients)
    y = x @ coefficients + intercept + rng.normal(scale=spec.noise, size=spec.rows)
    return SyntheticData(x=x, y=y, coefficients=coefficients, intercept=intercept, spec=spec)


def _mixing_matrix(features: int, cond: float, rng: np.random.Generator) -> np.ndarray:
    """A (d, d) matrix with condition number cond whose columns are correlated and of unequal scale.

    Start from random correlations times scales spanning three decades (square feet next to
    bedroom counts), then raise its singular values to the power that makes their ratio cond:
    the singular vectors, hence the correlations and the scale ordering, are kept.
    """
    correlated = rng.normal(size=(features, features)) + rng.normal(size=(features, 1))
    scales = np.logspace(0, 3, features)[rng.permutation(features)]
    left, singular, right = np.linalg.svd(correlated * scales)
    spread = np.log(singular[0] / singular[-1])
    power = np.log(cond) / spread if spread > 0 else 0.0
    reshaped = (singular / singular[0]) ** power * singular[0]
    return (left * reshaped) @ right


def parse_synthetic_source(source: str) -> SyntheticSpec:
    """Parse 'synthetic:rows=N,features=D,cond=C,noise=S,seed=K'; unknown keys are errors."""
    if not source.startswith(SOURCE_PREFIX):
        raise ValueError(f"a synthetic source starts with {SOURCE_PREFIX!r}, got {source!r}")
    types = {item.name: item.type for item in fields(SyntheticSpec)}
    converters = {"int": _parse_int, "float": float}
    values: dict[str, int | float] = {}
    for item in filter(None, (part.strip() for part in source[len(SOURCE_PREFIX) :].split(","))):
        key, _, text = (piece.strip() for piece in item.partition("="))
        if key not in types:
            raise ValueError(f"unknown key {key!r} in {source!r}; known keys: {', '.join(types)}")
        try:
            values[key] = converters[types[key]](text)
        except ValueError:
            raise ValueError(f"{key}={text!r} in {source!r} is not a number") from None
    return SyntheticSpec(**values)


def _parse_int(text: str) -> int:
    """An integer, also written as 1e6 or 1_000_000."""
    number = float(text.replace("_", ""))
    if not number.is_integer():
        raise ValueError(text)
    return int(number)


def to_frame(data: SyntheticData) -> pd.DataFrame:
    """The data as a frame: feature columns x01..xNN, then the target column 'price'."""
    import pandas as pd

    frame = pd.DataFrame(data.x, columns=data.feature_names, copy=False)
    frame[TARGET_COLUMN] = data.y
    return frame


def synthetic_frame_from_source(source: str) -> pd.DataFrame:
    """The frame a 'synthetic:...' data source stands for."""
    return to_frame(make_synthetic_data(parse_synthetic_source(source)))


def write_synthetic_parquet(data: SyntheticData, path: Path) -> Path:
    """Write the data as Parquet, atomically, through the storage module."""
    from houseprice import storage

    return storage.write_parquet_atomic(Path(path), to_frame(data))


def main(argv: list[str] | None = None) -> None:
    """Command line: write synthetic data to a Parquet file."""
    parser = argparse.ArgumentParser(prog="python -m houseprice.synthetic", description=__doc__)
    defaults = SyntheticSpec()
    parser.add_argument("--rows", type=_parse_int, default=defaults.rows)
    parser.add_argument("--features", type=int, default=defaults.features)
    parser.add_argument("--cond", type=float, default=defaults.cond)
    parser.add_argument("--noise", type=float, default=defaults.noise)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", type=Path, required=True, help="Parquet file to write")
    arguments = vars(parser.parse_args(argv))
    out = arguments.pop("out")
    data = make_synthetic_data(SyntheticSpec(**arguments))
    write_synthetic_parquet(data, out)
    print(f"wrote {data.x.shape[0]} rows x {data.x.shape[1]} features to {out}")
    print(f"intercept {data.intercept:.6g}, coefficients {np.array2string(data.coefficients)}")


if __name__ == "__main__":
    main()
