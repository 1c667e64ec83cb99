# Two commands on a fresh machine: `make demo` runs the demo sweep, `make test` runs the tests.
# Both create .venv and install every dependency pinned by constraints.txt first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tailsweep-installed
PIP_VERSION := 26.3

.PHONY: install demo test test-unit lint format bench clothing-data clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "pip==$(PIP_VERSION)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $@

demo: $(STAMP)
	$(BIN)/launch sweep

lint: $(STAMP)
	$(BIN)/ruff check tailsweep tests benchmarks scripts
	$(BIN)/ruff format --check tailsweep tests benchmarks scripts

format: $(STAMP)
	$(BIN)/ruff check --fix tailsweep tests benchmarks scripts
	$(BIN)/ruff format tailsweep tests benchmarks scripts

# Two test processes (pytest-xdist), each taking whole test files: much of an integration test is waiting on
# processes (Ray, MLflow, a killed driver), so two overlap on 2 cores; a module's shared fixtures stay in one.
test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m "not integration"

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py

# The clothing recipe (issue 9): ../shared/data/clothing_dataset_full -> a hierarchical label table
# (configs/taxonomies/clothing.yaml; `kids` as an attribute; annotation labels dropped; split by contributor).
CLOTHING_SRC ?= ../shared/data/clothing_dataset_full
CLOTHING_OUT ?= tailsweep-runs/data/clothing
clothing-data: $(STAMP)
	$(BIN)/launch data import-images $(CLOTHING_SRC)/labels.csv $(CLOTHING_SRC)/images $(CLOTHING_OUT) \
	  --ext .jpg --labels-col label --attribute-cols kids --group-col sender_id \
	  --taxonomy configs/taxonomies/clothing.yaml --drop-labels "Not sure,Skip" --skip-bad

clean:
	rm -rf $(VENV) tailsweep-runs .pytest_cache .ruff_cache
