"""Connect: account selection, sharding and per-account state, as logic (the CLI tests are in integration_tests)."""
import pytest
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_stripe_ontologie.connected_accounts import (
    AccountSelection,
    ConnectSync,
    PerAccountState,
    StateCheckpoints,
    shard_of,
)
from source_stripe_ontologie.incremental import IncomingStateValidator
from unit_tests.factories import FakeClock
from airbyte_cdk.models import AirbyteStateMessage, AirbyteStateType, AirbyteStreamState, StreamDescriptor, AirbyteStateBlob


def message(stream, state):
    return AirbyteStateMessage(type=AirbyteStateType.STREAM, stream=AirbyteStreamState(
        stream_descriptor=StreamDescriptor(name=stream), stream_state=AirbyteStateBlob(**state)))


def test_no_connected_accounts_is_the_single_account_config():
    assert AccountSelection.of({"client_secret": "rk_test_x", "account_id": "acct_1A"}) is None
    assert AccountSelection.problems({"account_id": "acct_1A"}) == []


def test_shards_are_stable_and_split_every_account_once():
    ids = [f"acct_1{n:05d}" for n in range(200)]
    assert shard_of("acct_1Fixed", 4) == shard_of("acct_1Fixed", 4)  # sha256: the same on every run and machine
    shards = [AccountSelection("all", shard=(k, 3)) for k in (1, 2, 3)]
    for account in ids:
        assert sum(s.in_shard(account) for s in shards) == 1
    assert all(sum(s.in_shard(a) for a in ids) > 40 for s in shards)


def test_per_account_state_round_trips_and_drops_a_single_account_state_saying_so():
    state = PerAccountState([
        message("customers", {"states": [{"partition": {"stripe_account_id": "acct_1A"}, "cursor": {"created": "5"}}]}),
        message("charges", {"created": "7", "events_created": "7"}),
    ])
    warnings = []
    state.drop_unpartitioned(type("Log", (), {"warning": staticmethod(warnings.append)})())
    assert [m.stream.stream_descriptor.name for m in state.of_account("acct_1A")] == ["customers"]
    assert state.of_account("acct_1P") == [] and state.of_account("acct_1B") == []
    assert len(warnings) == 1 and warnings[0].startswith("charges: ")
    state.update("customers", "acct_1B", {"created": "9"})
    blob = state.message("customers").state.stream.stream_state
    assert {e["partition"]["stripe_account_id"]: e["cursor"] for e in blob.states} == {
        "acct_1A": {"created": "5"}, "acct_1B": {"created": "9"}}


def test_a_per_account_state_is_validated_entry_by_entry():
    validator = IncomingStateValidator(["customers"], clock=lambda: 1_800_000_000)
    validator.validate([message("customers", {"states": [
        {"partition": {"stripe_account_id": "acct_1A"}, "cursor": {"created": "1700000000"}}]})])
    with pytest.raises(AirbyteTracedException, match="acct_1A"):
        validator.validate([message("customers", {"states": [
            {"partition": {"stripe_account_id": "acct_1A"}, "cursor": {"created": "soon"}}]})])
    with pytest.raises(AirbyteTracedException, match="per-account entry"):
        validator.validate([message("customers", {"states": [{"cursor": {"created": "1"}}]})])


class FakeDirectory:
    """GET /v1/account and /v1/accounts as pages of ids; `cut_short` ends on a page that announces more but has none."""

    def __init__(self, pages, cut_short=False, fails=False):
        self._pages, self._cut_short, self._fails = pages, cut_short, fails
        self.complete = False

    def platform_id(self):
        return "acct_1Platform"

    def connected(self):
        self.complete = False
        for page in self._pages:
            yield from page
        if self._fails:
            raise ConnectionError("GET /v1/accounts failed")
        self.complete = not self._cut_short


class EmptyAccountSource:
    """An account's source that reads nothing new (its state is kept as it was)."""

    def read(self, logger, config, catalog, state):
        return iter(())


class Log:
    def __init__(self):
        self.infos = []

    def info(self, text):
        self.infos.append(text)

    warning = error = info


