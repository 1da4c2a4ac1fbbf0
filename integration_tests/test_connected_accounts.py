"""Stripe Connect through the CLI against the simulator: every account read exactly, stamped, with its own state.

The catalog is every stream the manifest declares. What each account should give is built from the simulator's own
data for that account (`held`): a stream's objects, and for a stream of children (a payout's balance transactions)
the children of each ready parent, linked to it.
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Dict, List, Optional

import pytest

from integration_tests.connector_cli import STREAMS, configured_catalog, run_connector, simulator_config
from integration_tests.stripe_simulator import StripeSimulator, keys
from source_stripe_ontologie import SourceStripeOntologie
from source_stripe_ontologie.connected_accounts import shard_of

FACTS = SourceStripeOntologie().facts
SMALL = {"customers": 3, "charges": 4, "subscriptions": 1, "invoices": 2, "products": 2, "payouts": 2}


def connect_platform(sim: StripeSimulator) -> Dict[str, str]:
    """A platform with accounts of very different sizes: tiny, small, empty (created oldest first)."""
    return {"tiny": sim.connect_account(size="tiny", created=1_700_000_000),
            "small": sim.connect_account(counts=SMALL, created=1_700_000_100),
            "empty": sim.connect_account(size="empty", created=1_700_000_200)}


def read(sim: StripeSimulator, sync_mode: str = "full_refresh", state: Optional[List[dict]] = None,
         stop_when=None, **config):
    return run_connector("read", simulator_config(sim.url, keys.TEST_KEY, **config),
                         configured_catalog(STREAMS, sync_mode), state, stop_when=stop_when)


def key_of(stream: str, record: dict) -> tuple:
    """A record's identity in its stream: its id, and for a child the parent it was read under."""
    children = FACTS.stream(stream).children_of
    return (record["id"], record[children.link_field]) if children else (record["id"],)


def ids_by_account(run, stream: str) -> Dict[str, Counter]:
    out: Dict[str, Counter] = {}
    for record in run.records(stream):
        out.setdefault(record["stripe_account_id"], Counter())[key_of(stream, record)] += 1
    return out


def held(sim: StripeSimulator, account: str, stream: str) -> List[dict]:
    """What the simulator holds for `stream` in `account`, as records (children carry their parent's id)."""
    facts = FACTS.stream(stream)
    acting = None if account == sim.platform_account_id else account
    parents = sim.objects(facts.resource, account=acting)
    if not facts.children_of:
        return parents
    link = facts.children_of.link_field
    return [{**child, link: parent["id"]} for parent in parents if facts.children_of.ready(parent)
            for child in sim.paid_out_by(parent["id"], account=acting)]


def expected_ids(sim: StripeSimulator, accounts: List[str], stream: str) -> Dict[str, Counter]:
    out = {}
    for account in accounts:
        ids = Counter(key_of(stream, record) for record in held(sim, account, stream))
        if ids:
            out[account] = ids
    return out


def state_accounts(run, stream: str) -> Dict[str, dict]:
    state = next(s for s in run.final_state() if s["stream"]["stream_descriptor"]["name"] == stream)
    return {entry["partition"]["stripe_account_id"]: entry["cursor"]
            for entry in state["stream"]["stream_state"]["states"]}


@pytest.fixture
def platform():
    with StripeSimulator(seed=7, size="tiny", preload=("test",)) as sim:
        yield sim, connect_platform(sim)


def test_all_reads_every_account_exactly_each_record_stamped_with_its_account(platform):
    sim, accounts = platform
    run = read(sim, connected_accounts="all")

    assert run.returncode == 0, run.stderr[-3000:]
    everyone = [sim.platform_account_id, *accounts.values()]
    for stream in STREAMS:
        assert ids_by_account(run, stream) == expected_ids(sim, everyone, stream), stream
    record = next(r for r in run.records("customers") if r["stripe_account_id"] == accounts["small"])
    assert record == {**sim.get("customers", record["id"], account=accounts["small"]),
                      "stripe_account_id": accounts["small"]}
    for stream in (name for name in STREAMS if FACTS.stream(name).children_of):  # each child as Stripe sends it
        by_key = {(account, key_of(stream, r)): r for account in everyone for r in held(sim, account, stream)}
        assert all(record == {**by_key[(record["stripe_account_id"], key_of(stream, record))],
                              "stripe_account_id": record["stripe_account_id"]} for record in run.records(stream))
    assert not run.errors()
    assert all(run.stream_statuses(stream) == ["STARTED", "RUNNING", "COMPLETE"] for stream in STREAMS)


