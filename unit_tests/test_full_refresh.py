"""Full-refresh reads: pagination, request shape, per-stream parameters, complete invoice lines."""
from __future__ import annotations

import orjson
import pytest
import requests

from source_stripe_ontologie.components import StripeListExtractor, StripeListPagination
from unit_tests.factories import (
    API,
    FACTS,
    STREAMS,
    TEST_KEY,
    config,
    invoice_with_lines,
    list_page,
    objects,
    paged_responder,
    path_of,
    query_of,
    stripe_object,
)


def _window_holds(query, created: int) -> bool:
    """A window request (not a history probe) whose created range holds `created`."""
    return "created[gte]" in query and int(query["created[gte]"][0]) <= created <= int(query["created[lte]"][0])


def _serve(requests_mock, stream: str, items):
    url = f"{API}{path_of(stream)}"
    requests_mock.get(url, json=paged_responder(items, path_of(stream)))
    return url


def test_pagination_follows_starting_after_until_has_more_is_false(requests_mock, read_stripe):
    charges = objects("charges", 250)
    _serve(requests_mock, "charges", charges)

    output = read_stripe(config(), "charges")

    assert [r.record.data["id"] for r in output.records] == [c["id"] for c in charges]
    calls = [q for q in map(query_of, requests_mock.request_history) if _window_holds(q, charges[0]["created"])]
    assert len(calls) == 3
    assert "starting_after" not in calls[0]
    assert calls[1]["starting_after"] == [charges[99]["id"]]
    assert calls[2]["starting_after"] == [charges[199]["id"]]


@pytest.mark.parametrize("stream", STREAMS)
def test_every_request_carries_limit_bearer_key_and_pinned_version(requests_mock, read_stripe, stream):
    children = FACTS.stream(stream).children_of
    if children:  # three parents ready to be read, one child each
        parents = [{**p, **children.when} for p in objects(children.parent_object + "s", 3)]
        requests_mock.get(f"{API}/v1/{FACTS.stream(stream).resource}", json=paged_responder(parents, "/v1/x"))
        requests_mock.get(f"{API}{path_of(stream)}", json=lambda request, context: {
            "object": "list", "url": "/v1/x", "has_more": False, "data": [
                {"id": "txn_of_" + query_of(request)[children.filter][0], "created": 1_600_000_000}]})
    else:
        _serve(requests_mock, stream, objects(stream, 3))

    output = read_stripe(config(), stream)

    assert len(output.records) == 3
    windows = [r for r in requests_mock.request_history if "created[gte]" in query_of(r)]
    assert windows and all(query_of(r)["limit"] == ["100"] for r in windows)
    for request in requests_mock.request_history:  # history probes included
        assert request.headers["Authorization"] == f"Bearer {TEST_KEY}"
        assert request.headers["Stripe-Version"] == "2024-06-20"
        assert "Stripe-Account" not in request.headers


def test_connected_account_is_sent_as_stripe_account_header(requests_mock, read_stripe):
    _serve(requests_mock, "payouts", objects("payouts", 1))

    read_stripe(config(account_id="acct_1Connected"), "payouts")

    assert requests_mock.request_history[0].headers["Stripe-Account"] == "acct_1Connected"


def test_subscriptions_ask_for_every_status_so_canceled_ones_arrive(requests_mock, read_stripe):
    _serve(requests_mock, "subscriptions", objects("subscriptions", 2))

    read_stripe(config(), "subscriptions")

    assert query_of(requests_mock.request_history[0])["status"] == ["all"]


def test_products_expand_their_default_price(requests_mock, read_stripe):
    _serve(requests_mock, "products", objects("products", 2))

    read_stripe(config(), "products")

    assert query_of(requests_mock.request_history[0])["expand[]"] == ["data.default_price"]


