# The one entry point for humans and CI. `make setup` is all a fresh machine needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup gen lint test dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

gen:
	$(BIN)/python scripts/genproto.py

lint:
	$(BIN)/buf lint
	$(BIN)/python scripts/genproto.py --check
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test:
	$(BIN)/python -m pytest

dev:
	$(BIN)/modelreg dev

bench:
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
