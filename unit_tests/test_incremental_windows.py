"""Incremental reads walk `created` windows and keep a state that is exact at the boundary and survives failure."""
from __future__ import annotations

import time

from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.entrypoint_wrapper import discover

from source_stripe_ontologie import SourceStripeOntologie
from unit_tests.factories import (
    API,
    DAY,
    STREAMS,
    LiveList,
    config,
    config_since,
    now,
    paged_responder,
    query_of,
)
from unit_tests.reads import (
    emitted_ids,
    next_state,
    read_incremental,
    repeated,
    state_input,
    state_values,
    windows,
)

STRIPE_FLOOR = 1_293_840_000  # 2011-01-01T00:00:00Z


def test_every_stream_offers_incremental_on_created_as_well_as_full_refresh():
    streams = discover(SourceStripeOntologie(config=config()), config()).catalog.catalog.streams

    assert sorted(s.name for s in streams) == sorted(STREAMS)
    for stream in streams:
        assert set(stream.supported_sync_modes) == {SyncMode.full_refresh, SyncMode.incremental}
        assert stream.source_defined_cursor is True
        assert stream.default_cursor_field == ["created"]


def test_first_sync_walks_contiguous_windows_from_start_date_to_the_read_lag_before_now(requests_mock):
    start = now() - 100 * DAY
    LiveList(requests_mock, "charges")

    before = now()
    read_incremental(config_since(start, slice_range_days=30), "charges")
    after = now()

    read = windows(requests_mock, "charges")
    assert read[0][0] == start
    assert all(later[0] == earlier[1] + 1 for earlier, later in zip(read, read[1:]))
    assert all(end - begin < 30 * DAY for begin, end in read)
    assert before - 60 <= read[-1][1] <= after - 60
    assert len(read) == 4


def test_without_start_date_history_starts_at_2011_before_any_stripe_object(requests_mock):
    LiveList(requests_mock, "payouts")

    read_incremental(config(slice_range_days=365), "payouts")

    assert windows(requests_mock, "payouts")[0][0] == STRIPE_FLOOR


def test_state_is_emitted_after_every_window_and_is_the_end_of_the_finished_windows(requests_mock):
    start = now() - 100 * DAY
    charges = LiveList(requests_mock, "charges")
    charges.add(start + 5, start + 40 * DAY, start + 70 * DAY)

    output = read_incremental(config_since(start, slice_range_days=30), "charges")

    values = state_values(output, "charges")
    read = windows(requests_mock, "charges")
    assert len(values) >= len(read)
    assert values == sorted(values)
    # Each state is the end of a finished window, or, when a later window finished before the first one (windows
    # run in parallel), the start boundary again: no progress, never a skip.
    assert set(values) <= {end for _, end in read} | {read[0][0] - 1}, (values, read)
    assert values[-1] == read[-1][1]


def test_a_stream_without_new_objects_reads_only_the_seconds_since_the_last_sync(requests_mock):
    LiveList(requests_mock, "payouts")  # an account that never had a payout

    started = now()  # before the syncs: on a loaded machine they can take seconds
    first = read_incremental(config(), "payouts")
    requests_mock.reset_mock()
    read_incremental(config(), "payouts", state=state_input("payouts", str(now() - 3600)))

    assert len(windows(requests_mock, "payouts")) == 1
    assert state_values(first, "payouts")[-1] >= started - 61


def test_second_sync_on_unchanged_data_reads_after_the_state_and_emits_nothing(requests_mock):
    start = now() - 10 * DAY
    charges = LiveList(requests_mock, "charges")
    charges.add(start + 100, start + 200, start + 200)  # two objects share the newest second
    cfg = config_since(start)

    first = read_incremental(cfg, "charges")
    requests_mock.reset_mock()
    second = read_incremental(cfg, "charges", state=next_state(first, "charges"))

    assert len(emitted_ids(first)) == 3
    assert emitted_ids(second) == []
    assert all(begin == state_values(first, "charges")[-1] + 1 for begin, _ in windows(requests_mock, "charges")[:1])
    assert state_values(second, "charges")[-1] >= state_values(first, "charges")[-1]


