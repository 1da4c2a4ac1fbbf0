"""Connect: account selection, sharding and per-account state, as logic (the CLI tests are in integration_tests)."""
import pytest
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_stripe_ontologie.connected_accounts import AccountSelection, PerAccountState, shard_of
from source_stripe_ontologie.incremental import IncomingStateValidator
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
