"""Incremental syncs through the CLI against the simulator: every object exactly once across syncs, crashes and
failures; the state file round-trips; lookback re-sends exactly its overlap."""
from __future__ import annotations

import threading
import time

import pytest

from integration_tests.connector_cli import SIX_STREAMS as STREAMS, Syncs, repeated
from integration_tests.stripe_simulator import StripeSimulator
from integration_tests.stripe_simulator.behaviour import Latency

START_DATE = "2021-12-01T00:00:00Z"  # the simulator's seeded objects start 2022-01-01
LAG = 2
DAY = 86_400


@pytest.fixture
def sync(stripe_simulator, tmp_path):
    return Syncs(stripe_simulator.url, start_date=START_DATE, read_lag_seconds=LAG)


def ids_of(sim, stream):
    return sorted(o["id"] for o in sim.objects(stream))


def create_one_of_each(sim, created=None):
    return {stream: sim.create(stream, created=created) for stream in STREAMS}


def settle(lag=LAG):
    """Wait until objects created so far are older than the read lag, as they are by the next hourly sync."""
    time.sleep(lag + 1.2)


def windows_read(sim, stream):
    """(created[gte], created[lte]) of every first-page request for `stream` since the last stats reset."""
    found = []
    for entry in sim.stats.as_dict()["log"]:
        params = dict(entry["params"])
        if entry["path"] == f"/v1/{stream}" and "created[gte]" in params and "starting_after" not in params:
            found.append((int(params["created[gte]"]), int(params["created[lte]"])))
    return sorted(found)


def test_syncs_with_objects_created_before_between_and_during_them_emit_each_exactly_once(stripe_simulator, sync):
    sim = stripe_simulator
    created_during = []

    def create_while_syncing():
        while sim.stats.total < 40:
            time.sleep(0.01)
        created_during.append(create_one_of_each(sim))

    creator = threading.Thread(target=create_while_syncing)
    creator.start()
    first = sync.read()
    creator.join()
    create_one_of_each(sim)
    settle()
    second = sync.read(state=first.next_state())
    create_one_of_each(sim)
    settle()
    third = sync.read(state=second.next_state())
    fourth = sync.read(state=third.next_state())

    assert created_during
    for stream in STREAMS:
        every = first.ids(stream) + second.ids(stream) + third.ids(stream)
        assert sorted(set(every)) == ids_of(sim, stream), stream
        assert repeated(every) == [], stream
        assert fourth.ids(stream) == [], stream
    assert {first.returncode, second.returncode, third.returncode, fourth.returncode} == {0}


@pytest.mark.parametrize("lag, arrives", [(20, True)], ids=["with-read-lag"])
def test_object_created_in_the_second_a_sync_read_after_it_read_it(stripe_simulator, tmp_path, lag, arrives):
    """The peer's boundary bug: with the lag the late object arrives once. Without it (the naive cursor) it was
    lost: the spec now refuses a lag below 2 s (next test).

    The late object becomes visible one whole first sync after its `created` second; the lag covers objects visible
    up to `lag` seconds late, so it must exceed the first sync's duration (20 s: a loaded 2-core machine took 7)."""
    sim = stripe_simulator
    sync = Syncs(sim.url, start_date=START_DATE)
    boundary = int(time.time())
    early = sim.create("charges", created=boundary)

    first = sync.read(["charges"], read_lag_seconds=lag)
    late = sim.create("charges", created=boundary)  # same second, created after the sync read it
    settle(lag)
    second = sync.read(["charges"], state=first.next_state(), read_lag_seconds=lag)

    every = first.ids("charges") + second.ids("charges")
    assert repeated(every) == []
    assert early["id"] in every
    assert (late["id"] in every) is arrives