def test_object_created_in_the_read_second_after_it_was_read_arrives_next_sync_exactly_once(requests_mock):
    start = now() - 10 * DAY
    charges = LiveList(requests_mock, "charges")
    charges.add(start + 100)
    boundary = now() - 5  # the second the sync is reading: within read_lag_seconds of now
    early = charges.add(boundary)

    first = read_incremental(config_since(start), "charges")
    late = charges.add(boundary)  # same second, created after the first sync read
    # the next hourly sync runs long after read_lag_seconds; the spec's minimum lag (2 s) here stands for that
    second = read_incremental(config_since(start, read_lag_seconds=2), "charges", state=next_state(first, "charges"))

    assert early[0]["id"] not in emitted_ids(first)
    assert state_values(first, "charges")[-1] < boundary  # the sync stopped before the second it left unread
    assert sorted(emitted_ids(second)) == sorted([early[0]["id"], late[0]["id"]])


def test_objects_created_while_a_sync_runs_arrive_in_this_sync_or_the_next(requests_mock):
    start = now() - 10 * DAY
    charges = LiveList(requests_mock, "charges")
    charges.add(*(start + 10 * i for i in range(1, 250)))
    serve = paged_responder(charges.objects, "/v1/charges")
    created_meanwhile = []

    def serve_while_creating(request, context):
        if query_of(request).get("starting_after"):  # between two pages of a sync
            created_meanwhile.extend(charges.add(now(), now() - 1))
        return serve(request, context)

    requests_mock.get(f"{API}/v1/charges", json=serve_while_creating)
    cfg = config_since(start, slice_range_days=30)
    first = read_incremental(cfg, "charges")
    requests_mock.get(f"{API}/v1/charges", json=serve)
    time.sleep(2.1)  # the next sync runs after the spec's minimum read lag (2 s) has passed
    second = read_incremental(config_since(start, read_lag_seconds=2), "charges", state=next_state(first, "charges"))

    every = emitted_ids(first) + emitted_ids(second)
    assert created_meanwhile
    assert sorted(every) == sorted(o["id"] for o in charges.objects)
    assert repeated(every) == []


def test_lookback_re_reads_exactly_the_days_before_the_state_and_nothing_older(requests_mock):
    state = now() - 3 * DAY
    charges = LiveList(requests_mock, "charges")
    too_old = charges.add(state - DAY, state - 2 * DAY)
    overlap = charges.add(state - DAY + 1, state - 100, state)
    new = charges.add(state + 50)

    output = read_incremental(config_since(state - 5 * DAY, lookback_window_days=1), "charges",
                              state=state_input("charges", str(state)))

    assert sorted(emitted_ids(output)) == sorted(o["id"] for o in overlap + new)
    assert not set(emitted_ids(output)) & {o["id"] for o in too_old}
    assert windows(requests_mock, "charges")[0][0] == state - DAY + 1


def test_a_failing_window_holds_the_state_and_the_resumed_sync_completes_the_dataset(requests_mock):
    start = now() - 120 * DAY
    charges = LiveList(requests_mock, "charges")
    charges.add(*(start + DAY + i for i in range(5)))                  # window 1
    second_window = charges.add(*(start + 40 * DAY + i for i in range(150)))  # window 2: two pages
    charges.add(*(start + 70 * DAY + i for i in range(5)), *(start + 100 * DAY + i for i in range(5)))
    serve = paged_responder(charges.objects, "/v1/charges")
    last_of_first_page = sorted(second_window, key=lambda o: -o["created"])[99]["id"]

    def fail_second_page_of_window_2(request, context):
        if query_of(request).get("starting_after") == [last_of_first_page]:
            context.status_code = 400
            return {"error": {"type": "invalid_request_error", "message": "Simulated failure"}}
        return serve(request, context)

    requests_mock.get(f"{API}/v1/charges", json=fail_second_page_of_window_2)
    cfg = config_since(start, slice_range_days=30)
    first = read_incremental(cfg, "charges", expecting_exception=True)
    requests_mock.get(f"{API}/v1/charges", json=serve)
    resumed = read_incremental(cfg, "charges", state=next_state(first, "charges"))

    newest_before_failure = start + DAY + 4
    assert max(state_values(first, "charges")) == windows(requests_mock, "charges")[0][1] < start + 40 * DAY
    later_windows = [r for r in first.records if r.record.data["created"] >= start + 70 * DAY]
    assert len(later_windows) == 10  # read meanwhile, yet the state did not pass the failed window
    every = emitted_ids(first) + emitted_ids(resumed)
    assert sorted(set(every)) == sorted(o["id"] for o in charges.objects)
    window_1 = {o["id"] for o in charges.objects if o["created"] <= newest_before_failure}
    assert not set(repeated(every)) & window_1


