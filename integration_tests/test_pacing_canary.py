"""Every request of a sync goes through the rate budget: counted at the simulator and at the budget, they agree.

The budget reaches the requesters through a CDK internal (source_stripe_ontologie/cdk_seam.py); if the CDK ever
stops handing it to a requester, some requests would leave unpaced and earn 429 storms at Stripe. This proves
the whole sync is paced: windows, pages, sub-lists (invoice lines), the history probe, events and re-fetches.
"""
from __future__ import annotations

import time

from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.entrypoint_wrapper import read

from integration_tests.connector_cli import STREAMS, simulator_config
from integration_tests.stripe_simulator import keys
from source_stripe_ontologie import SourceStripeOntologie
from unit_tests.reads import catalog


def sync(sim, state=None):
    config = simulator_config(sim.url, keys.TEST_KEY, start_date="2021-12-01T00:00:00Z", read_lag_seconds=2)
    configured = catalog(*STREAMS, sync_mode=SyncMode.incremental)
    source = SourceStripeOntologie(config=config, catalog=configured, state=state)
    sim.reset_stats()
    output = read(source, config, configured, state)
    assert not output.errors, [e.trace.error.message for e in output.errors]
    return output, source.rate_budget(), sim.stats.total


def test_every_request_of_a_first_and_a_second_sync_is_counted_by_the_rate_budget(stripe_simulator):
    sim = stripe_simulator
    first, budget, served = sync(sim)
    assert sum(budget.requests.values()) == served
    assert budget.requests["/v1/invoices/{id}/lines"] > 0  # sub-lists are paced too

    sim.update("payouts", sim.objects("payouts")[0]["id"], status="paid")
    sim.update("customers", sim.objects("customers")[0]["id"], email="paced@example.com")
    time.sleep(3.2)  # past the read lag
    state = [message.state for message in first.state_messages]
    second, budget, served = sync(sim, state)

    assert sum(budget.requests.values()) == served
    assert budget.requests["/v1/events"] > 0
    assert any(endpoint.endswith("/{id}") for endpoint in budget.requests)  # re-fetched by id after its event


def test_every_request_of_every_connected_account_is_counted_by_the_one_rate_budget(stripe_simulator):
    sim = stripe_simulator
    small = sim.connect_account(size="tiny")
    sim.connect_account(size="empty")
    config = simulator_config(sim.url, keys.TEST_KEY, read_lag_seconds=2, connected_accounts="all")
    configured = catalog(*STREAMS, sync_mode=SyncMode.incremental)
    source = SourceStripeOntologie(config=config, catalog=configured)
    sim.reset_stats()
    first = read(source, config, configured)
    assert not first.errors, [e.trace.error.message for e in first.errors]
    assert sum(source.rate_budget().requests.values()) == sim.stats.total  # listing, probes, windows, lines

    sim.update("customers", sim.objects("customers", account=small)[0]["id"], account=small, email="paced@example.com")
    time.sleep(3.2)  # past the read lag
    state = [message.state for message in first.state_messages][-len(STREAMS):]
    source = SourceStripeOntologie(config=config, catalog=configured, state=state)
    sim.reset_stats()
    second = read(source, config, configured, state)
    assert not second.errors, [e.trace.error.message for e in second.errors]
    budget = source.rate_budget()
    assert sum(budget.requests.values()) == sim.stats.total
    assert any(endpoint.endswith("/{id}") for endpoint in budget.requests)  # the re-fetch, in the account
