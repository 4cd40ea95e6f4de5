# The two front-door commands are `make retrain` and `make test`; both set up .venv first.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock

.PHONY: setup retrain test lint benchmark overhead docs

# Exactly the locked versions (`make lock` refreshes the lock from pyproject.toml): the locked
# pip and setuptools first, then every package, then this project alone, built by that setuptools.
$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $$(grep -E '^(pip|setuptools)==' $(LOCK))
	$(PY) -m pip install --quiet -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

# After changing a dependency in pyproject.toml: re-resolve both locks from scratch (a throwaway
# environment, nothing installed), then commit requirements.lock and requirements-gpu.lock.
.PHONY: lock
lock:
	$(PYTHON) -m venv --clear .lock-venv
	.lock-venv/bin/python scripts/lock.py
	rm -rf .lock-venv

setup: $(STAMP)

# Exit 3 is a completed run that kept the champion (docs/usage.md: exit codes): not an error for
# make.
retrain: $(STAMP)
	$(VENV)/bin/houseprice retrain || test $$? -eq 3

# Every test, then the time of each group (unit, slow: flow runs, e2e: real servers and the
# command). Unit tests only: make test PYTEST_ARGS='-m "not slow and not e2e"'.
PYTEST_ARGS ?=
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

# docs/configuration.md from the pydantic schema; tests/test_config_reference.py fails while stale.
docs: $(STAMP)
	$(PY) -m scripts.config_reference

benchmark: $(STAMP)
	$(PY) -m benchmarks.training

overhead: $(STAMP)
	$(PY) -m benchmarks.overhead
