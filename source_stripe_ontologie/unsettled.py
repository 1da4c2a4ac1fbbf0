"""Objects that change without any event: re-read, each sync, from the oldest one still unsettled (issue #13).

A balance transaction is immutable except `status` and `available_on`: it moves from `pending` to `available`
a few days after it is created, and no event announces it. A `created` cursor would freeze it at `pending`
forever; re-reading the whole history every sync would cost the account's history. A stream that declares
`unsettled: {field, values}` in the manifest instead keeps, next to its `created` cursor, `unsettled_since`: the
`created` second of the oldest object that was still unsettled (`status` pending) when the previous sync read it.
The next sync re-reads its list from that second up to where its new windows start, so every such object arrives
again in its current state. The cost is the objects created since the oldest pending one (Stripe's payout delay,
a few days), not the history; the re-read range moves forward as soon as that object settles. Objects of that
range that had already settled are sent again unchanged (same id: *Append + Deduped* keeps one).

Why not re-fetch the pending ones by id: one request per object instead of one per 100, and a state holding
every pending id (thousands on a busy account). Why Python: the manifest has one cursor per stream and cannot
add a partition reading a range the state does not cover, nor a second state key; the classes below do, on the
stream the CDK built, like change capture (events.py) does.

`unsettled_since` is written only while some object is unsettled; it only moves once the re-read finished (a
failed re-read keeps the previous value, so the next sync tries again).
"""
from __future__ import annotations

import threading
from typing import Any, Dict, Iterable, List, Mapping, MutableMapping, Optional

import orjson
from airbyte_cdk.models import AirbyteStateMessage
from airbyte_cdk.sources.streams.concurrent.cursor import ConcurrentCursor, Cursor
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.streams.concurrent.partitions.partition_generator import PartitionGenerator
from airbyte_cdk.sources.types import Record, StreamSlice

from source_stripe_ontologie import cdk_seam
from source_stripe_ontologie.incremental import (
    CURSOR_FIELD,
    UNSETTLED_CURSOR_FIELD,
    _as_dict,
    _epoch_seconds,
    _stream_name,
)
from source_stripe_ontologie.cursors import WINDOW_START, CursorDecorator
from source_stripe_ontologie.stream_facts import StreamFacts, Unsettled

REREAD_SINCE, REREAD_UNTIL = "unsettled_since", "unsettled_until"


class OldestUnsettled:
    """The `created` of the oldest unsettled object this sync saw, and what the state may say about it."""

    def __init__(self, unsettled: Unsettled, previous: Optional[int]) -> None:
        self._unsettled = unsettled
        self._previous = previous
        self._oldest: Optional[int] = None
        self._reread_done = previous is None
        self._lock = threading.Lock()

    def observe(self, data: Mapping[str, Any]) -> None:
        created = data.get(CURSOR_FIELD)
        if self._unsettled.holds(data) and isinstance(created, int):
            with self._lock:
                self._oldest = created if self._oldest is None else min(self._oldest, created)

    def reread_finished(self) -> None:
        with self._lock:
            self._reread_done = True

    def value(self) -> Optional[int]:
        """The oldest unsettled `created` seen, and the previous one while its re-read has not finished."""
        with self._lock:
            candidates = [v for v in (self._oldest, None if self._reread_done else self._previous) if v is not None]
        return min(candidates) if candidates else None


class UnsettledReread(Partition):
    """Pages `GET /v1/<resource>?created[gte]=<since>&created[lte]=<until>` through a requester built from the
    manifest (same auth, Stripe-Version, retries, rate budget and error messages as the stream)."""

    def __init__(self, stream_name: str, requester: Any, parameters: Mapping[str, Any], since: int, until: int,
                 page_size: int = 100) -> None:
        self._stream_name = stream_name
        self._requester = requester
        self._parameters = dict(parameters)
        self._since, self._until = since, until
        self._page_size = page_size
        self._slice = StreamSlice(partition={}, cursor_slice={REREAD_SINCE: str(since), REREAD_UNTIL: str(until)})

    def read(self) -> Iterable[Record]:
        starting_after = None
        while True:
            params: Dict[str, Any] = {**self._parameters, "created[gte]": str(self._since),
                                      "created[lte]": str(self._until), "limit": str(self._page_size)}
            if starting_after:
                params["starting_after"] = starting_after
            body = orjson.loads(self._requester.send_request(request_params=params).content)
            for data in body["data"]:
                yield Record(data=data, stream_name=self._stream_name, associated_slice=self._slice)
            if not body.get("has_more") or not body["data"]:
                return
            starting_after = body["data"][-1]["id"]

    def to_slice(self) -> Optional[Mapping[str, Any]]:
        return self._slice

    def stream_name(self) -> str:
        return self._stream_name

    def __hash__(self) -> int:
        return hash((self._stream_name, REREAD_SINCE, self._since, self._until))


