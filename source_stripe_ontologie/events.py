"""Updates and deletions through Stripe's Events API (issue #8).

A `created` cursor only finds new objects. After its first sync, each incremental stream also lists
`GET /v1/events` for the event types that change its objects, from its events cursor to this sync's horizon, and
emits every changed object once, in its current state. The rules, and why they are exact:

- Horizon H: where this sync's `created` windows end when the stream is built (now - read_lag_seconds). Events
  are read in (events_created, H] and the next sync starts from H. Every object this sync reads is read after H,
  so a change made after the read has an event newer than H, read by the next sync. A change made between H and
  the read is seen by the read and listed again by the next sync: within read_lag_seconds a change may arrive
  twice, always in the object's current state; it is never lost.
- Split S: the oldest second of this sync's `created` windows. Objects created at or after S are read by the
  windows, in their current state, so their events are skipped; objects created before S are re-fetched. Each
  object is emitted at most once per sync, whatever order the partitions run in: an object created and changed
  between two syncs arrives once, from its window, in its latest state.
- Newest event wins: one change per object, its newest event (Stripe lists events newest first).
- Re-fetch: GET /v1/<resource>/<id> with the stream's expansions, the pinned Stripe-Version and, for invoices,
  every line: event payloads are rendered in the API version of their own time and embed at most 10 lines. An
  object gone since its event (404, or a customer answering `deleted: true`) is skipped: its deletion is newer
  than H and the next sync emits it.
- Deletions (`customer.deleted`, `product.deleted`, `invoice.deleted`) emit
  `{id, object, created, is_deleted: true, updated}` whatever S (a deleted object is in no list).
  `customer.subscription.deleted` is a cancellation: the subscription is re-fetched like any other change.
- Objects created before start_date are never emitted. Records of changes carry `updated` (epoch seconds of
  the newest event); records read by their `created` window do not.

Why Python: the manifest describes one paginated list per stream behind one `created` cursor. It cannot read a
second endpoint into a stream, keep the newest event per object, re-fetch objects by id, emit tombstones or write
a second cursor into the state; the classes below do, each one of those jobs, on the streams the CDK built.

State, per stream: `{"created": "<end of finished windows>", "events_created": "<events cursor>"}`. The events
cursor moves to H only when the events were listed and every object they named was emitted; on a first sync
(no saved state) it starts at H, since the windows read every object after H. A saved state without
`events_created` (written before this feature) reads events from its `created` second.
"""
from __future__ import annotations

import functools
import logging
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, MutableMapping, Optional, Sequence

import orjson
from airbyte_cdk.models import AirbyteStateMessage
from airbyte_cdk.sources.streams.concurrent.cursor import ConcurrentCursor, Cursor
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.streams.concurrent.partitions.partition_generator import PartitionGenerator
from airbyte_cdk.sources.types import Record, StreamSlice

from source_stripe_ontologie import cdk_seam
from source_stripe_ontologie.cdk_seam import FinishedWindowsStateConverter
from source_stripe_ontologie.components import copy_created
from source_stripe_ontologie.incremental import (
    CURSOR_FIELD,
    EVENTS_CURSOR_FIELD,
    _as_dict,
    _epoch_seconds,
    _stream_name,
)
from source_stripe_ontologie.stream_facts import ManifestFacts, StreamFacts

logger = logging.getLogger("airbyte")

MAX_TYPES_PER_REQUEST = 20  # Stripe's limit on `types[]`
EVENT_RETENTION_SECONDS = 30 * 86_400  # Stripe lists the events of the last 30 days
RETENTION_MARGIN_SECONDS = 3_600  # a cursor this close to the retention edge is treated as past it
OBJECTS_PER_PARTITION = 50  # changed objects re-fetched by one partition (partitions run in parallel)
WINDOW_START = "start_time"  # the slice field where DatetimeBasedCursor puts a window's first second
NEVER = sys.maxsize


