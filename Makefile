# The two front-door commands are `make retrain` and `make test`; both set up .venv first.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup retrain test lint benchmark

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Exit 3 is a completed run that kept the champion (README: exit codes): not an error for make.
retrain: $(STAMP)
	$(VENV)/bin/houseprice retrain || test $$? -eq 3

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

benchmark: $(STAMP)
	$(PY) -m benchmarks.training
