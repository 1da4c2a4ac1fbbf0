"""Stripe's OpenAPI description (API version 2024-06-20) as the simulator's source of truth, from committed files.

The simulator reads the allowed query parameters of each list endpoint from the description (as Stripe's own
stripe-mock does), so a connector that sends a parameter Stripe does not know fails here as it would at Stripe.
It reads only the compact extract in ``openapi/`` next to this module (written by ``scripts/extract_openapi.py``
from spec3.json; ``make schemas`` regenerates it and a regeneration test proves it current), so a clone needs
nothing beside it. ``schema_validator`` turns a component schema into a JSON-Schema validator (tests use it to
check that generated objects have Stripe's shape).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Dict, List

API_VERSION = "2024-06-20"
OPENAPI_DIR = Path(__file__).resolve().parent / "openapi"


@functools.lru_cache(maxsize=None)
def _load(name: str):
    with open(OPENAPI_DIR / name, "rb") as fh:
        return json.load(fh)


def list_endpoints() -> Dict[str, dict]:
    """Spec path (``/v1/tax_rates``) -> {components, path_parameters, query, by_id: {path, query} | None}."""
    return _load("endpoints.json")


def components() -> Dict[str, dict]:
    """Component name -> its schema (without prose and vendor extensions except ``x-expansionResources``)."""
    return _load("components.json")


def event_types() -> List[str]:
    """Every event type Stripe knows (the ``enabled_events`` enum of POST /v1/webhook_endpoints)."""
    return _load("event_types.json")


# Simulator endpoint of the six realistic resources, events and invoice lines -> the spec's list path.
ENDPOINT_SPEC_PATHS = {
    "customers": "/v1/customers",
    "charges": "/v1/charges",
    "subscriptions": "/v1/subscriptions",
    "invoices": "/v1/invoices",
    "products": "/v1/products",
    "payouts": "/v1/payouts",
    "events": "/v1/events",
    "invoice_lines": "/v1/invoices/{invoice}/lines",
}


def query_parameters() -> Dict[str, frozenset]:
    """Endpoint name -> frozenset of query parameter names the spec lists for its GET.

    Lists are named as above; GET by id is ``<name>_by_id`` (the spec names the id parameter differently per
    resource: ``/v1/customers/{customer}``, ``/v1/products/{id}``, ...)."""
    spec = list_endpoints()
    out = {}
    for name, path in ENDPOINT_SPEC_PATHS.items():
        out[name] = frozenset(spec[path]["query"])
        if spec[path]["by_id"] is not None and name != "events":
            out[f"{name}_by_id"] = frozenset(spec[path]["by_id"]["query"])
    from .money_trail import RESOURCES as MONEY_TRAIL, SUB_LIST_SPEC_PATHS  # served realistically (money_trail.py)

    for name in MONEY_TRAIL:
        out[name] = frozenset(spec[f"/v1/{name}"]["query"])
        out[f"{name}_by_id"] = frozenset(spec[f"/v1/{name}"]["by_id"]["query"])
    for name, path in SUB_LIST_SPEC_PATHS.items():
        out[f"{name}_sub_list"] = frozenset(spec[path]["query"])
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
    """A jsonschema validator for the component ``name``.

    ``strict`` adds ``additionalProperties: false`` to every object schema that lists properties, so a field
    the spec does not know (a typo, or a field of another API version) fails validation.
    """
    import jsonschema  # test-time dependency only

    if name not in components():
        raise KeyError(name)
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": f"#/$defs/{name}",
            "$defs": _converted_defs(strict)}
    return jsonschema.Draft202012Validator(root)


@functools.lru_cache(maxsize=2)
def _converted_defs(strict: bool) -> dict:
    return {k: _convert(v, strict) for k, v in components().items()}
