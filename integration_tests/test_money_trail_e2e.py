"""The money-trail streams end to end through the CLI against the simulator: full refresh equals the simulator
exactly; updates and deletions arrive with the next incremental sync; a key without a stream's permission fails
that stream alone, naming the permission."""
from __future__ import annotations

import time
from collections import Counter

import pytest

from integration_tests.connector_cli import configured_catalog, run_connector, simulator_config
from integration_tests.stripe_simulator import StripeSimulator, keys
from source_stripe_ontologie import SourceStripeOntologie

FACTS = SourceStripeOntologie().facts
SIX = ("customers", "charges", "subscriptions", "invoices", "products", "payouts")
MONEY = [name for name in FACTS.names if name not in SIX and not FACTS.stream(name).children_of]
LAG = 2
START_DATE = "2021-12-01T00:00:00Z"


def resource_of(stream: str) -> str:
    return FACTS.stream(stream).resource


def expected_record(sim, stream: str, obj: dict) -> dict:
    """The simulator's object as the stream emits it: sub-lists complete, a `created_from` stream's `created`."""
    facts = FACTS.stream(stream)
    obj = dict(obj)
    for name in facts.sub_lists:
        obj[name] = {**obj[name], "data": sim.sub_list_items(obj[name]["url"]), "has_more": False}
    if facts.created_from:
        obj["created"] = obj[facts.created_from]
    return obj


@pytest.fixture(scope="module")
def simulator():
    with StripeSimulator(seed=11, size="small", preload=("test",)) as sim:
        yield sim


@pytest.fixture(scope="module")
def full_sync(simulator):
    run = run_connector("read", simulator_config(simulator.url, keys.TEST_KEY), configured_catalog(MONEY))
    assert run.returncode == 0, run.stderr[-3000:]
    return run


@pytest.mark.parametrize("stream", MONEY)
def test_full_refresh_emits_every_object_exactly_as_stripe_sends_it(simulator, full_sync, stream):
    expected = [expected_record(simulator, stream, o) for o in simulator.objects(resource_of(stream))]
    records = full_sync.records(stream)

    assert expected
    assert Counter(r["id"] for r in records) == Counter(o["id"] for o in expected)
    by_id = {r["id"]: r for r in records}
    assert all(by_id[o["id"]] == o for o in expected)


def test_sub_lists_beyond_ten_items_are_completed(full_sync):
    for stream in ("credit_notes", "application_fees", "transfers"):
        name = FACTS.stream(stream).sub_lists[0]
        assert any(len(r[name]["data"]) > 10 and r[name]["has_more"] is False for r in full_sync.records(stream))


def test_balance_transactions_of_every_kind_and_inactive_prices_and_pending_invoice_items_arrive(full_sync):
    kinds = {r["type"] for r in full_sync.records("balance_transactions")}
    assert {"charge", "refund", "adjustment", "application_fee", "transfer", "payout"} <= kinds
    assert {r["active"] for r in full_sync.records("prices")} == {True, False}
    assert any(r["invoice"] is None for r in full_sync.records("invoice_items"))


def sync(sim, streams, state=None):
    config = {"client_secret": keys.TEST_KEY, "api_base_url": sim.url, "start_date": START_DATE,
              "read_lag_seconds": LAG, "max_requests_per_second": 10_000}
    run = run_connector("read", config, configured_catalog(streams, sync_mode="incremental"), state)
    assert run.returncode == 0, run.stderr[-2000:] + "\n".join(e["message"] for e in run.errors())
    return run


def newest_event_time(sim, object_id, field="id"):
    return max(e["created"] for e in sim.events() if e["data"]["object"].get(field) == object_id)


