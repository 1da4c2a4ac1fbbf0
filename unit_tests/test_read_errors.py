"""`read` when Stripe says no: failed streams are named with the fix, the other streams still deliver."""
from __future__ import annotations

import time
from unittest import mock

import pytest
import requests
from airbyte_cdk.models import AirbyteStreamStatus, FailureType, Level

from unit_tests.factories import (
    API,
    FACTS,
    STREAMS,
    TEST_KEY,
    config,
    forbidden_body,
    objects,
    paged_responder,
    path_of,
    query_of,
    stripe_error,
    vanished_cursor_body,
)

FAST = {"retry_backoff_factor": 0.001}
# Reads walk 30-day `created` windows from start_date; from yesterday there is exactly one window (one request).
YESTERDAY = time.time() - 86400
ONE_WINDOW = {**FAST, "start_date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(YESTERDAY))}
# The CDK sleeps here between retries, adding 1 s to every wait the manifest's backoff strategies compute.
CDK_SLEEP = "airbyte_cdk.sources.streams.http.rate_limiting.time.sleep"
CDK_EXTRA_SECOND = 1


def _serve(requests_mock, resource, items):
    requests_mock.get(f"{API}/v1/{resource}", json=paged_responder(items, f"/v1/{resource}"))


def _ids(output, stream):
    return [m.record.data["id"] for m in output.records if m.record.stream == stream]


def _errors(output):
    return [m.trace.error for m in output.errors]


def _waits(sleep) -> list:
    """The retry waits (the backoff library also sleeps 0 s through the same `time.sleep`)."""
    return [c.args[0] for c in sleep.call_args_list if c.args[0]]


def _everything(output) -> str:
    return "\n".join(m.json() if hasattr(m, "json") else str(m) for m in output._messages)


def test_403_fails_only_that_stream_naming_the_permission_and_the_others_deliver(requests_mock, read_stripe):
    charges, customers = objects("charges", 3), objects("customers", 2)
    _serve(requests_mock, "charges", charges)
    _serve(requests_mock, "customers", customers)
    requests_mock.get(f"{API}/v1/payouts", status_code=403, json=forbidden_body(TEST_KEY, "payouts"))

    output = read_stripe(config(**FAST), "charges", "payouts", "customers", expecting_exception=True)

    assert _ids(output, "charges") == [c["id"] for c in charges]
    assert _ids(output, "customers") == [c["id"] for c in customers]
    assert output.get_stream_statuses("charges")[-1] == AirbyteStreamStatus.COMPLETE
    assert output.get_stream_statuses("payouts")[-1] == AirbyteStreamStatus.INCOMPLETE
    payouts_error, summary = _errors(output)  # one error per stream, however many windows failed
    assert payouts_error.failure_type == FailureType.config_error
    assert payouts_error.stream_descriptor.name == "payouts"
    assert payouts_error.message == (
        "payouts: 403 Permission denied: the restricted key (rk_test_...wxyz) cannot read payouts (GET /v1/payouts). "
        "In the Stripe Dashboard (Developers > API keys > edit the restricted key): grant Payouts: Read "
        "(rak_payout_read), or do not select payouts.")
    assert summary.message.startswith("1 of 3 streams did not sync: payouts (403 Permission denied")
    assert "charges (3 records), customers (2 records)" in summary.message


MONEY_STREAMS = [s for s in STREAMS if s not in ("customers", "charges", "subscriptions", "invoices", "products",
                                                 "payouts") and not FACTS.stream(s).children_of]


@pytest.mark.parametrize("stream", MONEY_STREAMS)
def test_403_on_a_money_stream_fails_it_alone_naming_its_permission(requests_mock, read_stripe, stream):
    facts = FACTS.stream(stream)
    charges = objects("charges", 2)
    _serve(requests_mock, "charges", charges)
    requests_mock.get(f"{API}{path_of(stream)}", status_code=403, json=forbidden_body(TEST_KEY, stream))

    output = read_stripe(config(**FAST), "charges", stream, expecting_exception=True)

    assert _ids(output, "charges") == [c["id"] for c in charges]
    assert output.get_stream_statuses(stream)[-1] == AirbyteStreamStatus.INCOMPLETE
    error, summary = _errors(output)
    assert error.stream_descriptor.name == stream
    assert error.message.startswith(f"{stream}: 403 Permission denied: the restricted key (rk_test_...wxyz) cannot "
                                    f"read {facts.resource} (GET {path_of(stream)}).")
    assert f"grant {facts.permission.shown()}, or do not select {stream}." in error.message


def test_403_naming_another_permission_than_declared_names_stripes(requests_mock, read_stripe):
    body = forbidden_body(TEST_KEY, "balance_transactions")
    body["error"]["message"] = body["error"]["message"].replace(FACTS.stream("balance_transactions").permission.name,
                                                                "rak_balance_transaction_source_read")
    requests_mock.get(f"{API}/v1/balance_transactions", status_code=403, json=body)

    output = read_stripe(config(**FAST), "balance_transactions", expecting_exception=True)

    assert "grant rak_balance_transaction_source_read, or do not select balance_transactions." in _errors(output)[0].message


def test_a_stream_that_finishes_empty_gets_one_warning_with_the_test_mode_hint(requests_mock, read_stripe):
    _serve(requests_mock, "products", [])
    _serve(requests_mock, "charges", objects("charges", 1))

    output = read_stripe(config(), "products", "charges")

    warnings = [m.log.message for m in output.logs if m.log.level == Level.WARN]
    assert warnings == [
        "products: no records. The key (rk_test_...wxyz) is a test-mode restricted key: test-mode keys only return "
        "test data: use a live-mode key to sync production data. Otherwise check that the Stripe account has "
        "products in test mode and that start_date is not after them."]


def test_429_is_retried_after_the_wait_stripe_asks_for(requests_mock, read_stripe):
    payouts = objects("payouts", 2)
    requests_mock.get(f"{API}/v1/payouts", [
        {"status_code": 429, "headers": {"Retry-After": "7"}, "json": stripe_error("Too many requests", type_="rate_limit_error")},
        {"json": paged_responder(payouts, "/v1/payouts")},
    ])

    with mock.patch(CDK_SLEEP) as sleep:
        output = read_stripe(config(**FAST), "payouts")

    assert _ids(output, "payouts") == [p["id"] for p in payouts]
    assert _waits(sleep) == [7 + CDK_EXTRA_SECOND]


def test_without_retry_after_the_waits_grow_exponentially_with_jitter(requests_mock, read_stripe):
    requests_mock.get(f"{API}/v1/charges", [{"status_code": 503, "json": stripe_error("down", type_="api_error")}] * 3
                      + [{"json": paged_responder(objects("charges", 1, newest=int(YESTERDAY) + 60), "/v1/charges")}])

    with mock.patch(CDK_SLEEP) as sleep:
        output = read_stripe(config(**{**ONE_WINDOW, "retry_backoff_factor": 1}), "charges")

    assert len(output.records) == 1
    waits = _waits(sleep)
    assert len(waits) == 3
    for attempt, wait in enumerate(waits, start=1):
        assert 2 ** attempt + CDK_EXTRA_SECOND <= wait <= 2 ** attempt + 0.5 + CDK_EXTRA_SECOND


def test_stripe_should_retry_false_is_not_retried(requests_mock, read_stripe):
    requests_mock.get(f"{API}/v1/invoices", status_code=503, headers={"Stripe-Should-Retry": "false"},
                      json=stripe_error("Idempotency conflict", type_="api_error"))

    output = read_stripe(config(**ONE_WINDOW), "invoices", expecting_exception=True)

    assert len(requests_mock.request_history) == 1
    assert _errors(output)[0].message.startswith("invoices: Stripe answered HTTP 503: Idempotency conflict")


def test_5xx_after_the_retry_budget_is_a_transient_error_naming_the_stream(requests_mock, read_stripe):
    requests_mock.get(f"{API}/v1/subscriptions", status_code=502, text="<html>bad gateway</html>")
    _serve(requests_mock, "products", objects("products", 2, newest=int(YESTERDAY) + 60))

    output = read_stripe(config(**ONE_WINDOW), "subscriptions", "products", expecting_exception=True)

    assert len([r for r in requests_mock.request_history if r.path == "/v1/subscriptions"]) == 6
    assert len(_ids(output, "products")) == 2
    stream_error, summary = _errors(output)
    assert stream_error.failure_type == FailureType.transient_error
    assert stream_error.message.startswith(
        "subscriptions: gave up after the retries: Stripe answered HTTP 502 (GET /v1/subscriptions).")
    assert summary.failure_type == FailureType.transient_error
    assert summary.message.startswith("1 of 2 streams did not sync: subscriptions (")


def test_429s_past_the_retry_budget_name_the_stream_and_the_cause(requests_mock, read_stripe):
    requests_mock.get(f"{API}/v1/payouts", status_code=429, json=stripe_error("Too many", type_="rate_limit_error"))

    output = read_stripe(config(**ONE_WINDOW), "payouts", expecting_exception=True)

    assert len(requests_mock.request_history) == 6
    stream_error = _errors(output)[0]
    assert stream_error.failure_type == FailureType.transient_error
    assert stream_error.message.startswith(
        "payouts: gave up after the retries: Stripe kept rate-limiting the requests (HTTP 429).")


def test_a_dropped_connection_is_retried(requests_mock, read_stripe):
    customers = objects("customers", 2)
    requests_mock.get(f"{API}/v1/customers", [
        {"exc": requests.exceptions.ConnectionError("Connection aborted: RemoteDisconnected")},
        {"json": paged_responder(customers, "/v1/customers")},
    ])

    output = read_stripe(config(**FAST), "customers")

    assert _ids(output, "customers") == [c["id"] for c in customers]


def test_a_cursor_deleted_mid_sync_is_recovered_without_losing_or_repeating_records(requests_mock, read_stripe):
    charges = objects("charges", 250)
    deleted = charges[99]  # the cursor of the second page
    state = {"deleted": False}
    serve = paged_responder(charges, "/v1/charges")

    def respond(request, context):
        after = query_of(request).get("starting_after", [None])[0]
        if after == deleted["id"] and not state["deleted"]:
            state["deleted"] = True
            charges.remove(deleted)
            context.status_code = 400
            return vanished_cursor_body(after)
        return serve(request, context)

    requests_mock.get(f"{API}/v1/charges", json=respond)
    expected = [c["id"] for c in charges]  # includes the deleted charge: it was read before it vanished

    output = read_stripe(config(**FAST), "charges")

    assert _ids(output, "charges") == expected
    assert not output.errors


def test_a_live_object_under_a_test_key_fails_the_stream(requests_mock, read_stripe):
    payouts = objects("payouts", 2)
    payouts[1]["livemode"] = True
    _serve(requests_mock, "payouts", payouts)

    output = read_stripe(config(), "payouts", expecting_exception=True)

    message = _errors(output)[0].message
    assert message.startswith(f"payouts: Stripe returned {payouts[1]['id']} with livemode=true to a test-mode "
                              f"restricted key (rk_test_...wxyz)")


def test_unusable_config_fails_read_before_any_request(requests_mock, read_stripe):
    output = read_stripe(config(client_secret="pk_test_51PublishableUnitTest0000abcd"), *STREAMS,
                         expecting_exception=True)

    assert requests_mock.request_history == []
    error = _errors(output)[-1]
    assert error.failure_type == FailureType.config_error
    assert "publishable keys cannot read data" in error.message
