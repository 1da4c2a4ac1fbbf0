"""The simulator's money trail (integration_tests/stripe_simulator/money_trail.py): Stripe's shapes, linked objects,
pending until available_on, automatic payouts that pay out the available balance and add up."""
from __future__ import annotations

import time
from collections import defaultdict

import pytest
import requests

from integration_tests.stripe_simulator import StripeSimulator, keys, money_trail
from integration_tests.stripe_simulator.spec import schema_validator

SUB_LIST_SCHEMAS = {"credit_notes": "credit_note_line_item", "application_fees": "fee_refund",
                    "transfers": "transfer_reversal"}


def get(sim, path, **params):
    return requests.get(sim.url + path, params=params, headers={"Authorization": f"Bearer {keys.TEST_KEY}"},
                        timeout=10)


def assert_valid(schema_name, objects):
    validator = schema_validator(schema_name)
    problems = [f"{o.get('id')}: {'/'.join(map(str, e.absolute_path))}: {e.message[:120]}"
                for o in objects for e in validator.iter_errors(o)]
    assert not problems, problems[:5]


@pytest.mark.parametrize("mode", ["test", "live"])
def test_every_money_trail_object_validates_against_the_spec_with_unknown_fields_forbidden(mode):
    with StripeSimulator(seed=11, size="small", preload=(mode,)) as sim:
        for resource in money_trail.RESOURCES:
            objects = sim.objects(resource, mode=mode)
            assert objects, resource
            assert_valid(money_trail.OBJECT_NAME[resource], objects)
        for parent, name in money_trail.SUB_LISTS.items():
            items = [item for o in sim.objects(parent, mode=mode) for item in o[name]["data"]]
            assert items, parent
            assert_valid(SUB_LIST_SCHEMAS[parent], items)
        assert_valid("payout", sim.objects("payouts", mode=mode))
        assert_valid("charge", sim.objects("charges", mode=mode))


def test_every_succeeded_charge_refund_dispute_fee_transfer_and_payout_has_its_balance_transaction(stripe_simulator):
    sim = stripe_simulator
    by_source = {t["source"]: t for t in sim.objects("balance_transactions") if t["type"] != "payout_failure"}
    for charge in sim.objects("charges"):
        if charge["status"] == "succeeded":
            txn = by_source[charge["id"]]
            assert txn["id"] == charge["balance_transaction"] and txn["type"] == "charge"
            assert txn["amount"] == charge["amount"] and txn["currency"] == charge["currency"]
            assert txn["fee"] == sum(f["amount"] for f in txn["fee_details"]) > 0
            assert txn["net"] == txn["amount"] - txn["fee"]
        else:
            assert charge["balance_transaction"] is None
    for resource, kind in (("refunds", "refund"), ("disputes", "adjustment"), ("application_fees", "application_fee"),
                           ("transfers", "transfer"), ("payouts", "payout")):
        objects = sim.objects(resource)
        assert objects, resource
        assert all(by_source[o["id"]]["type"] == kind for o in objects), resource
    assert sum(1 for c in sim.objects("charges") if c["amount_refunded"]) == len(sim.objects("refunds"))


def test_every_reconciled_automatic_payout_adds_up_from_its_listed_transactions(stripe_simulator):
    sim = stripe_simulator
    reconciled = [p for p in sim.objects("payouts") if p["automatic"] and p["reconciliation_status"] == "completed"]
    assert len(reconciled) >= 5
    paid_twice = defaultdict(int)
    for payout in reconciled:
        listed = get(sim, "/v1/balance_transactions", payout=payout["id"], limit=100).json()
        assert listed["has_more"] is False
        transactions = listed["data"]
        own = [t for t in transactions if t["type"] == "payout"]
        # Sign convention (Stripe's reconciliation guide): the payout's own transaction is -amount, so the nets of
        # the others add up to the payout's amount and the whole list to 0.
        assert [t["source"] for t in own] == [payout["id"]] and own[0]["net"] == -payout["amount"]
        assert sum(t["net"] for t in transactions if t["type"] != "payout") == payout["amount"]
        assert sum(t["net"] for t in transactions) == 0
        assert {t["currency"] for t in transactions} == {payout["currency"]}
        assert all(t["available_on"] <= payout["created"] for t in transactions)
        for t in transactions:
            paid_twice[t["id"]] += 1
    assert max(paid_twice.values()) == 1


