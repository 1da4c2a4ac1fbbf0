"""Small factories for Stripe-shaped objects and list pages used by the unit tests."""
from __future__ import annotations

import itertools
from typing import Any, Iterable, List, Optional
from urllib.parse import parse_qs, urlparse

from source_stripe_ontologie import SourceStripeOntologie
from source_stripe_ontologie.stream_facts import ManifestFacts

API = "https://api.stripe.test"
TEST_KEY = "rk_test_51UnitTestKeyAbCdEfGh0000wxyz"
PREFIX = {"customers": "cus", "charges": "ch", "subscriptions": "sub", "invoices": "in", "products": "prod", "events": "evt",
          "payouts": "po", "lines": "il"}
# Every stream the manifest declares, with its facts (resource, permission, events): tests derive from it too.
FACTS = ManifestFacts.from_manifest(SourceStripeOntologie().resolved_manifest)
STREAMS = FACTS.names


def path_of(stream: str) -> str:
    """`/v1/<resource>` a stream's records (or `events`) are listed at; what `check` probes."""
    facts = FACTS.stream(stream) or FACTS.events
    return f"/v1/{facts.probed_resource}"

_ids = itertools.count(1)


def config(**overrides: Any) -> dict[str, Any]:
    """A config for requests-mock tests: no pacing (no Stripe limit to respect) and no history probe (tests count
    the window requests); tests of those features turn them back on."""
    return {"client_secret": TEST_KEY, "api_base_url": API, "max_requests_per_second": 10_000,
            "probe_history_start": False, **overrides}


def stripe_object(resource: str, created: int = 1_700_000_000, **fields: Any) -> dict[str, Any]:
    facts = FACTS.stream(resource)
    obj = {"id": f"{PREFIX.get(resource, resource[:3])}_{next(_ids):08d}",
           "object": facts.object_name if facts else resource.rstrip("s"), "created": created,
           "livemode": False, "metadata": {}}
    obj.update(fields)
    return obj


def objects(resource: str, count: int, newest: int = 1_700_000_000) -> List[dict[str, Any]]:
    """`count` objects, newest first, one second apart."""
    return [stripe_object(resource, created=newest - i) for i in range(count)]


def invoice_with_lines(line_count: int, embedded: int = 10) -> tuple[dict[str, Any], List[dict[str, Any]]]:
    """An invoice as Stripe lists it (first `embedded` lines, has_more) and all of its lines."""
    lines = [stripe_object("lines", amount=100 + i, currency="usd") for i in range(line_count)]
    invoice = stripe_object("invoices")
    invoice["lines"] = {"object": "list", "url": f"/v1/invoices/{invoice['id']}/lines",
                        "has_more": line_count > embedded, "data": lines[:embedded]}
    return invoice, lines


def list_page(data: Iterable[dict[str, Any]], has_more: bool, url: str = "/v1/x") -> dict[str, Any]:
    return {"object": "list", "url": url, "has_more": has_more, "data": list(data)}


_CREATED_FILTERS = {
    "created[gte]": lambda created, bound: created >= bound,
    "created[gt]": lambda created, bound: created > bound,
    "created[lte]": lambda created, bound: created <= bound,
    "created[lt]": lambda created, bound: created < bound,
}


def created_filtered(all_objects: List[dict[str, Any]], query: dict[str, List[str]]) -> List[dict[str, Any]]:
    """The objects a Stripe list returns for the request's `created[...]` filters."""
    bounds = [(_CREATED_FILTERS[key], int(values[0])) for key, values in query.items() if key in _CREATED_FILTERS]
    return [o for o in all_objects if all(keep(o["created"], bound) for keep, bound in bounds)]


def paged_responder(all_objects: List[dict[str, Any]], url: str, keep=None):
    """A requests-mock callback that serves `all_objects` the way Stripe pages a list (created filters, limit,
    starting_after); `all_objects` may grow between calls, like a live account. `keep(query, object)` adds the
    endpoint's own filters."""

    def respond(request, context):
        query = parse_qs(urlparse(request.url).query)
        listed = [o for o in created_filtered(all_objects, query) if keep is None or keep(query, o)]
        limit = int(query.get("limit", ["10"])[0])
        start = 0
        if "starting_after" in query:
            ids = [o["id"] for o in listed]
            start = ids.index(query["starting_after"][0]) + 1
        page = listed[start:start + limit]
        return list_page(page, has_more=start + limit < len(listed), url=url)

    return respond


def query_of(request) -> dict[str, List[str]]:
    return parse_qs(urlparse(request.url).query)