class UnsettledRereadGenerator(PartitionGenerator):
    """The stream's partitions, then the re-read of (previous `unsettled_since` .. the second before this sync's
    first window), when the previous sync left one."""

    def __init__(self, inner: PartitionGenerator, stream_name: str, requester: Any, parameters: Mapping[str, Any],
                 since: Optional[int], previous_created: Optional[int]) -> None:
        self._inner = inner
        self._stream_name = stream_name
        self._requester = requester
        self._parameters = parameters
        self._since = since
        self._previous_created = previous_created

    def generate(self) -> Iterable[Partition]:
        first_window: Optional[int] = None
        for partition in self._inner.generate():
            start = (partition.to_slice() or {}).get(WINDOW_START)
            if start is not None:
                first_window = int(start) if first_window is None else min(first_window, int(start))
            yield partition
        if self._since is None:
            return
        until = first_window - 1 if first_window is not None else self._previous_created
        if until is not None and until >= self._since:
            yield UnsettledReread(self._stream_name, self._requester, self._parameters, self._since, until)


class UnsettledCursor(CursorDecorator):
    """The stream's cursor, seeing every record's settlement; re-read records bypass the windows' cursor (their
    range is already in the state)."""

    def __init__(self, inner: Cursor, windows: ConcurrentCursor, oldest: OldestUnsettled) -> None:
        super().__init__(inner)
        self._windows = windows
        self._oldest = oldest

    def observe(self, record: Record) -> None:
        self._oldest.observe(record.data)
        if not _is_reread(record.associated_slice):
            self._inner.observe(record)

    def close_partition(self, partition: Partition) -> None:
        if isinstance(partition, UnsettledReread):
            self._oldest.reread_finished()
            self._windows.ensure_at_least_one_state_emitted()
        else:
            self._inner.close_partition(partition)

    def should_be_synced(self, record: Record) -> bool:
        return True if _is_reread(record.associated_slice) else self._inner.should_be_synced(record)


def _is_reread(stream_slice: Any) -> bool:
    return isinstance(stream_slice, Mapping) and REREAD_SINCE in stream_slice


class UnsettledStateConverter:
    """The stream's state converter plus `unsettled_since` (only while some object is unsettled)."""

    def __init__(self, inner: Any, oldest: OldestUnsettled) -> None:
        self._inner = inner
        self._oldest = oldest

    def convert_to_state_message(self, cursor_field: Any, stream_state: MutableMapping[str, Any]) -> Mapping[str, Any]:
        state = dict(self._inner.convert_to_state_message(cursor_field, stream_state))
        state.pop(UNSETTLED_CURSOR_FIELD, None)  # the incoming state's, carried along by the CDK
        value = self._oldest.value()
        if value is not None:
            state[UNSETTLED_CURSOR_FIELD] = str(value)
        return state

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class UnsettledRefresh:
    """Adds the re-read to every incremental stream that declares `unsettled` (see the module docstring)."""

    def __init__(self, factory: Any, manifest: Mapping[str, Any], config: Mapping[str, Any],
                 state: Optional[List[AirbyteStateMessage]]) -> None:
        self._factory = factory
        self._requester_definition = manifest["definitions"]["requester"]
        self._config = config
        self._previous = {_stream_name(message): _as_dict(message.stream.stream_state)
                          for message in state or [] if message.stream}

    def wrap(self, facts: Optional[StreamFacts], partitions: PartitionGenerator,
             cursor: Cursor, windows: Cursor) -> tuple[PartitionGenerator, Cursor]:
        if facts is None or facts.unsettled is None or not isinstance(windows, ConcurrentCursor):
            return partitions, cursor
        previous = self._previous.get(facts.name) or {}
        since = _epoch_seconds(previous.get(UNSETTLED_CURSOR_FIELD)) if UNSETTLED_CURSOR_FIELD in previous else None
        previous_created = _epoch_seconds(previous.get(CURSOR_FIELD)) if CURSOR_FIELD in previous else None
        oldest = OldestUnsettled(facts.unsettled, since)
        cdk_seam.wrap_state_converter(windows, lambda inner: UnsettledStateConverter(inner, oldest))
        requester = cdk_seam.build_requester(self._factory, self._requester_definition, facts.requester_parameters(),
                                             self._config,
                                             name=f"{facts.name}_unsettled")
        generator = UnsettledRereadGenerator(partitions, facts.name, requester, facts.list_parameters, since,
                                             previous_created)
        return generator, UnsettledCursor(cursor, windows, oldest)
