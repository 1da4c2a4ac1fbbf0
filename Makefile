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

# The whole suite: unit, end-to-end against the simulator, acceptance, and the container image tests
# (those skip, saying why, on a machine without podman; `.ci/run` installs it first).
test: install
	$(BIN)/python -m pytest -q

unit: install
	$(BIN)/python -m pytest -q unit_tests

demo: install
	$(BIN)/python -m integration_tests.demo

# Speed against the simulator with Stripe's limits and latency, next to Airbyte's own connector (prints figures).
bench: install
	$(BIN)/python -m integration_tests.bench.run_bench

# Build the connector image with Podman (stand-in base image, since no registry is reachable here).
image:
	bash scripts/image.sh all

# Every generated file, from Stripe's full OpenAPI file ($$STRIPE_OPENAPI_SPEC or ../shared/stripe-openapi/spec3.json):
# the stream schemas and the simulator's extract (integration_tests/stripe_simulator/openapi/).
schemas: $(BIN)/python
	$(BIN)/python scripts/generate_schemas.py
	$(BIN)/python scripts/extract_openapi.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache demo_output bench_output
