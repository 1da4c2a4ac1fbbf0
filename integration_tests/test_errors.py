"""End to end: the connector's CLI against the Stripe simulator, for every way a sync or check can go wrong.

Each test runs the connector's command line through the shared runner (`connector_cli.run_connector`, cwd =
repository root), and every run is checked for the full key in its stdout and stderr: only the redacted form
(`rk_test_...abcd`) may appear.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import Any, Dict, List, Optional

import pytest

from integration_tests.connector_cli import (REPO, STREAMS as ALL_STREAMS, SIX_STREAMS as STREAMS, CliRun,
                                             configured_catalog, run_connector, simulator_config)
from integration_tests.stripe_simulator import Latency, StripeSimulator, keys
from source_stripe_ontologie import SourceStripeOntologie

FAST_RETRIES = {"retry_backoff_factor": 0.001}
# The simulator's objects are created in 2022-01..2024-06; reads walk `created` windows of slice_range_days.
YEARLY_WINDOWS = {"start_date": "2022-01-01T00:00:00Z", "slice_range_days": 365}
FIRST_YEAR_END = 1672531200  # 2023-01-01: only the first yearly window reads objects created before it
# A key the simulator knows in test mode, readable resources chosen per test (see `restricted_key`).
LIMITED_KEY = "rk_test_51SimErrorsLimitedKeyQ7w2ZbX9mNc4Vt8Lp3Hs6Jd1Kf5Gy0Ru2Ei7Wo4Aq9Zx3Cv8Bn6Mk1Lj5Hg2Fd0Sa4wxyz"


FACTS = SourceStripeOntologie().facts


def run_cli(command: str, config: Dict[str, Any], streams: Optional[List[str]] = None,
            debug: bool = False) -> CliRun:
    """The connector's CLI with cwd = repository root (a stray manifest there must not matter); the runner fails the
    test if the full key shows up in any output."""
    catalog = configured_catalog(streams or STREAMS) if command == "read" else None
    return run_connector(command, config, catalog, cwd=REPO, extra_env={"LOG_LEVEL": "debug"} if debug else None)


def stream_errors(run: CliRun, stream: str) -> List[Dict[str, Any]]:
    return [e for e in run.errors() if (e.get("stream_descriptor") or {}).get("name") == stream]


def summary(run: CliRun) -> Dict[str, Any]:
    """The last error trace without a stream: the sync's summary."""
    return [e for e in run.errors() if not e.get("stream_descriptor")][-1]


def states(run: CliRun, stream: str) -> List[Dict[str, Any]]:
    return [s for s in run.states() if s.get("stream", {}).get("stream_descriptor", {}).get("name") == stream]


def sim_config(sim: StripeSimulator, key: str = keys.TEST_KEY, **overrides: Any) -> Dict[str, Any]:
    """These tests inject faults into the streams' own requests and count them: the first-sync history probe
    (which falls back quietly on any error, see unit_tests/test_history_probe.py) would take them first."""
    return simulator_config(sim.url, key, **FAST_RETRIES, **{"probe_history_start": False, **overrides})


def restricted_key(sim: StripeSimulator, *readable: str) -> str:
    sim.add_key(LIMITED_KEY, mode="test", resources=set(readable))
    return LIMITED_KEY


def ids(objects: List[Dict[str, Any]]) -> List[str]:
    return [o["id"] for o in objects]


def sorted_ids(objects: List[Dict[str, Any]]) -> List[str]:
    """Windows are read oldest first, each newest first: compare syncs as sorted ids (duplicates still show)."""
    return sorted(ids(objects))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- check ----------------------------------------------------------------------------------------------------
def test_check_probes_every_endpoint_and_events_at_once_with_limit_1():
    with StripeSimulator(seed=7, size="tiny", latency=Latency(fixed_ms=300)) as sim:
        run = run_cli("check", sim_config(sim))

        assert run.connection_status()["status"] == "SUCCEEDED"
        log = list(sim.stats.log)
        resources = [FACTS.stream(s).probed_resource for s in ALL_STREAMS]
        assert sorted(entry["path"] for entry in log) == sorted(f"/v1/{r}" for r in (*resources, "events"))
        assert all(dict(entry["params"])["limit"] == "1" for entry in log)
        assert sim.stats.peak_in_flight == len(resources) + 1
    assert "Using a test-mode restricted key: only test data is visible" in run.logs("INFO")


