"""Knobs that make the simulator behave like a loaded or failing Stripe: rate limits, latency, faults, stats."""

from __future__ import annotations

import collections
import random
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple


@dataclass
class RateLimits:
    """Stripe's documented budgets: 100 req/s per account in live mode, 25 in test mode, and 25 req/s per
    endpoint; each a sliding one-second window. ``should_retry`` adds ``Stripe-Should-Retry`` to 429s
    (None: header absent, as Stripe often does)."""

    live: int = 100
    test: int = 25
    per_endpoint: Optional[int] = 25
    should_retry: Optional[bool] = None


@dataclass
class Latency:
    """Added to every /v1 response: ``fixed_ms`` plus uniform ``[0, jitter_ms]``; sleeps only the thread
    serving that request, so other requests are not delayed."""

    fixed_ms: float = 0.0
    jitter_ms: float = 0.0

    def delay_seconds(self, rng: random.Random) -> float:
        jitter = rng.uniform(0, self.jitter_ms) if self.jitter_ms else 0.0
        return (self.fixed_ms + jitter) / 1000.0


class RateLimiter:
    """Sliding one-second windows per (account, mode) and per (account, mode, endpoint)."""

    def __init__(self, limits: RateLimits, clock=time.monotonic):
        self.limits = limits
        self._clock = clock
        self._windows: Dict[tuple, collections.deque] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def admit(self, account: str, mode: str, endpoint: str) -> bool:
        """True (and the request is counted) if both budgets have room; rejected requests are not counted."""
        now = self._clock()
        budgets: List[Tuple[tuple, int]] = [((account, mode), self.limits.live if mode == "live" else self.limits.test)]
        if self.limits.per_endpoint:
            budgets.append(((account, mode, endpoint), self.limits.per_endpoint))
        with self._lock:
            for key, limit in budgets:
                window = self._windows[key]
                while window and window[0] <= now - 1.0:
                    window.popleft()
                if len(window) >= limit:
                    return False
            for key, _ in budgets:
                self._windows[key].append(now)
        return True


class FastClock:
    """A clock that runs ``speed`` times faster than real time from the moment it is made (``speed=3600``: an hour
    a second), for tests in which time must pass on Stripe's side while the connector reads: event retention."""

    def __init__(self, speed: float, start: Optional[float] = None, real=time.time):
        self._real = real
        self._origin = real()
        self._start = self._origin if start is None else start
        self.speed = speed

    def __call__(self) -> float:
        return self._start + (self._real() - self._origin) * self.speed


