# The ways in: `make run`, `make test`, `make lint`, `make bench`, `make sim`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench sim clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/omsnode devnet up --nodes 4 --dir devnet-data --sample-data

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m pytest -q -m bench -s tests

sim: $(STAMP)
	$(BIN)/python -m tests.sim.search --count 10000

clean:
	-$(BIN)/omsnode devnet down --dir devnet-data
	rm -rf devnet-data