def test_a_killed_sync_resumes_from_its_last_state_without_losing_or_repeating_finished_windows(tmp_path):
    with StripeSimulator(seed=7, size="small", latency=Latency(fixed_ms=15)) as sim:
        sync = Syncs(sim.url, start_date=START_DATE, read_lag_seconds=LAG)
        total = sum(len(sim.objects(stream)) for stream in STREAMS)

        killed = sync.read(stop_when=lambda so_far: len(so_far.of_type("RECORD")) >= total // 2)
        resumed = sync.read(state=killed.next_state())

        assert killed.returncode != 0 and resumed.returncode == 0
        assert any(killed.cursor(stream) for stream in STREAMS)  # it had checkpointed before it died
        for stream in STREAMS:
            every = killed.ids(stream) + resumed.ids(stream)
            assert sorted(set(every)) == ids_of(sim, stream), stream
            cursor = killed.cursor(stream) or 0
            created = {o["id"]: o["created"] for o in sim.objects(stream)}
            assert all(created[i] > cursor for i in repeated(every)), stream  # only re-read windows repeat


def test_a_window_failing_persistently_holds_its_stream_state_until_it_reads(stripe_simulator, sync):
    sim = stripe_simulator
    failing_from, failing_to = 1672531200, 1675209600  # January 2023, inside the seeded charges
    sim.faults.fail_resource("charges", status=400, created_gte=failing_from, created_lt=failing_to)

    started = int(time.time())
    first = sync.read()
    second = sync.read(state=first.next_state())
    sim.faults.clear()
    third = sync.read(state=second.next_state())

    assert first.returncode != 0 and second.returncode != 0 and third.returncode == 0
    assert first.errors() and second.errors()
    assert first.cursor("charges") < failing_from and second.cursor("charges") < failing_from
    assert all(first.cursor(s) >= started - LAG for s in STREAMS if s != "charges")  # the other streams finished
    every = first.ids("charges") + second.ids("charges") + third.ids("charges")
    assert sorted(set(every)) == ids_of(sim, "charges")
    created = {o["id"]: o["created"] for o in sim.objects("charges")}
    assert repeated(every) and all(created[i] >= failing_from for i in repeated(every))


def test_state_file_round_trips_and_the_next_sync_starts_one_second_after_it(stripe_simulator, sync):
    sim = stripe_simulator
    started = int(time.time())
    first = sync.read()
    sim.reset_stats()

    second = sync.read(state=first.next_state())

    for stream in STREAMS:
        saved = first.next_state()
        stream_state = next(s for s in saved if s["stream"]["stream_descriptor"]["name"] == stream)
        assert set(stream_state["stream"]["stream_state"]) == {"created", "events_created"}
        assert stream_state["stream"]["stream_state"]["created"] == str(first.cursor(stream))
        # a first sync starts its events cursor at its horizon: the read lag before it started
        assert started - LAG <= int(stream_state["stream"]["stream_state"]["events_created"]) <= first.cursor(stream)
        assert windows_read(sim, stream)[0][0] == first.cursor(stream) + 1
        assert second.ids(stream) == []
        assert second.cursor(stream) > first.cursor(stream)  # it advanced to the end of what it read
    assert second.returncode == 0


def test_lookback_re_sends_exactly_the_objects_of_its_days_before_the_state(stripe_simulator, sync):
    sim = stripe_simulator
    lookback_days = 3
    for days_ago in (1, 2, 4, 5):
        create_one_of_each(sim, created=int(time.time()) - days_ago * DAY)
    first = sync.read()

    second = sync.read(state=first.next_state(), lookback_window_days=lookback_days)

    for stream in STREAMS:
        cursor = first.cursor(stream)
        overlap = sorted(o["id"] for o in sim.objects(stream) if cursor - lookback_days * DAY < o["created"] <= cursor)
        assert overlap, stream  # the seeded data does reach into the lookback
        assert sorted(second.ids(stream)) == overlap, stream


def test_a_state_in_the_future_stops_the_sync_before_any_request(stripe_simulator, sync):
    sim = stripe_simulator
    future = int(time.time()) + 30 * DAY
    state = [{"type": "STREAM", "stream": {"stream_descriptor": {"name": "charges"},
                                           "stream_state": {"created": str(future)}}}]

    result = sync.read(["charges"], state=state)

    assert result.returncode != 0
    assert any(f"created={future}, which is in the future" in error["message"] for error in result.errors())
    assert result.records("charges") == []
    assert sim.stats.total == 0


def test_full_refresh_reads_every_object_once_even_when_handed_a_state(stripe_simulator, sync):
    sim = stripe_simulator
    first = sync.read()

    full = sync.read(state=first.next_state(), sync_mode="full_refresh")

    for stream in STREAMS:
        assert sorted(full.ids(stream)) == ids_of(sim, stream), stream


@pytest.mark.parametrize("lag", [0, 1])
def test_a_read_lag_that_would_reopen_the_boundary_race_is_refused_before_any_request(stripe_simulator, lag):
    from integration_tests.connector_cli import configured_catalog, run_connector, simulator_config
    from integration_tests.stripe_simulator import keys

    config = simulator_config(stripe_simulator.url, keys.TEST_KEY, start_date=START_DATE, read_lag_seconds=lag)
    run = run_connector("read", config, configured_catalog(["charges"], sync_mode="incremental"), timeout=60)

    assert run.returncode != 0
    assert f"{lag} is less than the minimum of 2" in run.stdout
    assert stripe_simulator.stats.total == 0


PROBE_FROM = 1_638_316_800  # START_DATE: the history probe's first page lists from there


def _window_requests(sim, resource):
    """(created[gte], created[lte]) of the first page of each window of `resource`, the probe's page left out."""
    found = []
    for entry in sim.stats.log:
        params = dict(entry["params"])
        if entry["path"] == f"/v1/{resource}" and params.get("limit") == "100" and "starting_after" not in params:
            found.append((int(params["created[gte]"]), int(params["created[lte]"])))
    return sorted(window for window in found if window[0] != PROBE_FROM)


def test_a_first_sync_costs_a_small_stream_two_requests_and_a_big_one_no_window_after_its_newest_object_but_one(
        stripe_simulator, sync):
    sim = stripe_simulator  # the small dataset: tens of objects per stream, 2022-01 to 2024-06
    for i in range(150):  # charges become more than a page
        sim.create("charges", created=1_672_531_200 + i * 100_000)
    newest = max(o["created"] for o in sim.objects("charges"))  # in 2024, years ago
    sim.reset_stats()

    first = sync.read()

    assert first.returncode == 0
    for stream in STREAMS:
        assert sorted(first.ids(stream)) == ids_of(sim, stream), stream
        readers = 2 if stream == "payouts" else 1  # payout_balance_transactions reads the payouts too
        if stream != "charges":
            assert sim.stats.requests[f"/v1/{stream}"] == 2 * readers, stream  # the probe's page and one window
    windows = _window_requests(sim, "charges")
    after = [w for w in windows if w[0] > newest]
    assert len(after) == 1 and after[0][1] >= time.time() - LAG - 30  # one tail window up to now
    assert len(windows) <= (newest - windows[0][0]) // (30 * DAY) + 2  # the months with data, and the tail
