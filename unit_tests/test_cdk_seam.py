"""Canaries for every airbyte-cdk internal the connector touches (source_stripe_ontologie/cdk_seam.py lists them).

Each test fails loudly when the CDK renames or changes what the seam relies on, instead of the connector silently
reading with an empty config, unpaced, or with the CDK's own state. The pacing canary (every request of a sync
counted by the rate budget) is end-to-end, in integration_tests/test_pacing_canary.py.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

import pytest
import requests
from airbyte_cdk.sources.declarative.parsers.model_to_component_factory import (
    ModelToComponentFactory,
)
from airbyte_cdk.sources.streams.concurrent.cursor import ConcurrentCursor
from airbyte_cdk.sources.streams.concurrent.state_converters.datetime_stream_state_converter import (
    CustomFormatConcurrentStreamStateConverter,
)

from source_stripe_ontologie import SourceStripeOntologie, cdk_seam
from source_stripe_ontologie.cdk_seam import FinishedWindowsStateConverter
from source_stripe_ontologie.history_probe import HISTORY_START_KEY
from source_stripe_ontologie.rate_budget import RateLimits, StripeRateBudget
from unit_tests.factories import API, FACTS, STREAMS, config


def built(source: SourceStripeOntologie, name: str):
    """The stream as the CDK built it, before the connector wraps it."""
    return next(s for s in super(SourceStripeOntologie, source).streams(source.config) if s.name == name)


def test_the_source_config_is_the_one_the_cdk_builds_streams_with():
    source = SourceStripeOntologie(config=config())
    assert cdk_seam.source_config(source)["client_secret"] == config()["client_secret"]

    start = 1_600_000_000
    cdk_seam.replace_source_config(source, {**source.config, HISTORY_START_KEY: {"charges": start}})

    first_window = next(iter(built(source, "charges").generate_partitions())).to_slice()
    assert int(first_window["start_time"]) == start  # the manifest's start_datetime read the replaced config


def test_the_component_factory_is_the_cdks_and_builds_components():
    factory = cdk_seam.component_factory(SourceStripeOntologie(config=config()))
    assert isinstance(factory, ModelToComponentFactory)
    assert callable(factory.create_component)


def test_a_budget_given_to_the_factory_reaches_every_requester_it_builds():
    source = SourceStripeOntologie(config=config())
    budget = StripeRateBudget(RateLimits(per_account=1000))
    cdk_seam.give_api_budget(cdk_seam.component_factory(source), budget)

    requester = cdk_seam.build_requester(cdk_seam.component_factory(source), source.resolved_manifest["definitions"][
        "requester"], {"name": "x", "resource": "events"}, source.config, name="x")

    assert requester._http_client._api_budget is budget  # noqa: SLF001 (the CDK keeps it on the http client)


def test_giving_a_budget_fails_loudly_when_the_factory_no_longer_holds_one():
    class RenamedFactory:
        pass

    with pytest.raises(AttributeError, match="unpaced"):
        cdk_seam.give_api_budget(RenamedFactory(), StripeRateBudget(RateLimits(per_account=1)))


def test_the_state_converter_of_a_datetime_cursor_can_be_swapped_and_its_private_hook_still_exists():
    # the hook the CDK's merge of finished slices calls; the state tests prove it is still called
    assert callable(getattr(CustomFormatConcurrentStreamStateConverter, "_get_latest_complete_time", None))
    cursor = built(SourceStripeOntologie(config=config()), "payouts").cursor
    assert isinstance(cursor, ConcurrentCursor)

    ours = FinishedWindowsStateConverter.install(cursor)

    assert ours is not None and cursor._connector_state_converter is ours  # noqa: SLF001
    at = lambda seconds: datetime.fromtimestamp(seconds, timezone.utc)  # noqa: E731
    windows = [{"start": at(10), "end": at(20), "most_recent_cursor_value": at(12)}, {"start": at(21), "end": at(30)}]
    assert ours._get_latest_complete_time(windows) == at(30)  # noqa: SLF001 (the end of the windows, not 12)


def test_a_state_converter_can_be_decorated_and_the_cursor_writes_through_the_decorator():
    cursor = built(SourceStripeOntologie(config=config()), "payouts").cursor
    FinishedWindowsStateConverter.install(cursor)

    class AddsAKey:
        def __init__(self, inner):
            self.inner = inner

        def convert_to_state_message(self, cursor_field, stream_state):
            return {**self.inner.convert_to_state_message(cursor_field, stream_state), "added": "1"}

        def __getattr__(self, name):
            return getattr(self.inner, name)

    cdk_seam.wrap_state_converter(cursor, AddsAKey)

    assert cursor.state["added"] == "1" and "created" in cursor.state


def test_the_window_end_is_now_minus_the_read_lag():
    cursor = built(SourceStripeOntologie(config=config(read_lag_seconds=60)), "charges").cursor

    assert abs(cdk_seam.window_end(cursor) - (int(time.time()) - 60)) <= 2


def test_a_requester_built_from_the_definitions_serves_the_given_stream_and_resource(requests_mock):
    source = SourceStripeOntologie(config=config())
    events = FACTS.events
    requests_mock.get("https://api.stripe.test/v1/events", status_code=403, json={"error": {
        "type": "invalid_request_error", "message": "Forbidden"}})
    requester = cdk_seam.build_requester(
        cdk_seam.component_factory(source), source.resolved_manifest["definitions"]["requester"],
        {"name": "charges", "resource": events.resource, "permission": events.permission.name,
         "permission_label": events.permission.label}, source.config, name="charges_events")

    with pytest.raises(Exception) as failure:
        requester.send_request(request_params={"limit": "1"})

    assert requests_mock.request_history[0].path == "/v1/events"
    assert "charges: 403 Permission denied" in str(failure.value)
    assert "Events: Read (rak_event_read)" in str(failure.value)


def test_every_built_stream_is_wrapped_with_the_connectors_partitions_and_cursor():
    streams = SourceStripeOntologie(config=config()).streams(config())

    assert [s.name for s in streams] == STREAMS
    assert all(type(s).__name__ == "StripeStream" for s in streams)


def test_a_cursors_lock_is_held_while_it_emits_and_a_restart_reads_from_the_start():
    source = SourceStripeOntologie(config=config(start_date="2024-01-01T00:00:00Z"))
    cursor = built(source, "payouts").cursor
    lock = cdk_seam.cursor_lock(cursor)
    assert lock.acquire(blocking=False)  # a real lock, free between state changes
    lock.release()

    cursor.start = datetime(2025, 1, 1, tzinfo=timezone.utc)  # as if a saved state had moved it
    cdk_seam.restart_from_start(cursor)

    assert cursor.start == datetime(2024, 1, 1, tzinfo=timezone.utc) - timedelta(seconds=1)


def test_the_pagination_tracker_of_a_built_stream_can_be_replaced():
    stream = built(SourceStripeOntologie(config=config()), "charges")
    made = []

    assert cdk_seam.set_pagination_tracker(stream, lambda: made.append(1) or object())
    retriever = stream._stream_partition_generator._partition_factory._retriever  # noqa: SLF001
    retriever.pagination_tracker_factory()
    assert made == [1]


def test_a_window_the_cdk_did_not_slice_is_built_like_its_own_and_reads_that_window(requests_mock):
    from airbyte_cdk.sources.types import StreamSlice

    from source_stripe_ontologie.cursors import WINDOW_END, WINDOW_START
    from unit_tests.factories import API, query_of

    requests_mock.get(f"{API}/v1/charges", json={"object": "list", "has_more": False, "data": []})
    stream = built(SourceStripeOntologie(config=config()), "charges")
    own = next(iter(stream.generate_partitions()))
    assert set(own.to_slice().cursor_slice) == {WINDOW_START, WINDOW_END}  # where tail_window finds the bounds

    window = cdk_seam.window_partition(stream, StreamSlice(partition={}, cursor_slice={
        WINDOW_START: "1600000000", WINDOW_END: "1700000000"}))
    assert type(window) is type(own) and window.to_slice().cursor_slice[WINDOW_END] == "1700000000"
    list(window.read())
    query = query_of(requests_mock.request_history[-1])
    assert (query["created[gte]"], query["created[lte]"]) == (["1600000000"], ["1700000000"])


def test_a_window_cannot_be_built_for_a_stream_without_the_cdks_partition_factory():
    with pytest.raises(AttributeError, match="_partition_factory"):
        cdk_seam.window_partition(object(), {})


def test_the_component_schema_every_source_validates_with_is_parsed_once_when_cached(monkeypatch):
    import importlib

    module = importlib.import_module(cdk_seam._SCHEMA_MODULE)
    calls = []
    original = module.get_declarative_component_schema

    def counted():
        calls.append(1)
        return original()

    monkeypatch.setattr(module, "get_declarative_component_schema", counted)
    SourceStripeOntologie(config=config())
    assert calls == [1]  # the CDK builds a source through this very function
    cdk_seam.cache_component_schema()
    SourceStripeOntologie(config=config())
    SourceStripeOntologie(config=config())
    assert calls == [1, 1]  # once more to fill the cache, then never again


def test_importing_the_connector_builds_the_protocol_serializers_without_reading_the_models_source():
    """10.: serpyco reads attribute docs through the `get_attributes_doc` its modules import; if it stops doing so the
    protocol models' source files are read again at every start-up (this counts `inspect.getsource` on them)."""
    import subprocess
    import sys

    probe = (
        "import inspect\n"
        "read = []\n"
        "original = inspect.getsource\n"
        "def counting(obj):\n"
        "    read.append(getattr(obj, '__module__', ''))\n"
        "    return original(obj)\n"
        "inspect.getsource = counting\n"
        "import source_stripe_ontologie\n"
        "from airbyte_cdk.models import AirbyteMessage, AirbyteRecordMessage, Type\n"
        "from airbyte_cdk.models.airbyte_protocol_serializers import AirbyteMessageSerializer\n"
        "message = AirbyteMessage(type=Type.RECORD, record=AirbyteRecordMessage(stream='s', data={'a': 1}, emitted_at=1))\n"
        "assert AirbyteMessageSerializer.dump(message)['record']['data'] == {'a': 1}\n"
        "print(sum(m.startswith(('airbyte_protocol', 'airbyte_cdk.models')) for m in read))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)

    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "0"
    import serpyco_rs._describe
    import serpyco_rs._json_schema._convert

    assert getattr(serpyco_rs._describe.get_attributes_doc, "skips_protocol_docs", False)
    assert getattr(serpyco_rs._json_schema._convert.get_attributes_doc, "skips_protocol_docs", False)


def test_a_page_crosses_the_cdks_record_path_as_the_same_object():
    """11.: the CDK turns a worker's record into the message the entry point sees by copying its data with dict()
    and no schema transformation; a page of serialised lines must come out as the very object that went in."""
    from airbyte_cdk.sources.utils.record_helper import stream_data_to_airbyte_message

    from source_stripe_ontologie.entrypoint import RecordPassthroughSerializer, StripeEntrypoint
    from source_stripe_ontologie.page_lane import PageLines

    page = PageLines([b'{"type":"RECORD","record":{"stream":"s","data":{"id":1},"emitted_at":1}}'] * 3)
    record = cdk_seam.page_record(page, type("Last", (), {"stream_name": "s", "associated_slice": None})())
    message = stream_data_to_airbyte_message(stream_name="s", data_or_message=record.data)

    assert PageLines.of(message) is page
    assert RecordPassthroughSerializer.to_line(message) == page.data
    from collections import defaultdict

    counts = defaultdict(float)
    StripeEntrypoint.handle_record_counts(message, counts)
    assert sum(counts.values()) == 3


def test_a_built_streams_requester_sends_through_a_requests_session_settled_from_the_environment_once(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/company-ca.pem")
    stream = built(SourceStripeOntologie(config=config()), "charges")
    requester = cdk_seam.retriever_of(stream).requester
    session = requester._http_client._session  # noqa: SLF001 (what the seam settles)
    assert isinstance(session, requests.Session) and session.trust_env

    assert cdk_seam.settle_stream_environment(stream)

    monkeypatch.delenv("HTTPS_PROXY")  # settled: later changes of the environment are not read per request
    settled = session.merge_environment_settings(requester.get_url(), {}, None, None, None)
    assert not session.trust_env
    assert settled["proxies"]["https"] == "http://proxy.internal:3128"
    assert settled["verify"] == "/etc/ssl/company-ca.pem"


def test_settling_keeps_no_proxy_for_the_requesters_host(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", urlparse(API).hostname)
    stream = built(SourceStripeOntologie(config=config()), "charges")
    requester = cdk_seam.retriever_of(stream).requester

    assert cdk_seam.settle_environment(requester)

    settled = requester._http_client._session.merge_environment_settings(  # noqa: SLF001
        requester.get_url(), {}, None, None, None)
    assert "https" not in settled["proxies"]


def test_a_manifest_is_prepared_and_validated_once_and_each_source_gets_its_own_copy(monkeypatch):
    """14.: the CDK prepares and validates the manifest through `_pre_process_manifest` and `_validate_source`; if it
    stops calling them, or prepares differently, every account of a Connect sync pays again, or a source reads a
    manifest unlike the CDK's own."""
    from airbyte_cdk.sources.declarative import concurrent_declarative_source as module
    from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource

    from source_stripe_ontologie.source import manifest_path

    plain = YamlDeclarativeSource(path_to_yaml=str(manifest_path()), config=config())  # the CDK's own preparation
    cdk_seam.ManifestPreparedOnce._prepared.clear()
    validations = []
    original = module.validate_manifest
    monkeypatch.setattr(module, "validate_manifest", lambda *a: validations.append(1) or original(*a))
    first, second = SourceStripeOntologie(config=config()), SourceStripeOntologie(config=config())

    assert validations == [1]  # the second source reused the first one's prepared, validated manifest
    assert first.resolved_manifest == second.resolved_manifest == plain.resolved_manifest
    assert first.resolved_manifest is not second.resolved_manifest
    first.resolved_manifest["streams"].clear()
    assert second.resolved_manifest["streams"] and SourceStripeOntologie(config=config()).resolved_manifest["streams"]
