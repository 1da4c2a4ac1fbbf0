"""A first sync starts each stream's windows where its history begins, found with a few requests."""
from __future__ import annotations

from source_stripe_ontologie import SourceStripeOntologie
from source_stripe_ontologie.history_probe import DAY, History, HistoryStartProbe, ProbedList
from unit_tests.factories import config, objects, query_of
from unit_tests.reads import catalog

FLOOR = 1_293_840_000  # 2011-01-01
NOW = 1_790_000_000
CHARGES = ProbedList("charges", {})


class FakeStripeList:
    """Answers like Stripe: the newest objects within `created[gte]`..`created[lte]`, `limit` of them, and
    whether there are more."""

    def __init__(self, created: list[int]) -> None:
        self.created = sorted(created, reverse=True)
        self.queries: list[dict] = []

    def __call__(self, url: str, params: dict) -> dict:
        self.queries.append(params)
        low, high = int(params.get("created[gte]", 0)), int(params["created[lte]"])
        listed = [c for c in self.created if low <= c <= high]
        limit = int(params["limit"])
        return {"object": "list", "has_more": len(listed) > limit,
                "data": [{"id": "x", "created": c} for c in listed[:limit]]}


def _many(oldest: int, newest: int, count: int = 150) -> list[int]:
    """More than a page of objects from `oldest` to `newest`."""
    return [oldest + (newest - oldest) * i // (count - 1) for i in range(count)]


def _probe(created: list[int], ways: int = 2):
    stripe = FakeStripeList(created)
    history = HistoryStartProbe({"client_secret": "rk_test_x"}, None, send=stripe, ways=ways).history(
        CHARGES, FLOOR, NOW)
    return history, stripe


def test_the_start_is_a_day_boundary_just_before_the_oldest_object():
    oldest = 1_600_000_123
    for created in ([oldest, oldest + 5 * DAY, 1_700_000_000], _many(oldest, 1_700_000_000)):
        history, _ = _probe(created)

        assert oldest - 2 * DAY < history.start <= oldest  # within two days before it, at a day boundary
        assert history.start % DAY == 0


def test_a_stream_within_one_page_costs_one_request_and_is_read_in_one_window():
    history, stripe = _probe([1_650_000_000, 1_700_000_000])

    assert len(stripe.queries) == 1 and stripe.queries[0]["limit"] == "100"
    assert history.start <= 1_650_000_000 and history.start + history.one_window_days * DAY > NOW
    assert history.newest == 1_700_000_000


def test_a_bigger_stream_is_searched_with_a_dozen_or_so_requests_and_tells_its_newest_object():
    history, stripe = _probe(_many(1_650_000_000, 1_700_000_000))

    assert len(stripe.queries) <= 1 + 16
    assert all(q["limit"] == "1" for q in stripe.queries[1:])
    assert history.one_window_days is None and history.newest == 1_700_000_000


def test_an_empty_stream_starts_at_the_end_and_reads_one_window():
    history, stripe = _probe([])

    assert history.start == NOW and history.one_window_days == 1 and history.newest is None
    assert len(stripe.queries) == 1


def test_the_start_is_never_before_the_floor():
    for created in ([FLOOR - 10 * DAY, FLOOR + 3 * DAY], [FLOOR - 10 * DAY] + _many(FLOOR + 3 * DAY, NOW - DAY)):
        history, _ = _probe(created)

        assert FLOOR <= history.start <= FLOOR + 3 * DAY


def test_a_list_filtered_on_another_field_is_probed_on_that_field():
    items = [{"id": "ii", "date": 1_700_000_000}]
    probe = HistoryStartProbe({"client_secret": "rk_test_x"}, None,
                              send=lambda url, params: {"has_more": False, "data": items})

    history = probe.history(ProbedList("invoiceitems", {}, "date"), FLOOR, NOW)

    assert history is not None and history.start == 1_700_000_000 - 1_700_000_000 % DAY


def test_a_failing_probe_leaves_the_configured_start():
    def broken(url, params):
        raise ConnectionError("refused")

    probe = HistoryStartProbe({"client_secret": "rk_test_x"}, None, send=broken)

    assert probe.histories({"charges": CHARGES}, FLOOR, NOW) == {}


def test_a_first_sync_of_a_big_stream_starts_its_windows_within_one_window_of_its_oldest_object(requests_mock,
                                                                                                  read_stripe):
    from unit_tests.factories import API, config, paged_responder

    charges = objects("charges", 150, newest=1_700_000_000)
    requests_mock.get(f"{API}/v1/charges", json=paged_responder(charges, "/v1/charges"))

    output = read_stripe(config(probe_history_start=True), "charges")

    assert len(output.records) == 150
    windows = [query_of(r) for r in requests_mock.request_history if "limit" in query_of(r)
               and query_of(r)["limit"] == ["100"] and "starting_after" not in query_of(r)][1:]
    first_start = min(int(q["created[gte]"][0]) for q in windows)
    assert 1_700_000_000 - 150 - 31 * DAY <= first_start <= 1_700_000_000 - 150  # the default 30-day windows
    searches = [query_of(r) for r in requests_mock.request_history if query_of(r).get("limit") == ["1"]]
    assert 0 < len(searches) <= 3 * 6  # unpaced, so 4-way, to within 30 days: about 6 rounds of 3


def test_the_four_way_search_finds_the_same_day_in_half_the_rounds():
    for oldest in (FLOOR + 3, 1_400_000_000, 1_600_000_123, NOW - 3 * DAY):
        created = [oldest, oldest + 7 * DAY] + _many(NOW - 2 * DAY, NOW - 10)
        by_two, two = _probe(created)
        by_four, four = _probe(created, ways=4)

        assert oldest - 2 * DAY < by_four.start <= oldest and by_four.start % DAY == 0
        assert by_two.start == by_four.start or abs(by_two.start - by_four.start) <= DAY
        rounds_four, rounds_two = (len(four.queries) - 1) / 3, len(two.queries) - 1
        assert rounds_four <= max(2, rounds_two * 0.6), (rounds_four, rounds_two)


def test_four_ways_only_where_the_account_rate_serves_a_round_of_every_stream_at_once():
    assert HistoryStartProbe.ways_for(6, 95.0) == 4  # live key
    assert HistoryStartProbe.ways_for(6, 23.75) == 2  # test key: the extra requests would queue
    assert HistoryStartProbe.ways_for(6, None) == 4  # unpaced


def test_a_sync_searches_only_to_within_one_window_of_the_oldest_object_in_fewer_requests():
    oldest = 1_600_000_123
    created = [oldest] + _many(1_650_000_000, 1_700_000_000)
    to_the_day, by_day = _probe(created)
    stripe = FakeStripeList(created)
    to_the_window = HistoryStartProbe({"client_secret": "rk_test_x"}, None, send=stripe, resolution=30 * DAY).history(
        CHARGES, FLOOR, NOW)

    assert oldest - 31 * DAY < to_the_window.start <= oldest  # the oldest object lies in the first 30-day window
    assert to_the_window.start % DAY == 0
    assert len(stripe.queries) <= len(by_day.queries) - 4  # each halving below a window's length was a request
    assert to_the_window.newest == to_the_day.newest


def test_a_bigger_stream_tells_how_many_pages_its_history_should_take():
    history, _ = _probe(_many(1_600_000_000, 1_700_000_000, count=1_000), ways=4)

    assert history.one_window_days is None
    assert 9 <= history.pages <= 12  # 1,000 objects evenly spread: 10 pages (the start lies up to a day before)


def test_streams_listing_the_same_resource_add_their_pages_to_that_endpoints_estimate(monkeypatch):
    found = {"payouts": History(FLOOR, None, NOW, 30), "payout_balance_transactions": History(FLOOR, None, NOW, 30),
             "charges": History(FLOOR, None, NOW, 50)}
    monkeypatch.setattr(HistoryStartProbe, "histories", lambda self, streams, floor, until: found)
    source = SourceStripeOntologie(config=config(probe_history_start=True, max_requests_per_second=None,
                                                 max_requests_per_endpoint_per_second=None,
                                                 client_secret="rk_live_51ProbeTestKeyAbCdEfGh0000wxyz"))
    expected = []
    monkeypatch.setattr(source.rate_budget(), "expect_pages", expected.append)

    source._start_streams_where_their_history_begins(catalog(*found))

    assert expected == [{"/v1/payouts": 60, "/v1/charges": 50}]  # both payout streams read /v1/payouts