def test_check_with_a_revoked_key_fails_with_the_seed_wording(stripe_simulator):
    run = run_cli("check", sim_config(stripe_simulator, keys.REVOKED_KEY))

    assert run.returncode == 0
    assert run.connection_status()["status"] == "FAILED"
    assert run.connection_status()["message"].startswith(
        f"401 Invalid API Key: verify the restricted key (rk_live_...{keys.REVOKED_KEY[-4:]}) is correct and has "
        f"not been revoked or rolled.")


def test_check_passes_when_some_streams_are_unreadable_and_names_each(stripe_simulator):
    readable = {FACTS.stream(s).resource for s in ALL_STREAMS} - {"charges", "payouts"}
    key = restricted_key(stripe_simulator, *readable)

    run = run_cli("check", sim_config(stripe_simulator, key))

    assert run.connection_status()["status"] == "SUCCEEDED"
    message = run.connection_status()["message"]
    [warning] = [w for w in run.logs("WARN") if "cannot be read" in w]
    for grant in ("payouts: grant Payouts: Read (rak_payout_read), or do not select payouts",
                  "charges: grant Charges: Read (rak_charge_read), or do not select charges"):
        assert grant in message and grant in warning
    assert f"2 of {len(ALL_STREAMS)} streams cannot be read" in message


def test_check_fails_when_no_stream_is_readable(stripe_simulator):
    key = restricted_key(stripe_simulator)

    run = run_cli("check", sim_config(stripe_simulator, key))

    assert run.connection_status()["status"] == "FAILED"
    message = run.connection_status()["message"]
    assert message.startswith("403 Permission denied: ensure the restricted key has read access to the requested "
                              f"resource type: the key (rk_test_...wxyz) cannot read any of the {len(ALL_STREAMS)} streams.")
    assert all(f"{stream}: grant " in message for stream in ALL_STREAMS)


@pytest.mark.parametrize("base_url, reason", [
    (f"http://127.0.0.1:{closed_port()}", "the connection was refused"),
    ("http://stripe-simulator.invalid", "the host name could not be resolved (DNS failure)"),
])
def test_check_fails_fast_when_stripe_cannot_be_reached(base_url, reason):
    run = run_cli("check", simulator_config(base_url, keys.TEST_KEY))

    assert run.connection_status()["status"] == "FAILED"
    assert run.connection_status()["message"].startswith(f"Could not reach Stripe at {base_url} within 12 s: {reason}")
    assert run.seconds < 15


# ---- config errors: refused before any request ------------------------------------------------------------------
UNUSABLE_CONFIGS = [
    pytest.param({"client_secret": ""}, "client_secret is empty", id="empty-key"),
    pytest.param({"client_secret": f"  {keys.TEST_KEY}\n"}, "client_secret (rk_test_...", id="padded-key"),
    pytest.param({"client_secret": keys.PUBLISHABLE_KEY}, "publishable keys cannot read data: create a restricted key",
                 id="publishable-key"),
    pytest.param({"client_secret": "xk_test_" + keys.TEST_KEY[8:]}, "is not a Stripe secret or restricted key",
                 id="unknown-prefix"),
    pytest.param({"start_date": "2024-01-01"}, "start_date '2024-01-01' is not a UTC date", id="start-date"),
    pytest.param({"account_id": "1032D82eZvKYlo2C"}, "account_id '1032D82eZvKYlo2C' is not a Stripe account id",
                 id="account-id"),
]


@pytest.mark.parametrize("overrides, expected", UNUSABLE_CONFIGS)
def test_check_refuses_an_unusable_config_naming_the_field_without_a_request(stripe_simulator, overrides,
                                                                              expected):
    run = run_cli("check", sim_config(stripe_simulator, **overrides))

    assert run.returncode == 0
    assert run.connection_status()["status"] == "FAILED"
    assert run.connection_status()["message"].startswith("Invalid configuration: ")
    assert expected in run.connection_status()["message"]
    assert stripe_simulator.stats.total == 0


@pytest.mark.parametrize("command", ["read", "discover"])
@pytest.mark.parametrize("overrides, expected", UNUSABLE_CONFIGS)
def test_read_and_discover_refuse_an_unusable_config_as_a_config_error(stripe_simulator, command, overrides,
                                                                        expected):
    run = run_cli(command, sim_config(stripe_simulator, **overrides))

    assert run.returncode != 0
    [error] = run.errors()
    assert error["failure_type"] == "config_error"
    assert expected in error["message"]
    assert not run.of_type("RECORD")
    assert stripe_simulator.stats.total == 0


def test_spec_needs_no_config():
    run = run_connector("spec", cwd=REPO)

    assert run.returncode == 0
    assert run.of_type("SPEC")


