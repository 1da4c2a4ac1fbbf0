"""After the first sync, incremental streams also read Stripe's events: every object changed since the last sync
arrives once, in its current state, with `changed_at`; deletions arrive as flagged records."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.state_builder import StateBuilder

from source_stripe_ontologie import SourceStripeOntologie, cdk_seam
from source_stripe_ontologie.change_capture import RequesterOnFirstUse
from source_stripe_ontologie.stripe_events import MAX_TYPES_PER_REQUEST
from unit_tests.factories import (
    API,
    DAY,
    FACTS,
    LiveList,
    change,
    config,
    config_since,
    delete,
    fetched_by_id,
    invoice_with_lines,
    now,
    query_of,
    related_event,
)
from unit_tests.reads import (
    emitted_ids,
    last_stream_state,
    next_state,
    read_incremental,
    state_input,
)

# The event types Stripe knows, extracted from its OpenAPI description by scripts/extract_openapi.py.
EVENT_TYPES = Path(__file__).resolve().parents[1] / "integration_tests" / "stripe_simulator" / "openapi" / "event_types.json"


def saved_state(stream: str, created: int, events_created: int) -> list:
    return StateBuilder().with_stream_state(stream, {"created": str(created),
                                                     "events_created": str(events_created)}).build()


def records_by_id(output) -> dict:
    return {r.record.data["id"]: r.record.data for r in output.records}


def events_requests(requests_mock) -> list:
    return [query_of(r) for r in requests_mock.request_history if r.path == "/v1/events"]


@pytest.fixture
def synced_once(requests_mock):
    """An account synced an hour ago: (start, previous cursor) for a second sync's state."""
    return now() - 30 * DAY, now() - 3600


def test_every_event_type_is_one_stripe_knows_and_each_stream_fits_one_request():
    known = set(json.loads(EVENT_TYPES.read_text()))

    for stream, facts in FACTS.streams.items():
        assert set(facts.change_events) <= known, (stream, set(facts.change_events) - known)
        assert set(facts.deletion_events) <= set(facts.change_events), stream
        assert len(facts.change_events) <= MAX_TYPES_PER_REQUEST, stream


def test_a_first_sync_reads_no_events_and_starts_the_events_cursor_at_its_horizon(requests_mock):
    start = now() - 10 * DAY
    LiveList(requests_mock, "payouts").add(start + 10)

    before = now()
    output = read_incremental(config_since(start), "payouts")

    state = last_stream_state(output, "payouts")
    assert events_requests(requests_mock) == []
    assert before - 60 <= int(state["events_created"]) <= now() - 60
    assert int(state["events_created"]) <= int(state["created"])


def test_a_second_sync_emits_each_changed_object_once_in_its_current_state_with_changed_at(
        requests_mock, stripe_events, synced_once):
    start, previous = synced_once
    payouts = LiveList(requests_mock, "payouts")
    pending, untouched = payouts.add(start + 10, start + 20)
    pending["status"] = "pending"
    change(payouts, stripe_events, pending, "payout.updated", at=previous + 100, status="in_transit")
    change(payouts, stripe_events, pending, "payout.paid", at=previous + 200, status="paid")

    output = read_incremental(config_since(start), "payouts", state=saved_state("payouts", previous, previous))

    assert emitted_ids(output) == [pending["id"]]
    record = records_by_id(output)[pending["id"]]
    assert record["status"] == "paid"
    assert record["changed_at"] == previous + 200
    assert "is_deleted" not in record
    assert fetched_by_id(requests_mock) == [f"/v1/payouts/{pending['id']}"]


def test_the_object_is_re_fetched_in_the_pinned_version_not_taken_from_the_event(
        requests_mock, stripe_events, synced_once):
    start, previous = synced_once
    customers = LiveList(requests_mock, "customers")
    customer = customers.add(start + 10)[0]
    stripe_events.record("customer.updated", dict(customer, email="stale@old-version.example"), previous + 5)
    customer["email"] = "current@example.com"

    output = read_incremental(config_since(start), "customers", state=saved_state("customers", previous, previous))

    assert records_by_id(output)[customer["id"]]["email"] == "current@example.com"
    by_id = [r for r in requests_mock.request_history if r.path == f"/v1/customers/{customer['id']}"]
    assert by_id[0].headers["Stripe-Version"] == "2024-06-20"


