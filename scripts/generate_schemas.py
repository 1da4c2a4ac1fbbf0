#!/usr/bin/env python3
"""Generate every stream's schema from Stripe's pinned OpenAPI description (API 2024-06-20).

The schemas under `source_stripe_ontologie/schemas/` are never edited by hand: change this script and run

    python scripts/generate_schemas.py            # rewrite the schemas
    python scripts/generate_schemas.py --check    # exit 1 if a checked-in schema differs from a fresh run

Rules, chosen so that records pass through untouched and destinations get stable types:
- every property of the Stripe object is kept, with its nullability (`nullable: true` adds "null");
- every object allows additional properties, so fields Stripe adds later never break a sync;
- expandable ids (`anyOf: [string, $ref]` with `x-expansionResources`) are strings, as Stripe sends them, except
  the fields the stream asks Stripe to expand (its `expand[]` in the manifest), typed as the expanded object; a
  single type per field lets destinations make typed columns;
- `metadata`-like maps are free-form objects; enums and length limits are dropped (Stripe adds values);
- `unix-time` stays an integer (epoch seconds), amounts stay integers (minor units);
- nested components are inlined up to MAX_REF_DEPTH levels and on no cycle; deeper ones become free-form objects.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generated_files import write_or_check  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = REPO.parent / "shared" / "stripe-openapi" / "spec3.json"
SCHEMA_DIR = REPO / "source_stripe_ontologie" / "schemas"



def manifest_streams() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Stream name -> (Stripe component, fields it asks Stripe to expand), as the manifest declares them."""
    sys.path.insert(0, str(REPO))
    from source_stripe_ontologie import SourceStripeOntologie

    facts = SourceStripeOntologie().facts
    return {name: (stream.object_name, tuple(stream.expansions)) for name, stream in facts.streams.items()}


def stream_fields(stream: str) -> dict[str, Any]:
    """Fields the connector adds to one stream's records, from its manifest facts: a `created_from` stream's
    `created` copy, a `children_of` stream's field naming the parent (payout_balance_transactions: `payout`)."""
    from source_stripe_ontologie import SourceStripeOntologie

    facts = SourceStripeOntologie().facts.stream(stream)
    fields: dict[str, Any] = {}
    if facts.created_from:
        fields["created"] = {
            "type": "integer",
            "description": f"Added by the connector: a copy of `{facts.created_from}` (Stripe's object has no "
            f"`created`; its list's `created` filter reads `{facts.created_from}`). The stream's cursor.",
        }
    children = getattr(facts, "children_of", None)
    if children is not None:
        fields[children.link_field] = {
            "type": "string",
            "description": f"Added by the connector: the id of the {children.parent_object} whose "
            f"`{children.filter}` list returned this record.",
        }
    return fields

# Fields the connector itself adds to every record (issue: updates and deletions through events).
CONNECTOR_FIELDS: dict[str, Any] = {
    # Names no Stripe component of spec3.json has as a property (a test checks it), so that the connector's fields
    # never overwrite Stripe's: products, for one, have Stripe's own `updated`.
    "changed_at": {
        "type": ["null", "integer"],
        "description": "Added by the connector (not a Stripe field): epoch seconds of the Stripe event that made "
        "this record be emitted (a deletion when the object was deleted, else the object's newest event), on records "
        "emitted because of events (incremental syncs after the first read /v1/events); absent on records read by "
        "their `created` window. Stripe's own fields, such as a product's `updated`, are left as Stripe sent them.",
    },
    "stripe_account_id": {
        "type": ["null", "string"],
        "description": "Added by the connector (not a Stripe field) when connected_accounts is set (Stripe Connect): "
        "the id (acct_...) of the account this record was read from, the platform's own id for the platform's "
        "records. Absent when the connector reads a single account. `id` stays the primary key: Stripe ids are "
        "unique across accounts.",
    },
    "is_deleted": {
        "type": ["null", "boolean"],
        "description": "Added by the connector (not a Stripe field): true on the record of an object Stripe deleted "
        "(customer.deleted, product.deleted, invoice.deleted events, or an object found gone when re-fetched after an "
        "event); such a record carries only `id`, `object`, `created` (null when no event carried it), `is_deleted` "
        "and `changed_at`. A canceled subscription is not deleted: it arrives with status canceled.",
    },
}

MAX_REF_DEPTH = 3
FREE_FORM = {"type": "object", "additionalProperties": True}