# ---- read: auth and permissions ---------------------------------------------------------------------------------
def test_read_with_a_revoked_key_fails_as_a_config_error_with_the_seed_wording(stripe_simulator):
    run = run_cli("read", sim_config(stripe_simulator, keys.REVOKED_KEY), ["customers", "charges"])

    assert run.returncode == 1
    seed = (f"401 Invalid API Key: verify the restricted key (rk_live_...{keys.REVOKED_KEY[-4:]}) is correct and "
            f"has not been revoked or rolled.")
    for stream in ("customers", "charges"):
        [error] = stream_errors(run, stream)
        assert error["failure_type"] == "config_error"
        assert error["message"].startswith(f"{stream}: {seed}")
    assert summary(run)["failure_type"] == "config_error"
    assert not run.of_type("RECORD")


def test_read_fails_only_the_forbidden_stream_and_delivers_the_others_exactly(stripe_simulator):
    key = restricted_key(stripe_simulator, "customers", "charges", "subscriptions", "invoices", "products")

    run = run_cli("read", sim_config(stripe_simulator, key))

    assert run.returncode == 1
    [error] = stream_errors(run, "payouts")
    assert error["failure_type"] == "config_error"
    assert error["message"] == (
        "payouts: 403 Permission denied: the restricted key (rk_test_...wxyz) cannot read payouts (GET /v1/payouts). "
        "In the Stripe Dashboard (Developers > API keys > edit the restricted key): grant Payouts: Read "
        "(rak_payout_read), or do not select payouts.")
    assert run.stream_statuses("payouts")[-1] == "INCOMPLETE"
    assert not run.records("payouts")
    for stream in STREAMS[:-1]:
        assert sorted(run.record_ids(stream)) == sorted_ids(stripe_simulator.objects(stream)), stream
        assert run.stream_statuses(stream)[-1] == "COMPLETE"
        assert states(run, stream), f"{stream} saved no state"
    assert summary(run)["message"].startswith("1 of 6 streams did not sync: payouts (403 Permission denied")
    assert f"charges ({len(stripe_simulator.objects('charges'))} records)" in summary(run)["message"]


# ---- read: empty streams ---------------------------------------------------------------------------------------
def test_an_empty_stream_gets_one_warning_with_the_test_mode_hint():
    with StripeSimulator(seed=7, size="tiny", counts={"payouts": 0}) as sim:
        run = run_cli("read", sim_config(sim), ["products", "payouts"])

        assert run.returncode == 0
        assert sorted(run.record_ids("products")) == sorted_ids(sim.objects("products"))
    warnings = [w for w in run.logs("WARN") if "no records" in w]
    assert warnings == [
        "payouts: no records. The key (rk_test_..." + keys.TEST_KEY[-4:] + ") is a test-mode restricted key: "
        "test-mode keys only return test data: use a live-mode key to sync production data. Otherwise check that "
        "the Stripe account has payouts in test mode and that start_date is not after them."]


def test_read_logs_the_key_mode_once(stripe_simulator):
    run = run_cli("read", sim_config(stripe_simulator, keys.LIVE_KEY), ["payouts"])

    assert run.logs("INFO").count("Using a live-mode restricted key: production (live) data is visible") == 1
    assert sorted(run.record_ids("payouts")) == sorted_ids(stripe_simulator.objects("payouts", mode="live"))


def test_an_object_of_the_other_mode_fails_its_stream(stripe_simulator):
    odd = stripe_simulator.objects("payouts")[3]
    stripe_simulator.update("payouts", odd["id"], mode="test", livemode=True)

    run = run_cli("read", sim_config(stripe_simulator), ["payouts", "customers"])

    assert run.returncode == 1
    [error] = stream_errors(run, "payouts")
    assert error["message"].startswith(f"payouts: Stripe returned {odd['id']} with livemode=true to a test-mode "
                                       f"restricted key (rk_test_...")
    assert sorted(run.record_ids("customers")) == sorted_ids(stripe_simulator.objects("customers"))


# ---- read: transient failures ------------------------------------------------------------------------------------
def test_429s_are_retried_and_the_sync_is_exact(stripe_simulator):
    stripe_simulator.faults.burst_429(3)

    run = run_cli("read", sim_config(stripe_simulator), ["charges"])

    assert run.returncode == 0
    assert stripe_simulator.stats.rate_limited == 3
    assert sorted(run.record_ids("charges")) == sorted_ids(stripe_simulator.objects("charges"))


