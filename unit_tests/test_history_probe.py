"""A first sync starts each stream's windows where its history begins, found with a few requests."""
from __future__ import annotations

from source_stripe_ontologie.history_probe import DAY, HistoryStartProbe
from unit_tests.factories import objects, query_of

FLOOR = 1_293_840_000  # 2011-01-01
NOW = 1_790_000_000


class FakeStripeList:
    """Answers `created[lte]=t&limit=1` like Stripe: the newest object at or before t."""

    def __init__(self, created: list[int], field: str = "created") -> None:
        self.created = sorted(created, reverse=True)
        self.field = field  # the objects' creation field (invoice items have `date`, no `created`)
        self.queries: list[dict] = []

    def __call__(self, url: str, params: dict) -> dict:
        self.queries.append(params)
        moment = int(params["created[lte]"])
        low = int(params.get("created[gte]", 0))
        found = [c for c in self.created if low <= c <= moment][:int(params["limit"])]
        return {"object": "list", "has_more": False, "data": [{"id": "x", self.field: c} for c in found]}


def _probe(created: list[int]) -> tuple[int, FakeStripeList]:
    stripe = FakeStripeList(created)
    start = HistoryStartProbe({"client_secret": "rk_test_x"}, None, send=stripe).oldest_day("charges", {}, FLOOR, NOW)
    return start, stripe


def test_the_start_is_a_day_boundary_just_before_the_oldest_object():
    oldest = 1_600_000_123
    start, _ = _probe([oldest, oldest + 5 * DAY, 1_700_000_000])

    assert oldest - 2 * DAY < start <= oldest  # within two days before it, at a day boundary
    assert start % DAY == 0


def test_a_dozen_or_so_requests_find_it_instead_of_190_empty_windows():
    _, stripe = _probe([1_650_000_000, 1_700_000_000])

    assert len(stripe.queries) <= 16
    assert all(q["limit"] == "1" for q in stripe.queries)


def test_an_empty_stream_starts_at_the_end_and_reads_one_window():
    start, stripe = _probe([])

    assert start == NOW
    assert len(stripe.queries) == 1


def test_objects_older_than_the_floor_keep_the_floor():
    start, _ = _probe([FLOOR - 10 * DAY, FLOOR + 3 * DAY])

    assert start == FLOOR


def test_objects_without_created_are_probed_by_their_own_creation_field():
    oldest = 1_600_000_123
    for probe_one in (lambda probe: probe.starts({"items": ("invoiceitems", {}, "date")}, FLOOR, NOW),
                      lambda probe: probe.starts_by_size({"items": ("invoiceitems", {}, "date")}, FLOOR, NOW)[0]):
        stripe = FakeStripeList([oldest, 1_700_000_000], field="date")
        starts = probe_one(HistoryStartProbe({"client_secret": "rk_test_x"}, None, send=stripe))

        assert oldest - 2 * DAY < starts["items"] <= oldest  # not left at the floor (190 empty windows)


def test_a_failing_probe_leaves_the_configured_start():
    def broken(url, params):
        raise ConnectionError("refused")

    probe = HistoryStartProbe({"client_secret": "rk_test_x"}, None, send=broken)

    assert probe.starts({"charges": ("charges", {})}, FLOOR, NOW) == {}


def test_a_first_sync_windows_start_at_the_probed_day(requests_mock, read_stripe):
    from unit_tests.factories import API, config, paged_responder

    charges = objects("charges", 3, newest=1_700_000_000)
    requests_mock.get(f"{API}/v1/charges", json=paged_responder(charges, "/v1/charges"))

    output = read_stripe(config(probe_history_start=True), "charges")

    assert len(output.records) == 3
    windows = [query_of(r) for r in requests_mock.request_history if "created[gte]" in query_of(r)]
    first_start = min(int(q["created[gte]"][0]) for q in windows)
    assert 1_700_000_000 - 2 - 2 * DAY <= first_start <= 1_700_000_000 - 2
    probes = [query_of(r) for r in requests_mock.request_history if "created[gte]" not in query_of(r)]
    assert 0 < len(probes) <= 1 + 3 * 8  # unpaced, so 4-way: about 8 rounds of 3 (a bisection: ~15 requests)


def test_the_four_way_search_finds_the_same_day_in_half_the_rounds():
    for oldest in (FLOOR + 3, 1_400_000_000, 1_600_000_123, NOW - 3 * DAY):
        created = [oldest, oldest + 7 * DAY, NOW - 10]
        by_two, two = _probe(created)
        stripe = FakeStripeList(created)
        probe = HistoryStartProbe({"client_secret": "rk_live_x"}, None, send=stripe, ways=4)
        by_four = probe.oldest_day("charges", {}, FLOOR, NOW)

        assert oldest - 2 * DAY < by_four <= oldest and by_four % DAY == 0
        rounds_four, rounds_two = (len(stripe.queries) - 1) / 3, len(two.queries) - 1
        assert rounds_four <= max(2, rounds_two * 0.6), (rounds_four, rounds_two)


def test_four_ways_only_where_the_account_rate_serves_a_round_of_every_stream_at_once():
    assert HistoryStartProbe.ways_for(6, 95.0) == 4  # live key
    assert HistoryStartProbe.ways_for(6, 23.75) == 2  # test key: the extra requests would queue
    assert HistoryStartProbe.ways_for(6, None) == 4  # unpaced
