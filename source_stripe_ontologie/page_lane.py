"""The page lane: a window's records cross from the worker thread to the output as pages of ready lines.

Why: the CDK hands every record from the worker that read it to the main thread one by one (a queue item, an
`AirbyteMessage`, the entry point's count, our report and serializer, a write), and the two threads contend for
the GIL on each: that per-record hand-off, not Stripe's pages, was what bounded a CPU-bound sync. Here the worker
serialises each record's RECORD line itself (orjson, data exactly as Stripe sent it, nulls included, as
RecordPassthroughSerializer) and hands over one item per `RECORDS_PER_ITEM` records (a Stripe page). The
retriever is untouched, so every record still passes the stream's livemode guard and the vanished-cursor filter
(no record sent twice after a window re-read) before it is serialised; the CDK keeps windows, state, statuses
and the entry point, and the entry point counts a page's records into the state messages' `sourceStats`
(`StripeEntrypoint.handle_record_counts`) and our sync report.

How a page travels through the CDK's record path is the CDK seam's (cdk_seam 10.): as one record whose data is
`{PAGE_KEY: PageLines}`.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Iterable, List, Optional

import orjson
from airbyte_cdk.models import AirbyteMessage, Type
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.types import Record

from source_stripe_ontologie import cdk_seam

RECORDS_PER_ITEM = 100  # Stripe's page size
PAGES_IN_FLIGHT = 100  # pages read but not yet written: 10,000 records, what the CDK's queue held record by record


class PageAllowance:
    """Bounds the pages read but not yet written, so that memory stays flat in the dataset's size.

    The CDK's queue is bounded in items (10,000); with an item a page, it could hold a million records. A worker
    waits for a slot before it hands a page over; the entry point frees the slot once it took the page. `close`
    (the entry point stops writing: end of the command, or a failure) lets every waiting worker go on, so a
    worker never waits on a main thread that stopped reading.
    """

    def __init__(self, pages: int = PAGES_IN_FLIGHT) -> None:
        self._slots = threading.Semaphore(pages)
        self._closed = False

    def wait_for_slot(self) -> None:
        while not self._closed and not self._slots.acquire(timeout=0.5):
            pass

    def page_taken(self) -> None:
        self._slots.release()

    def close(self) -> None:
        self._closed = True


class PageLines:
    """The RECORD lines of up to a page of one stream's records, serialised (without the last newline)."""

    __slots__ = ("data", "count", "_allowance")

    def __init__(self, lines: List[bytes], allowance: Optional[PageAllowance] = None) -> None:
        self.data = b"\n".join(lines)
        self.count = len(lines)
        self._allowance = allowance
        if allowance is not None:
            allowance.wait_for_slot()

    def taken(self) -> None:
        """The entry point took this page off the CDK's queue (once per page)."""
        allowance, self._allowance = self._allowance, None
        if allowance is not None:
            allowance.page_taken()

    @staticmethod
    def of(message: AirbyteMessage) -> Optional["PageLines"]:
        """The page a RECORD message carries, or None for an ordinary record (or any other message)."""
        if message.type != Type.RECORD:
            return None
        return cdk_seam.page_of(message.record.data)


def _record_line(stream: str, namespace: Optional[str], data: Any, emitted_at: int) -> bytes:
    body = {"stream": stream, "data": data, "emitted_at": emitted_at}
    if namespace is not None:
        body["namespace"] = namespace
    return orjson.dumps({"type": "RECORD", "record": body})


def install(window: Partition, namespace: Optional[str] = None, allowance: Optional[PageAllowance] = None,
            per_item: int = RECORDS_PER_ITEM) -> Partition:
    """Make `window.read()` yield pages instead of records; its class and identity stay the CDK's (cursors, the
    events reader and the fair share see the same partition object)."""
    read = window.read
    stream = window.stream_name()

    def read_pages() -> Iterable[Record]:
        lines: List[bytes] = []
        last: Optional[Record] = None
        try:
            for record in read():
                if record.file_reference is not None or not isinstance(record.data, dict):
                    yield record  # not a plain record: the CDK's own path
                    continue
                last = record
                lines.append(_record_line(stream, namespace, record.data, time.time_ns() // 1_000_000))
                if len(lines) >= per_item:
                    yield cdk_seam.page_record(PageLines(lines, allowance), last)
                    lines = []
        except Exception:  # a window failing mid-way still sends what it read, as record by record would have
            if lines and last is not None:
                yield cdk_seam.page_record(PageLines(lines, allowance), last)
            raise
        if lines and last is not None:
            yield cdk_seam.page_record(PageLines(lines, allowance), last)

    window.read = read_pages  # type: ignore[method-assign]
    return window
