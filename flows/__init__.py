"""Prefect flows: they wire the stages in tasks/ together and do nothing else."""

import houseprice  # noqa: F401  (sets environment defaults before Prefect loads)
