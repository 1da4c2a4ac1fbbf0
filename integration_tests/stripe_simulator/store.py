"""In-memory storage ordered for Stripe's newest-first cursor paging.

Each resource of each mode is a ``Collection``: parallel lists ``keys`` (``(created, sequence)``, ascending) and
``records``, so a ``created[...]`` window is two ``bisect`` calls and a cursor is one dict lookup plus one
bisect. Newest first means walking the window from its high end. Objects created in the same second are ordered by a sequence number: seeded
objects by id, objects added later after them (so the most recently added comes first, as events must). Each record caches its JSON bytes, so serving a page is a join.
"""

from __future__ import annotations

import bisect
import json
from typing import Callable, Dict, Iterable, List, Optional, Tuple

try:  # orjson is ~10x faster; it ships with airbyte-cdk, but the simulator works without it
    import orjson

    def dumps(obj) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover
    def dumps(obj) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


def _created(obj: dict) -> int:
    return obj["created"]


class Record:
    """One stored object and its cached JSON encoding."""

    __slots__ = ("obj", "_json", "key")

    def __init__(self, obj: dict):
        self.obj = obj
        self._json: Optional[bytes] = None
        self.key: Tuple[int, int] = (0, 0)

    @property
    def json(self) -> bytes:
        data = self._json
        if data is None:
            data = self._json = dumps(self.obj)
        return data

    def invalidate(self) -> None:
        self._json = None


class Collection:
    """Objects of one resource in one mode, sorted by ``(created, sequence)``."""

    def __init__(self, objects: Iterable[dict] = (), created_of: Optional[Callable[[dict], int]] = None):
        # created_of: the sort time of an object; for the few Stripe objects without ``created`` (tax codes,
        # country specs...) the simulator keeps it outside the object, so the object stays valid.
        self.created_of = created_of or _created
        ordered = sorted(objects, key=lambda o: (self.created_of(o), o["id"]))
        self.records: List[Record] = [Record(o) for o in ordered]
        self.keys: List[Tuple[int, int]] = []
        for seq, rec in enumerate(self.records):
            rec.key = (self.created_of(rec.obj), seq)
            self.keys.append(rec.key)
        self.by_id: Dict[str, Record] = {r.obj["id"]: r for r in self.records}
        self._next_seq = len(self.records)
        self._last_seq = -1  # sequence numbers below every other: listed last within their second

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, obj: dict, listed_last: bool = False) -> Record:
        """Insert ``obj``; within its second it is listed first (newest), or last with ``listed_last``."""
        if obj["id"] in self.by_id:
            raise ValueError(f"duplicate id {obj['id']}")
        rec = Record(obj)
        if listed_last:
            key = rec.key = (self.created_of(obj), self._last_seq)
            self._last_seq -= 1
        else:
            key = rec.key = (self.created_of(obj), self._next_seq)
            self._next_seq += 1
        i = bisect.bisect_left(self.keys, key)
        self.keys.insert(i, key)
        self.records.insert(i, rec)
        self.by_id[obj["id"]] = rec
        return rec

    def index_of(self, obj_id: str) -> Optional[int]:
        rec = self.by_id.get(obj_id)
        if rec is None:
            return None
        return bisect.bisect_left(self.keys, rec.key)

    def remove(self, obj_id: str) -> Record:
        i = self.index_of(obj_id)
        if i is None:
            raise KeyError(obj_id)
        del self.keys[i]
        rec = self.records.pop(i)
        del self.by_id[obj_id]
        return rec

    def window(self, gt=None, gte=None, lt=None, lte=None) -> Tuple[int, int]:
        """Ascending index range ``[lo, hi)`` of objects whose ``created`` satisfies the bounds."""
        lo, hi = 0, len(self.keys)
        if gte is not None:
            lo = max(lo, bisect.bisect_left(self.keys, (gte,)))
        if gt is not None:
            lo = max(lo, bisect.bisect_left(self.keys, (gt + 1,)))
        if lte is not None:
            hi = min(hi, bisect.bisect_left(self.keys, (lte + 1,)))
        if lt is not None:
            hi = min(hi, bisect.bisect_left(self.keys, (lt,)))
        return lo, max(lo, hi)

    def newest_first(self) -> List[Record]:
        return self.records[::-1]

    def page(self, lo: int, hi: int, limit: int, predicate: Optional[Callable[[dict], bool]] = None,
             after_index: Optional[int] = None, before_index: Optional[int] = None) -> Tuple[List[Record], bool]:
        """A newest-first page of the window ``[lo, hi)``.

        ``after_index`` (a starting_after cursor) returns the ``limit`` matches older than it;
        ``before_index`` (an ending_before cursor) the ``limit`` matches just newer than it, still newest
        first. ``has_more`` says whether more matches lie beyond the page in the paging direction.
        """
        records = self.records
        out: List[Record] = []
        if before_index is not None:
            i = before_index + 1
            while i < hi:
                rec = records[i]
                if predicate is None or predicate(rec.obj):
                    if len(out) == limit:
                        out.reverse()
                        return out, True
                    out.append(rec)
                i += 1
            out.reverse()
            return out, False
        i = (after_index if after_index is not None else hi) - 1
        while i >= lo:
            rec = records[i]
            if predicate is None or predicate(rec.obj):
                if len(out) == limit:
                    return out, True
                out.append(rec)
            i -= 1
        return out, False


def list_body(url: str, records: Iterable[Record], has_more: bool, encoded: Optional[List[bytes]] = None) -> bytes:
    """Stripe's list envelope, assembled from cached object bytes."""
    items = encoded if encoded is not None else [r.json for r in records]
    return b'{"object":"list","data":[' + b",".join(items) + b'],"has_more":' + (
        b"true" if has_more else b"false") + b',"url":' + dumps(url) + b"}"
