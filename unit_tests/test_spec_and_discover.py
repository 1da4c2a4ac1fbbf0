"""The spec a user fills in, and the catalog discover announces."""
from __future__ import annotations

import jsonschema
import pytest
from airbyte_cdk.test.entrypoint_wrapper import discover

from source_stripe_ontologie import SourceStripeOntologie
from unit_tests.factories import STREAMS, config


@pytest.fixture(scope="module")
def connection_spec():
    return SourceStripeOntologie().spec(logger=None).connectionSpecification


def test_spec_accepts_a_complete_config(connection_spec):
    jsonschema.validate(config(start_date="2024-01-01T00:00:00Z", account_id="acct_123"), connection_spec)


def test_spec_rejects_a_config_without_client_secret(connection_spec):
    with pytest.raises(jsonschema.ValidationError, match="client_secret"):
        jsonschema.validate({"start_date": "2024-01-01T00:00:00Z"}, connection_spec)


def test_spec_marks_the_key_secret_and_hides_the_api_base_url(connection_spec):
    properties = connection_spec["properties"]
    assert properties["client_secret"]["airbyte_secret"] is True
    assert properties["api_base_url"]["airbyte_hidden"] is True


def test_discover_lists_exactly_the_six_streams_keyed_by_id():
    output = discover(SourceStripeOntologie(config=config()), config())

    streams = output.catalog.catalog.streams
    assert sorted(s.name for s in streams) == sorted(STREAMS)
    assert all(s.source_defined_primary_key == [["id"]] for s in streams)


def test_discovered_schemas_keep_amounts_integer_and_metadata_free_form():
    streams = {s.name: s.json_schema for s in discover(SourceStripeOntologie(config=config()), config()).catalog.catalog.streams}

    assert streams["charges"]["properties"]["amount"]["type"] == "integer"
    assert streams["payouts"]["properties"]["created"]["type"] == "integer"
    assert streams["customers"]["properties"]["metadata"]["additionalProperties"] is True
    assert "object" in streams["products"]["properties"]["default_price"]["type"]
    assert all(schema["additionalProperties"] is True for schema in streams.values())