def test_events_are_read_since_the_events_cursor_up_to_the_horizon_with_the_streams_types(
        requests_mock, synced_once):
    start, previous = synced_once
    LiveList(requests_mock, "charges")

    before = now()
    output = read_incremental(config_since(start), "charges", state=saved_state("charges", previous, previous - 7))

    query = events_requests(requests_mock)[0]
    assert query["created[gt]"] == [str(previous - 7)]
    assert before - 60 <= int(query["created[lte]"][0]) <= now() - 60
    assert query["types[]"] == list(FACTS.streams["charges"].change_events)
    assert last_stream_state(output, "charges")["events_created"] == query["created[lte]"][0]


def test_an_object_created_and_changed_between_syncs_arrives_once_from_its_window_without_a_re_fetch(
        requests_mock, stripe_events, synced_once):
    start, previous = synced_once
    subscriptions = LiveList(requests_mock, "subscriptions")
    new = subscriptions.add(previous + 50)[0]
    change(subscriptions, stripe_events, new, "customer.subscription.updated", at=previous + 80, status="active")

    output = read_incremental(config_since(start), "subscriptions",
                              state=saved_state("subscriptions", previous, previous))

    assert emitted_ids(output) == [new["id"]]
    assert records_by_id(output)[new["id"]]["status"] == "active"
    assert fetched_by_id(requests_mock) == []


def test_deletions_are_flagged_records_with_id_created_and_changed_at_without_a_re_fetch(
        requests_mock, stripe_events, synced_once):
    start, previous = synced_once
    customers = LiveList(requests_mock, "customers")
    gone, kept = customers.add(start + 10, start + 20)
    change(customers, stripe_events, gone, "customer.updated", at=previous + 10, email="x@example.com")
    delete(customers, stripe_events, gone, "customer.deleted", at=previous + 20)

    output = read_incremental(config_since(start), "customers", state=saved_state("customers", previous, previous))

    assert [r.record.data for r in output.records] == [
        {"id": gone["id"], "object": "customer", "created": start + 10, "is_deleted": True, "changed_at": previous + 20}]
    assert fetched_by_id(requests_mock) == []


def test_a_canceled_subscription_is_an_update_with_its_canceled_status_not_a_deletion(
        requests_mock, stripe_events, synced_once):
    start, previous = synced_once
    subscriptions = LiveList(requests_mock, "subscriptions")
    subscription = subscriptions.add(start + 10)[0]
    change(subscriptions, stripe_events, subscription, "customer.subscription.deleted", at=previous + 30,
           status="canceled")

    output = read_incremental(config_since(start), "subscriptions",
                              state=saved_state("subscriptions", previous, previous))

    record = records_by_id(output)[subscription["id"]]
    assert record["status"] == "canceled" and record["changed_at"] == previous + 30
    assert "is_deleted" not in record


def test_a_refund_or_dispute_event_re_fetches_the_charge_it_names(requests_mock, stripe_events, synced_once):
    start, previous = synced_once
    charges = LiveList(requests_mock, "charges")
    refunded, disputed = charges.add(start + 10, start + 20)
    refunded.update(amount_refunded=500, refunded=True)
    disputed.update(disputed=True)
    related_event(stripe_events, "refund.created", previous + 10, object="refund", charge=refunded["id"], amount=500)
    related_event(stripe_events, "charge.dispute.created", previous + 20, object="dispute", charge=disputed["id"])

    output = read_incremental(config_since(start), "charges", state=saved_state("charges", previous, previous))

    records = records_by_id(output)
    assert sorted(records) == sorted([refunded["id"], disputed["id"]])
    assert records[refunded["id"]]["amount_refunded"] == 500 and records[refunded["id"]]["changed_at"] == previous + 10
    assert records[disputed["id"]]["disputed"] is True


