"""Small factories for the unit tests: configs, Stripe-shaped objects and list pages, a mocked account whose lists
and event log change between syncs, and Stripe's error answers (shapes as in Stripe's API reference)."""
from __future__ import annotations

import itertools
import re
import time
from datetime import datetime, timezone
from typing import Any, Iterable, List, Optional
from urllib.parse import parse_qs, urlparse

from source_stripe_ontologie import SourceStripeOntologie
from source_stripe_ontologie.stream_facts import ManifestFacts

API = "https://api.stripe.test"


TEST_KEY = "rk_test_51UnitTestKeyAbCdEfGh0000wxyz"


class FakeClock:
    """A clock the test moves: call it for the time, `sleep` to move it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


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
            "max_requests_per_endpoint_per_second": 10_000,
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


DAY = 86_400


def now() -> int:
    return int(time.time())


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class LiveList:
    """One Stripe list that can grow between (or during) syncs; always served newest first, and each object by id
    (`GET /v1/<resource>/<id>`: 404 once removed, or Stripe's `deleted: true` for a customer)."""

    def __init__(self, requests_mock, resource: str) -> None:
        self.resource = resource
        self.objects: List[dict[str, Any]] = []
        self.removed: List[str] = []
        requests_mock.get(f"{API}/v1/{resource}", json=paged_responder(self.objects, f"/v1/{resource}"))
        requests_mock.get(re.compile(rf"^{re.escape(API)}/v1/{resource}/[^/?]+(\?.*)?$"), json=self._by_id)

    def _by_id(self, request, context):
        object_id = request.path.rsplit("/", 1)[-1]
        found = next((o for o in self.objects if o["id"] == object_id), None)
        if found is not None:
            return found
        if self.resource == "customers" and object_id in self.removed:
            return {"id": object_id, "object": "customer", "deleted": True}
        context.status_code = 404
        return {"error": {"type": "invalid_request_error", "code": "resource_missing", "param": "id",
                          "message": f"No such {self.resource[:-1]}: '{object_id}'"}}

    def remove(self, object_id: str) -> None:
        self.objects[:] = [o for o in self.objects if o["id"] != object_id]
        self.removed.append(object_id)

    def add(self, *created: int) -> List[dict[str, Any]]:
        added = [stripe_object(self.resource, created=c) for c in created]
        self.objects.extend(added)
        self.objects.sort(key=lambda o: o["created"], reverse=True)
        return added


def config_since(start: int, **overrides: Any) -> dict[str, Any]:
    return config(start_date=iso(start), **overrides)


_event_ids = itertools.count(1)


def _of_types(query, event) -> bool:
    types = query.get("types[]")
    return types is None or event["type"] in types


class EventLog:
    """`GET /v1/events` like Stripe: newest first (the latest recorded first within a second), `types[]` and
    `created[...]` filters, `limit` and `starting_after` paging. Empty unless a test records changes."""

    def __init__(self, requests_mock) -> None:
        self.events: List[dict[str, Any]] = []
        requests_mock.get(f"{API}/v1/events", json=paged_responder(self.events, "/v1/events", keep=_of_types))

    def record(self, event_type: str, obj: dict[str, Any], at: int) -> dict[str, Any]:
        event = {"id": f"evt_{next(_event_ids):08d}", "object": "event", "type": event_type, "created": at,
                 "api_version": "2020-08-27", "data": {"object": dict(obj)}}
        position = next((i for i, e in enumerate(self.events) if e["created"] <= at), len(self.events))
        self.events.insert(position, event)
        return event


def change(live: LiveList, log: EventLog, obj: dict[str, Any], event_type: str, at: int,
           **fields: Any) -> dict[str, Any]:
    """Change an object of `live` in place and record the event Stripe sends for it."""
    obj.update(fields)
    log.record(event_type, obj, at)
    return obj


def delete(live: LiveList, log: EventLog, obj: dict[str, Any], event_type: str, at: int) -> dict[str, Any]:
    """Remove an object from its list (and from GET by id) and record its deletion event."""
    live.remove(obj["id"])
    return log.record(event_type, obj, at)


def related_event(log: EventLog, event_type: str, at: int, **fields: Any) -> dict[str, Any]:
    """An event about another object (a refund, a dispute, a discount) that names the stream's object."""
    return log.record(event_type, {"id": f"re_{next(_event_ids):08d}", **fields}, at)


def fetched_by_id(requests_mock, resource: Optional[str] = None) -> List[str]:
    """Paths of the GET-by-id requests made (e.g. /v1/charges/ch_1), in order."""
    return [r.path for r in requests_mock.request_history
            if r.path.count("/") == 3 and r.path.startswith("/v1/") and not r.path.startswith("/v1/events")
            and (resource is None or r.path.startswith(f"/v1/{resource}/"))]


def stripe_error(message: str, code: Optional[str] = None, param: Optional[str] = None,
                 type_: str = "invalid_request_error") -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return {"error": error}


def forbidden_body(key: str, resource: str) -> dict[str, Any]:
    """Stripe's 403 for a restricted key without Read on `resource` (a stream, or events), naming the permission."""
    facts = FACTS.stream(resource) or FACTS.events
    return stripe_error(
        f"The provided key '{key[:8]}***{key[-4:]}' does not have the required permissions for this endpoint on "
        f"account 'acct_1Test'. Having the '{facts.permission.name}' permission would allow this request "
        f"to continue.")


def vanished_cursor_body(object_id: str) -> dict[str, Any]:
    return stripe_error(f"No such object: '{object_id}'", code="resource_missing", param="starting_after")