def test_a_429_stripe_says_not_to_retry_is_not_retried(stripe_simulator):
    stripe_simulator.faults.should_retry = False
    stripe_simulator.faults.burst_429(1)

    run = run_cli("read", sim_config(stripe_simulator, **YEARLY_WINDOWS), ["customers"])

    assert run.returncode == 1
    assert stripe_simulator.stats.rate_limited == 1
    queries = [e["query"] for e in stripe_simulator.stats.log if e["path"] == "/v1/customers"]
    assert len(queries) == len(set(queries))  # no request was sent twice
    [error] = stream_errors(run, "customers")
    assert error["message"].startswith("customers: Stripe answered HTTP 429: Request rate limit exceeded.")


def test_5xx_and_dropped_connections_are_retried_and_the_sync_is_exact(stripe_simulator):
    stripe_simulator.faults.fail_next(2, status=503).drop_next(2)

    run = run_cli("read", sim_config(stripe_simulator), ["invoices"])

    assert run.returncode == 0
    assert stripe_simulator.stats.statuses[503] == 2 and stripe_simulator.stats.dropped == 2
    assert sorted(run.record_ids("invoices")) == sorted_ids(stripe_simulator.objects("invoices"))


def test_a_stream_failing_past_the_retry_budget_is_a_transient_error_naming_it(stripe_simulator):
    stripe_simulator.faults.fail_resource("subscriptions", status=500, created_lt=FIRST_YEAR_END)

    run = run_cli("read", sim_config(stripe_simulator, **YEARLY_WINDOWS), ["subscriptions", "products"])

    assert run.returncode == 1
    assert stripe_simulator.stats.statuses[500] == 6  # the first window: 1 request + max_retries 5
    [error] = stream_errors(run, "subscriptions")
    assert error["failure_type"] == "transient_error"
    assert error["message"] == ("subscriptions: gave up after the retries: Stripe answered HTTP 500 "
                                "(GET /v1/subscriptions). Stripe or the network is having trouble: run the sync "
                                "again later.")
    assert sorted(run.record_ids("products")) == sorted_ids(stripe_simulator.objects("products"))
    assert summary(run)["failure_type"] == "transient_error"
    assert summary(run)["message"].startswith("1 of 2 streams did not sync: subscriptions (gave up after the retries")


# ---- read: the cursor object vanishes mid-sync ----------------------------------------------------------------
def test_a_cursor_deleted_mid_sync_is_re_read_without_losing_or_repeating_records():
    since = 1688169600  # 2023-07-01: one yearly window holds every object read (the data ends in 2024-06)
    window = {"start_date": "2023-07-01T00:00:00Z", "slice_range_days": 365}
    with StripeSimulator(seed=7, size="tiny", counts={"customers": 1000}, latency=Latency(fixed_ms=150)) as sim:
        before = [c for c in sim.objects("customers") if c["created"] >= since]
        assert len(before) > 150
        cursor = before[99]  # the window's second page starts after it
        deleted = threading.Event()

        def first_page_of_the_window(entry: Dict[str, Any]) -> bool:
            params = dict(entry["params"])  # windows run in parallel: wait for the first page of the one with data
            return (entry["path"] == "/v1/customers" and entry["status"] == 200 and "starting_after" not in params
                    and "created[gte]" in params and int(params["created[gte]"]) <= since < int(params["created[lte]"]))

        def delete_cursor_after_first_page():
            while not deleted.is_set():
                if any(first_page_of_the_window(e) for e in list(sim.stats.log)):
                    sim.delete("customers", cursor["id"], mode="test")
                    deleted.set()
                time.sleep(0.002)

        watcher = threading.Thread(target=delete_cursor_after_first_page, daemon=True)
        watcher.start()
        run = run_cli("read", sim_config(sim, **window), ["customers"])
        deleted.set()

        assert run.returncode == 0, run.errors()
        assert sim.stats.statuses[400] == 1  # Stripe's resource_missing on starting_after was served
        # every object exactly once, the deleted one as it was read before it vanished
        assert sorted(run.record_ids("customers")) == sorted_ids(before)
        assert cursor["id"] not in ids(sim.objects("customers"))


# ---- the key never leaks, even in debug logs -------------------------------------------------------------------
def test_debug_logs_of_a_failing_sync_show_the_key_only_redacted(stripe_simulator):
    key = restricted_key(stripe_simulator, "customers")
    stripe_simulator.faults.fail_next(1, status=502)

    # run_cli asserts the full key is absent from stdout and stderr
    run = run_cli("read", sim_config(stripe_simulator, key), ["customers", "payouts"], debug=True)

    assert run.returncode == 1
    assert "rk_test_...wxyz" in run.stdout
    # the CDK prints debug lines as {"type": "DEBUG", ...}, with the request headers (Authorization included)
    assert "Making outbound API request" in run.stdout and "Authorization" in run.stdout
