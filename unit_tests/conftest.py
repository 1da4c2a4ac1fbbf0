"""Fixtures of the unit tests (factories in factories.py, in-process reads in reads.py)."""
from __future__ import annotations

import pytest

from unit_tests.factories import EventLog
from unit_tests.reads import read_streams


@pytest.fixture
def read_stripe():
    return read_streams


@pytest.fixture(autouse=True)
def stripe_events(request):
    """Every account mocked with requests_mock has Stripe's event log (empty unless the test records changes)."""
    if "requests_mock" not in request.fixturenames:
        return None
    return EventLog(request.getfixturevalue("requests_mock"))