@dataclass(frozen=True)
class Change:
    """The newest event naming one object of a stream."""

    object_id: str
    updated: int  # epoch seconds of the event
    deletion: bool
    own: bool  # the event's data.object is the stream's object itself (not a refund, dispute, discount, price)
    created: Optional[int]  # the object's `created` when the event carries it (own objects)


@dataclass(frozen=True)
class ChangeFeed:
    """The event types that change one stream's objects, and which field of each event's `data.object` names
    the stream's object (`id` for the object itself, e.g. `charge` for a refund or a dispute): the stream's
    `change_events` and `deletion_events` in the manifest."""

    id_field_by_type: Mapping[str, str]
    deletions: frozenset
    created_field: str = CURSOR_FIELD  # where an own object carries its creation time (invoice items: `date`)

    @classmethod
    def of(cls, facts: StreamFacts) -> "ChangeFeed":
        return cls(dict(facts.change_events), frozenset(facts.deletion_events), facts.created_from or CURSOR_FIELD)

    @property
    def event_types(self) -> List[str]:
        return list(self.id_field_by_type)

    def newest_changes(self, events: Iterable[Mapping[str, Any]]) -> Dict[str, Change]:
        """One change per object: its newest event. `events` come newest first, so on a tie the first one wins."""
        changes: Dict[str, Change] = {}
        for event in events:
            change = self._change(event)
            if change is not None:
                known = changes.get(change.object_id)
                if known is None or change.updated > known.updated:
                    changes[change.object_id] = change
        return changes

    def _change(self, event: Mapping[str, Any]) -> Optional[Change]:
        id_field = self.id_field_by_type.get(event.get("type"))
        payload = (event.get("data") or {}).get("object") or {}
        object_id = payload.get(id_field) if id_field else None
        if isinstance(object_id, Mapping):  # an expanded reference
            object_id = object_id.get("id")
        if not isinstance(object_id, str):
            return None
        own = id_field == "id"
        return Change(object_id=object_id, updated=int(event["created"]), deletion=event["type"] in self.deletions,
                      own=own, created=payload.get(self.created_field) if own else None)


class EventLister:
    """Pages `GET /v1/events?types[]=...&created[gt]=...&created[lte]=...` (at most 20 types a request), newest
    first, through a requester built from the manifest (same auth, headers, retries and error messages)."""

    def __init__(self, requester: Any, page_size: int = 100) -> None:
        self._requester = requester
        self._page_size = page_size

    def events(self, types: Sequence[str], after: int, until: int) -> Iterator[Mapping[str, Any]]:
        for first in range(0, len(types), MAX_TYPES_PER_REQUEST):
            chunk = list(types[first:first + MAX_TYPES_PER_REQUEST])
            starting_after = None
            while True:
                params: Dict[str, Any] = {"types[]": chunk, "created[gt]": str(after), "created[lte]": str(until),
                                          "limit": str(self._page_size)}
                if starting_after:
                    params["starting_after"] = starting_after
                body = orjson.loads(self._requester.send_request(request_params=params).content)
                yield from body["data"]
                if not body.get("has_more") or not body["data"]:
                    break
                starting_after = body["data"][-1]["id"]


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


class ChangeRecords:
    """What the events part of a sync emits for a change: a tombstone for a deletion, else the object re-fetched
    by id with `updated`; only for objects created at or after start_date and, except deletions, before the
    split S (objects created from S on are read by this sync's `created` windows)."""

    def __init__(self, object_name: str, fetcher: ObjectFetcher, start: int, split: int) -> None:
        self._object_name = object_name
        self._fetcher = fetcher
        self._start = start
        self._split = split

    def worth_fetching(self, change: Change) -> bool:
        """Decided from the event when it carries the object's `created`; an object named by a related object (a
        refund's charge) is decided after its re-fetch."""
        if change.deletion:
            return change.created is None or change.created >= self._start
        return self._owns(change.created) if change.own else True

    def record_of(self, change: Change) -> Optional[dict]:
        if change.deletion:
            return self._tombstone(change)
        obj = self._fetcher.fetch(change.object_id)
        if obj is None or not self._owns(obj.get("created")):
            return None
        obj["updated"] = change.updated
        return obj

    def _owns(self, created: Optional[int]) -> bool:
        return created is None or self._start <= created < self._split

    def _tombstone(self, change: Change) -> dict:
        """Enough to find and flag the object downstream; `created` keeps it sortable by the stream's cursor where
        destinations dedupe on it."""
        return {"id": change.object_id, "object": self._object_name, "created": change.created, "is_deleted": True,
                "updated": change.updated}


