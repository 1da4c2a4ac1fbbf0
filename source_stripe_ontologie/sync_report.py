"""What a sync tells the user about itself: streams that found nothing, streams that failed, and the summary.

Why not the manifest: a manifest describes streams one at a time; nothing in it sees the whole sync. The CDK
has no warning for a stream that finishes empty, its give-up messages after the retry budget hide the cause or
the stream ("API rate limit exceeded."), and its end-of-sync error is a dump of exception reprs. This watches
the messages `read` yields (counting records, noticing stream statuses and error traces) and words them.
"""
from __future__ import annotations

import logging
import re
from typing import Dict, Iterable, Iterator, Optional

from airbyte_cdk.models import (
    AirbyteLogMessage,
    AirbyteMessage,
    AirbyteStreamStatus,
    FailureType,
    Level,
    TraceType,
    Type,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_stripe_ontologie import error_messages as say
from source_stripe_ontologie.key_mode import KeyMode
from source_stripe_ontologie.page_lane import PageLines


class SyncReport:
    """Counts records per stream, warns once about each stream that found nothing, and words the sync's failure.

    The "no records" warning (check the key's mode and start_date) is for a stream read from scratch that found
    nothing: that points at the wrong key or dates. A stream resumed from a saved state that has nothing new is
    up to date, the usual case of a quiet stream synced hourly: warning there would cry wolf on every sync.
    """

    def __init__(self, mode: KeyMode, key: str, account_id: Optional[str] = None,
                 streams_with_state: Iterable[str] = ()) -> None:
        self._mode, self._key, self._account_id = mode, key, account_id
        self._streams_with_state = frozenset(streams_with_state)
        self.records: Dict[str, int] = {}
        self.completed: Dict[str, int] = {}
        self.failures: Dict[str, AirbyteTracedException] = {}
        self.repeats: Dict[str, int] = {}

    def observe(self, message: AirbyteMessage) -> Iterator[AirbyteMessage]:
        """Yields the message (error traces get their stream named), then any warning it calls for."""
        if message.type == Type.RECORD:
            stream = message.record.stream
            page = PageLines.of(message)
            self.records[stream] = self.records.get(stream, 0) + (page.count if page is not None else 1)
            yield message
            return
        if message.type == Type.TRACE and message.trace.type == TraceType.ERROR:
            if self._is_a_repeat(message):
                return
        yield message
        if message.type == Type.TRACE and message.trace.type == TraceType.STREAM_STATUS:
            status = message.trace.stream_status
            if status.status == AirbyteStreamStatus.COMPLETE:
                stream = status.stream_descriptor.name
                self.completed[stream] = self.records.get(stream, 0)
                if not self.completed[stream] and stream not in self._streams_with_state:
                    yield _warning(say.zero_records(stream, self._mode, self._key, self._account_id))

    def _is_a_repeat(self, message: AirbyteMessage) -> bool:
        """Names the stream in an error trace; True when the stream already failed with these very words.

        Each window of an incremental stream fails on its own (a 403 answers every window), so the same error
        would be printed once per window; it is printed once and counted in the summary instead.
        """
        error = message.trace.error
        stream = error.stream_descriptor.name if error.stream_descriptor else None
        if not stream:
            return False
        text = error.message or ""
        error.message = say.gave_up(stream, text) or (text if text.startswith(f"{stream}:") else f"{stream}: {text}")
        first = self.failures.get(stream)
        if first is not None and first.message == error.message:
            self.repeats[stream] = self.repeats.get(stream, 0) + 1
            return True
        self.failures.setdefault(stream, AirbyteTracedException(
            message=error.message, internal_message=error.internal_message, failure_type=error.failure_type))
        return False

    def failure(self, cause: AirbyteTracedException) -> AirbyteTracedException:
        """The error that ends a sync in which streams failed: what failed and why, and what finished."""
        if not self.failures:
            return cause
        reasons = {stream: _without_stream(stream, f.message or "").rstrip(".") + _repeated(self.repeats.get(stream))
                   for stream, f in self.failures.items()}
        types = {f.failure_type for f in self.failures.values()}
        failure_type = (FailureType.config_error if FailureType.config_error in types
                        else FailureType.transient_error if types == {FailureType.transient_error}
                        else FailureType.system_error)
        message = say.sync_failed(reasons, self.completed)
        return AirbyteTracedException(message=message, internal_message=message, failure_type=failure_type)


def _without_stream(stream: str, message: str) -> str:
    prefix = f"{stream}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _repeated(count: int | None) -> str:
    return f"; {count} more windows failed the same way" if count else ""


def _warning(text: str) -> AirbyteMessage:
    return AirbyteMessage(type=Type.LOG, log=AirbyteLogMessage(level=Level.WARN, message=text))


class RecordCountInLog(logging.Filter):
    """Puts the report's count in the CDK's "Read N records from <stream> stream" log line.

    The CDK counts the items its workers hand over, and with the page lane (page_lane.py) an item is a page: its
    line would say 500 records for 50,000. The report counts every record of a page (cdk_seam 10.).
    """

    LINE = re.compile(r"^Read \d+ records from (.+) stream$")

    def __init__(self, report: SyncReport) -> None:
        super().__init__()
        self._report = report

    def filter(self, record: logging.LogRecord) -> bool:
        match = self.LINE.match(str(record.msg)) if not record.args else None
        if match:
            stream = match.group(1)
            record.msg = f"Read {self._report.records.get(stream, 0)} records from {stream} stream"
        return True