def test_an_explicit_list_reads_only_those_accounts(platform):
    sim, accounts = platform
    run = read(sim, connected_accounts=[accounts["small"], accounts["empty"]], include_platform_account=False)

    assert run.returncode == 0, run.stderr[-3000:]
    for stream in STREAMS:
        assert ids_by_account(run, stream) == expected_ids(sim, [accounts["small"]], stream), stream
    assert not any(entry["path"] == "/v1/accounts" for entry in sim.stats.log)  # no listing needed


def test_an_account_revoked_mid_sync_fails_alone_and_is_named(platform):
    sim, accounts = platform
    gone = accounts["small"]
    gone_customers = {c["id"] for c in sim.objects("customers", account=gone)}
    sim.hooks.after_page("customers", lambda page: sim.revoke_account(gone), times=1,
                         when=lambda page: bool(set(page["ids"]) & gone_customers))
    run = read(sim, "incremental", connected_accounts="all")

    assert run.returncode != 0
    named = [e["message"] for e in run.errors() if gone in e["message"]]
    assert named and "account_invalid" in named[0] and "reconnect" in named[0]
    assert f"1 of 4 accounts did not sync: {gone}" in run.errors()[-1]["message"]
    others = [sim.platform_account_id, accounts["tiny"], accounts["empty"]]
    for stream in STREAMS:
        found = ids_by_account(run, stream)
        found.pop(gone, None)
        assert found == expected_ids(sim, others, stream), stream
        assert set(others) <= set(state_accounts(run, stream)), stream


def test_a_second_sync_brings_a_new_account_whole_and_new_objects_once(platform):
    sim, accounts = platform
    first = read(sim, "incremental", connected_accounts="all", read_lag_seconds=2)
    assert first.returncode == 0, first.stderr[-3000:]

    newcomer = sim.connect_account(size="tiny")
    added = sim.create("customers", account=accounts["small"])
    changed = sim.update("customers", sim.objects("customers", account=accounts["tiny"])[0]["id"],
                         account=accounts["tiny"], email="changed@example.com")
    time.sleep(3)  # past the read lag: the change is before the next sync's horizon
    second = read(sim, "incremental", first.final_state(), connected_accounts="all", read_lag_seconds=2)

    assert second.returncode == 0, second.stderr[-3000:]
    for stream in STREAMS:
        found = ids_by_account(second, stream)
        assert found.pop(newcomer, Counter()) == expected_ids(sim, [newcomer], stream).get(newcomer, Counter()), stream
        if stream == "customers":
            assert found == {accounts["small"]: Counter({(added["id"],): 1}),
                             accounts["tiny"]: Counter({(changed["id"],): 1})}
        else:
            assert found == still_unsettled(sim, first, stream), stream
    assert next(r for r in second.records("customers") if r["id"] == changed["id"])["email"] == "changed@example.com"


def still_unsettled(sim: StripeSimulator, run, stream: str) -> Dict[str, Counter]:
    """What an unsettled stream reads again after `run`: per account, everything from its oldest object that was still
    unsettled (the state's `unsettled_since`) on, as it is now; nothing for other streams."""
    if not FACTS.stream(stream).unsettled:
        return {}
    out = {}
    for account, cursor in state_accounts(run, stream).items():
        if "unsettled_since" in cursor:
            out[account] = Counter(key_of(stream, r) for r in held(sim, account, stream)
                                   if r["created"] >= int(cursor["unsettled_since"]))
    return out


def union_of(first, second, stream: str) -> Dict[str, Counter]:
    union = ids_by_account(first, stream)
    for account, ids in ids_by_account(second, stream).items():
        union[account] = union.get(account, Counter()) + ids
    return union


def test_a_killed_sync_resumes_every_account_where_it_was(platform):
    sim, accounts = platform
    last = accounts["tiny"]  # one account at a time, listed newest first: platform, empty, small, tiny

    def second_account_started(run) -> bool:
        return any(r["stripe_account_id"] == accounts["small"] for r in run.records())

    killed = read(sim, "incremental", connected_accounts="all", accounts_in_flight=1, stop_when=second_account_started)
    assert killed.returncode != 0
    assert not any(r["stripe_account_id"] == last for r in killed.records())
    resumed = read(sim, "incremental", killed.final_state(), connected_accounts="all", accounts_in_flight=1)

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not any(r["stripe_account_id"] == sim.platform_account_id for r in resumed.records())  # done before
    everyone = [sim.platform_account_id, *accounts.values()]
    for stream in STREAMS:
        union = union_of(killed, resumed, stream)
        expected = expected_ids(sim, everyone, stream)
        assert {a: set(ids) for a, ids in union.items()} == {a: set(ids) for a, ids in expected.items()}, stream
        assert union[last] == expected[last] if last in expected else True  # untouched account read once, whole