def test_the_newest_event_wins_when_one_object_changed_several_times(requests_mock, stripe_events, synced_once):
    start, previous = synced_once
    invoices = LiveList(requests_mock, "invoices")
    invoice = invoices.add(start + 10)[0]
    for offset, event_type in ((10, "invoice.finalized"), (40, "invoice.paid"), (20, "invoice.updated")):
        stripe_events.record(event_type, invoice, previous + offset)

    output = read_incremental(config_since(start), "invoices", state=saved_state("invoices", previous, previous))

    assert emitted_ids(output) == [invoice["id"]]
    assert records_by_id(output)[invoice["id"]]["changed_at"] == previous + 40


def test_products_are_re_fetched_with_their_default_price_expanded(requests_mock, stripe_events, synced_once):
    start, previous = synced_once
    products = LiveList(requests_mock, "products")
    product = products.add(start + 10)[0]
    change(products, stripe_events, product, "product.updated", at=previous + 10, name="Renamed")

    read_incremental(config_since(start), "products", state=saved_state("products", previous, previous))

    by_id = [r for r in requests_mock.request_history if r.path == f"/v1/products/{product['id']}"]
    assert query_of(by_id[0]) == {"expand[]": ["default_price"]}


def test_a_re_fetched_invoice_has_all_of_its_lines(requests_mock, stripe_events, synced_once):
    start, previous = synced_once
    invoices = LiveList(requests_mock, "invoices")
    invoice, lines = invoice_with_lines(25)
    invoice["created"] = start + 10
    invoices.objects.append(invoice)
    requests_mock.get(f"{API}/v1/invoices/{invoice['id']}/lines",
                      json={"object": "list", "url": "/lines", "has_more": False, "data": lines[10:]})
    stripe_events.record("invoice.paid", invoice, previous + 10)

    output = read_incremental(config_since(start), "invoices", state=saved_state("invoices", previous, previous))

    record = records_by_id(output)[invoice["id"]]
    assert [line["id"] for line in record["lines"]["data"]] == [line["id"] for line in lines]
    assert record["lines"]["has_more"] is False


def test_an_object_found_gone_when_re_fetched_emits_its_tombstone_and_the_sync_succeeds(
        requests_mock, stripe_events, synced_once):
    start, previous = synced_once
    products = LiveList(requests_mock, "products")
    product = products.add(start + 10)[0]
    change(products, stripe_events, product, "product.updated", at=previous + 10, name="Renamed")
    products.remove(product["id"])  # deleted after the horizon: a deletion is final, so its tombstone comes now

    output = read_incremental(config_since(start), "products", state=saved_state("products", previous, previous))

    assert [r.record.data for r in output.records] == [
        {"id": product["id"], "object": "product", "created": start + 10, "is_deleted": True,
         "changed_at": previous + 10}]
    assert int(last_stream_state(output, "products")["events_created"]) > previous


def test_objects_created_before_start_date_are_not_emitted_when_they_change(
        requests_mock, stripe_events, synced_once):
    start, previous = synced_once
    customers = LiveList(requests_mock, "customers")
    older, inside = customers.add(start - 10, start + 10)
    change(customers, stripe_events, older, "customer.updated", at=previous + 10, name="Old")
    change(customers, stripe_events, inside, "customer.updated", at=previous + 10, name="New")
    delete(customers, stripe_events, older, "customer.deleted", at=previous + 20)

    output = read_incremental(config_since(start), "customers", state=saved_state("customers", previous, previous))

    assert emitted_ids(output) == [inside["id"]]


def test_a_failing_events_request_holds_the_events_cursor_while_the_created_cursor_moves(
        requests_mock, synced_once):
    start, previous = synced_once
    LiveList(requests_mock, "payouts").add(previous + 100)
    requests_mock.get(f"{API}/v1/events", status_code=400,
                      json={"error": {"type": "invalid_request_error", "message": "Simulated failure"}})

    output = read_incremental(config_since(start), "payouts", state=saved_state("payouts", previous, previous - 5),
                              expecting_exception=True)

    state = last_stream_state(output, "payouts")
    assert state["events_created"] == str(previous - 5)
    assert int(state["created"]) > previous
    assert len(emitted_ids(output)) == 1


