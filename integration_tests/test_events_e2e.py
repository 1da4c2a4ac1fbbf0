"""Updates and deletions end to end: CLI syncs against the simulator, which records Stripe's events for every
change made through its control API."""
from __future__ import annotations

import time

from integration_tests.connector_cli import SIX_STREAMS as STREAMS, configured_catalog, run_connector
from integration_tests.stripe_simulator import keys

START_DATE = "2021-12-01T00:00:00Z"  # the simulator's seeded objects start 2022-01-01
LAG = 2
DAY = 86_400


def sync(sim, state=None, streams=STREAMS):
    config = {"client_secret": keys.TEST_KEY, "api_base_url": sim.url, "start_date": START_DATE,
              "read_lag_seconds": LAG}
    run = run_connector("read", config, configured_catalog(streams, sync_mode="incremental"), state)
    assert run.returncode == 0, run.stderr[-2000:] + "\n".join(e["message"] for e in run.errors())
    return run


def settle():
    """Wait until the changes made so far are older than the read lag, as they are by the next hourly sync."""
    time.sleep(LAG + 1.2)


def first(sim, resource, **wanted):
    return next(o for o in sim.objects(resource) if all(o.get(k) == v for k, v in wanted.items()))


def newest_event_time(sim, object_id):
    return max(e["created"] for e in sim.events() if e["data"]["object"]["id"] == object_id)


def stream_state(run, stream):
    return next(s["stream"]["stream_state"] for s in run.final_state()
                if s["stream"]["stream_descriptor"]["name"] == stream)


def test_the_second_sync_emits_exactly_the_changed_objects_with_new_values_and_the_deletions_flagged(
        stripe_simulator):
    sim = stripe_simulator
    initial = sync(sim)
    subscription = first(sim, "subscriptions", status="trialing")
    payout = first(sim, "payouts", status="pending")
    customer, doomed_customer = sim.objects("customers")[:2]
    charge = first(sim, "charges", status="succeeded", refunded=False)
    invoice = first(sim, "invoices", status="open")
    product = sim.objects("products")[0]

    sim.update("subscriptions", subscription["id"], status="active")
    sim.update("payouts", payout["id"], status="paid")
    sim.update("customers", customer["id"], email="new@example.com", metadata={"tier": "gold"})
    sim.update("charges", charge["id"], refunded=True, amount_refunded=charge["amount"])
    sim.update("invoices", invoice["id"], status="paid", paid=True)
    sim.delete("customers", doomed_customer["id"])
    sim.delete("products", product["id"])
    settle()
    second = sync(sim, state=initial.final_state())

    changed = {"subscriptions": [subscription["id"]], "payouts": [payout["id"]],
               "customers": sorted([customer["id"], doomed_customer["id"]]), "charges": [charge["id"]],
               "invoices": [invoice["id"]], "products": [product["id"]]}
    for stream in STREAMS:
        assert sorted(second.record_ids(stream)) == changed[stream], stream
    updates = {r["id"]: r for r in second.records() if not r.get("is_deleted")}
    for stream, object_id in (("subscriptions", subscription["id"]), ("payouts", payout["id"]),
                              ("customers", customer["id"]), ("charges", charge["id"]),
                              ("invoices", invoice["id"])):
        current = sim.get(stream, object_id)
        if stream == "invoices":
            current["lines"]["data"] = sim.invoice_lines(object_id)
            current["lines"]["has_more"] = False
        assert updates[object_id] == {**current, "changed_at": newest_event_time(sim, object_id)}, stream
    assert updates[subscription["id"]]["status"] == "active"
    assert updates[payout["id"]]["status"] == "paid"
    assert updates[customer["id"]]["email"] == "new@example.com"
    assert updates[customer["id"]]["metadata"] == {"tier": "gold"}
    assert updates[charge["id"]]["refunded"] is True
    assert updates[invoice["id"]]["status"] == "paid"
    deletions = {r["id"]: r for r in second.records() if r.get("is_deleted")}
    assert deletions == {
        doomed_customer["id"]: {"id": doomed_customer["id"], "object": "customer", "created": doomed_customer["created"],
                                "is_deleted": True, "changed_at": newest_event_time(sim, doomed_customer["id"])},
        product["id"]: {"id": product["id"], "object": "product", "created": product["created"], "is_deleted": True,
                        "changed_at": newest_event_time(sim, product["id"])},
    }


def test_a_canceled_subscription_arrives_as_an_update_with_status_canceled(stripe_simulator):
    sim = stripe_simulator
    initial = sync(sim, streams=["subscriptions"])
    subscription = first(sim, "subscriptions", status="active")
    sim.update("subscriptions", subscription["id"], status="canceled")  # Stripe: customer.subscription.deleted
    settle()

    second = sync(sim, state=initial.final_state(), streams=["subscriptions"])

    assert [e["type"] for e in sim.events()] == ["customer.subscription.deleted"]
    assert second.records("subscriptions") == [
        {**sim.get("subscriptions", subscription["id"]), "changed_at": newest_event_time(sim, subscription["id"])}]
    assert second.records("subscriptions")[0]["status"] == "canceled"


def test_objects_created_and_changed_between_syncs_arrive_once_in_their_latest_state(stripe_simulator):
    sim = stripe_simulator
    initial = sync(sim, streams=["customers", "payouts"])
    customer = sim.create("customers", email="first@example.com")
    payout = sim.create("payouts", status="pending")
    sim.update("customers", customer["id"], email="second@example.com")
    sim.update("payouts", payout["id"], status="paid")
    settle()

    second = sync(sim, state=initial.final_state(), streams=["customers", "payouts"])
    third = sync(sim, state=second.final_state(), streams=["customers", "payouts"])

    assert second.records("customers") == [sim.get("customers", customer["id"])]
    assert second.records("payouts") == [sim.get("payouts", payout["id"])]
    assert third.records() == []
    assert sim.stats.requests["/v1/customers/{id}"] == 0 and sim.stats.requests["/v1/payouts/{id}"] == 0


def test_an_events_cursor_31_days_old_re_reads_the_stream_with_a_warning_naming_the_gap(stripe_simulator):
    sim, stream = stripe_simulator, "charges"
    stale = int(time.time()) - 31 * DAY
    state = [{"type": "STREAM", "stream": {"stream_descriptor": {"name": stream},
                                           "stream_state": {"created": str(stale), "events_created": str(stale)}}}]

    run = sync(sim, state=state, streams=[stream])

    warnings = [w for w in run.logs("WARN") if f"Stream '{stream}'" in w]
    assert len(warnings) == 1
    assert "31.0 days old, beyond Stripe's 30-day event retention" in warnings[0]
    assert sorted(run.record_ids(stream)) == sorted(o["id"] for o in sim.objects(stream))
    assert sim.stats.requests["/v1/events"] == 0
    assert int(stream_state(run, stream)["events_created"]) > stale
