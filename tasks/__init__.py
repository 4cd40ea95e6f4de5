"""Pipeline stages: one module per stage, a pure function plus a thin Prefect task."""

import houseprice  # noqa: F401  (sets environment defaults before Prefect loads)
