"""Accounts read at once (account_pool.py): overlapping, each account's messages in order, failures its own."""
from __future__ import annotations

import gc
import threading
import weakref

import pytest

from source_stripe_ontologie.account_pool import FINISHED, AccountPool, AccountSweeper, in_flight_for


def by_account(items):
    out = {}
    for account, message, failure in items:
        out.setdefault(account, []).append((message, failure))
    return out


def test_accounts_in_flight_overlap():
    both_reading = threading.Barrier(2, timeout=30)  # a pool reading one account at a time never gets past it

    def read(account):
        both_reading.wait()
        yield f"{account}:1"

    merged = by_account(AccountPool(2, read).messages(["acct_1A", "acct_1B"]))

    assert merged == {"acct_1A": [("acct_1A:1", None), (FINISHED, None)],
                      "acct_1B": [("acct_1B:1", None), (FINISHED, None)]}


def test_each_accounts_messages_keep_their_order_and_every_account_is_read_once():
    accounts = [f"acct_1{n}" for n in range(20)]

    def read(account):
        for n in range(50):
            yield (account, n)

    merged = by_account(AccountPool(4, read, queue_size=8).messages(accounts))

    assert sorted(merged) == sorted(accounts)
    for account in accounts:
        assert merged[account] == [((account, n), None) for n in range(50)] + [(FINISHED, None)]


def test_one_accounts_failure_is_its_own():
    def read(account):
        yield "first"
        if account == "acct_1Gone":
            raise RuntimeError("account_invalid")
        yield "second"

    merged = by_account(AccountPool(3, read).messages(["acct_1A", "acct_1Gone", "acct_1B"]))

    assert [m for m, _ in merged["acct_1A"]] == [m for m, _ in merged["acct_1B"]] == ["first", "second", FINISHED]
    assert merged["acct_1Gone"][0] == ("first", None)
    message, failure = merged["acct_1Gone"][-1]
    assert message is FINISHED and str(failure) == "account_invalid"


def test_a_listing_that_fails_ends_the_sync():
    def listing():
        yield "acct_1A"
        raise ConnectionError("GET /v1/accounts")

    with pytest.raises(ConnectionError):
        list(AccountPool(2, lambda account: iter(["m"])).messages(listing()))


def test_readers_wait_for_the_output_instead_of_holding_every_account_in_memory():
    produced = []

    def read(account):
        for n in range(1000):
            produced.append(n)
            yield n

    messages = AccountPool(2, read, queue_size=10).messages(["acct_1A", "acct_1B"])
    for _ in range(5):
        next(messages)
    threading.Event().wait(0.3)  # the readers run ahead as far as the queue lets them (not a timing assertion)

    assert len(produced) <= 5 + 10 + 2 * 2  # taken, queued, and one in each reader's hand (each side of the put)
    messages.close()


def test_the_default_follows_the_rate_budget():
    assert in_flight_for(90.0) == 7 and in_flight_for(22.5) == 2 and in_flight_for(10_000.0) == 8
    assert in_flight_for(22.5, configured=5) == 5


class CyclicSource:
    """Like an account's source of CDK components: parts that point back at each other, so only the cyclic
    collector frees it."""

    def __init__(self) -> None:
        self.streams = [{"source": self}]


def test_accounts_already_read_are_freed_though_their_sources_are_cycles():
    sources = []

    def read(account):
        source = CyclicSource()
        sources.append(weakref.ref(source))
        yield account

    gc.disable()  # the collector as a sync tunes it: rarely, if ever, on its own
    try:
        for _ in AccountPool(2, read).messages([f"acct_1{n}" for n in range(40)]):
            pass
        alive = sum(source() is not None for source in sources)
    finally:
        gc.enable()

    assert len(sources) == 40
    assert alive <= 2 + 2  # at most the accounts in flight and one round read since the last collection


def test_the_sweeper_collects_once_per_round_of_accounts_in_flight():
    collections = []
    sweeper = AccountSweeper(3, collect=lambda: collections.append(len(collections)))

    for _ in range(10):
        sweeper.account_finished()

    assert len(collections) == 3  # after the 3rd, 6th and 9th account
