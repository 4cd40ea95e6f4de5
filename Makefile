# The two front-door commands are `make retrain` and `make test`; both set up .venv first.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock

.PHONY: setup retrain test lint benchmark overhead docs

# bash with pipefail: setup filters pip's output through awk, and pip failing must fail make.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

# Exactly the locked versions (`make lock` refreshes the lock from pyproject.toml): the locked
# pip and setuptools first, then every package, then this project alone, built by that setuptools.
# The first setup takes minutes: each step says what it does, and pip's output is cut to one
# line per package (its own lines run to several per package, its progress bars to hundreds).
$(STAMP): $(LOCK) pyproject.toml
	@echo "setup 1/5: a virtual environment in $(VENV) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(VENV)
	@echo "setup 2/5: pip and setuptools, as locked"
	$(PY) -m pip install --quiet $$(grep -E '^(pip|setuptools)==' $(LOCK))
	@echo "setup 3/5: the $$(grep -cE '^[^#].*==' $(LOCK)) locked packages, PyTorch, TensorFlow," \
		"Prefect and Great Expectations among them (several minutes, about 3.5 GB; one line each)"
	@$(PY) -m pip install --progress-bar off -r $(LOCK) | awk '\
		/^Collecting / { print "  " $$2; fflush() } \
		/^Processing / { n = split($$2, part, "/"); print "  " part[n]; fflush() } \
		/^Installing collected packages/ { print "  installing (a minute or more)..."; fflush() } \
		/^Successfully installed / { print "  installed " NF - 2 " packages"; fflush() }'
	@echo "setup 4/5: houseprice itself, editable"
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@echo "setup 5/5: pip check"
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
