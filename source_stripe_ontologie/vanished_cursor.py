"""Re-reading a list window after its pagination cursor vanished, without sending a record twice.

Stripe pages with `starting_after=<id of the last object seen>`. When that object is deleted during the sync (or
leaves the filtered list), Stripe answers 400 `resource_missing` on `starting_after`, and the list can only be
read again from its first page. The manifest's error handler turns that answer into `RESET_PAGINATION`, and
the CDK re-reads the window from the top, but it forwards every record again: the records already sent would
be sent twice. Why not the manifest: no declarative filter keeps memory across pages of a window.
"""
from __future__ import annotations

import threading
from dataclasses import InitVar, dataclass, field
from typing import Any, Iterable, Mapping, Optional, Set

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.extractors.record_filter import RecordFilter
from airbyte_cdk.sources.declarative.retrievers.pagination_tracker import PaginationTracker
from airbyte_cdk.sources.types import StreamSlice, StreamState
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_stripe_ontologie import cdk_seam


@dataclass
class _SentWindow:
    """What was sent so far from one window, in O(objects sharing the newest or oldest second) memory.

    Stripe lists newest first, so the records sent by the first pass form an unbroken run of the list: every
    listed object created strictly between the oldest and the newest `created` sent has been sent. Only the
    objects of the two boundary seconds need their ids remembered (several objects share a second, and a
    re-read may order them differently). A re-read starts with the objects created since the first pass (above
    the run, or in its newest second): they are new, are sent, and are remembered by id (they are few).
    """

    newest: Optional[int] = None
    oldest: Optional[int] = None
    newest_ids: Set[str] = field(default_factory=set)
    oldest_ids: Set[str] = field(default_factory=set)
    above_ids: Set[str] = field(default_factory=set)

    def already_sent(self, created: int, object_id: str) -> bool:
        if self.newest is None:
            return False
        if created > self.newest:
            return object_id in self.above_ids
        if (created == self.newest and object_id in self.newest_ids) or (
                created == self.oldest and object_id in self.oldest_ids):
            return True
        return self.oldest < created < self.newest

    def sent(self, created: int, object_id: str) -> None:
        if self.newest is None:
            self.newest = self.oldest = created
            self.newest_ids, self.oldest_ids = {object_id}, {object_id}
            return
        if created > self.newest:
            self.above_ids.add(object_id)
            return
        if created == self.newest:
            self.newest_ids.add(object_id)
        if created < self.oldest:
            self.oldest, self.oldest_ids = created, {object_id}
        elif created == self.oldest:
            self.oldest_ids.add(object_id)


@dataclass
class SkipRecordsAlreadySentInWindow(RecordFilter):
    """Drops the records of a window that this sync already sent (they come back when the window is re-read).

    A window (stream slice) is read page after page by one worker thread, so the memory is per thread and
    starts afresh when the thread moves to another window. Records newer than anything sent (created during the
    sync) and records older than the oldest sent go through; they were never sent.
    """

    parameters: InitVar[Mapping[str, Any]]
    config: Mapping[str, Any] = field(default_factory=dict)
    condition: str = ""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._local = threading.local()

    def _window(self, stream_slice: Optional[StreamSlice]) -> _SentWindow:
        key = repr(stream_slice) if stream_slice is not None else ""
        if getattr(self._local, "key", None) != key:
            self._local.key, self._local.window = key, _SentWindow()
        return self._local.window

    def filter_records(
        self,
        records: Iterable[Mapping[str, Any]],
        stream_state: StreamState,
        stream_slice: Optional[StreamSlice] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> Iterable[Mapping[str, Any]]:
        window = self._window(stream_slice)
        for record in records:
            created, object_id = record.get("created"), record.get("id")
            if not isinstance(created, int) or object_id is None:
                yield record
                continue
            if window.already_sent(created, object_id):
                continue
            window.sent(created, object_id)
            yield record


MAX_REREADS_PER_WINDOW = 20


class RereadsOfVanishedCursors(PaginationTracker):
    """Lets a window be re-read once per vanished cursor, up to MAX_REREADS_PER_WINDOW times, then fails naming
    the stream and the window.

    The CDK's own tracker allows one re-read of a window: a second object deleted while the same window is read
    failed the stream with "Something went wrong in the connector". Each re-read is caused by a real deletion
    and sends nothing twice (SkipRecordsAlreadySentInWindow), so any number of them is correct; the bound only
    stops a window whose objects are being deleted faster than it can be read.
    """

    def __init__(self, stream_name: str, limit: int = MAX_REREADS_PER_WINDOW) -> None:
        super().__init__(cursor=None, max_number_of_records=None)
        self._stream_name = stream_name
        self._allowed = limit
        self._rereads = 0

    def reduce_slice_range_if_possible(self, previous_stream_slice: StreamSlice,
                                       original_stream_slice: StreamSlice) -> StreamSlice:
        self._rereads += 1
        if self._rereads > self._allowed:
            window = dict(original_stream_slice.cursor_slice or {}) if original_stream_slice is not None else {}
            message = (f"{self._stream_name}: the window {window} was read again {self._allowed} times, each time "
                       f"because the object its next page started after was deleted while it was read (Stripe: "
                       f"resource_missing on starting_after). Objects are being deleted faster than the window can "
                       f"be read; nothing was sent twice, and the state did not pass this window: run the sync again.")
            raise AirbyteTracedException(message=message, internal_message=message,
                                         failure_type=FailureType.transient_error)
        self._reset()
        return previous_stream_slice

    @classmethod
    def install(cls, stream: Any) -> None:
        """On the retriever of a stream the CDK built from the manifest (the manifest's `pagination_reset` has no
        setting for the number of re-reads)."""
        cdk_seam.set_pagination_tracker(stream, lambda: cls(stream.name))
