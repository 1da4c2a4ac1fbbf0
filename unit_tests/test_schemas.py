"""Stream schemas keep every property of Stripe's objects with stable types (regeneration: test_regeneration.py)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("generate_schemas", REPO / "scripts" / "generate_schemas.py")
generate_schemas = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate_schemas)


# Stripe's component schemas as committed by scripts/extract_openapi.py (test_regeneration.py keeps them current).
COMPONENTS = REPO / "integration_tests" / "stripe_simulator" / "openapi" / "components.json"


def test_every_spec_property_is_in_the_stream_schema():
    spec = json.loads(COMPONENTS.read_text())
    for stream, (component, _) in generate_schemas.manifest_streams().items():
        schema = json.loads((generate_schemas.SCHEMA_DIR / f"{stream}.json").read_text())
        assert set(spec[component]["properties"]) <= set(schema["properties"]), stream


def test_nullable_fields_accept_null_and_required_ones_do_not():
    charges = json.loads((generate_schemas.SCHEMA_DIR / "charges.json").read_text())["properties"]
    assert "null" in charges["customer"]["type"]  # nullable expandable id
    assert charges["amount"]["type"] == "integer"
    assert charges["id"]["type"] == "string"


def test_expandable_ids_are_strings_unless_the_connector_expands_them():
    charges = json.loads((generate_schemas.SCHEMA_DIR / "charges.json").read_text())["properties"]
    products = json.loads((generate_schemas.SCHEMA_DIR / "products.json").read_text())["properties"]

    assert charges["customer"]["type"] == ["null", "string"]
    assert products["default_price"]["type"] == ["null", "object"]
    assert products["default_price"]["properties"]["unit_amount"]["type"] == ["null", "integer"]
