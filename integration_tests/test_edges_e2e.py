"""Issue 12 through the command line against the simulator: deletions that always arrive, event retention checked
when the events are listed, the fallback's deletions, every allowed worker count, objects and invoices deleted
while they are read, and a no-records warning that means something."""
from __future__ import annotations

import calendar
import time

import pytest

from integration_tests.connector_cli import configured_catalog, run_connector, simulator_config
from integration_tests.stripe_simulator import FastClock, StripeSimulator, keys

START_DATE = "2021-12-01T00:00:00Z"  # the simulator's seeded objects start 2022-01-01
LAG = 2
DAY = 86_400
RETENTION = 30 * DAY


# The history probe's first page lists the whole range from start_date: a hook meant for a window's page skips it.
PROBE_FROM = str(calendar.timegm(time.strptime(START_DATE, "%Y-%m-%dT%H:%M:%SZ")))


def window_page(page) -> bool:
    """A page of a window (not the probe's), as the stream's list requests it."""
    return page["params"].get("limit") == "100" and (page["params"].get("created") or {}).get("gte") != PROBE_FROM


def config(sim, **overrides):
    return simulator_config(sim.url, keys.TEST_KEY, **{"start_date": START_DATE, "read_lag_seconds": LAG, **overrides})


def sync(sim, streams, state=None, ok=True, **overrides):
    run = run_connector("read", config(sim, **overrides), configured_catalog(streams, sync_mode="incremental"),
                        state, timeout=120)
    if ok:
        assert run.returncode == 0, run.stderr[-2000:] + "\n".join(e["message"] for e in run.errors())
    return run


def settle(extra: float = 0.0):
    """Let the changes made so far pass the read lag, as they have by the next hourly sync."""
    time.sleep(LAG + 1.2 + extra)


def stream_state(run, stream):
    return next(s["stream"]["stream_state"] for s in run.final_state()
                if s["stream"]["stream_descriptor"]["name"] == stream)


def tombstones(run, stream):
    return {r["id"]: r for r in run.records(stream) if r.get("is_deleted")}


def stale_state(stream, cursor):
    return {"type": "STREAM", "stream": {"stream_descriptor": {"name": stream},
                                         "stream_state": {"created": str(cursor), "events_created": str(cursor)}}}


def deletion_time(sim, object_id):
    return next(e["created"] for e in sim.events() if e["type"].endswith(".deleted")
                and e["data"]["object"]["id"] == object_id)


# 1 ---------------------------------------------------------------------------------------------------------------

def test_a_deletion_arrives_whatever_events_follow_it_or_share_its_second(stripe_simulator):
    sim = stripe_simulator
    initial = sync(sim, ["customers", "products"])
    tie, later = sim.objects("customers")[:2]
    product = sim.objects("products")[0]

    sim.delete("customers", tie["id"])  # Stripe also deletes the discount: same second, listed first
    sim.record_event("customer.discount.deleted", {"id": "di_tie", "object": "discount", "customer": tie["id"]},
                     created=deletion_time(sim, tie["id"]))
    sim.delete("customers", later["id"])  # ... or one second later
    sim.record_event("customer.discount.deleted", {"id": "di_later", "object": "discount", "customer": later["id"]},
                     created=deletion_time(sim, later["id"]) + 1)
    sim.delete("products", product["id"])  # and a price of a deleted product can still change
    sim.record_event("price.updated", {"id": product["default_price"], "object": "price", "product": product["id"]},
                     created=deletion_time(sim, product["id"]) + 1)
    settle(extra=1)

    second = sync(sim, ["customers", "products"], state=initial.final_state())

    assert tombstones(second, "customers") == {
        obj["id"]: {"id": obj["id"], "object": "customer", "created": obj["created"], "is_deleted": True,
                    "changed_at": deletion_time(sim, obj["id"])} for obj in (tie, later)}
    assert tombstones(second, "products") == {
        product["id"]: {"id": product["id"], "object": "product", "created": product["created"], "is_deleted": True,
                        "changed_at": deletion_time(sim, product["id"])}}


# 2 ---------------------------------------------------------------------------------------------------------------

def test_events_that_pass_the_retention_edge_before_they_are_listed_take_the_warned_fallback():
    # Stripe's clock runs an hour a second: the events cursor is inside the retention when the connector starts
    # (by 10 minutes more than the margin), and past it by the time the stream's events are listed.
    with StripeSimulator(seed=7, size="small", clock=FastClock(speed=3600)) as sim:
        cursor = int(time.time()) - RETENTION + 3600 + 600
        run = sync(sim, ["products"], state=[stale_state("products", cursor)])

    warnings = [w for w in run.logs("WARN") if "Stream 'products'" in w]
    assert len(warnings) == 1 and "beyond Stripe's 30-day event retention" in warnings[0]
    assert sorted(run.record_ids("products")) == sorted(o["id"] for o in sim.objects("products"))  # re-read whole
    assert int(stream_state(run, "products")["events_created"]) > cursor


