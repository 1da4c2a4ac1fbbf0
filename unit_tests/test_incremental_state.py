"""A saved state is used only when it can be trusted; otherwise the sync stops with a message saying what to fix."""
from __future__ import annotations

import pytest
from airbyte_cdk.models import (
    AirbyteStateMessage,
    AirbyteStateType,
    AirbyteStreamState,
    ConfiguredAirbyteCatalog,
    FailureType,
    StreamDescriptor,
    SyncMode,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_stripe_ontologie.incremental import (
    FullRefreshStateDropper,
    IncomingStateValidator,
)
from unit_tests.factories import DAY, STREAMS, LiveList, config_since, now
from unit_tests.reads import catalog, read_incremental, state_input

NOW = 1_750_000_000


def validate(state):
    IncomingStateValidator(STREAMS, clock=lambda: NOW).validate(state)


@pytest.mark.parametrize("created", ["1718000000", 1718000000, NOW])
def test_a_cursor_in_epoch_seconds_is_accepted_as_string_or_integer(created):
    validate(state_input("charges", created))


def test_the_cdk_full_refresh_marker_and_an_empty_state_are_accepted():
    validate(stream_state_message("payouts", {"__ab_no_cursor_state_message": True}))
    validate(stream_state_message("payouts", {}))
    validate(None)


@pytest.mark.parametrize("created", ["abc", "2024-06-10", 1.7e9, True, -5, "", [1718000000], None])
def test_a_cursor_that_is_not_epoch_seconds_is_rejected_naming_stream_and_value(created):
    with pytest.raises(AirbyteTracedException) as error:
        validate(state_input("invoices", created))

    assert error.value.failure_type == FailureType.config_error
    assert "stream 'invoices'" in error.value.message
    assert repr(created) in error.value.message


def test_a_cursor_in_the_future_is_rejected_rather_than_silently_skipping_objects():
    with pytest.raises(AirbyteTracedException, match=r"created=1750000061, which is in the future \(now is 1750000000\)"):
        validate(state_input("charges", str(NOW + 61)))


def test_a_state_for_a_stream_this_connector_does_not_have_is_rejected():
    with pytest.raises(AirbyteTracedException, match="names stream 'tax_rates', which this connector does not have"):
        validate(state_input("tax_rates", "1718000000"))


def test_keys_this_connector_never_writes_are_rejected():
    with pytest.raises(AirbyteTracedException, match=r"keys \['slices', 'state_type'\]"):
        validate(stream_state_message("charges", {"state_type": "date-range", "slices": []}))


def test_a_global_state_message_is_rejected():
    message = AirbyteStateMessage(type=AirbyteStateType.GLOBAL)

    with pytest.raises(AirbyteTracedException, match="only per-stream"):
        validate([message])


def test_full_refresh_streams_lose_their_state_and_incremental_ones_keep_it():
    configured = ConfiguredAirbyteCatalog(streams=catalog("charges", sync_mode=SyncMode.full_refresh).streams
                                          + catalog("payouts", sync_mode=SyncMode.incremental).streams)
    state = state_input("charges", "1718000000") + state_input("payouts", "1718000000")

    kept = FullRefreshStateDropper(configured).keep(state)

    assert [m.stream.stream_descriptor.name for m in kept] == ["payouts"]


def test_a_sync_with_a_bad_state_stops_before_any_request_with_a_config_error(requests_mock):
    LiveList(requests_mock, "charges")

    output = read_incremental(config_since(now() - DAY), "charges", state=state_input("charges", "yesterday"),
                              expecting_exception=True)

    assert requests_mock.call_count == 0
    trace = output.errors[-1].trace.error
    assert trace.failure_type == FailureType.config_error
    assert "created='yesterday'" in trace.message


def test_a_state_older_than_start_date_reads_from_start_date(requests_mock):
    start = now() - 2 * DAY
    charges = LiveList(requests_mock, "charges")
    charges.add(start - 10, start, start + 10)

    output = read_incremental(config_since(start), "charges", state=state_input("charges", str(start - 5 * DAY)))

    assert sorted(r.record.data["created"] for r in output.records) == [start, start + 10]


def stream_state_message(stream: str, stream_state: dict) -> list:
    """A per-stream state message with any stream_state, including shapes StateBuilder would not build."""
    return [AirbyteStateMessage(type=AirbyteStateType.STREAM, stream=AirbyteStreamState(
        stream_descriptor=StreamDescriptor(name=stream), stream_state=stream_state))]


def test_the_oldest_unsettled_objects_second_is_a_cursor_key_validated_like_the_others():
    validate(stream_state_message("balance_transactions", {"created": "1718000000", "unsettled_since": "1717990000"}))
    with pytest.raises(AirbyteTracedException, match="unsettled_since="):
        validate(stream_state_message("balance_transactions", {"created": "1718000000", "unsettled_since": "soon"}))
