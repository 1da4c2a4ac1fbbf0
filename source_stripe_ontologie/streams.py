"""A stream the CDK built from the manifest, with the partitions and cursor the manifest cannot declare.

Why not the manifest: a declarative stream has one partition generator (its `created` windows) and one cursor.
Change capture adds partitions after the windows and a cursor that routes them, and the fair share holds each
stream to its endpoint's share of the workers. `StripeStream` is a public `AbstractStream` decorator: it serves
the CDK everything of the built stream (name, schema, catalog entry, availability) but its partitions and cursor,
so nothing of the built stream is rewired.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Optional

from airbyte_cdk.models import AirbyteStream
from airbyte_cdk.sources.streams.concurrent.abstract_stream import AbstractStream
from airbyte_cdk.sources.streams.concurrent.availability_strategy import StreamAvailability
from airbyte_cdk.sources.streams.concurrent.cursor import Cursor
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.streams.concurrent.partitions.partition_generator import PartitionGenerator
from airbyte_cdk.sources.types import Record, StreamSlice

from source_stripe_ontologie import cdk_seam, page_lane
from source_stripe_ontologie.cursors import WINDOW_END, WINDOW_START, CursorDecorator


class BuiltPartitions(PartitionGenerator):
    """The partitions (`created` windows) of the stream as the CDK built it, the windows after `newest` read as one
    (`tail_window`); with `pages`, read through the page lane (only when our entry point, which knows pages, writes
    the output)."""

    def __init__(self, built: AbstractStream, pages: Optional[page_lane.PageAllowance] = None,
                 newest: Optional[int] = None) -> None:
        self._built = built
        self._pages = pages
        self._newest = newest

    def generate(self) -> Iterable[Partition]:
        windows = tail_window(self._built, self._newest)
        if self._pages is None:
            yield from windows
            return
        namespace = self._built.namespace
        for window in windows:
            yield page_lane.install(window, namespace, self._pages)


def tail_window(built: AbstractStream, newest: Optional[int]) -> Iterator[Partition]:
    """The built stream's windows up to the one holding `newest` (the time of the stream's newest object, found by
    the history probe on a first sync), then ONE window from the next second to where the last window ends.

    Windows run in `slice_range_days` steps from the stream's oldest object to now; the ones after its newest
    object can only hold what was created since the probe, yet each costs a request (the bench's data ends in
    mid-2024: ~29 empty windows per stream, ~170 of its ~1,600 requests). One window is as exact: it starts
    one second after the window before it ends, as the CDK's next window would (so the finished windows still merge
    into one unbroken run for the state), and ends where the CDK's last one does, so an object created after the
    probe is still read. Without `newest` (a saved state, a failed probe, or a stream whose whole history is one
    window anyway) the windows are the CDK's.
    """
    windows = built.generate_partitions()
    if newest is None:
        yield from windows
        return
    for window in windows:
        first = window.to_slice()
        if int(first[WINDOW_START]) <= newest:
            yield window
            continue
        last = first
        for later in windows:
            last = later.to_slice()
        if last is first:
            yield window
            return
        merged = StreamSlice(partition=first.partition, cursor_slice={**first.cursor_slice,
                                                                     WINDOW_END: last.cursor_slice[WINDOW_END]})
        yield cdk_seam.window_partition(built, merged)
        return


class UnobservedWindowsCursor(CursorDecorator):
    """The stream's `created` windows cursor, minus the per-record observation.

    The CDK calls `observe` on the stream's cursor for every record, on the worker thread, and a ConcurrentCursor
    then hashes the record's slice (json.dumps + sha256 of the window) to keep the newest `created` per window:
    ~8 us a record, for a value our state never reads. Our state is the end of the finished windows
    (FinishedWindowsStateConverter, which reads no observed value), and a vanished cursor re-reads its window
    from the top (RereadsOfVanishedCursors, which does not narrow the window from it). Everything else is the
    windows cursor's. Only for a cursor whose state converter is ours: any other still needs its observations.
    """

    def observe(self, record: Record) -> None:
        pass


class StripeStream(AbstractStream):
    """`built` with `partitions` and `cursor` in place of its own."""

    def __init__(self, built: AbstractStream, partitions: PartitionGenerator, cursor: Cursor) -> None:
        self._built = built
        self._partitions = partitions
        self._cursor = cursor

    def generate_partitions(self) -> Iterable[Partition]:
        yield from self._partitions.generate()

    @property
    def cursor(self) -> Cursor:
        return self._cursor

    @property
    def name(self) -> str:
        return self._built.name

    @property
    def namespace(self) -> Optional[str]:
        return self._built.namespace

    @property
    def cursor_field(self) -> Optional[str]:
        return self._built.cursor_field

    def get_json_schema(self) -> Mapping[str, Any]:
        return self._built.get_json_schema()

    def as_airbyte_stream(self) -> AirbyteStream:
        return self._built.as_airbyte_stream()

    def log_stream_sync_configuration(self) -> None:
        self._built.log_stream_sync_configuration()

    def check_availability(self) -> StreamAvailability:
        return self._built.check_availability()