class ChangedObjectsPartition(Partition):
    """Emits the records of some changes. One of several, so that re-fetching runs on the CDK's worker threads."""

    def __init__(self, stream_name: str, changes: List[Change], records: ChangeRecords,
                 stream_slice: StreamSlice) -> None:
        self._stream_name = stream_name
        self._changes = changes
        self._records = records
        self._slice = stream_slice

    def read(self) -> Iterable[Record]:
        for change in self._changes:
            data = self._records.record_of(change)
            if data is not None:
                yield Record(data=data, stream_name=self._stream_name, associated_slice=self._slice)

    def to_slice(self) -> Optional[Mapping[str, Any]]:
        return self._slice

    def stream_name(self) -> str:
        return self._stream_name

    def __hash__(self) -> int:
        return hash((self._stream_name, tuple(sorted(self._slice.items()))))


class EventsCheckpoint:
    """The stream's events cursor: its value for the state, and when it may move to the horizon.

    It moves only once the events of (previous, horizon] were listed and every partition re-fetching the objects
    they name has closed; a failure anywhere leaves it where it was, so the next sync reads those events again.
    """

    def __init__(self, previous: Optional[int], horizon: int) -> None:
        self.previous = previous
        self.horizon = horizon
        self.value = horizon if previous is None else previous
        self._open = 0
        self._listed = False
        self._lock = threading.Lock()

    @property
    def reads_events(self) -> bool:
        return self.previous is not None

    def opened(self) -> None:
        with self._lock:
            self._open += 1

    def listed(self) -> bool:
        """All partitions are out; True when that moved the cursor."""
        with self._lock:
            self._listed = True
            return self._advance_if_done()

    def closed(self) -> bool:
        """One partition finished; True when that moved the cursor."""
        with self._lock:
            self._open -= 1
            return self._advance_if_done()

    def _advance_if_done(self) -> bool:
        if not self._listed or self._open:
            return False
        self.value = max(self.previous or 0, self.horizon)
        return True


