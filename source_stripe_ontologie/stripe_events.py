"""Stripe I/O of change capture: listing a stream's events, and fetching one object by id.

Both go through requesters built from the manifest's `definitions.requester` (same auth, Stripe-Version, retries,
rate budget and error messages as the streams); the rules of what to do with what they read are in
source_stripe_ontologie/change_rules.py.
"""
from __future__ import annotations

import logging
import threading
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence

import orjson
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.streams.http.pagination_reset_exception import PaginationResetRequiredException
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

logger = logging.getLogger("airbyte")

MAX_TYPES_PER_REQUEST = 20  # Stripe's limit on `types[]`
MAX_RELISTS = 5  # times an events list is read again after its starting_after event vanished


class EventLister:
    """Pages `GET /v1/events?types[]=...&created[gt]=...&created[lte]=...` (at most 20 types a request), newest
    first, through a requester built from the manifest (same auth, headers, retries and error messages).

    An event a page started after can vanish while the list is read (it left the 30-day retention): Stripe then
    answers 400 `resource_missing` on `starting_after`, and the list is read again from its newest event (the
    events are gathered per object, so an event listed twice changes nothing), at most MAX_RELISTS times.
    `stripe_now` is the latest time Stripe's `Date` header told: retention is counted on Stripe's clock.
    """

    def __init__(self, requester: Any, page_size: int = 100, stream_name: str = "",
                 quiet: Optional["QuietAccountEvents"] = None) -> None:
        self._requester = requester
        self._page_size = page_size
        self._stream_name = stream_name
        self._quiet = quiet
        self.stripe_now: Optional[float] = None

    def events(self, types: Sequence[str], after: int, until: int) -> Iterator[Mapping[str, Any]]:
        if self._quiet is not None and self._quiet.covers(after, until):
            return  # the account recorded no event at all in that time
        for first in range(0, len(types), MAX_TYPES_PER_REQUEST):
            chunk = list(types[first:first + MAX_TYPES_PER_REQUEST])
            starting_after = None
            relists = 0
            while True:
                params: Dict[str, Any] = {"types[]": chunk, "created[gt]": str(after), "created[lte]": str(until),
                                          "limit": str(self._page_size)}
                if starting_after:
                    params["starting_after"] = starting_after
                try:
                    response = self._requester.send_request(request_params=params)
                except PaginationResetRequiredException:
                    relists += 1
                    if relists > MAX_RELISTS:
                        raise _events_kept_vanishing(self._stream_name, relists - 1) from None
                    starting_after = None
                    continue
                self._saw(response)
                body = orjson.loads(response.content)
                yield from body["data"]
                if not body.get("has_more") or not body["data"]:
                    break
                starting_after = body["data"][-1]["id"]

    def _saw(self, response: Any) -> None:
        date = getattr(response, "headers", {}).get("Date")
        if not date:
            return
        try:
            moment = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return
        self.stripe_now = moment if self.stripe_now is None else max(self.stripe_now, moment)


class QuietAccountEvents:
    """One `GET /v1/events?limit=1` for a whole account: when it recorded no event of any type since the oldest
    events cursor of its streams, no stream needs to list its events (Connect syncs: an account with nothing new
    costs one events request, not one per stream). Asked once, by the first stream that lists events; any failure
    answers "not quiet", and every stream lists its events as usual.
    """

    def __init__(self, requester: Any, since: Optional[int], clock: Callable[[], float]) -> None:
        self._requester = requester
        self._since = since
        self._clock = clock
        self._lock = threading.Lock()
        self._until: Optional[int] = None
        self._quiet = False

    def covers(self, after: int, until: int) -> bool:
        if self._since is None:
            return False
        with self._lock:
            if self._until is None:
                self._until = int(self._clock())
                try:
                    response = self._requester.send_request(request_params={
                        "created[gt]": str(self._since), "created[lte]": str(self._until), "limit": "1"})
                    self._quiet = response is not None and not orjson.loads(response.content)["data"]
                except Exception:  # only an optimisation: the streams list their events themselves
                    self._quiet = False
        return self._quiet and after >= self._since and until <= self._until


def _events_kept_vanishing(stream_name: str, relists: int) -> AirbyteTracedException:
    message = (f"{stream_name}: the events list was read again {relists} times because the event a page started "
               f"after kept vanishing (Stripe: resource_missing on starting_after, events leaving the 30-day "
               f"retention while they are listed). The stream's events cursor did not move: run the sync again.")
    return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.transient_error)


class ObjectFetcher:
    """`GET /v1/<resource>/<id>` in the pinned API version with the stream's expansions, completed like the
    stream's records (invoices: every line); None when the object is gone (404, or `deleted: true`)."""

    def __init__(self, requester: Any, expand: Sequence[str], complete: Optional[Callable[[dict], dict]]) -> None:
        self._requester = requester
        self._params = {"expand[]": list(expand)} if expand else {}
        self._complete = complete

    def fetch(self, object_id: str) -> Optional[dict]:
        response = self._requester.send_request(path=object_id, request_params=dict(self._params))
        if response is None or response.status_code == 404:
            return None
        obj = orjson.loads(response.content)
        if obj.get("deleted"):
            return None
        return self._complete(obj) if self._complete else obj
