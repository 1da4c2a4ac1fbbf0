"""`check` tells a user whether the key can read their data."""
from __future__ import annotations

import logging

from airbyte_cdk.models import Status

from source_stripe_ontologie import SourceStripeOntologie
from unit_tests.factories import API, STREAMS, config, objects, paged_responder, path_of


def test_check_fails_a_rejected_key_with_the_troubleshooting_text(requests_mock):
    for stream in STREAMS:
        requests_mock.get(f"{API}{path_of(stream)}", status_code=401, json={
            "error": {"type": "invalid_request_error", "message": "Invalid API Key provided: rk_test_********wxyz"}})

    status = _check(config())

    assert status.status == Status.FAILED
    assert "401 Invalid API Key: verify the restricted key" in status.message
    assert "has not been revoked or rolled" in status.message


def test_check_succeeds_when_the_key_reads_every_resource(requests_mock):
    for stream in STREAMS:
        requests_mock.get(f"{API}{path_of(stream)}", json=paged_responder(objects(stream, 1), path_of(stream)))

    assert _check(config()).status == Status.SUCCEEDED
    assert {r.path for r in requests_mock.request_history} >= {path_of(s) for s in STREAMS}


def _check(cfg):
    return SourceStripeOntologie(config=cfg).check(logging.getLogger("airbyte"), cfg)
