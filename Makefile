# The commands a newcomer needs. Everything runs in ./.venv, created on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install test unit demo bench image schemas clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Installs the connector as users get it (a built wheel, not an editable checkout) plus the test tools.
install: $(BIN)/python
	$(BIN)/pip install -q ".[dev]"

test: install
	$(BIN)/python -m pytest -q -m "not image_tests"

unit: install
	$(BIN)/python -m pytest -q unit_tests

schemas: $(BIN)/python
	$(BIN)/python scripts/generate_schemas.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache demo_output bench_output