def test_updates_and_deletions_arrive_with_the_next_incremental_sync(stripe_simulator):
    sim = stripe_simulator
    streams = [s for s in MONEY if FACTS.stream(s).change_events]
    initial = sync(sim, streams)
    refund, other_refund = sim.objects("refunds")[:2]
    dispute = sim.objects("disputes")[0]
    intent = sim.objects("payment_intents")[0]
    credit_note = sim.objects("credit_notes")[0]
    item = sim.objects("invoiceitems")[0]
    price, doomed_price = sim.objects("prices")[:2]
    coupon, doomed_coupon = sim.objects("coupons")[:2]
    fee = sim.objects("application_fees")[0]
    transfer = sim.objects("transfers")[0]

    sim.update("refunds", refund["id"], metadata={"note": "customer called"})  # refund.updated
    sim.update("refunds", other_refund["id"], event_type="charge.refund.updated", status="failed")
    sim.update("disputes", dispute["id"], status="under_review")  # charge.dispute.updated
    sim.update("payment_intents", intent["id"], event_type="payment_intent.canceled", status="canceled")
    sim.update("credit_notes", credit_note["id"], memo="Adjusted")  # credit_note.updated
    sim.delete("invoiceitems", item["id"])  # invoiceitem.deleted
    sim.update("prices", price["id"], nickname="Legacy")  # price.updated
    sim.delete("prices", doomed_price["id"])
    sim.update("coupons", coupon["id"], name="Renamed")
    sim.delete("coupons", doomed_coupon["id"])
    sim.update("application_fees", fee["id"], event_type="application_fee.refunded", amount_refunded=fee["amount"],
               refunded=True)
    sim.update("transfers", transfer["id"], description="Monthly settlement")  # transfer.updated
    time.sleep(LAG + 1.2)

    second = sync(sim, streams, state=initial.final_state())

    changed = {"refunds": [refund["id"], other_refund["id"]], "disputes": [dispute["id"]],
               "payment_intents": [intent["id"]], "credit_notes": [credit_note["id"]], "invoice_items": [item["id"]],
               "prices": [price["id"], doomed_price["id"]], "coupons": [coupon["id"], doomed_coupon["id"]],
               "application_fees": [fee["id"]], "transfers": [transfer["id"]]}
    assert set(changed) == set(streams)
    for stream in streams:
        assert sorted(second.record_ids(stream)) == sorted(changed[stream]), stream
    updates = {r["id"]: r for r in second.records() if not r.get("is_deleted")}
    for stream, obj in (("refunds", refund), ("refunds", other_refund), ("disputes", dispute),
                        ("payment_intents", intent), ("credit_notes", credit_note), ("prices", price),
                        ("coupons", coupon), ("application_fees", fee), ("transfers", transfer)):
        current = expected_record(sim, stream, sim.get(resource_of(stream), obj["id"]))
        assert updates[obj["id"]] == {**current, "changed_at": newest_event_time(sim, obj["id"])}, stream
    assert updates[other_refund["id"]]["status"] == "failed"
    assert updates[intent["id"]]["status"] == "canceled"
    deletions = {r["id"]: r for r in second.records() if r.get("is_deleted")}
    assert deletions == {
        item["id"]: {"id": item["id"], "object": "invoiceitem", "created": item["date"], "is_deleted": True,
                     "changed_at": newest_event_time(sim, item["id"])},
        doomed_price["id"]: {"id": doomed_price["id"], "object": "price", "created": doomed_price["created"],
                             "is_deleted": True, "changed_at": newest_event_time(sim, doomed_price["id"])},
        doomed_coupon["id"]: {"id": doomed_coupon["id"], "object": "coupon", "created": doomed_coupon["created"],
                              "is_deleted": True, "changed_at": newest_event_time(sim, doomed_coupon["id"])},
    }


def test_a_key_without_one_streams_permission_fails_that_stream_alone_naming_it(stripe_simulator):
    sim = stripe_simulator
    readable = set(FACTS.stream(s).resource for s in FACTS.names) - {"disputes"}
    key = "rk_test_51SimNoDisputesKey0000000000000000000000000000000000000000000000000000000000000000wxyz"
    sim.add_key(key, mode="test", resources=readable | {"events"})
    config = simulator_config(sim.url, key)

    run = run_connector("read", config, configured_catalog(["refunds", "disputes", "transfers"]))

    assert run.returncode != 0
    assert sorted(run.record_ids("refunds")) == sorted(o["id"] for o in sim.objects("refunds"))
    assert sorted(run.record_ids("transfers")) == sorted(o["id"] for o in sim.objects("transfers"))
    assert run.stream_statuses("disputes")[-1] == "INCOMPLETE"
    disputes_error = next(e for e in run.errors() if e["message"].startswith("disputes:"))
    assert "403 Permission denied" in disputes_error["message"]
    assert "grant Disputes: Read (rak_dispute_read), or do not select disputes" in disputes_error["message"]
    assert key not in run.stdout + run.stderr
    check = run_connector("check", config).connection_status()
    assert check["status"] == "SUCCEEDED"
    assert "disputes: grant Disputes: Read (rak_dispute_read)" in check["message"]


def stream_state(run, stream):
    return next(s["stream"]["stream_state"] for s in run.final_state()
                if s["stream"]["stream_descriptor"]["name"] == stream)


