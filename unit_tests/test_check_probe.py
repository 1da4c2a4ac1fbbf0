"""`check` probes every list endpoint once and tells exactly what the key can and cannot read."""
from __future__ import annotations

import logging

import pytest
import requests
from airbyte_cdk.models import Status

from source_stripe_ontologie import SourceStripeOntologie
from unit_tests.factories import (
    API,
    STREAMS,
    TEST_KEY,
    config,
    forbidden_body,
    objects,
    paged_responder,
    path_of,
    query_of,
    stripe_error,
)


def _readable(requests_mock, *streams):
    for stream in streams:
        requests_mock.get(f"{API}{path_of(stream)}", json=paged_responder(objects(stream, 1), path_of(stream)))


def _forbidden(requests_mock, *streams):
    for stream in streams:
        requests_mock.get(f"{API}{path_of(stream)}", status_code=403, json=forbidden_body(TEST_KEY, stream))


def _check(cfg):
    return SourceStripeOntologie(config=cfg).check(logging.getLogger("airbyte"), cfg)


def test_every_stream_and_the_events_list_are_probed_once_with_limit_1(requests_mock):
    _readable(requests_mock, *STREAMS, "events")

    status = _check(config())

    assert status.status == Status.SUCCEEDED
    assert sorted(r.path for r in requests_mock.request_history) == sorted(path_of(s) for s in (*STREAMS, "events"))
    assert all(query_of(r)["limit"] == ["1"] for r in requests_mock.request_history)
    assert status.message.startswith("Using a test-mode restricted key: only test data is visible.")


def test_some_unreadable_streams_pass_the_check_naming_each_and_warning(requests_mock, caplog):
    _readable(requests_mock, *(s for s in STREAMS if s not in ("charges", "payouts")))
    _forbidden(requests_mock, "charges", "payouts")

    with caplog.at_level(logging.WARNING, logger="airbyte"):
        status = _check(config())

    assert status.status == Status.SUCCEEDED
    for text in ("payouts: grant Payouts: Read (rak_payout_read), or do not select payouts",
                 "charges: grant Charges: Read (rak_charge_read), or do not select charges"):
        assert text in status.message
        assert text in caplog.text
    assert f"2 of {len(STREAMS)} streams cannot be read" in status.message


def test_no_readable_stream_fails_the_check_with_the_whole_list(requests_mock):
    _forbidden(requests_mock, *STREAMS)

    status = _check(config())

    assert status.status == Status.FAILED
    assert status.message.startswith("403 Permission denied: ensure the restricted key has read access")
    assert all(f"{s}: grant " in status.message for s in STREAMS)


def test_unreachable_network_fails_saying_so(requests_mock):
    dns = requests.exceptions.ConnectionError("Failed to resolve 'api.stripe.test' (Name or service not known)")
    for stream in STREAMS:
        requests_mock.get(f"{API}{path_of(stream)}", exc=dns)

    status = _check(config())

    assert status.status == Status.FAILED
    assert status.message.startswith(f"Could not reach Stripe at {API} within 12 s: the host name could not be "
                                     f"resolved (DNS failure).")


def test_a_persistent_5xx_fails_the_check_naming_the_stream(requests_mock):
    _readable(requests_mock, *(s for s in STREAMS if s != "payouts"))
    requests_mock.get(f"{API}/v1/payouts", status_code=500, json=stripe_error("boom", type_="api_error"))

    status = _check(config())

    assert status.status == Status.FAILED
    assert status.message.startswith("payouts: Stripe answered HTTP 500: boom (still failing after retries")
    assert len([r for r in requests_mock.request_history if r.path == "/v1/payouts"]) == 3


@pytest.mark.parametrize("overrides, field", [
    ({"client_secret": "pk_test_51PublishableUnitTest0000abcd"}, "client_secret"),
    ({"client_secret": f" {TEST_KEY}"}, "client_secret"),
    ({"start_date": "2024-01-01"}, "start_date"),
    ({"account_id": "1234"}, "account_id"),
])
def test_unusable_config_fails_the_check_without_a_request(requests_mock, overrides, field):
    status = _check(config(**overrides))

    assert status.status == Status.FAILED
    assert status.message.startswith(f"Invalid configuration: {field} ")
    assert requests_mock.request_history == []


def test_a_key_without_events_read_passes_and_is_told_incremental_syncs_need_it(requests_mock, caplog):
    _readable(requests_mock, *STREAMS)
    _forbidden(requests_mock, "events")

    status = _check(config())

    assert status.status == Status.SUCCEEDED
    assert f"can read all {len(STREAMS)} streams" in status.message
    assert "grant Events: Read (rak_event_read), or sync with full refresh only" in status.message
    assert any("rak_event_read" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
