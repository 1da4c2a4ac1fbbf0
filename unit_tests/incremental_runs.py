"""Helpers for incremental-sync unit tests: a live account served like Stripe, incremental reads, their state."""
from __future__ import annotations

import re
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Iterable, List, Optional

from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, read
from airbyte_cdk.test.state_builder import StateBuilder

from source_stripe_ontologie import SourceStripeOntologie
from unit_tests.conftest import catalog
from unit_tests.factories import API, config, paged_responder, query_of, stripe_object

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


def read_incremental(cfg, *streams: str, state=None, expecting_exception: bool = False,
                     sync_mode: SyncMode = SyncMode.incremental) -> EntrypointOutput:
    configured = catalog(*streams, sync_mode=sync_mode)
    source = SourceStripeOntologie(config=cfg, catalog=configured, state=state)
    return read(source, cfg, configured, state, expecting_exception=expecting_exception)


def emitted_ids(output: EntrypointOutput) -> List[str]:
    return [r.record.data["id"] for r in output.records]


def state_values(output: EntrypointOutput, stream: str) -> List[int]:
    """The `created` of every state message emitted for `stream`, in order."""
    values = []
    for message in output.state_messages:
        if message.state.stream.stream_descriptor.name == stream:
            values.append(int(message.state.stream.stream_state.__dict__["created"]))
    return values


def state_input(stream: str, created: Any) -> list:
    return StateBuilder().with_stream_state(stream, {"created": created}).build()


def last_stream_state(output: EntrypointOutput, stream: str) -> dict:
    """The stream_state of the last state message this sync emitted for `stream`."""
    states = [m.state.stream.stream_state.__dict__ for m in output.state_messages
              if m.state.stream.stream_descriptor.name == stream]
    return dict(states[-1])


def next_state(output: EntrypointOutput, stream: str) -> list:
    """The state the platform would hand the next sync: the last one this sync emitted for `stream`, whole."""
    return StateBuilder().with_stream_state(stream, last_stream_state(output, stream)).build()


def windows(requests_mock, resource: str) -> List[tuple[int, int]]:
    """The (created[gte], created[lte]) of each window read, oldest first, first page only."""
    found = set()
    for request in requests_mock.request_history:
        query = query_of(request)
        if request.path == f"/v1/{resource}" and "starting_after" not in query:
            found.add((int(query["created[gte]"][0]), int(query["created[lte]"][0])))
    return sorted(found)


def repeated(ids: Iterable[str]) -> List[str]:
    return sorted(i for i, n in Counter(ids).items() if n > 1)


def config_since(start: int, **overrides: Any) -> dict[str, Any]:
    return config(start_date=iso(start), **overrides)
