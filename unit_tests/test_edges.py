"""Issue 12, the parts that are logic: Stripe's own fields kept, events re-listed after a vanished cursor,
re-fetched objects guarded by the key's mode, spec minimums, per-endpoint pacing, state under the cursor's lock,
an invoice's vanished line cursor. The protocol parts run through the CLI in integration_tests/test_edges_e2e.py."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import yaml
from airbyte_cdk.test.state_builder import StateBuilder

from integration_tests.stripe_simulator.spec import components as stripe_components
from scripts.generate_schemas import CONNECTOR_FIELDS
from source_stripe_ontologie.change_capture import ChangeCaptureCursor, EventsCheckpoint
from source_stripe_ontologie.change_rules import CHANGED_AT, ChangeFeed
from source_stripe_ontologie.rate_budget import RateLimits
from unit_tests.factories import (
    API,
    TEST_KEY,
    LiveList,
    change,
    config_since,
    invoice_with_lines,
    list_page,
    now,
    paged_responder,
    query_of,
    related_event,
)
from unit_tests.reads import emitted_ids, last_stream_state, read_incremental

REPO = Path(__file__).resolve().parents[1]


def saved_state(stream: str, created: int, events_created: int) -> list:
    return StateBuilder().with_stream_state(stream, {"created": str(created),
                                                     "events_created": str(events_created)}).build()


def an_hour_ago() -> tuple[int, int]:
    return now() - 30 * 86_400, now() - 3600


# 7. Stripe's own fields are never overwritten -------------------------------------------------------------------

def test_a_re_fetched_product_keeps_stripes_updated_and_carries_the_event_time_in_changed_at(
        requests_mock, stripe_events):
    start, previous = an_hour_ago()
    products = LiveList(requests_mock, "products")
    product = products.add(start + 10)[0]
    product["updated"] = start + 20  # Stripe's: the product itself last changed then
    related_event(stripe_events, "price.updated", at=previous + 30, object="price", product=product["id"])

    output = read_incremental(config_since(start), "products", state=saved_state("products", previous, previous))

    [record] = [r.record.data for r in output.records]
    assert record["updated"] == start + 20
    assert record[CHANGED_AT] == previous + 30


def test_the_connectors_fields_are_named_like_no_property_of_any_stripe_object():
    components = stripe_components()  # every component of Stripe's OpenAPI description (the committed extract)
    stripe_properties = {name for component in components.values() for name in (component.get("properties") or {})}

    assert CHANGED_AT in CONNECTOR_FIELDS
    assert set(CONNECTOR_FIELDS) & stripe_properties == set()
    products = json.loads((REPO / "source_stripe_ontologie" / "schemas" / "products.json").read_text())
    assert "updated" in components["product"]["properties"]  # Stripe's own field, described as Stripe's
    assert not products["properties"]["updated"].get("description", "").startswith("Added by the connector")


# 1. A deletion always wins (the rule; the CLI test shows it end to end) ------------------------------------------

def test_a_deletion_wins_over_a_newer_event_and_over_a_same_second_event_listed_first():
    feed = ChangeFeed({"customer.deleted": "id", "customer.discount.deleted": "customer"},
                      frozenset({"customer.deleted"}))
    newest_first = [
        {"type": "customer.discount.deleted", "created": 101, "data": {"object": {"id": "di_1", "customer": "cus_a"}}},
        {"type": "customer.discount.deleted", "created": 100, "data": {"object": {"id": "di_2", "customer": "cus_b"}}},
        {"type": "customer.deleted", "created": 100, "data": {"object": {"id": "cus_b", "created": 7}}},
        {"type": "customer.deleted", "created": 100, "data": {"object": {"id": "cus_a", "created": 5}}},
    ]

    changes = feed.newest_changes(newest_first)

    assert {key: (c.deletion, c.updated, c.created) for key, c in changes.items()} == {
        "cus_a": (True, 100, 5), "cus_b": (True, 100, 7)}


# 9. Events re-listed after their starting_after vanished ---------------------------------------------------------

def test_an_events_page_whose_starting_after_vanished_lists_the_events_again_and_the_sync_succeeds(
        requests_mock, stripe_events):
    start, previous = an_hour_ago()
    payouts = LiveList(requests_mock, "payouts")
    first, second = payouts.add(start + 10, start + 20)
    events = [{"id": f"evt_{i}", "object": "event", "type": "payout.paid", "created": previous + 100 - i,
               "data": {"object": dict(obj)}} for i, obj in enumerate([first, second])]
    served = []

    def respond(request, context):
        query = query_of(request)
        served.append(query.get("starting_after", [None])[0])
        if "starting_after" in query and len(served) == 2:  # the first page's last event left the list
            context.status_code = 400
            return {"error": {"type": "invalid_request_error", "code": "resource_missing", "param": "starting_after",
                              "message": "No such event"}}
        if "starting_after" in query:
            return list_page(events[1:], has_more=False)
        return list_page(events[:1], has_more=True)

    requests_mock.get(f"{API}/v1/events", json=respond)

    output = read_incremental(config_since(start, retry_backoff_factor=0), "payouts",
                              state=saved_state("payouts", previous, previous))

    assert sorted(emitted_ids(output)) == sorted([first["id"], second["id"]])
    assert served == [None, "evt_0", None, "evt_0"]
    assert int(last_stream_state(output, "payouts")["events_created"]) > previous


# 9. Re-fetched records pass the live/test-mode guard -------------------------------------------------------------

def test_a_re_fetched_object_of_the_other_mode_fails_the_stream_like_a_window_record(requests_mock, stripe_events):
    start, previous = an_hour_ago()
    customers = LiveList(requests_mock, "customers")
    customer = customers.add(start + 10)[0]
    change(customers, stripe_events, customer, "customer.updated", at=previous + 10, livemode=True)

    output = read_incremental(config_since(start), "customers", state=saved_state("customers", previous, previous),
                              expecting_exception=True)

    assert emitted_ids(output) == []
    messages = " ".join(e.trace.error.message for e in output.errors)
    assert customer["id"] in messages and "livemode=true" in messages
    assert TEST_KEY not in messages


# 9. Spec minimums and pacing rule --------------------------------------------------------------------------------

def spec_properties() -> dict:
    manifest = yaml.safe_load((REPO / "manifest.yaml").read_text())
    return manifest["spec"]["connection_specification"]["properties"]


def test_read_lag_and_workers_cannot_be_set_below_what_is_safe_and_their_descriptions_say_why():
    properties = spec_properties()
    assert properties["read_lag_seconds"]["minimum"] == 2
    assert "At least 2" in properties["read_lag_seconds"]["description"]
    assert properties["num_workers"]["minimum"] == 2
    assert "At least 2" in properties["num_workers"]["description"]


def test_a_users_rate_gets_headroom_and_each_endpoint_the_smaller_of_it_and_stripes_25():
    assert RateLimits.for_mode(live=False, override=10) == RateLimits(per_account=9.5, per_endpoint=9.5)
    assert RateLimits.for_mode(live=False, override=25) == RateLimits(per_account=23.75, per_endpoint=23.75)
    assert RateLimits.for_mode(live=True, override=250) == RateLimits(per_account=237.5, per_endpoint=23.75)
    assert RateLimits.for_mode(live=True, override=250, endpoint_override=100) == RateLimits(
        per_account=237.5, per_endpoint=95.0)
    assert "smaller of this figure" in spec_properties()["max_requests_per_second"]["description"]


# 9. State from the generator thread is emitted under the cursor's lock -------------------------------------------

class _Windows:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.emitted_at: list = []

    def ensure_at_least_one_state_emitted(self) -> None:
        self.emitted_at.append(time.monotonic())


def test_the_events_cursors_state_waits_for_the_windows_cursors_lock():
    windows = _Windows()
    cursor = ChangeCaptureCursor(windows, EventsCheckpoint(None, 100))
    windows._lock.acquire()  # a window is being closed on the main thread
    released_at = []
    emitter = threading.Thread(target=cursor.emit_state)
    emitter.start()
    time.sleep(0.2)
    released_at.append(time.monotonic())
    windows._lock.release()
    emitter.join(5)

    assert len(windows.emitted_at) == 1 and windows.emitted_at[0] >= released_at[0]


# 6. An invoice's line cursor that vanishes -----------------------------------------------------------------------

def test_a_vanished_line_cursor_lists_the_invoices_lines_again_and_keeps_the_window(requests_mock):
    from unit_tests.factories import config
    from unit_tests.reads import read_streams

    invoice, lines = invoice_with_lines(25)
    requests_mock.get(f"{API}/v1/invoices", json=paged_responder([invoice], "/v1/invoices"))
    calls = []

    def serve_lines(request, context):
        after = query_of(request).get("starting_after", [None])[0]
        calls.append(after)
        if after == lines[9]["id"] and len(calls) == 1:  # the tenth line was removed meanwhile
            context.status_code = 400
            return {"error": {"type": "invalid_request_error", "code": "resource_missing", "param": "starting_after",
                              "message": f"No such line item: '{after}'"}}
        start = 0 if after is None else [line["id"] for line in lines].index(after) + 1
        return list_page(lines[start:start + 100], has_more=False)

    requests_mock.get(f"{API}/v1/invoices/{invoice['id']}/lines", json=serve_lines)

    output = read_streams(config(), "invoices")

    [record] = [r.record.data for r in output.records]
    assert [line["id"] for line in record["lines"]["data"]] == [line["id"] for line in lines]
    assert calls == [lines[9]["id"], None]