def test_balance_transactions_that_settle_between_two_syncs_arrive_current_at_a_cost_bounded_by_the_pending_ones(
        stripe_simulator):
    sim, stream = stripe_simulator, "balance_transactions"
    now = int(time.time())
    older = sim.create("charges", created=now - 600, status="succeeded", amount_refunded=0, refunded=False,
                       disputed=False)
    newer = sim.create("charges", created=now - 300, status="succeeded", amount_refunded=0, refunded=False,
                       disputed=False)
    pending = {c["balance_transaction"] for c in (older, newer)}
    assert {sim.get(stream, t)["status"] for t in pending} == {"pending"}
    first = sync(sim, [stream])
    assert {r["id"]: r["status"] for r in first.records(stream) if r["id"] in pending} == dict.fromkeys(
        pending, "pending")
    assert int(stream_state(first, stream)["unsettled_since"]) == older["created"]

    sim.settle_balance(until=now + 10 * 86_400)  # Stripe makes them available; no event says so
    latest = sim.create("charges", created=int(time.time()) - 30, status="succeeded", amount_refunded=0,
                        refunded=False, disputed=False)
    time.sleep(LAG + 1.2)
    sim.reset_stats()
    second = sync(sim, [stream], state=first.final_state())

    arrived = {r["id"]: r for r in second.records(stream)}
    assert {arrived[t]["status"] for t in pending} == {"available"}
    for txn in sim.objects(stream):  # everything from the oldest pending one on, in its current state; nothing older
        if txn["created"] >= older["created"]:
            assert arrived[txn["id"]] == txn
        else:
            assert txn["id"] not in arrived
    assert arrived[latest["balance_transaction"]]["status"] == "pending"
    assert int(stream_state(second, stream)["unsettled_since"]) == latest["created"]
    assert sim.stats.requests["/v1/balance_transactions"] <= 3

    sim.settle_balance(until=now + 10 * 86_400)
    time.sleep(LAG + 1.2)
    third = sync(sim, [stream], state=second.final_state())

    assert [r["id"] for r in third.records(stream)] == [latest["balance_transaction"]]
    assert third.records(stream)[0]["status"] == "available"
    assert "unsettled_since" not in stream_state(third, stream)


# ---- payouts reconcile from the records alone ------------------------------------------------------------------
RECONCILED = "payout_balance_transactions"


def test_every_reconciled_automatic_payout_arrives_with_its_transactions_and_adds_up_from_the_records(simulator):
    run = run_connector("read", simulator_config(simulator.url, keys.TEST_KEY), configured_catalog([RECONCILED,
                                                                                                    "payouts"]))
    assert run.returncode == 0, run.stderr[-3000:]
    payouts = {p["id"]: p for p in run.records("payouts")}
    by_payout = {}
    for record in run.records(RECONCILED):
        by_payout.setdefault(record["payout"], []).append(record)

    reconciled = {p["id"] for p in payouts.values() if p["automatic"] and p["reconciliation_status"] == "completed"}
    assert reconciled and set(by_payout) == reconciled
    for payout_id, records in by_payout.items():
        payout = payouts[payout_id]
        # Sign convention (Stripe's reconciliation guide): the payout's own `payout` transaction is -amount; the
        # nets of the other transactions add up to the payout's amount, so the whole list adds up to 0.
        assert sum(r["net"] for r in records if r["type"] != "payout") == payout["amount"], payout_id
        assert sum(r["net"] for r in records) == 0
        assert [r["source"] for r in records if r["type"] == "payout"] == [payout_id]
        assert {r["currency"] for r in records} == {payout["currency"]}
        transactions = {t["id"]: t for t in simulator.objects("balance_transactions")}
        assert all({k: v for k, v in r.items() if k != "payout"} == transactions[r["id"]] for r in records)
    manual = sum(1 for p in payouts.values() if not p["automatic"])
    assert manual
    infos = [line for line in run.logs("INFO") if line.startswith(f"{RECONCILED}: skipped")]
    assert len(infos) == 1 and infos[0].startswith(f"{RECONCILED}: skipped {manual} payouts with automatic=False")


def test_a_payout_that_completes_reconciliation_between_two_syncs_brings_its_transactions(stripe_simulator):
    sim = stripe_simulator
    now = int(time.time())
    charge = sim.create("charges", created=now - 4 * 86_400, status="succeeded", currency="chf", amount_refunded=0,
                        refunded=False, disputed=False)
    payout = sim.create("payouts", created=now - 60, status="in_transit", automatic=True, currency="chf")
    assert payout["reconciliation_status"] == "in_progress"
    first = sync(sim, [RECONCILED])
    assert payout["id"] not in {r["payout"] for r in first.records(RECONCILED)}

    sim.update("payouts", payout["id"], status="paid")  # payout.paid, then payout.reconciliation_completed
    time.sleep(LAG + 1.2)
    second = sync(sim, [RECONCILED], state=first.final_state())

    records = second.records(RECONCILED)
    assert sorted(r["id"] for r in records) == sorted([charge["balance_transaction"], payout["balance_transaction"]])
    assert {r["payout"] for r in records} == {payout["id"]}
    assert sum(r["net"] for r in records if r["type"] != "payout") == sim.get("payouts", payout["id"])["amount"]
