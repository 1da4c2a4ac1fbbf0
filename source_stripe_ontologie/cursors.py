"""One base for the cursors the connector puts in front of a stream's cursor.

Why not the manifest: change capture, the unsettled re-read, children of parents and the unobserved windows each
route some partitions or records away from the stream's `created` windows cursor, which a manifest cannot say.
Each is a decorator doing one job; `CursorDecorator` is everything else, handed to the cursor it decorates.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping, MutableMapping, Optional

from airbyte_cdk.sources.streams.concurrent.cursor import Cursor
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.types import Record, StreamSlice

# Where the manifest's DatetimeBasedCursor puts a window's first and last second in its slices (the CDK's default
# `partition_field_start` / `partition_field_end`, which the manifest keeps).
WINDOW_START = "start_time"
WINDOW_END = "end_time"


class CursorDecorator(Cursor):
    """`inner`, except where a subclass says otherwise."""

    def __init__(self, inner: Cursor) -> None:
        self._inner = inner

    @property
    def state(self) -> MutableMapping[str, Any]:
        return self._inner.state

    def observe(self, record: Record) -> None:
        self._inner.observe(record)

    def close_partition(self, partition: Partition) -> None:
        self._inner.close_partition(partition)

    def ensure_at_least_one_state_emitted(self) -> None:
        self._inner.ensure_at_least_one_state_emitted()

    def should_be_synced(self, record: Record) -> bool:
        return self._inner.should_be_synced(record)

    def stream_slices(self) -> Iterable[StreamSlice]:
        return self._inner.stream_slices()

    def get_cursor_datetime_from_state(self, stream_state: Mapping[str, Any]) -> Optional[datetime]:
        return self._inner.get_cursor_datetime_from_state(stream_state)
