"""Find where each stream's history begins and ends: a first sync reads no empty windows from 2011 or up to now."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional

import orjson
from airbyte_cdk.sources.streams.call_rate import AbstractAPIBudget
from airbyte_cdk.sources.streams.http.http_client import HttpClient

from source_stripe_ontologie.components import api_base, stripe_headers

DAY = 86_400
# The config key the manifest's `start_datetime` reads: {stream name: epoch seconds where its history begins}.
HISTORY_START_KEY = "_history_start"
# The config key the manifest's `step` reads: {stream name: days of its one window} (streams within one page).
WINDOW_DAYS_KEY = "_window_days"
logger = logging.getLogger("airbyte")


class ProbedList(NamedTuple):
    """A stream's list as the probe asks it: its resource, the filters it always sends (e.g. status=all), and the
    field its `created` filter reads (`date` for invoice items)."""

    resource: str
    params: Mapping[str, str]
    time_field: str = "created"


class History(NamedTuple):
    """What the probe found of one stream."""

    start: int  # a day boundary at or before its oldest object (`until` when it has none)
    one_window_days: Optional[int]  # its whole history fit in one page: the days of its one window; else None
    newest: Optional[int]  # the time of its newest object (None when it has none)
    pages: int = 1  # list pages its history is expected to take, at the density of its newest page


class HistoryStartProbe:
    """Finds, per stream, the day of its oldest object and the time of its newest, with a few requests.

    Without a saved state, a stream's windows start at `start_date` or at 2011 (older than any Stripe object):
    about 190 windows of 30 days per stream, each costing a request even when empty. Stripe lists newest first and
    has no "oldest first" order, so the probe asks one `limit=100` page of the whole range first. When that page
    holds the stream's whole history (no `has_more`), the stream starts at the day of its oldest object and is
    read in one window: a small stream costs two requests in all. Otherwise the page still tells the newest
    object's time (the windows after it are read as one, `TailWindow` in streams.py) and bounds the oldest one:
    `created[lte]=t&limit=1` answers "is there anything at or before t, and what is the newest such object", so a
    search over days below the page's oldest object converges in about a dozen requests, the streams probed in
    parallel. Each answer also moves the upper bound down to that object's time; the search stops once the oldest
    object is known to within `resolution` (a sync's window length). A manifest cannot compute a start from
    requests.

    Probing is only an optimisation: any failure (401, 403, network) leaves that stream at its configured start,
    and the read reports the error as usual.

    The search is `ways`-way: each round asks `ways - 1` points of the interval at once, so it takes about half
    the rounds of a bisection with 4 ways (each round is one request latency, and the probe runs before any
    window). It costs more requests, so it is used only where the account's rate serves a round of every stream
    within about a latency (live keys); a test key's 25 req/s keeps the bisection (`ways_for`).
    """

    def __init__(self, config: Mapping[str, Any], budget: Optional[AbstractAPIBudget],
                 send: Optional[Callable[[str, Dict[str, str]], Mapping[str, Any]]] = None, ways: int = 2,
                 resolution: int = DAY) -> None:
        self._config = config
        # How close before the oldest object the start must be: a sync passes its window's length, since a start
        # anywhere within the first window costs no extra window, and each halving of the search is a latency.
        self.resolution = max(DAY, resolution)
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

    def histories(self, streams: Mapping[str, ProbedList], floor: int, until: int) -> Dict[str, History]:
        """{stream: its History} for the probed streams whose probe succeeded."""
        if not streams:
            return {}
        limits = getattr(self._budget, "limits", None)
        self.ways = self.ways_for(len(streams), getattr(limits, "per_account", None))
        with ThreadPoolExecutor(max_workers=len(streams), thread_name_prefix="history-probe") as pool:
            found = {name: pool.submit(self.history, listed, floor, until) for name, listed in streams.items()}
        return {name: future.result() for name, future in found.items() if future.result() is not None}

    def history(self, listed: ProbedList, floor: int, until: int) -> Optional[History]:
        try:
            page = self._send(f"{api_base(self._config)}/v1/{listed.resource}",
                              {**listed.params, "limit": "100", "created[gte]": str(floor),
                               "created[lte]": str(until)})
            times = [int(item[listed.time_field]) for item in page.get("data") or []]
            if not times:
                return History(until, 1, None)  # nothing to read yet: one window up to now
            oldest, newest = min(times), max(times)
            if not page.get("has_more"):
                start = max(floor, oldest - oldest % DAY)
                return History(start, max(1, -(-(until - start) // DAY) + 1), newest)
            start = self._oldest_day(listed, floor, oldest)
            per_second = len(times) / max(1, newest - oldest)  # the first page's density, held over the history
            return History(start, None, newest, max(2, -(-int((newest - start) * per_second) // 100)))
        except Exception as error:  # an optimisation must never fail a sync: the read reports real errors
            logger.info(f"{listed.resource}: could not probe where its history begins ({type(error).__name__}); "
                        f"reading from the configured start.")
            return None

    def _oldest_day(self, listed: ProbedList, floor: int, high: int) -> int:
        """The day of the oldest object, which lies in [floor, high] (never before `floor`)."""
        low, ways = floor, max(2, self.ways)
        with ThreadPoolExecutor(max_workers=ways - 1, thread_name_prefix="history-probe-round") as pool:
            while high - low > self.resolution:
                points = sorted({low + (high - low) * k // ways for k in range(1, ways)})
                answers = list(pool.map(lambda moment: self._newest_at_or_before(listed, moment), points))
                for point, found in zip(points, answers):  # the first point with something at or before it
                    if found is None:
                        low = point + 1  # nothing at or before the point: the oldest is after it
                    else:
                        high = found  # the oldest is at or before this object
                        break
        return max(floor, low - low % DAY)

    def _newest_at_or_before(self, listed: ProbedList, moment: int) -> Optional[int]:
        query = {**listed.params, "limit": "1", "created[lte]": str(moment)}
        page = self._send(f"{api_base(self._config)}/v1/{listed.resource}", query)
        data = page.get("data") or []
        return int(data[0][listed.time_field]) if data else None

    def _get(self, url: str, params: Dict[str, str]) -> Mapping[str, Any]:
        _, response = self._http.send_request("GET", url, request_kwargs={}, headers=stripe_headers(self._config),
                                              params=params)
        return orjson.loads(response.content)