def test_the_next_sync_starts_its_events_where_this_one_ended(requests_mock, stripe_events, synced_once):
    start, previous = synced_once
    payouts = LiveList(requests_mock, "payouts")
    payout = payouts.add(start + 10)[0]
    change(payouts, stripe_events, payout, "payout.paid", at=previous + 10, status="paid")
    first = read_incremental(config_since(start), "payouts", state=saved_state("payouts", previous, previous))

    second = read_incremental(config_since(start), "payouts", state=next_state(first, "payouts"))

    assert emitted_ids(first) == [payout["id"]]
    assert emitted_ids(second) == []
    assert events_requests(requests_mock)[-1]["created[gt]"] == [last_stream_state(first, "payouts")["events_created"]]


@pytest.mark.parametrize("age_days, falls_back", [(31, True), (29, False)])
def test_an_events_cursor_past_stripes_30_day_retention_re_reads_the_stream_with_a_warning(
        requests_mock, age_days, falls_back):
    start = now() - 400 * DAY
    charges = LiveList(requests_mock, "charges")
    charges.add(start + 10, now() - 200 * DAY)
    cursor = now() - age_days * DAY

    output = read_incremental(config_since(start), "charges", state=saved_state("charges", cursor, cursor))

    warnings = [log.log.message for log in output.logs if log.log.level.value == "WARN"]
    named = [w for w in warnings if "'charges'" in w and "30-day event retention" in w]
    if falls_back:
        assert len(named) == 1 and f"{age_days}.0 days old" in named[0]
        assert sorted(emitted_ids(output)) == sorted(o["id"] for o in charges.objects)  # the whole stream again
        assert events_requests(requests_mock) == []
        assert int(last_stream_state(output, "charges")["events_created"]) > cursor
    else:
        assert named == []
        assert emitted_ids(output) == []
        assert events_requests(requests_mock)[0]["created[gt]"] == [str(cursor)]


def test_a_state_written_before_events_existed_reads_events_from_its_created_second(requests_mock, synced_once):
    start, previous = synced_once
    LiveList(requests_mock, "customers")

    read_incremental(config_since(start), "customers", state=state_input("customers", str(previous)))

    assert events_requests(requests_mock)[0]["created[gt]"] == [str(previous)]


def test_full_refresh_reads_no_events(requests_mock, synced_once):
    start, previous = synced_once
    LiveList(requests_mock, "customers").add(start + 5)

    output = read_incremental(config_since(start), "customers", state=saved_state("customers", previous, previous),
                              sync_mode=SyncMode.full_refresh)

    assert events_requests(requests_mock) == []
    assert len(emitted_ids(output)) == 1


def test_many_changed_objects_are_each_emitted_once_across_parallel_partitions(
        requests_mock, stripe_events, synced_once):
    start, previous = synced_once
    customers = LiveList(requests_mock, "customers")
    changed = customers.add(*(start + i for i in range(130)))
    for i, customer in enumerate(changed):
        change(customers, stripe_events, customer, "customer.updated", at=previous + 1 + i % 7,
               email=f"{i}@example.com")

    output = read_incremental(config_since(start), "customers",
                              state=saved_state("customers", previous, previous))

    assert sorted(emitted_ids(output)) == sorted(c["id"] for c in changed)
    assert {r["email"] for r in records_by_id(output).values()} == {f"{i}@example.com" for i in range(130)}
    assert int(last_stream_state(output, "customers")["events_created"]) > previous


def test_the_validator_accepts_an_events_cursor_and_rejects_one_that_is_not_epoch_seconds(requests_mock):
    LiveList(requests_mock, "charges")
    bad = StateBuilder().with_stream_state("charges", {"created": "1718000000", "events_created": "soon"}).build()

    output = read_incremental(config_since(now() - DAY), "charges", state=bad, expecting_exception=True)

    assert requests_mock.call_count == 0
    assert "events_created='soon'" in output.errors[-1].trace.error.message


