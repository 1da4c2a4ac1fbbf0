#!/usr/bin/env python3
"""Extract what the Stripe simulator and the tests need from Stripe's OpenAPI description (API 2024-06-20).

The full description (spec3.json, ~7 MB) lives outside the repository; the simulator and the tests read only the
compact, committed files this script writes to `integration_tests/stripe_simulator/openapi/`:

- `endpoints.json`: every list endpoint (a GET whose 200 answer is Stripe's list envelope
  `{object, data: [$ref X], has_more, url}`; `/search` endpoints excluded): its query parameter names, the
  component(s) of its items, the path parameters it needs (nested lists such as `/v1/invoices/{invoice}/lines`)
  and, where one exists, its GET-by-id path with that path's query parameters;
- `components.json`: every component schema, without `description`, `title` and `x-*` keys (except
  `x-expansionResources`, which says what an expandable id points at), for validating and generating objects;
- `event_types.json`: the event types Stripe knows (the `enabled_events` enum of POST /v1/webhook_endpoints).

Never edit those files by hand: change this script and run

    python scripts/extract_openapi.py            # rewrite them (`make schemas` runs it too)
    python scripts/extract_openapi.py --check    # exit 1 if a committed file differs from a fresh run

The full file is found at $STRIPE_OPENAPI_SPEC or ../shared/stripe-openapi/spec3.json beside the repository.
Output is deterministic: sorted keys, one JSON document per file.
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
SPEC_ENV = "STRIPE_OPENAPI_SPEC"
DEFAULT_SPEC = REPO.parent / "shared" / "stripe-openapi" / "spec3.json"
OUT_DIR = REPO / "integration_tests" / "stripe_simulator" / "openapi"
LIST_KEYS = {"object", "data", "has_more", "url"}
DROPPED_KEYS = {"description", "title"}
KEPT_EXTENSIONS = {"x-expansionResources"}


def spec_path_from_env() -> Path:
    """`$STRIPE_OPENAPI_SPEC`, else `../shared/stripe-openapi/spec3.json` beside the repository."""
    return Path(os.environ.get(SPEC_ENV) or DEFAULT_SPEC)


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _query_names(operation: dict) -> list[str]:
    return sorted(p["name"] for p in operation.get("parameters", []) if p.get("in") == "query")


def _path_names(path: str) -> list[str]:
    return [segment[1:-1] for segment in path.split("/") if segment.startswith("{")]


def _list_items(operation: dict) -> dict | None:
    """The `data.items` schema when the 200 answer is a Stripe list, else None."""
    schema = (operation.get("responses", {}).get("200", {}).get("content", {})
              .get("application/json", {}).get("schema", {}))
    properties = schema.get("properties", {})
    if not LIST_KEYS <= set(properties):
        return None
    return properties["data"].get("items")


def _by_id_path(paths: dict, list_path: str) -> str | None:
    """`<list path>/{param}` with a GET, e.g. /v1/subscriptions/{subscription_exposed_id}."""
    for path, item in paths.items():
        rest = path[len(list_path) + 1:] if path.startswith(list_path + "/") else ""
        if rest.startswith("{") and rest.endswith("}") and "/" not in rest and "get" in item:
            return path
    return None


def endpoints(spec: dict) -> dict[str, Any]:
    paths = spec["paths"]
    out: dict[str, Any] = {}
    for path, item in sorted(paths.items()):
        operation = item.get("get")
        if operation is None or path.endswith("/search"):
            continue
        items = _list_items(operation)
        if items is None:
            continue
        refs = [items["$ref"]] if "$ref" in items else [option["$ref"] for option in items.get("anyOf", [])]
        by_id = _by_id_path(paths, path)
        out[path] = {
            "components": [_ref_name(ref) for ref in refs],
            "path_parameters": _path_names(path),
            "query": _query_names(operation),
            "by_id": None if by_id is None else {"path": by_id, "query": _query_names(paths[by_id]["get"])},
        }
    return out


def compact(node: Any) -> Any:
    """A schema node without prose and vendor extensions (property *names* such as `description` stay)."""
    if isinstance(node, list):
        return [compact(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in DROPPED_KEYS or (key.startswith("x-") and key not in KEPT_EXTENSIONS):
            continue
        if key == "properties":
            out[key] = {name: compact(prop) for name, prop in value.items()}
        else:
            out[key] = compact(value)
    return out


def event_types(spec: dict) -> list[str]:
    body = spec["paths"]["/v1/webhook_endpoints"]["post"]["requestBody"]["content"]
    return list(body["application/x-www-form-urlencoded"]["schema"]["properties"]["enabled_events"]["items"]["enum"])


def _one_entry_per_line(mapping: dict[str, Any]) -> str:
    """Compact JSON with one top-level entry per line: small, yet a regenerated file diffs per component."""
    lines = [json.dumps(name) + ":" + json.dumps(mapping[name], sort_keys=True, separators=(",", ":"))
             for name in sorted(mapping)]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def render_all(spec_path: Path) -> dict[str, str]:
    """Return {file name: text} for every extracted file."""
    spec = json.loads(Path(spec_path).read_text())
    return {
        "endpoints.json": json.dumps(endpoints(spec), sort_keys=True, indent=1) + "\n",
        "components.json": _one_entry_per_line({name: compact(s) for name, s in spec["components"]["schemas"].items()}),
        "event_types.json": json.dumps(event_types(spec), indent=1) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=None, help=f"default: ${SPEC_ENV} or {DEFAULT_SPEC}")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--check", action="store_true", help="report drift instead of writing")
    args = parser.parse_args(argv)
    spec = args.spec or spec_path_from_env()
    if not spec.exists():
        print(f"Stripe OpenAPI description not found at {spec}: set {SPEC_ENV}", file=sys.stderr)
        return 2

    rendered = render_all(spec)
    return write_or_check(rendered, args.out, args.check, "scripts/extract_openapi.py")


if __name__ == "__main__":
    sys.exit(main())
