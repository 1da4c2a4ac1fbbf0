"""The words users read: the seed's troubleshooting text plus the specifics (stream, permission, mode, key)."""
from __future__ import annotations

import requests

from source_stripe_ontologie import error_messages as say
from source_stripe_ontologie.key_mode import KeyMode
from source_stripe_ontologie.stream_facts import Permission
from unit_tests.factories import FACTS, forbidden_body

PAYOUTS = Permission("rak_payout_read", "Payouts: Read")
CHARGES = Permission("rak_charge_read", "Charges: Read")

LIVE_KEY = "rk_live_51MessagesTestXyZ0123456789abcd"
TEST_KEY = "rk_test_51MessagesTestXyZ0123456789wxyz"


def test_invalid_key_uses_the_seed_wording_with_the_key_redacted():
    message = say.invalid_key(LIVE_KEY)

    assert message.startswith(
        "401 Invalid API Key: verify the restricted key (rk_live_...abcd) is correct and has not been revoked "
        "or rolled.")
    assert LIVE_KEY not in message


def test_permission_is_read_from_stripes_403_text():
    stripe_text = forbidden_body(LIVE_KEY, "payouts")["error"]["message"]

    assert say.required_permission(stripe_text, CHARGES) == Permission("rak_payout_read")


def test_permission_falls_back_to_the_declared_one_when_stripe_does_not_name_it():
    assert say.required_permission("Forbidden", CHARGES) == CHARGES


def test_every_stream_declares_its_permission_with_the_dashboards_label():
    for facts in [*FACTS.streams.values(), FACTS.events]:
        assert facts.permission.name.startswith("rak_") and facts.permission.name.endswith("_read"), facts.name
        assert facts.permission.label.endswith(": Read"), facts.name


def test_grant_instruction_names_dashboard_permission_and_rak_name():
    assert say.grant_instruction("payouts", PAYOUTS) == (
        "grant Payouts: Read (rak_payout_read), or do not select payouts")


def test_permission_denied_names_stream_resource_permission_and_redacted_key():
    message = say.permission_denied("charges", "charges", CHARGES, LIVE_KEY)

    assert message.startswith("charges: 403 Permission denied: the restricted key (rk_live_...abcd) cannot read charges")
    assert "grant Charges: Read (rak_charge_read), or do not select charges" in message


def test_some_streams_unreadable_says_the_key_works_and_lists_each_stream():
    message = say.unreadable_streams({"payouts": PAYOUTS, "charges": CHARGES}, 6, LIVE_KEY)

    assert "2 of 6 streams cannot be read" in message
    assert "payouts: grant Payouts: Read (rak_payout_read), or do not select payouts" in message
    assert "charges: grant Charges: Read (rak_charge_read), or do not select charges" in message


def test_all_streams_unreadable_uses_the_seed_403_wording():
    denied = {s: FACTS.streams[s].permission for s in ("customers", "charges")}

    message = say.unreadable_streams(denied, 2, LIVE_KEY)

    assert message.startswith(say.SEED_403)
    assert "cannot read any of the 2 streams" in message


def test_zero_records_with_a_test_key_gives_the_seed_test_mode_hint():
    message = say.zero_records("customers", KeyMode.from_key(TEST_KEY), TEST_KEY)

    assert message.startswith("customers: no records.")
    assert "test-mode keys only return test data: use a live-mode key to sync production data" in message


def test_zero_records_with_a_live_key_points_at_account_and_start_date():
    message = say.zero_records("payouts", KeyMode.from_key(LIVE_KEY), LIVE_KEY, "acct_1Other")

    assert "test-mode" not in message
    assert "the connected account acct_1Other" in message and "start_date" in message


def test_unreachable_tells_dns_failure_apart_from_timeout():
    dns = requests.exceptions.ConnectionError("Failed to resolve 'api.stripe.invalid' ([Errno -2] Name or service not known)")
    timeout = requests.exceptions.ConnectTimeout("timed out")

    assert "could not be resolved (DNS failure)" in say.unreachable("https://api.stripe.invalid", dns, 12)
    assert "timed out" in say.unreachable("https://api.stripe.com", timeout, 12)
    assert say.unreachable("https://api.stripe.com", timeout, 12).startswith(
        "Could not reach Stripe at https://api.stripe.com within 12 s")


def test_sync_failed_lists_failures_and_the_streams_that_finished():
    message = say.sync_failed({"payouts": "403 Permission denied."}, {"charges": 3, "customers": 0})

    assert message == ("1 of 3 streams did not sync: payouts (403 Permission denied). Streams that finished and "
                       "saved their state: charges (3 records), customers (0 records).")


def test_stripe_error_message_reads_the_error_body_and_tolerates_html():
    good = requests.Response()
    good._content = b'{"error": {"message": "No such object"}}'
    html = requests.Response()
    html._content = b"<html>bad gateway</html>"

    assert say.stripe_error_message(good) == "No such object"
    assert say.stripe_error_message(html) == ""


def test_cdk_give_up_messages_are_reworded_with_stream_and_cause():
    cdk = ("Exhausted available request attempts. Please see logs for more details. Exception: charges: Stripe "
           "answered HTTP 503 (GET /v1/charges)")

    assert say.gave_up("charges", cdk) == ("charges: gave up after the retries: Stripe answered HTTP 503 "
                                           "(GET /v1/charges). Stripe or the network is having trouble: run the "
                                           "sync again later.")
    assert say.gave_up("charges", "API rate limit exceeded.").startswith(
        "charges: gave up after the retries: Stripe kept rate-limiting the requests (HTTP 429).")
    assert say.gave_up("charges", "charges: 403 Permission denied") is None