def test_a_sync_killed_with_accounts_in_flight_resumes_each_account_from_its_own_state(platform):
    sim, accounts = platform

    def an_account_saved_its_state(run) -> bool:
        return any(s["stream"]["stream_state"]["states"] for s in run.states())

    killed = read(sim, "incremental", connected_accounts="all", accounts_in_flight=4,
                  stop_when=an_account_saved_its_state)
    assert killed.returncode != 0
    saved = {s["stream"]["stream_descriptor"]["name"]: state_accounts(killed, s["stream"]["stream_descriptor"]["name"])
             for s in killed.final_state()}
    assert any(saved.values())
    resumed = read(sim, "incremental", killed.final_state(), connected_accounts="all", accounts_in_flight=4)

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    everyone = [sim.platform_account_id, *accounts.values()]
    for stream in STREAMS:
        expected = expected_ids(sim, everyone, stream)
        assert {a: set(ids) for a, ids in union_of(killed, resumed, stream).items()} == {
            a: set(ids) for a, ids in expected.items()}, stream
        if FACTS.stream(stream).children_of:
            continue  # a child has no `created` of its stream's own
        for account, cursor in saved.get(stream, {}).items():  # what an account saved is not read again
            since = min(int(cursor[k]) for k in ("created", "unsettled_since") if k in cursor)
            assert all(r["created"] >= since for r in resumed.records(stream) if r["stripe_account_id"] == account), (
                stream, account)


def test_an_account_that_leaves_the_platform_leaves_the_state_but_not_while_the_listing_fails(platform):
    sim, accounts = platform
    first = read(sim, "incremental", connected_accounts="all")
    assert first.returncode == 0, first.stderr[-3000:]
    gone = accounts["tiny"]
    sim.remove_account(gone)
    unlisting = "rk_test_CannotListAccounts00000000"  # the listing fails (403): nothing may be forgotten
    sim.add_key(unlisting, mode="test", resources={FACTS.stream(name).resource for name in STREAMS} | {"events"})
    failed = run_connector("read", simulator_config(sim.url, unlisting, connected_accounts="all"),
                           configured_catalog(STREAMS, "incremental"), first.final_state())
    assert failed.returncode != 0 and "rak_account_read" in failed.errors()[-1]["message"]
    assert all(gone in state_accounts(failed, stream) for stream in STREAMS)

    second = read(sim, "incremental", failed.final_state(), connected_accounts="all")

    assert second.returncode == 0, second.stderr[-3000:]
    for stream in STREAMS:
        assert set(state_accounts(second, stream)) == {sim.platform_account_id, accounts["small"], accounts["empty"]}
    assert any(gone in line and "no longer" in line for line in second.logs("INFO"))


def test_two_shards_cover_every_account_exactly_once(platform):
    sim, accounts = platform
    for n in range(6):
        sim.connect_account(size="empty" if n % 2 else "tiny")
    everyone = [sim.platform_account_id, *sim.connected_accounts()]
    runs = [read(sim, connected_accounts="all", account_shard=f"{k}/2") for k in (1, 2)]

    for k, run in enumerate(runs, start=1):
        assert run.returncode == 0, run.stderr[-3000:]
        assert {a for a in everyone if shard_of(a, 2) == k} == set(state_accounts(run, "customers"))
    for stream in STREAMS:
        one, two = (ids_by_account(run, stream) for run in runs)
        assert not set(one) & set(two)
        assert {**one, **two} == expected_ids(sim, everyone, stream), stream


def test_a_key_that_cannot_list_accounts_fails_check_and_read_naming_the_permission(platform):
    sim, _ = platform
    key = "rk_test_NoConnectAccess0000000000"
    sim.add_key(key, mode="test", resources={"customers", "charges", "subscriptions", "invoices", "products",
                                             "payouts", "events"})
    config = simulator_config(sim.url, key, connected_accounts="all")

    status = run_connector("check", config).connection_status()
    assert status["status"] == "FAILED" and "rak_account_read" in status["message"]
    run = run_connector("read", config, configured_catalog(["customers"]))
    assert run.returncode != 0 and "rak_account_read" in run.errors()[-1]["message"]
    # an explicit list needs no listing: the same key reads those accounts
    assert run_connector("check", {**config, "connected_accounts": [sim.connected_accounts()[0]]}
                         ).connection_status()["status"] == "SUCCEEDED"


