from __future__ import annotations

import pytest
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder, ConfiguredAirbyteStreamBuilder
from airbyte_cdk.test.entrypoint_wrapper import read

from source_stripe_ontologie import SourceStripeOntologie


def catalog(*streams: str, sync_mode: SyncMode = SyncMode.full_refresh):
    builder = CatalogBuilder()
    for name in streams:
        builder.with_stream(ConfiguredAirbyteStreamBuilder().with_name(name).with_sync_mode(sync_mode))
    return builder.build()


def read_streams(config, *streams: str, state=None, expecting_exception: bool = False):
    """Run `read` in-process the way the CLI does: the source is built with config, catalog and state."""
    configured = catalog(*streams)
    source = SourceStripeOntologie(config=config, catalog=configured, state=state)
    return read(source, config, configured, state, expecting_exception=expecting_exception)


@pytest.fixture
def read_stripe():
    return read_streams


@pytest.fixture(autouse=True)
def stripe_events(request):
    """Every account mocked with requests_mock has Stripe's event log (empty unless the test records changes)."""
    if "requests_mock" not in request.fixturenames:
        return None
    from unit_tests.event_factories import EventLog

    return EventLog(request.getfixturevalue("requests_mock"))