def test_tombstones_and_changed_records_validate_against_the_stream_schema(
        requests_mock, stripe_events, synced_once):
    import jsonschema

    start, previous = synced_once
    products = LiveList(requests_mock, "products")
    renamed, gone = products.add(start + 10, start + 20)
    change(products, stripe_events, renamed, "product.updated", at=previous + 10, name="Renamed")
    delete(products, stripe_events, gone, "product.deleted", at=previous + 20)
    schema = json.loads((Path(__file__).resolve().parents[1] / "source_stripe_ontologie" / "schemas"
                         / "products.json").read_text())

    output = read_incremental(config_since(start), "products", state=saved_state("products", previous, previous))

    assert len(output.records) == 2
    for record in output.records:
        jsonschema.Draft7Validator(schema).validate(record.record.data)
    assert {"changed_at", "is_deleted"} <= set(schema["properties"])


def test_a_discount_event_re_fetches_the_customer_it_names(requests_mock, stripe_events, synced_once):
    start, previous = synced_once
    customers = LiveList(requests_mock, "customers")
    customer = customers.add(start + 10)[0]
    customer["discount"] = {"object": "discount", "coupon": {"id": "SAVE10"}}
    related_event(stripe_events, "customer.discount.created", previous + 10, object="discount",
                  customer=customer["id"])

    output = read_incremental(config_since(start), "customers", state=saved_state("customers", previous, previous))

    assert [r.record.data for r in output.records] == [{**customer, "changed_at": previous + 10}]


def test_events_of_types_the_stream_does_not_follow_are_ignored(requests_mock, stripe_events, synced_once):
    start, previous = synced_once
    payouts = LiveList(requests_mock, "payouts")
    payout = payouts.add(start + 10)[0]
    stripe_events.record("payout.created", payout, previous + 10)  # read by the created windows, not here

    output = read_incremental(config_since(start), "payouts", state=saved_state("payouts", previous, previous))

    assert emitted_ids(output) == []
    assert fetched_by_id(requests_mock) == []


def test_a_key_without_events_read_fails_the_stream_naming_the_permission_and_holds_its_events_cursor(
        requests_mock, synced_once):
    from unit_tests.factories import TEST_KEY, forbidden_body

    start, previous = synced_once
    new = LiveList(requests_mock, "payouts").add(previous + 100)[0]
    requests_mock.get(f"{API}/v1/events", status_code=403, json=forbidden_body(TEST_KEY, "events"))

    output = read_incremental(config_since(start), "payouts", state=saved_state("payouts", previous, previous),
                              expecting_exception=True)

    stream_error = next(e.trace.error for e in output.errors if e.trace.error.stream_descriptor)
    assert "Events: Read" in stream_error.message and "rak_event_read" in stream_error.message
    assert TEST_KEY not in stream_error.message
    assert emitted_ids(output) == [new["id"]]  # the created windows still deliver
    assert last_stream_state(output, "payouts")["events_created"] == str(previous)


def test_change_captures_requesters_are_built_on_their_first_request_only(monkeypatch):
    built = []
    build = cdk_seam.build_requester
    monkeypatch.setattr(cdk_seam, "build_requester", lambda *a, **k: built.append(k["name"]) or build(*a, **k))
    source = SourceStripeOntologie(config=config())
    source.streams(source.config)
    change_capture = {f"{name}_{target}" for name, facts in FACTS.streams.items()
                      for target in (facts.resource, "events")}
    events_or_by_id = [name for name in built if name in change_capture]
    assert events_or_by_id == []  # no stream sent an events or by-id request yet: none of their requesters was built
    built.clear()

    sent = []
    requester = RequesterOnFirstUse(lambda: built.append("once") or type("R", (), {
        "send_request": staticmethod(lambda **kwargs: sent.append(kwargs))})())
    requester.send_request(path="ch_1")
    requester.send_request(path="ch_2")
    assert built == ["once"] and sent == [{"path": "ch_1"}, {"path": "ch_2"}]