def test_a_manual_payout_cannot_filter_balance_transactions_like_at_stripe(stripe_simulator):
    manual = next(p for p in stripe_simulator.objects("payouts") if not p["automatic"])

    answer = get(stripe_simulator, "/v1/balance_transactions", payout=manual["id"])

    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == ("Balance transaction history can only be filtered on automatic "
                                                 "transfers, not manual.")
    assert manual["reconciliation_status"] == "not_applicable"


@pytest.mark.parametrize("parent", sorted(money_trail.SUB_LISTS))
def test_embedded_lists_stop_at_ten_and_their_url_pages_every_item(stripe_simulator, parent):
    name = money_trail.SUB_LISTS[parent]
    long = [o for o in stripe_simulator.objects(parent) if o[name]["has_more"]]
    assert long, parent
    embedded = long[0][name]
    assert len(embedded["data"]) == 10

    first = get(stripe_simulator, embedded["url"], limit=5).json()
    rest = get(stripe_simulator, embedded["url"], limit=100, starting_after=first["data"][-1]["id"]).json()

    assert [i["id"] for i in first["data"]] == [i["id"] for i in embedded["data"][:5]]
    assert first["has_more"] is True and rest["has_more"] is False
    assert len(first["data"]) + len(rest["data"]) > 10


def test_invoice_items_are_filtered_on_date_and_pending_ones_are_listed(stripe_simulator):
    items = stripe_simulator.objects("invoiceitems")
    pending = [i for i in items if i["invoice"] is None]
    assert pending and len(pending) < len(items)
    some = items[len(items) // 2]

    listed = get(stripe_simulator, "/v1/invoiceitems", limit=100, **{"created[gte]": some["date"],
                                                                     "created[lte]": some["date"]}).json()["data"]

    assert some["id"] in [i["id"] for i in listed] and all(i["date"] == some["date"] for i in listed)
    assert "created" not in some


def test_a_new_charge_is_pending_until_available_on_then_an_automatic_payout_pays_it_and_reconciles(
        stripe_simulator):
    sim = stripe_simulator
    now = int(time.time())
    charge = sim.create("charges", created=now - 3 * money_trail.DAY, status="succeeded", currency="chf",
                        amount_refunded=0, refunded=False, disputed=False)
    txn = next(t for t in sim.objects("balance_transactions") if t["source"] == charge["id"])
    assert txn["status"] == "available"  # 3 days old: past its available_on
    fresh = sim.create("charges", created=now - 60, status="succeeded", currency="chf", amount_refunded=0,
                       refunded=False, disputed=False)
    fresh_txn = next(t for t in sim.objects("balance_transactions") if t["source"] == fresh["id"])
    assert fresh_txn["status"] == "pending" and fresh_txn["available_on"] > now
    assert sim.settle_balance(until=fresh_txn["available_on"]) >= 1
    assert sim.get("balance_transactions", fresh_txn["id"])["status"] == "available"

    payout = sim.create("payouts", created=fresh_txn["available_on"], status="pending", automatic=True, currency="chf")

    assert payout["currency"] == "chf" and payout["amount"] == txn["net"] + fresh_txn["net"]
    assert payout["reconciliation_status"] == "in_progress"
    sim.update("payouts", payout["id"], status="paid")
    assert sim.get("payouts", payout["id"])["reconciliation_status"] == "completed"
    assert [e["type"] for e in sim.events(types=["payout.paid", "payout.reconciliation_completed"])] == [
        "payout.reconciliation_completed", "payout.paid"]
    listed = get(sim, "/v1/balance_transactions", payout=payout["id"], limit=100).json()["data"]
    assert sorted(t["id"] for t in listed) == sorted([txn["id"], fresh_txn["id"], payout["balance_transaction"]])
