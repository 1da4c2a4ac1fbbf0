"""Updates and deletions through Stripe's Events API: the CDK wiring, and the rules as a whole.

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
a second cursor into the state. The rules are pure code in change_rules.py, Stripe I/O in stripe_events.py, and
the classes below wire them onto the streams the CDK built, each class one of those jobs.

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
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Mapping, MutableMapping, Optional

from airbyte_cdk.models import AirbyteStateMessage
from airbyte_cdk.sources.streams.concurrent.cursor import ConcurrentCursor, Cursor
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.streams.concurrent.partitions.partition_generator import PartitionGenerator
from airbyte_cdk.sources.types import Record, StreamSlice

from source_stripe_ontologie import cdk_seam
from source_stripe_ontologie.cdk_seam import FinishedWindowsStateConverter
from source_stripe_ontologie.components import copy_created
from source_stripe_ontologie.cursors import WINDOW_START, CursorDecorator
from source_stripe_ontologie.change_rules import (
    RETENTION,
    Change,
    ChangeFeed,
    ChangeRecords,
    previous_events_cursor,
)
from source_stripe_ontologie.incremental import EVENTS_CURSOR_FIELD, _as_dict, _stream_name
from source_stripe_ontologie.livemode_guard import RequireKeyMode
from source_stripe_ontologie.stream_facts import ManifestFacts, StreamFacts
from source_stripe_ontologie.stripe_events import EventLister, ObjectFetcher, QuietAccountEvents

logger = logging.getLogger("airbyte")

OBJECTS_PER_PARTITION = 50  # changed objects re-fetched by one partition (partitions run in parallel)
NEVER = sys.maxsize


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


class RequesterOnFirstUse:
    """A requester built when its first request is sent.

    Every incremental stream gets an events lister and an object fetcher, each with its own requester built from
    the manifest (~4 ms of CPU each). A first sync, a full refresh, or a Connect account with no new events never
    sends them a request, yet built all of them: ~0.15 s per source for 17 streams, paid again for every account of
    a Connect sync.
    """

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._requester: Optional[Any] = None
        self._lock = threading.Lock()

    def send_request(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._requester is None:
                self._requester = self._build()
        return self._requester.send_request(*args, **kwargs)


class ChangeCaptureCursor(CursorDecorator):
    """The stream's cursor as the CDK sees it: `created` windows go to the CDK's ConcurrentCursor, the changed
    objects partitions to the EventsCheckpoint (they have no `created` window to add to the state)."""

    def __init__(self, windows: ConcurrentCursor, checkpoint: EventsCheckpoint) -> None:
        super().__init__(windows)
        self._windows = windows
        self._checkpoint = checkpoint

    def observe(self, record: Record) -> None:
        """Nothing to observe: both cursors' state is written without the records' values (the end of the finished
        windows, and the checkpoint), so the per-record cost is skipped (see streams.UnobservedWindowsCursor)."""

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
                 stale: Optional[Mapping[str, int]] = None, one_events_probe: bool = False) -> None:
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
        # A Connect sync asks each account once whether it recorded any event since its streams' oldest cursor.
        cursors = [cursor for cursor in self._previous.values() if cursor is not None]
        self._quiet = QuietAccountEvents(self._requester(facts.events, facts.events), min(cursors) if cursors else None,
                                         clock=time.time) if one_events_probe else None

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
        fetcher = ObjectFetcher(by_id, facts.expansions, self._completion(facts))
        guard = RequireKeyMode(parameters={"name": name}, config=self._config).transform
        generator = ChangeCaptureGenerator(
            windows_generator, name, ChangeFeed.of(facts),
            EventLister(self._requester(facts, self._facts.events), stream_name=name, quiet=self._quiet),
            functools.partial(ChangeRecords, facts.object_name, fetcher, self._start_date(), guard=guard),
            checkpoint, on_advance=cursor.emit_state, restart_windows=cursor.restart_windows)
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
        return RequesterOnFirstUse(functools.partial(
            cdk_seam.build_requester, self._factory, self._requester_definition, stream.requester_parameters(target),
            self._config, name=f"{stream.name}_{target.resource}", extra_filters=gone))

    def _start_date(self) -> int:
        start = self._config.get("start_date")
        if not start:
            return 0
        return int(datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())