# 3 ---------------------------------------------------------------------------------------------------------------

def test_the_stale_cursor_fallback_emits_the_deletions_stripe_still_lists(stripe_simulator):
    sim = stripe_simulator
    customer, product = sim.objects("customers")[0], sim.objects("products")[0]
    sim.delete("customers", customer["id"])
    sim.delete("products", product["id"])
    settle()
    stale = int(time.time()) - 31 * DAY

    run = sync(sim, ["customers", "products", "payouts"],
               state=[stale_state(s, stale) for s in ("customers", "products", "payouts")])

    assert len([w for w in run.logs("WARN") if "30-day event retention" in w]) == 3
    assert set(tombstones(run, "customers")) == {customer["id"]}
    assert set(tombstones(run, "products")) == {product["id"]}
    for stream in ("customers", "products", "payouts"):
        live = [r["id"] for r in run.records(stream) if not r.get("is_deleted")]
        assert sorted(live) == sorted(o["id"] for o in sim.objects(stream)), stream
        assert int(stream_state(run, stream)["events_created"]) > stale, stream


# 4 ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [2, 3, 64])
def test_every_allowed_worker_count_completes_a_stream_of_many_windows(stripe_simulator, workers):
    # The spec allows 2..64; the deadlock needed one thread for the window generator and none to read. With 2 or
    # more, the CDK runs at most workers // 2 generators, so a reader always remains: 2 and 3 are the values where
    # that margin is smallest, 64 the largest allowed.
    run = sync(stripe_simulator, ["customers"], num_workers=workers, slice_range_days=7)

    assert sorted(run.record_ids("customers")) == sorted(o["id"] for o in stripe_simulator.objects("customers"))


def test_a_single_worker_is_refused_before_any_request_instead_of_hanging(stripe_simulator):
    run = sync(stripe_simulator, ["customers"], ok=False, num_workers=1, slice_range_days=7)

    assert run.returncode != 0
    assert "1 is less than the minimum of 2" in run.stdout  # the CDK checks the config against the spec
    assert stripe_simulator.stats.requests["/v1/customers"] == 0


# 5 ---------------------------------------------------------------------------------------------------------------

def test_a_window_completes_exactly_once_however_many_of_its_page_cursors_vanish(stripe_simulator):
    sim = stripe_simulator
    dense = 1_700_000_000  # 2023-11-14: 250 customers in one second, three pages of one window
    for _ in range(250):
        sim.create("customers", created=dense)
    deleted = []

    def delete_the_last_object(page):
        deleted.append(page["ids"][-1])
        sim.delete("customers", page["ids"][-1])

    first_page_of_the_dense_window = (lambda page: page["has_more"] and window_page(page)
                                      and "starting_after" not in page["params"])
    sim.hooks.after_page("customers", delete_the_last_object, times=3, when=first_page_of_the_dense_window)

    run = sync(sim, ["customers"])

    ids = run.record_ids("customers")
    assert len(deleted) == 3
    # the deleted ones were sent before they vanished (their deletion events bring the tombstones next sync)
    assert sorted(ids) == sorted([o["id"] for o in sim.objects("customers")] + deleted)
    assert len(ids) == len(set(ids))


# 6 ---------------------------------------------------------------------------------------------------------------

def test_an_invoice_deleted_before_its_lines_are_read_is_left_out_and_its_deletion_arrives_next(stripe_simulator):
    sim = stripe_simulator
    draft = sim.create("invoices", created=1_700_000_000, line_count=25, status="draft")
    sim.hooks.after_page("invoices", lambda page: sim.delete("invoices", draft["id"]),
                         when=lambda page: draft["id"] in page["ids"] and window_page(page))

    first = sync(sim, ["invoices"])
    settle()
    second = sync(sim, ["invoices"], state=first.final_state())

    assert first.stream_statuses("invoices")[-1] == "COMPLETE"
    assert sorted(first.record_ids("invoices")) == sorted(o["id"] for o in sim.objects("invoices"))
    assert sim.stats.statuses[404] >= 1  # the lines of the gone invoice were asked for
    assert list(tombstones(second, "invoices")) == [draft["id"]]


# 8 ---------------------------------------------------------------------------------------------------------------

def test_an_up_to_date_stream_with_nothing_new_does_not_warn_but_a_first_sync_that_finds_nothing_does(
        stripe_simulator):
    sim = stripe_simulator
    first = sync(sim, ["payouts"])
    settle()
    quiet = sync(sim, ["payouts"], state=first.final_state())
    recent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))  # after every seeded payout
    empty = sync(sim, ["payouts"], start_date=recent)

    assert first.records("payouts") and quiet.records("payouts") == []
    assert [w for w in quiet.logs("WARN") if "no records" in w] == []
    assert len([w for w in empty.logs("WARN") if "payouts: no records" in w]) == 1
