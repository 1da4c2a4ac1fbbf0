"""A mocked account's Stripe event log (`GET /v1/events`) and the changes that fill it, for the events tests."""
from __future__ import annotations

import itertools
from typing import Any, List, Optional

from unit_tests.factories import API, paged_responder
from unit_tests.incremental_runs import LiveList

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
