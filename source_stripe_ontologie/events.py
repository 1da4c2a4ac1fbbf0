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
- A deletion always wins: one change per object, its deletion when any listed event deletes it (a deletion is
  final, Stripe never reuses an id; `customer.discount.deleted` follows `customer.deleted`, `price.updated` can
  follow `product.deleted`, and same-second events come in no defined order), else its newest event.
- Re-fetch: GET /v1/<resource>/<id> with the stream's expansions, the pinned Stripe-Version and, for invoices,
  every line: event payloads are rendered in the API version of their own time and embed at most 10 lines.
  Re-fetched objects pass the stream's live/test-mode guard like window records. An object gone since its event
  (404, or a customer answering `deleted: true`) emits its tombstone (its deletion, newer than H, is emitted
  again by the next sync).
- Deletions (`customer.deleted`, `product.deleted`, `invoice.deleted`) emit
  `{id, object, created, is_deleted: true, changed_at}` whatever S (a deleted object is in no list); a tombstone
  of an object found gone on re-fetch has `created` only when its event carried it.
  `customer.subscription.deleted` is a cancellation: the subscription is re-fetched like any other change.
- Objects created before start_date are never emitted. Records of changes carry `changed_at` (epoch seconds of
  the winning event), a field no Stripe object has: Stripe's own fields (a product's `updated`) are left as
  Stripe sent them. Records read by their `created` window carry no `changed_at`.
- Retention: events are listed before the stream's windows, and the 30-day edge is checked then, on Stripe's
  clock (its `Date` header) as well as ours, besides the check when the source is built. A cursor past the edge
  (1 h margin) takes the fallback: WARN, the stream re-read in full, and the deletions Stripe still lists emitted.

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
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, MutableMapping, Optional, Sequence

import orjson
from airbyte_cdk.models import AirbyteStateMessage, FailureType
from airbyte_cdk.sources.streams.concurrent.cursor import ConcurrentCursor, Cursor
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.streams.concurrent.partitions.partition_generator import PartitionGenerator
from airbyte_cdk.sources.streams.http.pagination_reset_exception import PaginationResetRequiredException
from airbyte_cdk.sources.types import Record, StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_stripe_ontologie import cdk_seam
from source_stripe_ontologie.cdk_seam import FinishedWindowsStateConverter
from source_stripe_ontologie.incremental import (
    CURSOR_FIELD,
    EVENTS_CURSOR_FIELD,
    _as_dict,
    _epoch_seconds,
    _stream_name,
)
from source_stripe_ontologie.livemode_guard import RequireKeyMode
from source_stripe_ontologie.stream_facts import ManifestFacts, StreamFacts

logger = logging.getLogger("airbyte")

MAX_TYPES_PER_REQUEST = 20  # Stripe's limit on `types[]`
EVENT_RETENTION_SECONDS = 30 * 86_400  # Stripe lists the events of the last 30 days
RETENTION_MARGIN_SECONDS = 3_600  # a cursor this close to the retention edge is treated as past it
MAX_RELISTS = 5  # times an events list is read again after its starting_after event vanished
OBJECTS_PER_PARTITION = 50  # changed objects re-fetched by one partition (partitions run in parallel)
WINDOW_START = "start_time"  # the slice field where DatetimeBasedCursor puts a window's first second
NEVER = sys.maxsize
# The connector's change time, on records emitted because of an event. A name of its own: no Stripe object has a
# property `changed_at` (checked against every component of spec3.json), so it never overwrites Stripe's fields
# (products have their own `updated`).
CHANGED_AT = "changed_at"


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

    @classmethod
    def of(cls, facts: StreamFacts) -> "ChangeFeed":
        return cls(dict(facts.change_events), frozenset(facts.deletion_events))

    @property
    def event_types(self) -> List[str]:
        return list(self.id_field_by_type)

    def newest_changes(self, events: Iterable[Mapping[str, Any]]) -> Dict[str, Change]:
        """One change per object: its deletion if any event deletes it, else its newest event.

        A deletion is final (Stripe never reuses an id), so it wins over any other event of the object, newer or
        in the same second: Stripe sends `customer.discount.deleted` after `customer.deleted`, a `price.updated`
        can follow `product.deleted`, and within one second its order is not defined. `events` come newest
        first, so among events of one kind in one second the first listed wins.
        """
        changes: Dict[str, Change] = {}
        for event in events:
            change = self._change(event)
            if change is not None:
                known = changes.get(change.object_id)
                if known is None or _supersedes(change, known):
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
                      own=own, created=payload.get("created") if own else None)


