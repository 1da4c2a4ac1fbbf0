"""The rate budget spaces requests under Stripe's account and endpoint limits at once."""
from __future__ import annotations

import threading
import time

import pytest

from source_stripe_ontologie.rate_budget import (
    RateLimits,
    StripeRateBudget,
    endpoint_of,
)
from unit_tests.factories import FakeClock


def _budget(account: float, endpoint: float) -> tuple[StripeRateBudget, FakeClock]:
    clock = FakeClock()
    return StripeRateBudget(RateLimits(per_account=account, per_endpoint=endpoint), clock=clock, sleep=clock.sleep), clock


def _times_of(budget: StripeRateBudget, clock: FakeClock, endpoints: list[str]) -> list[float]:
    times = []
    for endpoint in endpoints:
        while (wait := budget.try_reserve(endpoint)) > 0:
            clock.sleep(wait)
        times.append(clock.now)
    return times


def test_one_endpoint_is_held_to_its_own_limit():
    budget, clock = _budget(account=100, endpoint=25)

    times = _times_of(budget, clock, ["/v1/charges"] * 51)

    assert times[-1] - times[0] == pytest.approx(2.0)  # 50 gaps of 1/25 s


def test_many_endpoints_together_are_held_to_the_account_limit():
    budget, clock = _budget(account=100, endpoint=25)
    endpoints = [f"/v1/e{i % 8}" for i in range(401)]

    times = _times_of(budget, clock, endpoints)

    assert times[-1] - times[0] == pytest.approx(4.0)  # 400 gaps of 1/100 s
    in_any_second = max(sum(1 for t in times if start <= t < start + 1 - 1e-9) for start in times)
    assert in_any_second <= 100


def test_concurrent_callers_never_exceed_the_limits():
    budget = StripeRateBudget(RateLimits(per_account=400, per_endpoint=200))
    sent: list[float] = []
    lock = threading.Lock()

    class Request:
        url = "http://h/v1/charges"

    def call():
        for _ in range(20):
            budget.acquire_call(Request())
            with lock:
                sent.append(time.monotonic())

    threads = [threading.Thread(target=call) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]

    assert len(sent) == 80 and budget.requests["/v1/charges"] == 80
    assert max(sent) - min(sent) >= 79 / 200 * 0.95  # one endpoint: 200/s, however many threads ask


def test_a_free_endpoint_does_not_wait_behind_a_busy_one():
    budget, clock = _budget(account=100, endpoint=25)
    _times_of(budget, clock, ["/v1/charges"] * 10)  # charges is now due 1/25 s later
    clock.sleep(1 / 100)  # the account is due again

    assert budget.try_reserve("/v1/charges") > 0
    assert budget.try_reserve("/v1/customers") == 0  # only the account's 1/100 s spacing applies to it


def test_modes_get_stripes_limits_with_headroom_and_the_override_wins():
    live, test = RateLimits.for_mode(live=True), RateLimits.for_mode(live=False)

    assert 90 <= live.per_account < 100 and 22 <= test.per_account < 25
    assert 22 <= live.per_endpoint < 25
    assert RateLimits.for_mode(live=True, override=250) == RateLimits(per_account=250 * 0.95, per_endpoint=25 * 0.95,
                                                                      account_burst=10)


def test_account_slots_left_unused_can_be_taken_at_once_but_no_second_holds_more_than_the_limit_minus_one():
    live = RateLimits.for_mode(live=True)
    assert live.account_burst == 3 and RateLimits.for_mode(live=False).account_burst == 0
    clock = FakeClock()
    budget = StripeRateBudget(live, clock=clock, sleep=clock.sleep)

    clock.sleep(5)  # nobody asked for a while
    assert [budget.try_reserve(f"/v1/e{i}") for i in range(4)] == [0, 0, 0, 0]  # 1 + 3 unused slots, at once
    assert budget.try_reserve("/v1/e4") > 0

    times = []
    for i in range(2000):  # saturated, on 8 endpoints, with idle gaps
        if i % 150 == 0:
            clock.sleep(0.3)
        endpoint = f"/v1/e{i % 8}"
        while (wait := budget.try_reserve(endpoint)) > 0:
            clock.sleep(wait)
        times.append(clock.now)
    in_any_second = max(sum(1 for t in times[j:j + 120] if t < start + 1 - 1e-9) for j, start in enumerate(times))
    assert in_any_second <= 99


def test_invoice_line_pages_of_every_invoice_share_one_endpoint():
    assert endpoint_of("http://h/v1/invoices/in_1AbC/lines?limit=100") == "/v1/invoices/{id}/lines"
    assert endpoint_of("http://h/v1/invoices/in_9ZzZ/lines") == endpoint_of("http://h/v1/invoices/in_1AbC/lines")
    assert endpoint_of("http://h/v1/charges?limit=100&starting_after=ch_1") == "/v1/charges"


def test_a_busy_account_slot_goes_to_the_waiting_endpoint_with_the_most_pages_left():
    budget, clock = _budget(account=4, endpoint=2)
    budget.expect_pages({"/v1/charges": 250, "/v1/products": 100})

    with budget.waiting("/v1/charges"):  # a charges request is due and waiting
        assert budget.try_reserve("/v1/products") > 0  # products yields the account's slot
        assert budget.try_reserve("/v1/charges") == 0
    assert budget.try_reserve("/v1/products") > 0  # (the account's next slot is 1/4 s away)
    clock.sleep(0.25)
    assert budget.try_reserve("/v1/products") == 0  # nobody bigger waits: products goes


def test_the_bigger_stream_yields_once_its_pages_left_are_fewer():
    budget, clock = _budget(account=8, endpoint=4)
    budget.expect_pages({"/v1/charges": 3, "/v1/products": 2})
    for _ in range(2):  # charges reads two of its three pages
        _times_of(budget, clock, ["/v1/charges"])

    clock.sleep(1)
    with budget.waiting("/v1/products"):
        assert budget.try_reserve("/v1/charges") > 0  # 1 page left against products' 2


def test_no_endpoint_yields_where_the_account_is_no_faster_than_one_endpoint():
    budget, clock = _budget(account=25, endpoint=25)  # a test key
    budget.expect_pages({"/v1/charges": 250, "/v1/products": 100})

    with budget.waiting("/v1/charges"):
        assert budget.try_reserve("/v1/products") == 0


def test_endpoints_without_an_estimate_never_yield():
    budget, clock = _budget(account=4, endpoint=2)
    budget.expect_pages({"/v1/charges": 250})

    with budget.waiting("/v1/charges"):
        assert budget.try_reserve("/v1/invoices/{id}/lines") == 0
