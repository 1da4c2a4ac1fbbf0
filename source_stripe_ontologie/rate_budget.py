"""Pace requests under Stripe's two rate limits at once: per account and per endpoint."""
from __future__ import annotations

import math
import re
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Optional
from urllib.parse import urlsplit

from airbyte_cdk.sources.streams.call_rate import AbstractAPIBudget, AbstractCallRatePolicy

# Stripe: 100 read requests/s per account in live mode, 25 in test mode, and 25/s per endpoint unless noted.
LIVE_REQUESTS_PER_SECOND = 100.0
TEST_REQUESTS_PER_SECOND = 25.0
ENDPOINT_REQUESTS_PER_SECOND = 25.0
# Aim a little under the limits: Stripe counts a request when it arrives, and network jitter bunches requests
# that left evenly spaced, so pacing at 100% would earn 429s. Measured by `make bench`.
HEADROOM = 0.95

# How long a request that gave its account slot to a bigger stream waits before asking again (that stream's
# request is due, so it takes the slot within this time).
YIELD_SECONDS = 0.002

_OBJECT_ID = re.compile(r"/[a-z]+_[A-Za-z0-9]+(?=/|$)")


def endpoint_of(url: str) -> str:
    """`/v1/invoices/in_123/lines?limit=100` -> `/v1/invoices/{id}/lines`: Stripe limits by endpoint, not by URL."""
    return _OBJECT_ID.sub("/{id}", urlsplit(url).path)


@dataclass(frozen=True)
class RateLimits:
    per_account: float
    per_endpoint: float = ENDPOINT_REQUESTS_PER_SECOND
    # Account slots left unused that may still be taken, at once: the account's rate is shared by every stream, and
    # a moment when none had a request ready (a window ending, a page being parsed) loses its slots for good
    # without it. Sized so that a 1-second window never holds more than the limit minus one
    # (paced rate + 1 + burst); none per endpoint, where the headroom is under 2 requests.
    account_burst: int = 0

    @classmethod
    def for_mode(cls, live: bool, override: Optional[float] = None,
                 endpoint_override: Optional[float] = None) -> "RateLimits":
        """The paced rates for a key, each with HEADROOM under its limit.

        Account: the user's `max_requests_per_second`, else Stripe's limit for the key's mode. Endpoint: the user's
        `max_requests_per_endpoint_per_second`, else Stripe's 25/s, and never more than the account. Stripe's
        per-endpoint limit does not shrink with the account's (in test mode both are 25), so it is not a fraction
        of the account's; a user's figure is a limit like Stripe's, so it gets the same headroom.
        """
        account = float(override) if override else LIVE_REQUESTS_PER_SECOND if live else TEST_REQUESTS_PER_SECOND
        endpoint = min(float(endpoint_override) if endpoint_override else ENDPOINT_REQUESTS_PER_SECOND, account)
        burst = max(0, math.floor(account - account * HEADROOM) - 2)  # live 100/s: 3; test 25/s: 0
        return cls(per_account=account * HEADROOM, per_endpoint=endpoint * HEADROOM, account_burst=burst)


