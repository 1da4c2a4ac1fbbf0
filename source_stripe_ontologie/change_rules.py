"""Which events change which object, and what a change becomes: the pure rules of change capture.

No I/O and no CDK here: `ChangeFeed` turns a stream's events into one change per object (a deletion always wins,
else the newest event), `ChangeRecords` decides what a change emits (a tombstone, the object re-fetched, or
nothing) given a fetcher, and `RetentionEdge` says when an events cursor is past what Stripe still lists.
source_stripe_ontologie/change_capture.py states the rules as a whole and wires them onto the CDK's streams.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional

from source_stripe_ontologie.incremental import CURSOR_FIELD, EVENTS_CURSOR_FIELD, _epoch_seconds
from source_stripe_ontologie.stream_facts import StreamFacts

if TYPE_CHECKING:  # only a fetcher's `fetch(object_id)` is used: the rules do no I/O themselves
    from source_stripe_ontologie.stripe_events import ObjectFetcher

EVENT_RETENTION_SECONDS = 30 * 86_400  # Stripe lists the events of the last 30 days
RETENTION_MARGIN_SECONDS = 3_600  # a cursor this close to the retention edge is treated as past it
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
    created_field: str = CURSOR_FIELD  # where an own object carries its creation time (invoice items: `date`)

    @classmethod
    def of(cls, facts: StreamFacts) -> "ChangeFeed":
        return cls(dict(facts.change_events), frozenset(facts.deletion_events), facts.created_from or CURSOR_FIELD)

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
                      own=own, created=payload.get(self.created_field) if own else None)


def _supersedes(change: Change, known: Change) -> bool:
    if change.deletion != known.deletion:
        return change.deletion
    return change.updated > known.updated


class ChangeRecords:
    """What the events part of a sync emits for a change: a tombstone for a deletion, else the object re-fetched
    by id with CHANGED_AT; only for objects created at or after start_date and, except deletions, before the
    split S (objects created from S on are read by this sync's `created` windows).

    A re-fetch that finds the object gone (404, or `deleted: true`) emits its tombstone too: it was deleted after
    its event, and a deletion is final. Re-fetched objects pass the stream's live/test-mode `guard`, like the
    records of its windows.
    """

    def __init__(self, object_name: str, fetcher: "ObjectFetcher", start: int, split: int,
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


def previous_events_cursor(stream_state: Mapping[str, Any]) -> Optional[int]:
    """The saved events cursor; a state written before `events_created` existed reads events from `created`
    (objects were read after that second, so changes made after it are exactly the events to read)."""
    for key in (EVENTS_CURSOR_FIELD, CURSOR_FIELD):
        if key in stream_state:
            return _epoch_seconds(stream_state[key])
    return None


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