@pytest.mark.parametrize("fields, named", [
    ({"connected_accounts": "some"}, "connected_accounts"),
    ({"connected_accounts": ["acct_1Good", "cus_123"]}, "connected_accounts"),
    ({"connected_accounts": []}, "connected_accounts"),
    ({"connected_accounts": "all", "account_id": "acct_1Good"}, "account_id and connected_accounts"),
    ({"connected_accounts": "all", "account_shard": "3/2"}, "account_shard"),
    ({"account_shard": "1/2"}, "account_shard"),
    ({"connected_accounts": "all", "include_platform_account": "yes"}, "include_platform_account"),
])
def test_a_bad_connect_config_is_refused_before_any_request_naming_the_field(platform, fields, named):
    sim, _ = platform
    sim.reset_stats()
    status = run_connector("check", simulator_config(sim.url, keys.TEST_KEY, **fields)).connection_status()

    assert status["status"] == "FAILED" and named in status["message"]
    assert not sim.stats.log


def requests_by_account(sim: StripeSimulator, keep) -> Counter:
    """The simulator's requests that `keep(entry)` selects, counted per account they acted on."""
    return Counter(e["headers"].get("Stripe-Account") or sim.platform_account_id for e in sim.stats.log if keep(e))


def is_child_list(entry: dict) -> bool:
    """A stream of children's request for one parent's children (`?payout=po_...`)."""
    asked = {name for name, _ in entry["params"]}
    return any(FACTS.stream(name).children_of.filter in asked for name in STREAMS if FACTS.stream(name).children_of)


def is_sub_list(entry: dict) -> bool:
    """A request completing an embedded list beyond its first 10 items (`/v1/invoices/in_.../lines`)."""
    return entry["path"].count("/") > 2


def test_many_small_accounts_cost_two_requests_per_stream_then_one_window_each_and_one_events_request(platform):
    sim, _ = platform
    for n in range(8):
        sim.connect_account(counts=SMALL if n % 2 else {name: 0 for name in SMALL})
    everyone = [sim.platform_account_id, *sim.connected_accounts()]
    sim.reset_stats()
    first = read(sim, "incremental", connected_accounts="all")
    assert first.returncode == 0, first.stderr[-3000:]
    # every stream of every account: a size probe and one window (the platform's tiny data fits in a page too) ...
    lists = requests_by_account(sim, lambda e: e["path"] not in ("/v1/events", "/v1/account", "/v1/accounts")
                                and not is_child_list(e) and not is_sub_list(e))
    assert set(lists) == set(everyone) and max(lists.values()) <= 2 * len(STREAMS)
    # ... plus, for a stream of children, one request per ready parent, and one per embedded list longer than a page
    parents = Counter()
    for stream in (name for name in STREAMS if FACTS.stream(name).children_of):
        parents.update({account: len({key[1] for key in ids}) for account, ids in
                        expected_ids(sim, everyone, stream).items()})
    assert requests_by_account(sim, is_child_list) == parents
    sub_lists = [e["path"] for e in sim.stats.log if is_sub_list(e)]
    assert len(sub_lists) == len(set(sub_lists))
    assert [e["path"] for e in sim.stats.log].count("/v1/accounts") == 1
    assert any("accounts read" in line and "per account" in line and "500 reads per transaction" in line
               for line in first.logs())

    sim.reset_stats()
    second = read(sim, "incremental", first.final_state(), connected_accounts="all")
    assert second.returncode == 0, second.stderr[-3000:]
    windows = requests_by_account(sim, lambda e: e["path"] not in ("/v1/events", "/v1/account", "/v1/accounts"))
    assert set(windows) == set(everyone) and max(windows.values()) <= len(STREAMS)  # one per stream, at most
    assert requests_by_account(sim, lambda e: e["path"] == "/v1/events") == Counter(dict.fromkeys(everyone, 1))
    assert not second.records()


def test_a_single_account_state_is_not_handed_to_any_account_when_connect_is_switched_on(platform):
    sim, accounts = platform
    single = read(sim, "incremental")
    assert single.returncode == 0 and "stripe_account_id" not in single.records()[0]  # single-account: unchanged

    run = read(sim, "incremental", single.final_state(), connected_accounts="all")
    assert run.returncode == 0, run.stderr[-3000:]
    assert any("single-account sync" in line for line in run.logs("WARN"))
    everyone = [sim.platform_account_id, *accounts.values()]
    for stream in STREAMS:
        assert ids_by_account(run, stream) == expected_ids(sim, everyone, stream), stream