class StripeRateBudget(AbstractAPIBudget):
    """One budget for every request of a sync (all streams, all threads, invoice lines, events, probes): requests
    evenly spaced under both the account limit and the limit of the request's endpoint.

    The manifest's `HTTPAPIBudget` applies only the first policy matching a request, so it cannot hold a global and
    a per-endpoint limit together, and its moving window lets a full second's calls leave in one burst, which lands
    over the limit once requests already in flight arrive (measured: 33 against 25). Here each limit is a
    theoretical arrival time (GCRA): a request leaves when both its account and its endpoint are due, and only
    then books them. Nothing is booked ahead, so a free endpoint never waits behind another endpoint's queue.
    The account keeps a small burst allowance (`RateLimits.account_burst`) so that slots no stream was ready to use
    are not all lost.
    Where the account allows more than one endpoint's rate (live keys), the sync lasts at least as long as its
    biggest stream takes at its endpoint's limit, so that stream must never wait for an account slot: with every
    stream's endpoint ready, slots shared in turn made the biggest one finish seconds after the others, alone at
    25 req/s. So when the account is busy, a list endpoint yields its slot to a waiting one that is due with more
    pages left (`expect_pages`, from the history probe, less the requests made); an endpoint without an estimate
    (sub-lists, events, objects by id) neither yields nor is yielded to.
    It also counts the 429s Stripe still answers, for the end-of-sync summary.
    """

    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._account_due = 0.0
        self._endpoint_due: Dict[str, float] = {}
        self._pages_expected: Dict[str, int] = {}
        self._waiting: Counter = Counter()
        self.requests: Counter = Counter()
        self.rate_limited: Counter = Counter()

    def try_reserve(self, endpoint: str) -> float:
        """Book a request to `endpoint` now and return 0, or return how long until both limits allow one."""
        with self._lock:
            now = self._clock()
            # GCRA with a tolerance of `account_burst` intervals on the account (none on the endpoint)
            tolerance = self.limits.account_burst / self.limits.per_account
            due = max(self._account_due - tolerance, self._endpoint_due.get(endpoint, 0.0))
            if due > now:
                return due - now
            account_after = max(self._account_due, now) + 1.0 / self.limits.per_account
            if account_after - tolerance > now and self._yields(endpoint, now):  # the next caller would have to wait
                return YIELD_SECONDS
            self._account_due = max(self._account_due, now) + 1.0 / self.limits.per_account
            self._endpoint_due[endpoint] = max(self._endpoint_due.get(endpoint, 0.0), now) + 1.0 / self.limits.per_endpoint
            self.requests[endpoint] += 1
            return 0.0

    def expect_pages(self, pages: Dict[str, int]) -> None:
        """{endpoint: list pages it is expected to serve in this sync}; only where the account outpaces an endpoint."""
        if self.limits.per_account > self.limits.per_endpoint:
            with self._lock:
                self._pages_expected.update(pages)

    def _yields(self, endpoint: str, now: float) -> bool:
        """Another list endpoint, due and waiting, has more pages left than this one (under the lock)."""
        if endpoint not in self._pages_expected:
            return False
        left = self._pages_expected[endpoint] - self.requests[endpoint]
        return any(waiting and other != endpoint and other in self._pages_expected
                   and self._endpoint_due.get(other, 0.0) <= now
                   and self._pages_expected[other] - self.requests[other] > left
                   for other, waiting in self._waiting.items())

    @contextmanager
    def waiting(self, endpoint: str) -> Iterator[None]:
        """A request to `endpoint` is waiting for its slot while inside."""
        with self._lock:
            self._waiting[endpoint] += 1
        try:
            yield
        finally:
            with self._lock:
                self._waiting[endpoint] -= 1

    def acquire_call(self, request: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        endpoint = endpoint_of(request.url)
        with self.waiting(endpoint):
            while (wait := self.try_reserve(endpoint)) > 0:
                self._sleep(wait)

    def get_matching_policy(self, request: Any) -> Optional[AbstractCallRatePolicy]:
        return None

    def update_from_response(self, request: Any, response: Any) -> None:
        if getattr(response, "status_code", None) == 429:
            with self._lock:
                self.rate_limited[endpoint_of(request.url)] += 1

    def summary(self) -> str:
        total = sum(self.requests.values())
        limited = sum(self.rate_limited.values())
        share = f"{limited / total:.2%}" if total else "0%"
        per_endpoint = ", ".join(f"{e}: {n}" for e, n in sorted(self.rate_limited.items())) or "none"
        return (f"Rate budget: {total} requests paced at {self.limits.per_account:g} req/s per account and "
                f"{self.limits.per_endpoint:g} req/s per endpoint; Stripe answered 429 to {limited} ({share}; "
                f"{per_endpoint}), each retried.")
