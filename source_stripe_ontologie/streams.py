"""A stream the CDK built from the manifest, with the partitions and cursor the manifest cannot declare.

Why not the manifest: a declarative stream has one partition generator (its `created` windows) and one cursor.
Change capture adds partitions after the windows and a cursor that routes them, and the fair share holds each
stream to its endpoint's share of the workers. `StripeStream` is a public `AbstractStream` decorator: it serves
the CDK everything of the built stream (name, schema, catalog entry, availability) but its partitions and cursor,
so nothing of the built stream is rewired.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from airbyte_cdk.models import AirbyteStream
from airbyte_cdk.sources.streams.concurrent.abstract_stream import AbstractStream
from airbyte_cdk.sources.streams.concurrent.availability_strategy import StreamAvailability
from airbyte_cdk.sources.streams.concurrent.cursor import Cursor
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.streams.concurrent.partitions.partition_generator import PartitionGenerator
from airbyte_cdk.sources.types import Record

from source_stripe_ontologie.cursors import CursorDecorator
from source_stripe_ontologie import page_lane


class BuiltPartitions(PartitionGenerator):
    """The partitions (`created` windows) of the stream as the CDK built it; with `pages`, read through the page
    lane (only when our entry point, which knows pages, writes the output)."""

    def __init__(self, built: AbstractStream, pages: Optional[page_lane.PageAllowance] = None) -> None:
        self._built = built
        self._pages = pages

    def generate(self) -> Iterable[Partition]:
        if self._pages is None:
            yield from self._built.generate_partitions()
            return
        namespace = self._built.namespace
        for window in self._built.generate_partitions():
            yield page_lane.install(window, namespace, self._pages)


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
