"""The CDK's entry point with our config validation first, records written as Stripe sent them, and `launch`.

Why not the manifest: the CDK validates the config against the spec's JSON schema before `check`, `discover`
and `read` reach the source, and its message ("'x' does not match '^acct_...'") names neither the field nor the
fix; nothing in a manifest runs before that. And the CDK's message serializer omits `None` values, which drops
every top-level null field of a record (`"description": null` vanishes), so `read` output is serialised here.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from typing import Any, Callable, Iterable, List, Mapping, Optional

import orjson
from airbyte_cdk.entrypoint import AirbyteEntrypoint
from airbyte_cdk.logger import PRINT_BUFFER, is_platform_debug_log_enabled
from airbyte_cdk.models import AirbyteMessage, ConnectorSpecification, Type
from airbyte_cdk.sources.connector_state_manager import HashableStreamDescriptor
from airbyte_cdk.sources import Source
from airbyte_cdk.utils.constants import ENV_REQUEST_CACHE_PATH

from source_stripe_ontologie.config_validation import ConfigValidator
from source_stripe_ontologie.page_lane import PageAllowance, PageLines


class RecordPassthroughSerializer:
    """Writes RECORD messages with their data exactly as Stripe sent it, nulls included.

    Without it a destination cannot tell "Stripe said null" from "field unknown". Records are by far the most
    frequent message, so this also skips a dataclass round trip per record. Every other message keeps the CDK's
    own serializer.
    """

    @staticmethod
    def to_line(message: AirbyteMessage) -> bytes:
        """The message's line (UTF-8, without its newline)."""
        record = message.record
        if message.type != Type.RECORD or record.meta is not None or record.file_reference is not None:
            return AirbyteEntrypoint.airbyte_message_to_string(message).encode()
        page = PageLines.of(message)
        if page is not None:
            return page.data  # serialised by the worker that read it (page_lane.py)
        body = {"stream": record.stream, "data": record.data, "emitted_at": record.emitted_at}
        if record.namespace is not None:
            body["namespace"] = record.namespace
        return orjson.dumps({"type": "RECORD", "record": body})


class StripeEntrypoint(AirbyteEntrypoint):
    """Runs `ConfigValidator` ahead of the CDK's JSON-schema validation, with the same outcome (a config error:
    FAILED connection status for check, an error trace and a non-zero exit for discover and read), and writes the
    output of `read` through `RecordPassthroughSerializer`."""

    @staticmethod
    def validate_connection(source_spec: ConnectorSpecification, config: Mapping[str, Any]) -> None:
        ConfigValidator().validate(config)
        AirbyteEntrypoint.validate_connection(source_spec, config)

    @staticmethod
    def handle_record_counts(message: AirbyteMessage, stream_message_count: Any) -> AirbyteMessage:
        """The CDK's count of records per state message (`sourceStats.recordCount`), a page counting its records."""
        page = PageLines.of(message)
        if page is None:
            return AirbyteEntrypoint.handle_record_counts(message, stream_message_count)
        page.taken()  # off the CDK's queue: its slot goes to the next page
        record = message.record
        stream_message_count[HashableStreamDescriptor(name=record.stream, namespace=record.namespace)] += page.count
        return message

    def lines(self, parsed_args: argparse.Namespace) -> Iterable[bytes]:
        """The command's output, one serialised message a line."""
        if parsed_args.command == "read":
            return self._read_lines(parsed_args)
        return (line.encode() for line in self.run(parsed_args))

    def _read_lines(self, parsed_args: argparse.Namespace) -> Iterable[bytes]:
        """What `AirbyteEntrypoint.run` does for `read` (log level, request-cache directory, config, catalog and
        state files, queued messages before and after), through the CDK's public `read`, serialised by us."""
        to_line = RecordPassthroughSerializer.to_line
        debug = getattr(parsed_args, "debug", False) or is_platform_debug_log_enabled()
        self.logger.setLevel(logging.DEBUG if debug else logging.INFO)
        if debug:
            logging.getLogger("airbyte").setLevel(logging.DEBUG)
        source_spec = self.source.spec(self.logger)
        pages: Optional[PageAllowance] = None
        with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as temp_dir:
            os.environ[ENV_REQUEST_CACHE_PATH] = temp_dir
            try:
                config = self.source.configure(self.source.read_config(parsed_args.config), temp_dir)
                yield from map(to_line, self._queued())
                catalog = self.source.read_catalog(parsed_args.catalog)
                state = self.source.read_state(parsed_args.state)
                if hasattr(self.source, "page_allowance"):
                    self.source.page_allowance = pages = PageAllowance()
                yield from map(to_line, self.read(source_spec, config, catalog, state))
            finally:
                if pages is not None:
                    pages.close()
                yield from map(to_line, self._queued())

    def _queued(self) -> Iterable[AirbyteMessage]:
        repository = getattr(self.source, "message_repository", None)
        return repository.consume_queue() if repository else ()


BYTES_PER_WRITE = 256 * 1024  # records gathered into one write; any other message goes out at once
RECORD_LINE = b'{"type":"RECORD"'


def write_lines(lines: Iterable[bytes], write: Callable[[bytes], None], per_write: int = BYTES_PER_WRITE) -> None:
    """Write `lines`, one message a line (a page of the page lane is several lines), in as few writes as keeps
    every non-record message prompt and memory small.

    The CDK's `print` per message takes the print buffer's lock, reads the clock and copies each line twice; a
    sync writes one line per record. Lines stay bytes from orjson to the file descriptor (`StdoutWriter`). Record
    lines are gathered into writes of about `per_write` bytes; a
    state, log, status or trace line flushes the records before it together with itself, so the order of the
    lines is kept, and a state message is never written before the records it counts.
    """
    batch: List[str] = []
    size = 0
    try:
        for line in lines:
            batch.append(line)
            size += len(line)
            if size >= per_write or not line.startswith(RECORD_LINE):
                batch.append(b"")
                write(b"\n".join(batch))
                batch, size = [], 0
    finally:  # a failing command still writes every line it produced (the CDK then writes its error trace)
        if batch:
            batch.append(b"")
            write(b"\n".join(batch))


class StdoutWriter:
    """Writes bytes to standard output in order with what the CDK prints meanwhile (its log lines go to its print
    buffer, which holds `sys.stdout` during the command).

    Through the print buffer, every record line was decoded to text, copied into its buffer, copied out again
    and encoded back to bytes: ~10% of the CPU of a CPU-bound sync. Here the buffer's pending text is flushed
    first, under its lock, then the bytes go to the file descriptor's own binary buffer and are flushed, so a
    state message still leaves the process as soon as it is written.
    """

    def __init__(self, print_buffer: Any = PRINT_BUFFER, stdout: Any = None) -> None:
        self._print_buffer = print_buffer
        self._stdout = stdout

    def write(self, data: bytes) -> None:
        out = self._stdout or sys.__stdout__.buffer
        with self._print_buffer.lock:
            self._print_buffer.flush()
            out.write(data)
            out.flush()


def launch(source: Source, args: List[str]) -> None:
    """`airbyte_cdk.entrypoint.launch`, with `StripeEntrypoint` in place of `AirbyteEntrypoint`, its lines written in
    batches (`write_lines`) in order with the CDK's print buffer, which the CDK's log lines go to."""
    entrypoint = StripeEntrypoint(source)
    parsed_args = entrypoint.parse_args(args)
    with PRINT_BUFFER:
        write_lines(entrypoint.lines(parsed_args), StdoutWriter().write)