def _supersedes(change: Change, known: Change) -> bool:
    if change.deletion != known.deletion:
        return change.deletion
    return change.updated > known.updated



class EventLister:
    """Pages `GET /v1/events?types[]=...&created[gt]=...&created[lte]=...` (at most 20 types a request), newest
    first, through a requester built from the manifest (same auth, headers, retries and error messages).

    An event a page started after can vanish while the list is read (it left the 30-day retention): Stripe then
    answers 400 `resource_missing` on `starting_after`, and the list is read again from its newest event (the
    events are gathered per object, so an event listed twice changes nothing), at most MAX_RELISTS times.
    `stripe_now` is the latest time Stripe's `Date` header told: retention is counted on Stripe's clock.
    """

    def __init__(self, requester: Any, page_size: int = 100, stream_name: str = "") -> None:
        self._requester = requester
        self._page_size = page_size
        self._stream_name = stream_name
        self.stripe_now: Optional[float] = None

    def events(self, types: Sequence[str], after: int, until: int) -> Iterator[Mapping[str, Any]]:
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


class ChangeRecords:
    """What the events part of a sync emits for a change: a tombstone for a deletion, else the object re-fetched
    by id with CHANGED_AT; only for objects created at or after start_date and, except deletions, before the
    split S (objects created from S on are read by this sync's `created` windows).

    A re-fetch that finds the object gone (404, or `deleted: true`) emits its tombstone too: it was deleted after
    its event, and a deletion is final. Re-fetched objects pass the stream's live/test-mode `guard`, like the
    records of its windows.
    """

    def __init__(self, object_name: str, fetcher: ObjectFetcher, start: int, split: int,
                 guard: Optional[Callable[[dict], None]] = None) -> None:
        self._object_name = object_name
        self._fetcher = fetcher
        self._start = start
        self._split = split
        self._guard = guard

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
        if obj is None:
            return self._tombstone(change)
        if not self._owns(obj.get("created")):
            return None
        if self._guard is not None:
            self._guard(obj)
        obj[CHANGED_AT] = change.updated
        return obj

    def _owns(self, created: Optional[int]) -> bool:
        return created is None or self._start <= created < self._split

    def _tombstone(self, change: Change) -> dict:
        """Enough to find and flag the object downstream; `created` keeps it sortable by the stream's cursor where
        destinations dedupe on it."""
        return {"id": change.object_id, "object": self._object_name, "created": change.created, "is_deleted": True,
                CHANGED_AT: change.updated}


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

    `stale` is the cursor of a stream that fell back to a full re-read because its cursor is past Stripe's
    retention (see StaleEventsCursorFallback): the deletions Stripe still lists are read, and until they are
    emitted the state keeps the stale cursor, so an interrupted sync falls back again instead of losing them.
    """

    def __init__(self, previous: Optional[int], horizon: int, stale: Optional[int] = None) -> None:
        self.previous = previous
        self.horizon = horizon
        self.stale = stale
        self.value = previous if previous is not None else stale if stale is not None else horizon
        self._open = 0
        self._listed = False
        self._lock = threading.Lock()

    @property
    def reads_events(self) -> bool:
        return self.previous is not None

    @property
    def reads_deletions_only(self) -> bool:
        return self.previous is None and self.stale is not None

    def fall_back(self) -> None:
        """The cursor turned out past the retention edge when its events were listed: keep only deletions."""
        self.stale, self.previous = self.previous, None

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

    def skip_listing(self) -> None:
        """Nothing to list (a fallen-back stream without deletion events): the full re-read covers it."""
        with self._lock:
            self.value = self.horizon


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
        """Emit the state under the windows cursor's lock: the generator thread emits it when the events cursor
        moves, while worker results close windows (which change the same state) on the main thread."""
        with cdk_seam.cursor_lock(self._windows):
            self._windows.ensure_at_least_one_state_emitted()

    def restart_windows(self) -> None:
        """Read the stream's windows from its start, as without a saved state (the fallback of a stale events
        cursor found when the events are listed, before any window was generated)."""
        cdk_seam.restart_from_start(self._windows)

    def ensure_at_least_one_state_emitted(self) -> None:
        self._windows.ensure_at_least_one_state_emitted()

    def should_be_synced(self, record: Record) -> bool:
        return self._windows.should_be_synced(record)

    def stream_slices(self) -> Iterable[StreamSlice]:
        return self._windows.stream_slices()

    def get_cursor_datetime_from_state(self, stream_state: Mapping[str, Any]) -> Optional[datetime]:
        return self._windows.get_cursor_datetime_from_state(stream_state)


class ChangeCaptureGenerator(PartitionGenerator):
    """Lists the events since the stream's events cursor, then yields its `created` windows, then partitions
    re-fetching the changed objects the windows do not read (see the module docstring).

    The events are listed first so that Stripe's 30-day retention is checked when they are listed, on Stripe's
    clock, and not only when the source was built: a big account's windows can take longer than the margin, and
    events expiring in between would be skipped while the cursor moved. A cursor found past the edge takes the
    fallback of StaleEventsCursorFallback (WARN, windows from the start, the retained deletions), which is only
    possible before the windows are generated.
    """

    def __init__(self, windows: PartitionGenerator, stream_name: str, feed: ChangeFeed, lister: EventLister,
                 records: Callable[[int], ChangeRecords], checkpoint: EventsCheckpoint,
                 on_advance: Callable[[], None], restart_windows: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.time) -> None:
        self._windows = windows
        self._stream_name = stream_name
        self._feed = feed
        self._lister = lister
        self._records = records  # the emission rules, given this sync's split
        self._checkpoint = checkpoint
        self._on_advance = on_advance
        self._restart_windows = restart_windows
        self._clock = clock

    def generate(self) -> Iterable[Partition]:
        checkpoint = self._checkpoint
        try:
            changes = self._listed_changes()
        except Exception as failure:  # e.g. a key without Events: Read: the windows still deliver new objects
            changes, listing_failed = None, failure
        else:
            listing_failed = None
        split = NEVER
        for partition in self._windows.generate():
            split = min(split, int(partition.to_slice()[WINDOW_START]))
            yield partition
        if listing_failed is not None:
            raise listing_failed  # the events cursor stays where it was
        if changes is None:
            return
        yield from self._changed_objects(changes, self._records(split))
        if checkpoint.listed():
            self._on_advance()

    def _listed_changes(self) -> Optional[List[Change]]:
        """The changes to emit after the windows (None: this sync reads no events)."""
        checkpoint = self._checkpoint
        if checkpoint.reads_events:
            events = self._lister.events(self._feed.event_types, after=checkpoint.previous, until=checkpoint.horizon)
            changes = list(self._feed.newest_changes(events).values())
            now = max(self._clock(), self._lister.stripe_now or 0)
            if not RETENTION.passed(checkpoint.previous, now):
                return changes
            logger.warning(RETENTION.warning(self._stream_name, checkpoint.previous, now))
            checkpoint.fall_back()
            self._restart_windows()
            # Everything Stripe still lists was just listed: its deletions are the retained ones.
            return [change for change in changes if change.deletion]
        if checkpoint.reads_deletions_only:
            if not self._feed.deletions:
                checkpoint.skip_listing()
                return None
            events = self._lister.events(sorted(self._feed.deletions), after=0, until=checkpoint.horizon)
            return list(self._feed.newest_changes(events).values())
        return None

    def _changed_objects(self, listed: List[Change], records: ChangeRecords) -> Iterable[Partition]:
        checkpoint = self._checkpoint
        after = checkpoint.previous if checkpoint.previous is not None else checkpoint.stale
        changes = [change for change in listed if records.worth_fetching(change)]
        for number, first in enumerate(range(0, len(changes), OBJECTS_PER_PARTITION)):
            stream_slice = StreamSlice(partition={"changes": number}, cursor_slice={
                "changes_after": str(after), "changes_until": str(checkpoint.horizon)})
            checkpoint.opened()
            yield ChangedObjectsPartition(self._stream_name, changes[first:first + OBJECTS_PER_PARTITION], records,
                                          stream_slice)


class RetentionEdge:
    """Stripe lists only the last 30 days of events. A cursor closer to that edge than the margin is treated as
    past it (the events near the edge may expire while they are listed), and the warning says what is lost."""

    def __init__(self, margin: int = RETENTION_MARGIN_SECONDS) -> None:
        self._margin = margin

    def passed(self, cursor: int, now: float) -> bool:
        return cursor < int(now) - EVENT_RETENTION_SECONDS + self._margin

    @staticmethod
    def warning(stream: Optional[str], cursor: int, now: float) -> str:
        now = int(now)
        oldest_listed = now - EVENT_RETENTION_SECONDS
        return (f"Stream '{stream}': its events cursor {_iso(cursor)} is {(now - cursor) / 86_400:.1f} days old, "
                f"beyond Stripe's 30-day event retention: the changes and deletions from {_iso(cursor)} to "
                f"{_iso(oldest_listed)} can no longer be listed. Re-reading the whole stream from start_date "
                f"instead, so every object arrives in its current state, and emitting the deletions Stripe still "
                f"lists (its last 30 days); deletions before {_iso(oldest_listed)} cannot be recovered. Sync at "
                f"least every few weeks to avoid this.")


RETENTION = RetentionEdge()


class StaleEventsCursorFallback:
    """Drops the saved state of every stream whose events cursor is older than Stripe keeps events, and says so.

    Stripe lists only the last 30 days of events: reading from an older cursor would silently miss the changes
    and deletions in between. Without its state the stream is re-read whole (from start_date), every object in
    its current state, and the deletions Stripe still lists are emitted (`stale` keeps each such stream's
    cursor for ChangeCapture). `warnings` name each stream and its gap (logged by the source at WARN when it
    reads). The manifest cannot look at a saved state, so this runs on the state before the source is built;
    ChangeCaptureGenerator checks again when it lists the events.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.warnings: List[str] = []
        self.stale: Dict[str, int] = {}

    def keep(self, state: Optional[List[AirbyteStateMessage]]) -> Optional[List[AirbyteStateMessage]]:
        if not state:
            return state
        now = int(self._clock())
        kept = []
        for message in state:
            cursor = previous_events_cursor(_as_dict(message.stream.stream_state) if message.stream else {})
            if cursor is not None and RETENTION.passed(cursor, now):
                self.warnings.append(RETENTION.warning(_stream_name(message), cursor, now))
                self.stale[_stream_name(message)] = cursor
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
                 state: Optional[List[AirbyteStateMessage]], completer: Callable[[StreamFacts], Any],
                 stale: Optional[Mapping[str, int]] = None) -> None:
        self._factory = factory
        self._requester_definition = manifest["definitions"]["requester"]
        self._facts = facts
        self._config = config
        self._completer = completer
        self._stale = dict(stale or {})  # streams re-read in full: their stale events cursors
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
        checkpoint = EventsCheckpoint(self._previous.get(name), cdk_seam.window_end(windows), self._stale.get(name))
        converter = EventsCursorStateConverter.install(windows)
        converter.checkpoint = checkpoint
        cursor = ChangeCaptureCursor(windows, checkpoint)
        by_id = self._requester(facts, facts, missing_is_gone=True)
        sub_lists = self._completer(facts)
        fetcher = ObjectFetcher(by_id, facts.expansions, sub_lists.complete if sub_lists else None)
        guard = RequireKeyMode(parameters={"name": name}, config=self._config).transform
        generator = ChangeCaptureGenerator(
            windows_generator, name, ChangeFeed.of(facts),
            EventLister(self._requester(facts, self._facts.events), stream_name=name),
            functools.partial(ChangeRecords, facts.object_name, fetcher, self._start_date(), guard=guard),
            checkpoint, on_advance=cursor.emit_state, restart_windows=cursor.restart_windows)
        return generator, cursor

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