class SchemaConverter:
    """Turns OpenAPI 3 component schemas into Airbyte JSON schemas (draft-07)."""

    def __init__(self, spec: dict[str, Any]):
        self.components = spec["components"]["schemas"]

    def stream_schema(self, component: str, expanded: tuple[str, ...],
                      added: dict[str, Any] | None = None) -> dict[str, Any]:
        source = self.components[component]
        schema = self._object(source, stack=(component,), nullable=False, expanded=expanded)
        schema["properties"].update(CONNECTOR_FIELDS)
        schema["properties"].update(added or {})
        return {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": component,
            "description": _first_sentence(source.get("description", "")),
            **schema,
        }

    def convert(self, node: dict[str, Any], stack: tuple[str, ...], expand_object: bool = False) -> dict[str, Any]:
        nullable = bool(node.get("nullable"))
        if "$ref" in node:
            return self._ref(node["$ref"], stack, nullable)
        if "anyOf" in node:
            return self._any_of(node, stack, nullable, expand_object)
        kind = node.get("type")
        if kind == "object" or "properties" in node:
            if node.get("properties"):
                return self._object(node, stack, nullable)
            return _with_null(dict(FREE_FORM), nullable)
        if kind == "array":
            return _with_null({"type": "array", "items": self.convert(node.get("items", {}), stack)}, nullable)
        if kind in ("integer", "number", "boolean", "string"):
            return _with_null({"type": kind}, nullable)
        return _with_null(dict(FREE_FORM), nullable)  # untyped in the spec: accept anything object-like

    def _object(self, node, stack, nullable, expanded: tuple[str, ...] = ()) -> dict[str, Any]:
        properties = {}
        for name, prop in node.get("properties", {}).items():
            converted = self.convert(prop, stack, expand_object=name in expanded)
            if len(stack) == 1 and prop.get("description"):
                converted["description"] = _first_sentence(prop["description"])
            properties[name] = converted
        return _with_null({"type": "object", "additionalProperties": True, "properties": properties}, nullable)

    def _ref(self, ref: str, stack: tuple[str, ...], nullable: bool) -> dict[str, Any]:
        name = ref.rsplit("/", 1)[-1]
        if name in stack or len(stack) > MAX_REF_DEPTH:
            return _with_null(dict(FREE_FORM), nullable)
        converted = self.convert(self.components[name], stack + (name,))
        return _with_null(converted, nullable)

    def _any_of(self, node, stack, nullable, expand_object) -> dict[str, Any]:
        options = node["anyOf"]
        if "x-expansionResources" in node:
            # An expandable id: Stripe sends the id string unless the request expands it into the object.
            if not expand_object:
                return _with_null({"type": "string"}, nullable)
            target = node["x-expansionResources"]["oneOf"][0]["$ref"].rsplit("/", 1)[-1]
            expanded_object = self.convert(self.components[target], stack + (target,))
            return _with_null({"type": "object", "additionalProperties": True,
                               "properties": expanded_object["properties"]}, nullable)
        if len(options) == 1:
            return _with_null(self.convert(options[0], stack), nullable)
        kinds = sorted({_kind(self.convert(option, stack)) for option in options})
        schema = {"type": kinds if len(kinds) > 1 else kinds[0]}
        if "object" in kinds:
            schema["additionalProperties"] = True
        return _with_null(schema, nullable)


def _kind(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        return next((k for k in kind if k != "null"), "object")
    return kind


def _with_null(schema: dict[str, Any], nullable: bool) -> dict[str, Any]:
    if not nullable:
        return schema
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "null" not in kinds:
        schema["type"] = ["null", *kinds]
    return schema


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    end = text.find(". ")
    return text if end == -1 else text[: end + 1]


def render_all(spec_path: Path) -> dict[str, str]:
    """Return {file name: JSON text} for every stream schema."""
    converter = SchemaConverter(json.loads(spec_path.read_text()))
    return {
        f"{stream}.json": json.dumps(converter.stream_schema(component, expanded, stream_fields(stream)), indent=2,
                                     sort_keys=True) + "\n"
        for stream, (component, expanded) in manifest_streams().items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=Path(os.environ.get("STRIPE_OPENAPI_SPEC") or DEFAULT_SPEC))
    parser.add_argument("--out", type=Path, default=SCHEMA_DIR)
    parser.add_argument("--check", action="store_true", help="report drift instead of writing")
    args = parser.parse_args(argv)

    rendered = render_all(args.spec)
    return write_or_check(rendered, args.out, args.check, "scripts/generate_schemas.py")


if __name__ == "__main__":
    sys.exit(main())