class EventsCursorStateConverter(FinishedWindowsStateConverter):
    """Writes `events_created` next to `created` in every state message of the stream.

    The CDK's ConcurrentCursor writes a single-key state built by its state converter; the manifest cannot add a
    second cursor to it, so this converter (installed like FinishedWindowsStateConverter, through the CDK seam)
    adds the checkpoint's.
    """

    checkpoint: EventsCheckpoint

    def convert_to_state_message(self, cursor_field: Any,
                                 stream_state: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        state = dict(super().convert_to_state_message(cursor_field, stream_state))
        state[EVENTS_CURSOR_FIELD] = str(self.checkpoint.value)
        return state


class ChangeCaptureCursor(Cursor):
    """The stream's cursor as the CDK sees it: `created` windows go to the CDK's ConcurrentCursor, the changed
    objects partitions to the EventsCheckpoint (they have no `created` window to add to the state)."""

    def __init__(self, windows: ConcurrentCursor, checkpoint: EventsCheckpoint) -> None:
        self._windows = windows
        self._checkpoint = checkpoint

    @property
    def state(self) -> MutableMapping[str, Any]:
        return self._windows.state

    def observe(self, record: Record) -> None:
        if not isinstance(record.associated_slice, Mapping) or "changes_until" not in record.associated_slice:
            self._windows.observe(record)

    def close_partition(self, partition: Partition) -> None:
        if isinstance(partition, ChangedObjectsPartition):
            if self._checkpoint.closed():
                self.emit_state()
        else:
            self._windows.close_partition(partition)

    def emit_state(self) -> None:
        self._windows.ensure_at_least_one_state_emitted()

    def ensure_at_least_one_state_emitted(self) -> None:
        self._windows.ensure_at_least_one_state_emitted()

    def should_be_synced(self, record: Record) -> bool:
        return self._windows.should_be_synced(record)

    def stream_slices(self) -> Iterable[StreamSlice]:
        return self._windows.stream_slices()

    def get_cursor_datetime_from_state(self, stream_state: Mapping[str, Any]) -> Optional[datetime]:
        return self._windows.get_cursor_datetime_from_state(stream_state)


class ChangeCaptureGenerator(PartitionGenerator):
    """Yields the stream's `created` windows, then (when the stream has an events cursor) lists the events since
    it and yields partitions re-fetching the changed objects the windows do not read (see the module docstring).
    """

    def __init__(self, windows: PartitionGenerator, stream_name: str, feed: ChangeFeed, lister: EventLister,
                 records: Callable[[int], ChangeRecords], checkpoint: EventsCheckpoint,
                 on_advance: Callable[[], None]) -> None:
        self._windows = windows
        self._stream_name = stream_name
        self._feed = feed
        self._lister = lister
        self._records = records  # the emission rules, given this sync's split
        self._checkpoint = checkpoint
        self._on_advance = on_advance

    def generate(self) -> Iterable[Partition]:
        split = NEVER
        for partition in self._windows.generate():
            split = min(split, int(partition.to_slice()[WINDOW_START]))
            yield partition
        if not self._checkpoint.reads_events:
            return
        yield from self._changed_objects(self._records(split))
        if self._checkpoint.listed():
            self._on_advance()

    def _changed_objects(self, records: ChangeRecords) -> Iterable[Partition]:
        checkpoint = self._checkpoint
        events = self._lister.events(self._feed.event_types, after=checkpoint.previous, until=checkpoint.horizon)
        changes = [change for change in self._feed.newest_changes(events).values() if records.worth_fetching(change)]
        for number, first in enumerate(range(0, len(changes), OBJECTS_PER_PARTITION)):
            stream_slice = StreamSlice(partition={"changes": number}, cursor_slice={
                "changes_after": str(checkpoint.previous), "changes_until": str(checkpoint.horizon)})
            checkpoint.opened()
            yield ChangedObjectsPartition(self._stream_name, changes[first:first + OBJECTS_PER_PARTITION], records,
                                          stream_slice)


class StaleEventsCursorFallback:
    """Drops the saved state of every stream whose events cursor is older than Stripe keeps events, and says so.

    Stripe lists only the last 30 days of events: reading from an older cursor would silently miss the changes
    and deletions in between. Without its state the stream is re-read whole (from start_date), every object in
    its current state, and its events cursor restarts at this sync's horizon. `warnings` name each stream and
    its gap (logged by the source at WARN when it reads). The manifest cannot look at a saved state, so this runs
    on the state before the source is built.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.warnings: List[str] = []

    def keep(self, state: Optional[List[AirbyteStateMessage]]) -> Optional[List[AirbyteStateMessage]]:
        if not state:
            return state
        now = int(self._clock())
        oldest_listed = now - EVENT_RETENTION_SECONDS
        kept = []
        for message in state:
            cursor = previous_events_cursor(_as_dict(message.stream.stream_state) if message.stream else {})
            if cursor is not None and cursor < oldest_listed + RETENTION_MARGIN_SECONDS:
                self.warnings.append(
                    f"Stream '{_stream_name(message)}': its events cursor {_iso(cursor)} is "
                    f"{(now - cursor) / 86_400:.1f} days old, beyond Stripe's 30-day event retention: the changes and "
                    f"deletions from {_iso(cursor)} to {_iso(oldest_listed)} can no longer be listed. Re-reading the "
                    f"whole stream from start_date instead, so every object arrives in its current state; deletions "
                    f"in that gap cannot be recovered. Sync at least every few weeks to avoid this.")
                continue
            kept.append(message)
        return kept


def previous_events_cursor(stream_state: Mapping[str, Any]) -> Optional[int]:
    """The saved events cursor; a state written before `events_created` existed reads events from `created`
    (objects were read after that second, so changes made after it are exactly the events to read)."""
    for key in (EVENTS_CURSOR_FIELD, CURSOR_FIELD):
        if key in stream_state:
            return _epoch_seconds(stream_state[key])
    return None


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ChangeCapture:
    """Adds the events part of incremental syncs to a stream the CDK built from the manifest.

    The manifest describes one paginated list per stream; it cannot add a second cursor, a partition that reads
    another endpoint, or a second state key to a stream. For each stream that declares `change_events`, this gives
    the pieces above: a partition generator that follows the `created` windows with the changed objects
    partitions, a cursor that routes them, and a state converter that writes both cursors. Requests go through
    requesters built from the manifest's `definitions.requester`, so they share the streams' auth,
    Stripe-Version, retries, rate budget and messages.
    """

    def __init__(self, factory: Any, manifest: Mapping[str, Any], facts: ManifestFacts, config: Mapping[str, Any],
                 state: Optional[List[AirbyteStateMessage]], completer: Callable[[StreamFacts], Any]) -> None:
        self._factory = factory
        self._requester_definition = manifest["definitions"]["requester"]
        self._facts = facts
        self._config = config
        self._completer = completer
        self._previous = {
            _stream_name(message): previous_events_cursor(_as_dict(message.stream.stream_state))
            for message in state or [] if message.stream
        }

    def wrap(self, name: str, windows_generator: PartitionGenerator,
             windows: Cursor) -> tuple[PartitionGenerator, Cursor]:
        """The stream's partition generator and cursor with change capture, or as they were when the stream declares
        no change events or is not incremental."""
        facts = self._facts.stream(name)
        if facts is None or not facts.change_events or not isinstance(windows, ConcurrentCursor):
            return windows_generator, windows
        checkpoint = EventsCheckpoint(self._previous.get(name), cdk_seam.window_end(windows))
        converter = EventsCursorStateConverter.install(windows)
        converter.checkpoint = checkpoint
        cursor = ChangeCaptureCursor(windows, checkpoint)
        by_id = self._requester(facts, facts, missing_is_gone=True)
        fetcher = ObjectFetcher(by_id, facts.expansions, self._completion(facts))
        generator = ChangeCaptureGenerator(
            windows_generator, name, ChangeFeed.of(facts), EventLister(self._requester(facts, self._facts.events)),
            functools.partial(ChangeRecords, facts.object_name, fetcher, self._start_date()), checkpoint,
            on_advance=cursor.emit_state)
        return generator, cursor

    def _completion(self, facts: StreamFacts) -> Optional[Callable[[dict], dict]]:
        """What a re-fetched object needs to look like the stream's listed records: complete sub-lists, and the
        `created` copy of a `created_from` stream."""
        sub_lists = self._completer(facts)
        if not facts.created_from:
            return sub_lists.complete if sub_lists else None

        def complete(obj: dict) -> dict:
            copy_created(obj, facts.created_from)
            return sub_lists.complete(obj) if sub_lists else obj

        return complete

    def _requester(self, stream: StreamFacts, target: StreamFacts, missing_is_gone: bool = False) -> Any:
        """A requester of `target`'s resource whose errors name `stream` (and `target`'s permission)."""
        # 404 on an object by id: deleted since its event (the next sync reads the deletion)
        gone = [{"type": "HttpResponseFilter", "http_codes": [404], "action": "IGNORE"}] if missing_is_gone else None
        parameters = {"name": stream.name, "resource": target.resource, "permission": target.permission.name,
                      "permission_label": target.permission.label}
        return cdk_seam.build_requester(self._factory, self._requester_definition, parameters, self._config,
                                        name=f"{stream.name}_{target.resource}", extra_filters=gone)

    def _start_date(self) -> int:
        start = self._config.get("start_date")
        if not start:
            return 0
        return int(datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())
