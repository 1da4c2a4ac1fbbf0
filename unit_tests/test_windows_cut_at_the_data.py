"""A first sync's windows are cut at the data: a stream within one page is one window, a bigger one is windowed from
its oldest object to its newest, and everything after its newest object is one tail window up to now."""
from __future__ import annotations

from typing import List

from unit_tests.factories import API, DAY, LiveList, config, now, paged_responder, query_of
from unit_tests.reads import emitted_ids, next_state, read_incremental, repeated, state_values

YEAR_2023 = 1_672_531_200  # 2023-01-01


def probed(**overrides):
    return config(probe_history_start=True, **overrides)


def window_requests(requests_mock, resource: str) -> List[tuple[int, int]]:
    """(created[gte], created[lte]) of the first page of each window, the probe's first page left out."""
    requests = [r for r in requests_mock.request_history if r.path == f"/v1/{resource}"]
    return sorted((int(query_of(r)["created[gte]"][0]), int(query_of(r)["created[lte]"][0]))
                  for r in requests[1:] if "created[gte]" in query_of(r) and "starting_after" not in query_of(r))


def spread(charges: LiveList, first: int, last: int, count: int):
    return charges.add(*(first + (last - first) * i // (count - 1) for i in range(count)))


def test_a_small_stream_costs_the_probe_and_one_window_request(requests_mock):
    charges = LiveList(requests_mock, "charges")
    spread(charges, now() - 4 * 365 * DAY, now() - 3 * DAY, 30)  # 30 objects over four years

    output = read_incremental(probed(), "charges")

    requests = [r for r in requests_mock.request_history if r.path == "/v1/charges"]
    assert len(requests) == 2
    assert sorted(emitted_ids(output)) == sorted(o["id"] for o in charges.objects)


def test_a_big_streams_windows_stop_at_its_newest_object_then_one_tail_window_to_now(requests_mock):
    charges = LiveList(requests_mock, "charges")
    spread(charges, YEAR_2023 + 10 * DAY, YEAR_2023 + 300 * DAY, 250)  # objects in 2023 only, read years later
    newest = YEAR_2023 + 300 * DAY

    output = read_incremental(probed(), "charges")

    windows = window_requests(requests_mock, "charges")
    after_newest = [w for w in windows if w[0] > newest]
    assert len(after_newest) == 1  # no window for the empty months since, but the tail
    tail = after_newest[0]
    assert tail[1] >= now() - 61 - 5 and tail[0] == max(w[1] for w in windows if w[0] <= newest) + 1
    assert len(windows) <= 12  # 2023's months, not the 40 since
    assert sorted(emitted_ids(output)) == sorted(o["id"] for o in charges.objects)
    assert repeated(emitted_ids(output)) == []
    assert max(state_values(output, "charges")) == tail[1]  # the state reaches the tail's end


def test_an_object_created_after_the_probe_is_read_by_the_tail_window(requests_mock):
    charges = LiveList(requests_mock, "charges")
    spread(charges, YEAR_2023, YEAR_2023 + 200 * DAY, 150)
    serve = paged_responder(charges.objects, "/v1/charges")
    late = []

    def new_object_once_probed(request, context):
        answer = serve(request, context)
        if not late:  # the probe's first page has been answered: a charge is created
            late.extend(charges.add(now() - 90))
        return answer

    requests_mock.get(f"{API}/v1/charges", json=new_object_once_probed)

    output = read_incremental(probed(), "charges")

    assert late[0]["id"] in emitted_ids(output)
    assert sorted(emitted_ids(output)) == sorted(o["id"] for o in charges.objects)


def test_a_failing_window_holds_the_state_below_it_and_the_resumed_sync_completes_the_dataset(requests_mock):
    charges = LiveList(requests_mock, "charges")
    spread(charges, YEAR_2023, YEAR_2023 + 40 * DAY, 150)
    failing_from = YEAR_2023 + 35 * DAY
    serve = paged_responder(charges.objects, "/v1/charges")

    def fail_one_window(request, context):
        query = query_of(request)
        window = int(query.get("created[gte]", ["0"])[0]), int(query["created[lte]"][0])
        if window[0] <= failing_from <= window[1] < now() - 365 * DAY:  # the window holding it, not the probe's
            context.status_code = 400
            return {"error": {"type": "invalid_request_error", "message": "Simulated failure"}}
        return serve(request, context)

    requests_mock.get(f"{API}/v1/charges", json=fail_one_window)
    first = read_incremental(probed(), "charges", expecting_exception=True)
    requests_mock.get(f"{API}/v1/charges", json=serve)
    resumed = read_incremental(probed(), "charges", state=next_state(first, "charges"))

    assert max(state_values(first, "charges")) < failing_from
    assert first.errors
    every = emitted_ids(first) + emitted_ids(resumed)
    assert sorted(set(every)) == sorted(o["id"] for o in charges.objects)
    state = max(state_values(first, "charges"))
    created = {o["id"]: o["created"] for o in charges.objects}
    assert all(created[i] > state for i in repeated(every))  # only the windows after the state are read again
