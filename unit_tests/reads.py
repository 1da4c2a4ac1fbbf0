"""Run `read` in-process the way the CLI does (the source built with config, catalog and state), and read its
output: ids, state messages, windows requested."""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, List

from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import (
    CatalogBuilder,
    ConfiguredAirbyteStreamBuilder,
)
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, read
from airbyte_cdk.test.state_builder import StateBuilder

from source_stripe_ontologie import SourceStripeOntologie
from unit_tests.factories import query_of


def catalog(*streams: str, sync_mode: SyncMode = SyncMode.full_refresh):
    builder = CatalogBuilder()
    for name in streams:
        builder.with_stream(ConfiguredAirbyteStreamBuilder().with_name(name).with_sync_mode(sync_mode))
    return builder.build()


def read_streams(config, *streams: str, state=None, expecting_exception: bool = False):
    """Run `read` in-process the way the CLI does: the source is built with config, catalog and state."""
    configured = catalog(*streams)
    source = SourceStripeOntologie(config=config, catalog=configured, state=state)
    return read(source, config, configured, state, expecting_exception=expecting_exception)


def read_incremental(cfg, *streams: str, state=None, expecting_exception: bool = False,
                     sync_mode: SyncMode = SyncMode.incremental) -> EntrypointOutput:
    configured = catalog(*streams, sync_mode=sync_mode)
    source = SourceStripeOntologie(config=cfg, catalog=configured, state=state)
    return read(source, cfg, configured, state, expecting_exception=expecting_exception)


def emitted_ids(output: EntrypointOutput) -> List[str]:
    return [r.record.data["id"] for r in output.records]


def state_values(output: EntrypointOutput, stream: str) -> List[int]:
    """The `created` of every state message emitted for `stream`, in order."""
    values = []
    for message in output.state_messages:
        if message.state.stream.stream_descriptor.name == stream:
            values.append(int(message.state.stream.stream_state.__dict__["created"]))
    return values


def state_input(stream: str, created: Any) -> list:
    return StateBuilder().with_stream_state(stream, {"created": created}).build()


def last_stream_state(output: EntrypointOutput, stream: str) -> dict:
    """The stream_state of the last state message this sync emitted for `stream`."""
    states = [m.state.stream.stream_state.__dict__ for m in output.state_messages
              if m.state.stream.stream_descriptor.name == stream]
    return dict(states[-1])


def next_state(output: EntrypointOutput, stream: str) -> list:
    """The state the platform would hand the next sync: the last one this sync emitted for `stream`, whole."""
    return StateBuilder().with_stream_state(stream, last_stream_state(output, stream)).build()


def windows(requests_mock, resource: str) -> List[tuple[int, int]]:
    """The (created[gte], created[lte]) of each window read, oldest first, first page only."""
    found = set()
    for request in requests_mock.request_history:
        query = query_of(request)
        if request.path == f"/v1/{resource}" and "starting_after" not in query:
            found.add((int(query["created[gte]"][0]), int(query["created[lte]"][0])))
    return sorted(found)


def repeated(ids: Iterable[str]) -> List[str]:
    return sorted(i for i, n in Counter(ids).items() if n > 1)