def test_full_refresh_returns_objects_on_every_window_edge_exactly_once(requests_mock):
    start = now() - 100 * DAY
    charges = LiveList(requests_mock, "charges")
    edges = [start, start + 30 * DAY - 1, start + 30 * DAY, start + 60 * DAY - 1, start + 60 * DAY]
    charges.add(*edges)

    output = read_incremental(config_since(start, slice_range_days=30), "charges", sync_mode=SyncMode.full_refresh)

    assert sorted(emitted_ids(output)) == sorted(o["id"] for o in charges.objects)
    assert repeated(emitted_ids(output)) == []


def test_full_refresh_reads_everything_even_when_handed_a_state(requests_mock):
    start = now() - 10 * DAY
    charges = LiveList(requests_mock, "charges")
    charges.add(start + 10, start + 20, start + 30)

    output = read_incremental(config_since(start), "charges", state=state_input("charges", str(start + 20)),
                              sync_mode=SyncMode.full_refresh)

    assert len(emitted_ids(output)) == 3


def test_lookback_never_reaches_before_start_date(requests_mock):
    start = now() - 3 * DAY
    charges = LiveList(requests_mock, "charges")
    before_start = charges.add(start - 1)
    inside = charges.add(start, start + 10)
    cfg = config_since(start, lookback_window_days=5)

    first = read_incremental(cfg, "charges")
    again = read_incremental(cfg, "charges", state=next_state(first, "charges"))

    assert sorted(emitted_ids(first)) == sorted(o["id"] for o in inside)
    assert sorted(emitted_ids(again)) == sorted(o["id"] for o in inside)
    assert before_start[0]["id"] not in emitted_ids(first) + emitted_ids(again)


def test_defaults_are_30_day_windows_ending_60_seconds_before_now(requests_mock):
    start = now() - 45 * DAY
    LiveList(requests_mock, "payouts")

    before = now()
    read_incremental(config_since(start), "payouts")

    read = windows(requests_mock, "payouts")
    assert read[0] == (start, start + 30 * DAY - 1)
    assert before - 60 <= read[-1][1] <= now() - 60


def test_records_are_not_observed_one_by_one_yet_state_and_record_counts_stay_exact(requests_mock, monkeypatch):
    """The per-record `ConcurrentCursor.observe` (a hash of the window per record) is skipped: our state is the end
    of the finished windows, and the records per state message are counted by the entry point, not the cursor."""
    from airbyte_cdk.sources.streams.concurrent.cursor import ConcurrentCursor

    observed = []
    monkeypatch.setattr(ConcurrentCursor, "observe", lambda self, record: observed.append(record))
    start = now() - 100 * DAY
    charges = LiveList(requests_mock, "charges")
    charges.add(*[start + 5 + i for i in range(7)], *[start + 40 * DAY + i for i in range(5)], start + 70 * DAY)

    output = read_incremental(config_since(start, slice_range_days=30), "charges")

    assert observed == []
    assert len(output.records) == 13
    counts = [m.state.sourceStats.recordCount for m in output.state_messages]
    assert sum(counts) == 13
    assert state_values(output, "charges")[-1] == windows(requests_mock, "charges")[-1][1]
