"""Stripe Connect through the CLI against the simulator: every account read exactly, stamped, with its own state.

The catalog is the six core streams: their simulator objects map one to one to records, and the cost bounds below
are stated for them (the money-trail streams add per-payout and still-pending re-reads of their own).
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Dict, List, Optional

import pytest

from integration_tests.connector_cli import SIX_STREAMS as STREAMS, configured_catalog, run_connector, simulator_config
from integration_tests.stripe_simulator import StripeSimulator, keys
from source_stripe_ontologie.connected_accounts import shard_of

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


def ids_by_account(run, stream: str) -> Dict[str, Counter]:
    out: Dict[str, Counter] = {}
    for record in run.records(stream):
        out.setdefault(record["stripe_account_id"], Counter())[record["id"]] += 1
    return out


def expected_ids(sim: StripeSimulator, accounts: List[str], stream: str) -> Dict[str, Counter]:
    out = {}
    for account in accounts:
        ids = Counter(o["id"] for o in sim.objects(stream, account=None if account == sim.platform_account_id
                                                   else account))
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
    assert not run.errors()
    assert run.stream_statuses("customers") == ["STARTED", "RUNNING", "COMPLETE"]


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
            assert found == {accounts["small"]: Counter({added["id"]: 1}), accounts["tiny"]: Counter({changed["id"]: 1})}
        else:
            assert found == {}, stream
    assert next(r for r in second.records("customers") if r["id"] == changed["id"])["email"] == "changed@example.com"


def test_a_killed_sync_resumes_every_account_where_it_was(platform):
    sim, accounts = platform
    last = accounts["tiny"]  # listed newest first: platform, empty, small, tiny

    def second_account_started(run) -> bool:
        return any(r["stripe_account_id"] == accounts["small"] for r in run.records())

    killed = read(sim, "incremental", connected_accounts="all", stop_when=second_account_started)
    assert killed.returncode != 0
    assert not any(r["stripe_account_id"] == last for r in killed.records())
    resumed = read(sim, "incremental", killed.final_state(), connected_accounts="all")

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not any(r["stripe_account_id"] == sim.platform_account_id for r in resumed.records())  # done before
    everyone = [sim.platform_account_id, *accounts.values()]
    for stream in STREAMS:
        union = ids_by_account(killed, stream)
        for account, ids in ids_by_account(resumed, stream).items():
            union[account] = union.get(account, Counter()) + ids
        expected = expected_ids(sim, everyone, stream)
        assert {a: set(ids) for a, ids in union.items()} == {a: set(ids) for a, ids in expected.items()}, stream
        assert union[last] == expected[last] if last in expected else True  # untouched account read once, whole


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


def test_many_small_accounts_cost_two_requests_per_stream_then_one_window_each_and_one_events_request(platform):
    sim, _ = platform
    for n in range(8):
        sim.connect_account(counts=SMALL if n % 2 else {name: 0 for name in SMALL})
    accounts = 1 + len(sim.connected_accounts())
    sim.reset_stats()
    first = read(sim, "incremental", connected_accounts="all")
    assert first.returncode == 0, first.stderr[-3000:]
    lists = [e for e in sim.stats.log if e["path"] != "/v1/events" and "/lines" not in e["path"]]
    # a size probe and one window per stream and account (the platform's tiny data fits in a page too), plus
    # GET /v1/account and one page of GET /v1/accounts
    assert len(lists) <= accounts * len(STREAMS) * 2 + 2
    assert any("accounts read" in line and "per account" in line and "500 reads per transaction" in line
               for line in first.logs())

    sim.reset_stats()
    second = read(sim, "incremental", first.final_state(), connected_accounts="all")
    assert second.returncode == 0, second.stderr[-3000:]
    windows = [e for e in sim.stats.log if e["path"] not in ("/v1/events", "/v1/account", "/v1/accounts")]
    assert len(windows) <= accounts * len(STREAMS)
    assert len([e for e in sim.stats.log if e["path"] == "/v1/events"]) == accounts  # one each: nothing new
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