def test_invoice_with_25_lines_arrives_with_all_25(requests_mock, read_stripe):
    invoice, lines = invoice_with_lines(25)
    small_invoice, small_lines = invoice_with_lines(3)
    _serve(requests_mock, "invoices", [invoice, small_invoice])
    requests_mock.get(f"{API}/v1/invoices/{invoice['id']}/lines",
                      json=paged_responder(lines, f"/v1/invoices/{invoice['id']}/lines"))

    output = read_stripe(config(), "invoices")

    by_id = {r.record.data["id"]: r.record.data for r in output.records}
    assert [line["id"] for line in by_id[invoice["id"]]["lines"]["data"]] == [line["id"] for line in lines]
    assert by_id[invoice["id"]]["lines"]["has_more"] is False
    assert len(by_id[small_invoice["id"]]["lines"]["data"]) == 3
    line_requests = [r for r in requests_mock.request_history if r.path.endswith("/lines")]
    assert query_of(line_requests[0])["starting_after"] == [lines[9]["id"]]
    assert line_requests[0].headers["Authorization"] == f"Bearer {TEST_KEY}"


def test_amounts_and_timestamps_pass_through_as_integers(requests_mock, read_stripe):
    charge = objects("charges", 1)[0] | {"amount": 123456789012, "currency": "jpy"}
    _serve(requests_mock, "charges", [charge])

    record = read_stripe(config(), "charges").records[0].record.data

    assert record["amount"] == 123456789012 and isinstance(record["amount"], int)
    assert record["created"] == charge["created"] and isinstance(record["created"], int)
    assert record["currency"] == "jpy"


def test_invoice_items_get_a_created_copy_of_their_date_and_windows_filter_on_it(requests_mock, read_stripe):
    items = objects("invoice_items", 2)
    for item in items:  # Stripe's invoice item has `date`, not `created`; the list's `created` filter reads `date`
        item["date"] = item.pop("created")
    requests_mock.get(f"{API}{path_of('invoice_items')}", json=lambda request, context: _by_date(items, request))

    output = read_stripe(config(), "invoice_items")

    assert [r.record.data for r in output.records] == [{**item, "created": item["date"]} for item in items]


def _by_date(items, request):
    query = query_of(request)
    low, high = int(query["created[gte]"][0]), int(query["created[lte]"][0])
    return {"object": "list", "url": "/v1/invoiceitems", "has_more": False,
            "data": [i for i in items if low <= i["date"] <= high]}


def test_reconciled_automatic_payouts_become_their_balance_transactions_and_manual_ones_are_counted_once(
        requests_mock, read_stripe, caplog):
    stream = next(name for name in STREAMS if FACTS.stream(name).children_of)
    reconciled, in_progress, manual, other_manual = objects("payouts", 4)
    reconciled.update(automatic=True, reconciliation_status="completed")
    in_progress.update(automatic=True, reconciliation_status="in_progress")
    manual.update(automatic=False, reconciliation_status="not_applicable")
    other_manual.update(automatic=False, reconciliation_status="not_applicable")
    requests_mock.get(f"{API}/v1/payouts", json=paged_responder([reconciled, in_progress, manual, other_manual],
                                                                "/v1/payouts"))
    transactions = [{"id": f"txn_{i}", "object": "balance_transaction", "created": 1_600_000_000 - i, "net": 100 * i}
                    for i in range(150)]  # two pages of them
    requests_mock.get(f"{API}/v1/balance_transactions", json=paged_responder(transactions, "/v1/balance_transactions"))

    with caplog.at_level("INFO", logger="airbyte"):
        output = read_stripe(config(), stream)

    assert [r.record.data for r in output.records] == [{**t, "payout": reconciled["id"]} for t in transactions]
    asked = [query_of(r) for r in requests_mock.request_history if r.path == "/v1/balance_transactions"]
    assert [q["payout"] for q in asked] == [[reconciled["id"]]] * 2 and asked[1]["starting_after"] == ["txn_99"]
    counted = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(counted) == 1 and counted[0].startswith(f"{stream}: skipped 2 payouts with automatic=False")


def test_a_list_pages_parsed_objects_are_let_go_once_its_next_page_is_known():
    response = requests.Response()
    response._content = orjson.dumps(list_page([stripe_object("charges", id=f"ch_{i}") for i in range(3)], True))
    records = list(StripeListExtractor(parameters={}).extract_records(response))

    token = StripeListPagination().next_page_token(response, len(records), records[-1], None)

    assert token == "ch_2"
    assert "_stripe_list_page" not in response.__dict__  # the parsed page is garbage from here on
