"""End to end through the installed CLI: a full-refresh sync of all six streams brings every object exactly once."""
from __future__ import annotations

from collections import Counter

import pytest

from integration_tests.connector_cli import STREAMS, SIX_STREAMS, configured_catalog, run_connector, simulator_config
from integration_tests.stripe_simulator import StripeSimulator, keys


@pytest.fixture(scope="module")
def simulator():
    with StripeSimulator(seed=11, size="medium", preload=("test",)) as sim:
        yield sim


@pytest.fixture(scope="module")
def full_sync(simulator):
    run = run_connector("read", simulator_config(simulator.url, keys.TEST_KEY), configured_catalog(SIX_STREAMS))
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def test_spec_describes_the_restricted_key_as_a_secret():
    run = run_connector("spec")

    assert run.returncode == 0
    properties = run.of_type("SPEC")[0]["spec"]["connectionSpecification"]["properties"]
    assert properties["client_secret"]["airbyte_secret"] is True


def test_check_passes_with_a_key_that_reads_everything(simulator):
    run = run_connector("check", simulator_config(simulator.url, keys.TEST_KEY))

    assert run.connection_status()["status"] == "SUCCEEDED"


def test_discover_announces_every_stream_of_the_manifest(simulator):
    run = run_connector("discover", simulator_config(simulator.url, keys.TEST_KEY))

    assert sorted(s["name"] for s in run.catalog()["streams"]) == sorted(STREAMS)


@pytest.mark.parametrize("stream", SIX_STREAMS)
def test_full_refresh_emits_every_object_exactly_once_as_stripe_sent_it(simulator, full_sync, stream):
    expected = simulator.objects(stream, mode="test")
    records = full_sync.records(stream)

    assert Counter(r["id"] for r in records) == Counter(o["id"] for o in expected)
    by_id = {r["id"]: r for r in records}
    for obj in expected:
        record = by_id[obj["id"]]
        if stream == "invoices":  # lines completed from the lines endpoint (checked below)
            obj = {**obj, "lines": {**obj["lines"], "data": record["lines"]["data"], "has_more": False}}
        if stream == "products" and obj.get("default_price"):  # expanded (checked below)
            assert record["default_price"]["id"] == obj["default_price"]
            obj = {**obj, "default_price": record["default_price"]}
        assert record == obj


def test_canceled_subscriptions_are_synced(simulator, full_sync):
    statuses = Counter(r["status"] for r in full_sync.records("subscriptions"))

    assert statuses["canceled"] == sum(1 for s in simulator.objects("subscriptions", mode="test") if s["status"] == "canceled")
    assert statuses["canceled"] > 0


def test_invoices_carry_every_line_even_beyond_the_ten_stripe_embeds(simulator, full_sync):
    long_invoices = 0
    for invoice in full_sync.records("invoices"):
        all_lines = simulator.invoice_lines(invoice["id"], mode="test")
        assert [line["id"] for line in invoice["lines"]["data"]] == [line["id"] for line in all_lines]
        assert invoice["lines"]["has_more"] is False
        long_invoices += len(all_lines) > 10
    assert long_invoices > 0


def test_products_arrive_with_their_default_price_expanded(full_sync):
    products = [p for p in full_sync.records("products") if p.get("default_price")]

    assert products
    assert all(p["default_price"]["object"] == "price" and isinstance(p["default_price"]["unit_amount"], (int, type(None)))
               for p in products)


def test_amounts_stay_integers_with_their_currency(full_sync):
    charges = full_sync.records("charges")

    assert {c["currency"] for c in charges} >= {"jpy", "usd"}
    assert all(isinstance(c["amount"], int) and isinstance(c["created"], int) for c in charges)


def test_state_messages_count_every_record_and_the_sync_log_says_how_many_per_stream(simulator, full_sync):
    """Records cross from the workers in pages (page_lane.py): the counts must still be per record."""
    counted = Counter()
    for message in full_sync.of_type("STATE"):
        state = message["state"]
        counted[state["stream"]["stream_descriptor"]["name"]] += state["sourceStats"]["recordCount"]
    logs = [m["log"]["message"] for m in full_sync.of_type("LOG")]

    for stream in SIX_STREAMS:  # the streams `full_sync` reads
        assert counted[stream] == len(full_sync.records(stream)) == len(simulator.objects(stream, mode="test"))
        assert f"Read {counted[stream]:.0f} records from {stream} stream" in logs
