"""Stripe's OpenAPI description (spec3.json, API version 2024-06-20) as the simulator's source of truth.

The simulator reads the allowed query parameters of each list endpoint from the spec (as Stripe's own
stripe-mock does), so a connector that sends a parameter Stripe does not know fails here as it would at Stripe.
``schema_validator`` turns an OpenAPI 3.0 component schema into a JSON-Schema validator (used by tests to check
that generated objects have Stripe's shape).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

SPEC_ENV = "STRIPE_OPENAPI_SPEC"
API_VERSION = "2024-06-20"


def spec_path() -> Path:
    """``$STRIPE_OPENAPI_SPEC`` or ``<repo>/../shared/stripe-openapi/spec3.json``."""
    override = os.environ.get(SPEC_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2].parent / "shared" / "stripe-openapi" / "spec3.json"


@functools.lru_cache(maxsize=4)
def _load(path: str) -> dict:
    with open(path, "rb") as fh:
        return json.load(fh)


def load_spec() -> dict:
    path = spec_path()
    if not path.exists():
        raise FileNotFoundError(f"Stripe OpenAPI spec not found at {path} (set {SPEC_ENV} to override)")
    return _load(str(path))


# Simulator endpoint -> the spec path whose GET parameters it accepts.
ENDPOINT_SPEC_PATHS = {
    "customers": "/v1/customers",
    "charges": "/v1/charges",
    "subscriptions": "/v1/subscriptions",
    "invoices": "/v1/invoices",
    "products": "/v1/products",
    "payouts": "/v1/payouts",
    "events": "/v1/events",
    "invoice_lines": "/v1/invoices/{invoice}/lines",
    # GET one object by id (GET /v1/<resource>/<id>); the spec names the path parameter differently per resource
    "customers_by_id": "/v1/customers/{customer}",
    "charges_by_id": "/v1/charges/{charge}",
    "subscriptions_by_id": "/v1/subscriptions/{subscription_exposed_id}",
    "invoices_by_id": "/v1/invoices/{invoice}",
    "products_by_id": "/v1/products/{id}",
    "payouts_by_id": "/v1/payouts/{payout}",
}


def _money_trail_paths() -> dict:
    from .money_trail import BY_ID_SPEC_PATHS, RESOURCES, SUB_LIST_SPEC_PATHS

    paths = {resource: f"/v1/{resource}" for resource in RESOURCES}
    paths.update({f"{resource}_by_id": path for resource, path in BY_ID_SPEC_PATHS.items()})
    paths.update({f"{resource}_sub_list": path for resource, path in SUB_LIST_SPEC_PATHS.items()})
    return paths


def query_parameters(spec: dict) -> dict:
    """Endpoint name -> frozenset of query parameter names the spec lists for its GET."""
    out = {}
    for name, path in {**ENDPOINT_SPEC_PATHS, **_money_trail_paths()}.items():
        params = spec["paths"][path]["get"].get("parameters", [])
        out[name] = frozenset(p["name"] for p in params if p.get("in") == "query")
    return out


def _convert(node, strict: bool):
    """OpenAPI 3.0 schema node -> JSON Schema (2020-12) node."""
    if isinstance(node, list):
        return [_convert(n, strict) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key.startswith("x-") or key in ("nullable", "description", "title"):
            continue
        if key == "$ref":
            out[key] = value.replace("#/components/schemas/", "#/$defs/")
        elif key in ("properties",):
            out[key] = {k: _convert(v, strict) for k, v in value.items()}
        else:
            out[key] = _convert(value, strict)
    if strict and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = list(out["enum"]) + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def schema_validator(name: str, strict: bool = True):
    """A jsonschema validator for ``components.schemas[name]``.

    ``strict`` adds ``additionalProperties: false`` to every object schema that lists properties, so a field
    the spec does not know (a typo, or a field of another API version) fails validation.
    """
    import jsonschema  # test-time dependency only

    schemas = load_spec()["components"]["schemas"]
    defs = _converted_defs(strict)
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": f"#/$defs/{name}", "$defs": defs}
    if name not in schemas:
        raise KeyError(name)
    return jsonschema.Draft202012Validator(root)


@functools.lru_cache(maxsize=2)
def _converted_defs(strict: bool) -> dict:
    schemas = load_spec()["components"]["schemas"]
    return {k: _convert(v, strict) for k, v in schemas.items()}
