"""Shared fixtures for the integration tests."""

import pytest

from integration_tests.stripe_simulator import StripeSimulator


@pytest.fixture
def stripe_simulator():
    """A running simulator (small seeded dataset, seed 7, rate limits off), stopped after the test.

    Point the connector at ``stripe_simulator.url`` with ``keys.TEST_KEY`` or ``keys.LIVE_KEY``.
    """
    sim = StripeSimulator(seed=7, size="small")
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()
