"""Find where each stream's history begins, so a first sync does not walk empty windows back to 2011."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Mapping, Optional

import orjson
from airbyte_cdk.sources.streams.call_rate import AbstractAPIBudget
from airbyte_cdk.sources.streams.http.http_client import HttpClient

from source_stripe_ontologie.components import api_base, stripe_headers

DAY = 86_400
# The config key the manifest's `start_datetime` reads: {stream name: epoch seconds where its history begins}.
HISTORY_START_KEY = "_history_start"
# The config key the manifest's `step` reads: {stream name: days of its one window} (Connect syncs, small streams).
WINDOW_DAYS_KEY = "_window_days"
logger = logging.getLogger("airbyte")


class HistoryStartProbe:
    """Finds, per stream, the day of its oldest object with a handful of `limit=1` requests.

    Without a saved state, a stream's windows start at `start_date` or at 2011 (older than any Stripe object):
    about 190 windows of 30 days per stream, each costing a request even when empty. An account that began in
    2021 would spend 700 requests (7 s live, 30 s with a test key's 25 req/s) on windows that cannot hold
    anything. Stripe lists newest first and has no "oldest first" order, but `created[lte]=t&limit=1` answers
    "is there anything at or before t, and what is the newest such object": a bisection over days converges in
    about a dozen requests per stream, the streams probed in parallel. Each answer also moves the upper bound
    down to that object's `created`. A manifest cannot compute a start from requests.

    Probing is only an optimisation: any failure (401, 403, network) leaves that stream at its configured start,
    and the read reports the error as usual.

    The search is `ways`-way: each round asks `ways - 1` points of the interval at once, so it takes about half
    the rounds of a bisection with 4 ways (each round is one request latency, and the probe runs before any
    window). It costs more requests, so it is used only where the account's rate serves a round of every stream
    within about a latency (live keys); a test key's 25 req/s keeps the bisection (`ways_for`).
    """

    def __init__(self, config: Mapping[str, Any], budget: Optional[AbstractAPIBudget],
                 send: Optional[Callable[[str, Dict[str, str]], Mapping[str, Any]]] = None, ways: int = 2) -> None:
        self._config = config
        self._budget = budget
        self._http = HttpClient(name="history_probe", logger=logger, api_budget=budget) if send is None else None
        self._send = send or self._get
        self.ways = ways

    @staticmethod
    def ways_for(streams: int, requests_per_second: Optional[float]) -> int:
        """4 when a round of every stream's 3 requests fits in a quarter second of the account's rate (unpaced:
        always), else 2."""
        if requests_per_second is None or streams * 3 <= requests_per_second / 4:
            return 4
        return 2

    def starts(self, streams: Mapping[str, tuple[str, Mapping[str, str]]], floor: int, until: int) -> Dict[str, int]:
        """{stream: day start at or before its oldest object (or `until` when it has none)} for the probed streams.

        `streams` maps a stream name to its resource and the list parameters it always sends (e.g. status=all), and
        optionally the objects' creation field when it is not `created` (a `created_from` stream: the API filters
        `created[...]` on that field, and the probe reads the answer's times from it).
        """
        if not streams:
            return {}
        limits = getattr(self._budget, "limits", None)
        self.ways = self.ways_for(len(streams), getattr(limits, "per_account", None))
        with ThreadPoolExecutor(max_workers=len(streams), thread_name_prefix="history-probe") as pool:
            found = {name: pool.submit(self.oldest_day, resource, params, floor, until, *created)
                     for name, (resource, params, *created) in streams.items()}
        return {name: future.result() for name, future in found.items() if future.result() is not None}

    def starts_by_size(self, streams: Mapping[str, tuple[str, Mapping[str, str]]], floor: int,
                       until: int) -> tuple[Dict[str, int], Dict[str, int]]:
        """For the many accounts of a Connect sync, most of them small: ({stream: start}, {stream: window days}).

        One `limit=100` request per stream first: when it holds the stream's whole history (no `has_more`), the
        stream starts at the day of its oldest object (at `until` when empty) and is read in one window, so a small
        account costs two requests per stream instead of a bisection and a window per month. Only a stream with
        more than a page is bisected, from below the oldest object of that page.
        """
        if not streams:
            return {}, {}
        with ThreadPoolExecutor(max_workers=len(streams), thread_name_prefix="history-probe") as pool:
            found = {name: pool.submit(self._start_by_size, resource, params, floor, until, *created)
                     for name, (resource, params, *created) in streams.items()}
        starts, one_window = {}, {}
        for name, future in found.items():
            start, whole = future.result()
            if start is not None:
                starts[name] = start
                if whole:
                    one_window[name] = max(1, -(-(until - start) // DAY) + 1)
        return starts, one_window

    def _start_by_size(self, resource: str, params: Mapping[str, str], floor: int, until: int,
                       created: str = "created") -> tuple[Optional[int], bool]:
        try:
            page = self._send(f"{api_base(self._config)}/v1/{resource}",
                              {**params, "limit": "100", "created[gte]": str(floor), "created[lte]": str(until)})
            data = page.get("data") or []
            if not data:
                return until, True
            oldest = min(int(item[created]) for item in data)
            if not page.get("has_more"):
                return max(floor, oldest - oldest % DAY), True
            low, high = floor, oldest
            while high - low > DAY:
                middle = (low + high) // 2
                found = self._newest_at_or_before(resource, params, middle, created)
                if found is None:
                    low = middle + 1
                else:
                    high = found
            return max(floor, low - low % DAY), False
        except Exception as error:  # an optimisation must never fail a sync: the read reports real errors
            logger.info(f"{resource}: could not probe where its history begins ({type(error).__name__}); "
                        f"reading from the configured start.")
            return None, False

    def oldest_day(self, resource: str, params: Mapping[str, str], floor: int, until: int,
                   created: str = "created") -> Optional[int]:
        try:
            newest = self._newest_at_or_before(resource, params, until, created)
            if newest is None:
                return until  # nothing to read yet: one window up to now
            low, high = floor, newest  # the oldest object lies in [low, high]
            ways = max(2, self.ways)
            with ThreadPoolExecutor(max_workers=ways - 1, thread_name_prefix="history-probe-round") as pool:
                while high - low > DAY:
                    points = sorted({low + (high - low) * k // ways for k in range(1, ways)})
                    answers = list(pool.map(lambda moment: self._newest_at_or_before(resource, params, moment,
                                                                                     created), points))
                    for point, found in zip(points, answers):  # the first point with something at or before it
                        if found is None:
                            low = point + 1  # nothing at or before the point: the oldest is after it
                        else:
                            high = found  # the oldest is at or before this object
                            break
            return max(floor, low - low % DAY)
        except Exception as error:  # an optimisation must never fail a sync: the read reports real errors
            logger.info(f"{resource}: could not probe where its history begins ({type(error).__name__}); "
                        f"reading from the configured start.")
            return None

    def _newest_at_or_before(self, resource: str, params: Mapping[str, str], moment: int,
                             created: str = "created") -> Optional[int]:
        query = {**params, "limit": "1", "created[lte]": str(moment)}
        page = self._send(f"{api_base(self._config)}/v1/{resource}", query)
        data = page.get("data") or []
        return int(data[0][created]) if data else None

    def _get(self, url: str, params: Dict[str, str]) -> Mapping[str, Any]:
        _, response = self._http.send_request("GET", url, request_kwargs={}, headers=stripe_headers(self._config),
                                              params=params)
        return orjson.loads(response.content)