def saved_accounts(selection, directory, log=None):
    state = PerAccountState([message("customers", {"states": [
        {"partition": {"stripe_account_id": a}, "cursor": {"created": "5"}}
        for a in ("acct_1Platform", "acct_1Stays", "acct_1Left")]})])
    sync = ConnectSync(selection, {"client_secret": "rk_test_x"}, state, ["customers"],
                       lambda config, state: EmptyAccountSource(), directory, log or Log(), in_flight=2)
    messages = []
    try:
        for emitted in sync.messages(catalog=None):
            messages.append(emitted)
    except AirbyteTracedException:
        pass  # a listing that failed fails the sync, after the state is written
    final = [m for m in messages if m.state][-1].state.stream.stream_state
    return sorted(entry["partition"]["stripe_account_id"] for entry in final.states)


def test_an_account_missing_from_a_complete_listing_loses_its_state_saying_so():
    log = Log()
    kept = saved_accounts(AccountSelection("all"), FakeDirectory([["acct_1Stays"]]), log)

    assert kept == ["acct_1Platform", "acct_1Stays"]
    assert any("acct_1Left" in line and "no longer" in line for line in log.infos)


@pytest.mark.parametrize("directory", [FakeDirectory([["acct_1Stays"]], cut_short=True),
                                       FakeDirectory([["acct_1Stays"]], fails=True)], ids=["cut short", "failed"])
def test_a_listing_cut_short_or_failed_forgets_no_account(directory):
    assert saved_accounts(AccountSelection("all"), directory) == ["acct_1Left", "acct_1Platform", "acct_1Stays"]


def test_an_explicit_list_forgets_no_account():
    directory = FakeDirectory([])
    assert saved_accounts(AccountSelection(["acct_1Stays"]), directory) == ["acct_1Left", "acct_1Platform",
                                                                           "acct_1Stays"]


def test_a_connect_sync_registers_its_key_as_a_secret_once_not_once_per_account(requests_mock, monkeypatch):
    """The CDK scrubs every log line against each registered secret: one entry per account would make 10,000
    accounts cost 10,000 replacements per line."""
    from source_stripe_ontologie import source as source_module
    from unit_tests.factories import API, config, list_page
    from unit_tests.reads import read_streams

    registered = []
    monkeypatch.setattr(source_module, "add_to_secrets", registered.append)
    requests_mock.get(f"{API}/v1/account", json={"id": "acct_1Platform", "object": "account"})
    requests_mock.get(f"{API}/v1/customers", json=list_page([], has_more=False, url="/v1/customers"))
    accounts = [f"acct_1Connected{n}" for n in range(5)]

    output = read_streams(config(connected_accounts=accounts), "customers")

    assert {r.headers.get("Stripe-Account") for r in requests_mock.request_history} >= set(accounts)
    assert not output.errors
    assert registered == [config()["client_secret"]]


def checkpoints_over(seconds, accounts, streams=17, step=0.1):
    """How many account entries in all a sync's state messages list, every stream's state moving all the time for
    `seconds`."""
    clock = FakeClock()
    checkpoints = StateCheckpoints(clock)
    messages = 0
    for _ in range(int(seconds / step)):
        clock.now += step
        messages += sum(checkpoints.due(f"stream_{n}", accounts) for n in range(streams))
    return messages * accounts


def test_state_output_per_second_does_not_grow_with_the_number_of_accounts():
    entries_of_400 = checkpoints_over(600, 400)
    entries_of_10_000 = checkpoints_over(600, 10_000)

    assert entries_of_10_000 <= entries_of_400 * 1.1  # at a fixed interval it would be 25 times as much
    assert entries_of_400 / 600 / 17 <= 1 / 0.02 + 1  # ~one account entry per 20 ms per stream


def test_a_small_platform_checkpoints_every_2_seconds_and_after_each_account():
    clock = FakeClock()
    checkpoints = StateCheckpoints(clock)

    assert checkpoints.due("charges", 50) and not checkpoints.due("charges", 50)
    assert checkpoints.due("charges", 50, account_finished=True)
    clock.now += 2.0
    assert checkpoints.due("charges", 50) and checkpoints.due("customers", 50)


def test_a_big_platform_checkpoints_each_stream_less_often_but_never_loses_the_first():
    clock = FakeClock()
    checkpoints = StateCheckpoints(clock)

    assert checkpoints.due("charges", 10_000)  # the first progress of a stream is written at once
    clock.now += 199.0
    assert not checkpoints.due("charges", 10_000, account_finished=True)
    clock.now += 1.0
    assert checkpoints.due("charges", 10_000)  # 20 ms per account: every 200 s
