# The two front-door commands are `make retrain` and `make test`; both set up .venv first.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup retrain test lint benchmark

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,mlflow]'
	touch $(STAMP)

setup: $(STAMP)

retrain: $(STAMP)
	$(VENV)/bin/houseprice retrain

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

benchmark: $(STAMP)
	$(PY) -m benchmarks.training