class PageHooks:
    """Actions run right after a /v1 page is built and before it is sent: what a user deleting objects in the
    Dashboard while a sync reads looks like to the connector.

    ``after_page(endpoint, action, times=1, when=None)``: ``endpoint`` is a list (``"customers"``, ``"events"``)
    or ``"invoice_lines"``; ``action(page)`` receives ``{"endpoint", "ids", "has_more", "params"}`` (ids of the
    page in order) and may change the simulator (``sim.delete(...)``). ``when(page)`` selects the pages (default:
    every page); each hook fires at most ``times`` times. Actions run on the serving thread, outside the store's
    lock, so they may call any control method.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: List[list] = []

    def after_page(self, endpoint: str, action, times: int = 1, when=None) -> "PageHooks":
        with self._lock:
            self._hooks.append([endpoint, action, int(times), when])
        return self

    def clear(self) -> None:
        with self._lock:
            self._hooks = []

    def fire(self, endpoint: str, ids: List[str], has_more: bool, params: dict) -> None:
        page = {"endpoint": endpoint, "ids": list(ids), "has_more": has_more, "params": params}
        due = []
        with self._lock:
            for hook in self._hooks:
                hook_endpoint, action, remaining, when = hook
                if hook_endpoint == endpoint and remaining > 0 and (when is None or when(page)):
                    hook[2] -= 1
                    due.append(action)
        for action in due:
            action(page)


@dataclass
class _FailRule:
    resource: str
    status: int
    created_gte: Optional[int] = None
    created_lt: Optional[int] = None
    mode: Optional[str] = None


class Faults:
    """Injected failures, checked for every /v1 request after authentication.

    - ``error_rate(fraction, statuses=(500, 502))``: that fraction of requests gets a 5xx ``api_error``;
    - ``drop_rate(fraction)`` / ``drop_next(n)``: close the connection without any response;
    - ``burst_429(n)``: the next n requests get Stripe's rate-limit 429;
    - ``fail_next(n, status=500)``: the next n requests get ``status``;
    - ``fail_resource(resource, status, created_gte=None, created_lt=None, mode=None)``: every request to the
      resource whose ``created`` filter overlaps ``[created_gte, created_lt)`` (any request, without bounds)
      gets ``status`` until ``clear()``;
    - ``forbid(resource, key)``: that key gets Stripe's 403 permission error for that resource;
    - ``clear()``: remove all.
    Random choices use a seeded generator, so a single-threaded client sees the same sequence every run.
    """

    def __init__(self, seed: int = 0):
        self._lock = threading.Lock()
        self._rng = random.Random(f"faults/{seed}")
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._error_rate = 0.0
            self._error_statuses: Tuple[int, ...] = (500, 502)
            self._drop_rate = 0.0
            self._drop_next = 0
            self._burst_429 = 0
            self._fail_next: List[int] = []
            self._rules: List[_FailRule] = []
            self._forbidden: set = set()
            self.should_retry: Optional[bool] = None

    def error_rate(self, fraction: float, statuses=(500, 502)) -> "Faults":
        with self._lock:
            self._error_rate, self._error_statuses = float(fraction), tuple(statuses)
        return self

    def drop_rate(self, fraction: float) -> "Faults":
        with self._lock:
            self._drop_rate = float(fraction)
        return self

    def drop_next(self, n: int = 1) -> "Faults":
        with self._lock:
            self._drop_next += int(n)
        return self

    def burst_429(self, n: int) -> "Faults":
        with self._lock:
            self._burst_429 += int(n)
        return self

    def fail_next(self, n: int = 1, status: int = 500) -> "Faults":
        with self._lock:
            self._fail_next.extend([int(status)] * int(n))
        return self

    def fail_resource(self, resource: str, status: int = 500, created_gte: Optional[int] = None,
                      created_lt: Optional[int] = None, mode: Optional[str] = None) -> "Faults":
        with self._lock:
            self._rules.append(_FailRule(resource, int(status), created_gte, created_lt, mode))
        return self

    def forbid(self, resource: str, key: str) -> "Faults":
        with self._lock:
            self._forbidden.add((resource, key))
        return self

    # ---- used by the server ------------------------------------------------------------------------------
    def should_drop(self) -> bool:
        with self._lock:
            if self._drop_next:
                self._drop_next -= 1
                return True
            return bool(self._drop_rate) and self._rng.random() < self._drop_rate

    def is_forbidden(self, resource: str, key: str) -> bool:
        with self._lock:
            return (resource, key) in self._forbidden

    def injected_status(self, resource: str, mode: str, created_range: Tuple[Optional[int], Optional[int]]):
        """``(status, kind)`` to answer instead of the real response, or None. kind: "429" or "error"."""
        with self._lock:
            if self._burst_429:
                self._burst_429 -= 1
                return 429, "429"
            if self._fail_next:
                return self._fail_next.pop(0), "error"
            lo, hi = created_range  # the request's own created window, [lo, hi)
            for rule in self._rules:
                if rule.resource != resource or (rule.mode and rule.mode != mode):
                    continue
                if rule.created_gte is not None and hi is not None and hi <= rule.created_gte:
                    continue
                if rule.created_lt is not None and lo is not None and lo >= rule.created_lt:
                    continue
                return rule.status, "error"
            if self._error_rate and self._rng.random() < self._error_rate:
                return self._rng.choice(self._error_statuses), "error"
        return None


class Stats:
    """Counters the tests and benchmarks read: requests per endpoint, statuses, 429s served, peak in-flight
    requests and a request log (path, query, headers with Authorization redacted, status, mode)."""

    def __init__(self, log_limit: int = 100_000):
        self._lock = threading.Lock()
        self._log_limit = log_limit
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: collections.Counter = collections.Counter()
            self.statuses: collections.Counter = collections.Counter()
            self.rate_limited = 0
            self.dropped = 0
            self.in_flight = 0
            self.peak_in_flight = 0
            self.records_served = 0
            self.log: collections.deque = collections.deque(maxlen=self._log_limit)

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def started(self) -> None:
        with self._lock:
            self.in_flight += 1
            if self.in_flight > self.peak_in_flight:
                self.peak_in_flight = self.in_flight

    def finished(self, entry: dict, records: int = 0) -> None:
        with self._lock:
            self.in_flight -= 1
            self.requests[entry["endpoint"]] += 1
            status = entry["status"]
            if status is None:
                self.dropped += 1
            else:
                self.statuses[status] += 1
            if status == 429:
                self.rate_limited += 1
            self.records_served += records
            self.log.append(entry)

    def as_dict(self, with_log: bool = True) -> dict:
        with self._lock:
            out = {"requests": dict(self.requests), "statuses": {str(k): v for k, v in self.statuses.items()},
                   "rate_limited": self.rate_limited, "dropped": self.dropped, "in_flight": self.in_flight,
                   "peak_in_flight": self.peak_in_flight, "records_served": self.records_served,
                   "total": sum(self.requests.values())}
            if with_log:
                out["log"] = list(self.log)
            return out
