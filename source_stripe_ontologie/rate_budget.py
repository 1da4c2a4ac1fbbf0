"""Pace requests under Stripe's two rate limits at once: per account and per endpoint."""
from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional
from urllib.parse import urlsplit

from airbyte_cdk.sources.streams.call_rate import AbstractAPIBudget, AbstractCallRatePolicy

# Stripe: 100 read requests/s per account in live mode, 25 in test mode, and 25/s per endpoint unless noted.
LIVE_REQUESTS_PER_SECOND = 100.0
TEST_REQUESTS_PER_SECOND = 25.0
ENDPOINT_REQUESTS_PER_SECOND = 25.0
# Aim a little under the limits: Stripe counts a request when it arrives, and network jitter bunches requests
# that left evenly spaced, so pacing at 100% would earn 429s. Measured by `make bench`.
HEADROOM = 0.95

_OBJECT_ID = re.compile(r"/[a-z]+_[A-Za-z0-9]+(?=/|$)")


def endpoint_of(url: str) -> str:
    """`/v1/invoices/in_123/lines?limit=100` -> `/v1/invoices/{id}/lines`: Stripe limits by endpoint, not by URL."""
    return _OBJECT_ID.sub("/{id}", urlsplit(url).path)


@dataclass(frozen=True)
class RateLimits:
    per_account: float
    per_endpoint: float = ENDPOINT_REQUESTS_PER_SECOND

    @classmethod
    def for_mode(cls, live: bool, override: Optional[float] = None) -> "RateLimits":
        """The paced rates for a key: Stripe's limits with headroom, or the user's `max_requests_per_second`."""
        if override:
            return cls(per_account=float(override), per_endpoint=min(float(override), ENDPOINT_REQUESTS_PER_SECOND * HEADROOM))
        account = LIVE_REQUESTS_PER_SECOND if live else TEST_REQUESTS_PER_SECOND
        return cls(per_account=account * HEADROOM, per_endpoint=ENDPOINT_REQUESTS_PER_SECOND * HEADROOM)


class StripeRateBudget(AbstractAPIBudget):
    """One budget for every request of a sync (all streams, all threads, invoice lines, check): evenly spaced
    requests under both the account limit and the limit of the request's endpoint.

    The manifest's `HTTPAPIBudget` applies only the first policy matching a request, so it cannot hold a global and
    a per-endpoint limit together, and its moving window lets a full second's calls leave in one burst, which lands
    over the limit once requests already in flight arrive (measured: 33 against 25). This budget hands out time
    slots instead (a reservation per request, `1/rate` apart), so requests leave smoothly at the paced rate.
    It also counts the 429s Stripe still answers, for the end-of-sync summary.
    """

    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_account_slot = 0.0
        self._next_endpoint_slot: Dict[str, float] = {}
        self.requests: Counter = Counter()
        self.rate_limited: Counter = Counter()

    def reserve(self, endpoint: str) -> float:
        """Book the earliest slot free for both the account and `endpoint`; return how long to wait for it."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_account_slot, self._next_endpoint_slot.get(endpoint, 0.0))
            self._next_account_slot = slot + 1.0 / self.limits.per_account
            self._next_endpoint_slot[endpoint] = slot + 1.0 / self.limits.per_endpoint
            self.requests[endpoint] += 1
            return slot - now

    def acquire_call(self, request: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        wait = self.reserve(endpoint_of(request.url))
        if wait > 0:
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
