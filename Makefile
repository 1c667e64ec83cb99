# Two commands on a fresh machine: `make demo` runs the demo sweep, `make test` runs the tests.
# Both create .venv and install every dependency pinned by constraints.txt first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tailsweep-installed
PIP_VERSION := 26.3

.PHONY: install demo test test-unit lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "pip==$(PIP_VERSION)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $@

demo: $(STAMP)
	$(BIN)/launch sweep

lint: $(STAMP)
	$(BIN)/ruff check tailsweep tests benchmarks
	$(BIN)/ruff format --check tailsweep tests benchmarks

format: $(STAMP)
	$(BIN)/ruff check --fix tailsweep tests benchmarks
	$(BIN)/ruff format tailsweep tests benchmarks

test: $(STAMP)
	$(BIN)/ruff check tailsweep tests benchmarks
	$(BIN)/python -m pytest

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m "not integration"

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) tailsweep-runs .pytest_cache .ruff_cache
