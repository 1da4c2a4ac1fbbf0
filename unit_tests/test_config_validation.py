"""A config that cannot work is refused before any request, with the field named and the fix given."""
from __future__ import annotations

import pytest
from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_stripe_ontologie.config_validation import ConfigValidator
from unit_tests.factories import TEST_KEY, config

PUBLISHABLE = "pk_live_51ValidationTestAbCdEfGh0000zyxw"


def problems(**overrides):
    return ConfigValidator().problems(config(**overrides))


def test_complete_valid_config_has_no_problem():
    assert problems(start_date="2024-01-01T00:00:00Z", account_id="acct_1Connected") == []


@pytest.mark.parametrize("key", ["", "   ", None])
def test_empty_key_is_refused_naming_client_secret(key):
    [problem] = problems(client_secret=key)
    assert problem.startswith("client_secret is empty")
    assert "Create restricted key" in problem


def test_whitespace_padded_key_is_refused_without_showing_it():
    [problem] = problems(client_secret=f"  {TEST_KEY}\n")

    assert problem.startswith("client_secret (rk_test_...wxyz) has spaces or line breaks")
    assert TEST_KEY not in problem


def test_publishable_key_is_refused_with_the_way_to_create_a_restricted_key():
    [problem] = problems(client_secret=PUBLISHABLE)

    assert "publishable keys cannot read data: create a restricted key" in problem
    assert "pk_live_...zyxw" in problem and PUBLISHABLE not in problem


def test_unknown_prefix_is_refused_listing_the_accepted_prefixes():
    [problem] = problems(client_secret="xk_live_51ValidationTestAbCdEfGh0000zyxw")

    assert "client_secret (...zyxw) is not a Stripe secret or restricted key" in problem
    assert "rk_live_, rk_test_, sk_live_ or sk_test_" in problem


@pytest.mark.parametrize("start_date", ["2024-01-01", "2024-13-01T00:00:00Z", "yesterday", "", 1700000000])
def test_malformed_start_date_is_refused_naming_the_field(start_date):
    [problem] = problems(start_date=start_date)
    assert problem.startswith("start_date ") and "2024-01-01T00:00:00Z" in problem


@pytest.mark.parametrize("account_id", ["1032D82eZvKYlo2C", "acct_", "acct_12 34", ""])
def test_malformed_account_id_is_refused_naming_the_field(account_id):
    [problem] = problems(account_id=account_id)
    assert problem.startswith("account_id ") and "acct_" in problem


def test_every_problem_is_reported_at_once_as_one_config_error():
    with pytest.raises(AirbyteTracedException) as raised:
        ConfigValidator().validate(config(client_secret=PUBLISHABLE, start_date="soon", account_id="me"))

    assert raised.value.failure_type == FailureType.config_error
    for field in ("client_secret", "start_date", "account_id"):
        assert field in raised.value.message
