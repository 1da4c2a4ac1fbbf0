"""Stripe Connect: read the platform's connected accounts, each exactly as a single-account sync reads one account.

Why this shape: a single-account sync (no `connected_accounts` in the config) is the connector as it was, and
every account of a Connect sync is read by that very code path: a source built with the account's config
(`account_id`, which the manifest's requester sends as `Stripe-Account`) and the account's own part of the state.
This module only chooses the accounts, hands each its state, and merges what each yields:

- Records get `stripe_account_id` (the account they were read from; the platform's own id for its records).
- State is the Airbyte protocol's per-partition state, one partition per account:
  `{"states": [{"partition": {"stripe_account_id": "acct_..."}, "cursor": {"created": ..., "events_created": ...}}]}`.
  An account's cursor only ever comes from that account's reads, so one account's progress never moves or blocks
  another's, and a sync killed midway resumes every account where it was (accounts not reached yet start fresh).
- One account's failure (e.g. 403 `account_invalid`: it revoked the platform's access) fails that account only:
  its error traces are named after it, the other accounts are read with their records and state, and the sync
  ends with a summary naming each failed account.
- Every request of every account paces through the one rate budget of the sync. A few accounts are read at once
  (account_pool.py: their waits for Stripe overlap), their messages merged in arrival order; each is forgotten once
  read, so memory holds the state of the accounts and the few in flight, not the accounts themselves.
- `account_shard: "k/n"` keeps the accounts whose id hashes (sha256) to shard k of n: n connections with the same
  key and shards 1/n..n/n read every account exactly once (the platform's own data too, by its id).
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Set, Tuple

import orjson
import requests
from airbyte_cdk.models import (
    AirbyteMessage,
    AirbyteStateBlob,
    AirbyteStateMessage,
    AirbyteStateType,
    AirbyteStreamState,
    AirbyteStreamStatus,
    AirbyteStreamStatusTraceMessage,
    AirbyteTraceMessage,
    FailureType,
    StreamDescriptor,
    TraceType,
    Type,
)
from airbyte_cdk.sources.streams.http.http_client import HttpClient
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_stripe_ontologie import error_messages as say
from source_stripe_ontologie.account_pool import FINISHED, AccountPool
from source_stripe_ontologie.components import api_base, stripe_headers
from source_stripe_ontologie.key_mode import redact
from source_stripe_ontologie.stream_facts import Permission

ACCOUNT_FIELD = "stripe_account_id"  # on every record, and the per-partition state's partition key
SELECTION_KEYS = ("connected_accounts", "include_platform_account", "account_shard")
ACCOUNTS_PERMISSION = "rak_account_read"
_SHARD = re.compile(r"^([0-9]+)/([0-9]+)$")
_ACCOUNT_ID = re.compile(r"^acct_[0-9A-Za-z]+$")
STATE_EVERY_SECONDS = 2.0  # a stream's checkpoints: at least this far apart (StateCheckpoints) ...
STATE_SECONDS_PER_ACCOUNT = 0.02  # ... and this much per account its state lists
STATE_AFTER_EACH_ACCOUNT_UP_TO = 100  # up to this many accounts, also after each finished account


def shard_of(account_id: str, shards: int) -> int:
    """The shard (1..shards) of an account: a stable hash of its id, the same on every machine and every sync."""
    return int(hashlib.sha256(account_id.encode()).hexdigest(), 16) % shards + 1


@dataclass(frozen=True)
class AccountSelection:
    """Which accounts a Connect sync reads (None from `of` when the config reads one account, as before)."""

    accounts: Any  # "all", or a list of acct_ ids
    include_platform: bool = True
    shard: Optional[Tuple[int, int]] = None

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Optional["AccountSelection"]:
        if config.get("connected_accounts") is None:
            return None
        shard = None
        match = _SHARD.match(str(config.get("account_shard") or ""))
        if match:
            shard = (int(match.group(1)), int(match.group(2)))
        accounts = config["connected_accounts"]
        return cls(accounts if accounts == "all" else list(dict.fromkeys(accounts)),
                   config.get("include_platform_account", True) is not False, shard)

    def in_shard(self, account_id: str) -> bool:
        return self.shard is None or shard_of(account_id, self.shard[1]) == self.shard[0]

    @staticmethod
    def problems(config: Mapping[str, Any]) -> List[str]:
        """What is wrong with the Connect fields of a config, each naming its field (empty when fine or absent)."""
        problems = []
        accounts = config.get("connected_accounts")
        if accounts is not None and accounts != "all":
            ids = accounts if isinstance(accounts, list) else None
            bad = [a for a in ids or [] if not (isinstance(a, str) and _ACCOUNT_ID.match(a))]
            if ids is None or not ids or bad:
                shown = repr(bad[0] if bad else accounts)
                problems.append(f"connected_accounts {shown[:42]} is not valid: it must be \"all\" (every connected "
                                f"account, listed again at every sync) or a list of account ids such as "
                                f"[\"acct_1032D82eZvKYlo2C\"].")
        if accounts is not None and config.get("account_id"):
            problems.append("account_id and connected_accounts cannot both be set: account_id reads one connected "
                            "account instead of your own; with connected_accounts, list that account there.")
        include = config.get("include_platform_account")
        if include is not None and not isinstance(include, bool):
            problems.append("include_platform_account must be true or false.")
        shard = config.get("account_shard")
        if shard is not None:
            match = _SHARD.match(shard) if isinstance(shard, str) else None
            if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
                problems.append(f"account_shard {str(shard)[:20]!r} is not valid: write k/n with 1 <= k <= n, e.g. "
                                f"\"1/4\" (this connection reads the accounts of shard 1 of 4).")
            elif accounts is None:
                problems.append("account_shard is set without connected_accounts: it shards connected accounts; set "
                                "connected_accounts too, or remove account_shard.")
        return problems


def accounts_listing_refused(config: Mapping[str, Any], timeout: float = 10.0) -> str:
    """`check` with connected_accounts "all": why the key cannot list the connected accounts ('' when it can)."""
    try:
        response = requests.get(f"{api_base(config)}/v1/accounts", params={"limit": "1"},
                                headers=stripe_headers({k: v for k, v in config.items() if k != "account_id"}),
                                timeout=timeout)
    except requests.RequestException as error:
        return f"Could not list the connected accounts (GET /v1/accounts): {type(error).__name__}. Try again."
    if response.status_code in (401, 403):
        stripe_message = say.stripe_error_message(response)
        permission = say.required_permission(stripe_message, Permission(ACCOUNTS_PERMISSION))
        return (f"connected_accounts is \"all\", but the key ({redact(str(config.get('client_secret') or ''))}) cannot "
                f"list the connected accounts (GET /v1/accounts answered {response.status_code}): grant "
                f"{permission.shown()} to the restricted key in the Stripe Dashboard (Developers > API keys), or "
                f"list the account ids in connected_accounts instead. Stripe said: {stripe_message}")
    return ""


class AccountDirectory:
    """`GET /v1/account` (the platform's id) and `GET /v1/accounts` (its connected accounts), through the budget."""

    def __init__(self, config: Mapping[str, Any], budget: Any, logger: Any) -> None:
        self._config = {k: v for k, v in config.items() if k != "account_id"}
        self._http = HttpClient(name="connected_accounts", logger=logger, api_budget=budget)
        self.complete = False  # whether the last `connected()` listed every account

    def platform_id(self) -> str:
        return str(self._get("account", {})["id"])

    def connected(self) -> Iterator[str]:
        """Every connected account id, newest first, a page of 100 at a time (never the whole list in memory).
        `complete` turns true once the last page (no `has_more`) has been listed, and only then."""
        self.complete = False
        after = None
        while True:
            page = self._get("accounts", {"limit": "100", **({"starting_after": after} if after else {})})
            data = page.get("data") or []
            for account in data:
                yield str(account["id"])
            if not page.get("has_more"):
                self.complete = True
                return
            if not data:  # more announced but none given: cut short, not the end of the list
                return
            after = str(data[-1]["id"])

    def _get(self, path: str, params: Dict[str, str]) -> Mapping[str, Any]:
        _, response = self._http.send_request("GET", f"{api_base(self._config)}/v1/{path}", request_kwargs={},
                                              headers=stripe_headers(self._config), params=params)
        return orjson.loads(response.content)


class PerAccountState:
    """The per-partition state of every stream: {stream: {account: cursor}}; what each account's source is handed."""

    def __init__(self, messages: Optional[List[AirbyteStateMessage]]) -> None:
        self._cursors: Dict[str, Dict[str, Mapping[str, Any]]] = {}
        self.unpartitioned: Dict[str, Mapping[str, Any]] = {}  # a single-account state: the platform's
        for message in messages or []:
            if not message.stream:
                continue
            name = message.stream.stream_descriptor.name
            state = _as_dict(message.stream.stream_state)
            if "states" in state:
                self._cursors[name] = {str(entry["partition"][ACCOUNT_FIELD]): dict(entry.get("cursor") or {})
                                       for entry in state["states"]}
            elif state:
                self.unpartitioned[name] = dict(state)

    def drop_unpartitioned(self, logger: Any) -> None:
        """A state written before connected_accounts was set names no account: it may be the platform's or the one
        `account_id` named, and handing it to the wrong account would skip that account's history for good. It is
        dropped, saying so: every account starts from its beginning (records already synced arrive again, with the
        same `id`)."""
        for name in self.unpartitioned:
            logger.warning(f"{name}: the saved state was written by a single-account sync (before connected_accounts "
                           f"was set) and names no account, so it is not used: every account of {name} is read from "
                           f"its beginning; records already synced arrive again with the same id.")
        self.unpartitioned = {}

    def of_account(self, account: str) -> List[AirbyteStateMessage]:
        return [_stream_state(name, cursors[account]) for name, cursors in self._cursors.items() if account in cursors]

    def keep_only(self, accounts: Set[str]) -> List[str]:
        """Drops every stream's entries of the accounts not in `accounts`; returns the dropped accounts, sorted."""
        dropped: Set[str] = set()
        for cursors in self._cursors.values():
            for account in [a for a in cursors if a not in accounts]:
                del cursors[account]
                dropped.add(account)
        return sorted(dropped)

    def update(self, stream: str, account: str, cursor: Mapping[str, Any]) -> None:
        self._cursors.setdefault(stream, {})[account] = dict(cursor)

    def streams(self) -> List[str]:
        return list(self._cursors)

    def accounts(self, stream: str) -> int:
        return len(self._cursors.get(stream, {}))

    def message(self, stream: str) -> AirbyteMessage:
        states = [{"partition": {ACCOUNT_FIELD: account}, "cursor": cursor}
                  for account, cursor in self._cursors.get(stream, {}).items()]
        return AirbyteMessage(type=Type.STATE, state=_stream_state(stream, {"states": states}))


class StateCheckpoints:
    """Says when a stream's per-account state is due in the output: spaced by the number of accounts it lists.

    Why: a per-partition state message lists every account (~130 bytes each per stream), and Airbyte stores every
    checkpoint. At a fixed interval the state output grows with the accounts times the sync's length: 57.5 MB for an
    incremental sync of 400 accounts with nothing new at one checkpoint per stream every 2 s, and ~11 MB/s for 10,000
    accounts. Spacing a stream's checkpoints by at least STATE_EVERY_SECONDS and STATE_SECONDS_PER_ACCOUNT per account
    bounds the state output to ~110 KB/s over all 17 streams, however many accounts; a killed sync re-reads at most
    one interval (200 s at 10,000 accounts). Up to STATE_AFTER_EACH_ACCOUNT_UP_TO accounts a state is small, and it
    is also written after each finished account.
    """

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._last: Dict[str, float] = {}

    def due(self, stream: str, accounts: int, account_finished: bool = False) -> bool:
        now = self._clock()
        if account_finished and accounts <= STATE_AFTER_EACH_ACCOUNT_UP_TO:
            self._last[stream] = now
            return True
        last = self._last.get(stream)
        if last is not None and now - last < max(STATE_EVERY_SECONDS, accounts * STATE_SECONDS_PER_ACCOUNT):
            return False
        self._last[stream] = now
        return True


class ConnectSync:
    """Reads each selected account with a single-account source, and merges their messages (module docstring)."""

    def __init__(self, selection: AccountSelection, config: Mapping[str, Any], state: PerAccountState,
                 stream_names: Iterable[str], build_source: Any, directory: AccountDirectory, logger: Any,
                 in_flight: int = 1) -> None:
        self._selection = selection
        self._config = {k: v for k, v in config.items() if k not in SELECTION_KEYS and k != "account_id"}
        self._state = state
        self._stream_names = list(stream_names)
        self._build_source = build_source  # (config, state) -> a single-account source
        self._directory = directory
        self._logger = logger
        self.failures: Dict[str, str] = {}
        self.read = 0  # accounts read without failure
        self._records: Dict[str, int] = {}
        self._incomplete: set = set()
        self._failed_streams: Dict[str, set] = {}  # the accounts in flight: their streams that failed
        self._in_flight = in_flight
        self._seen: Set[str] = set()  # the accounts Stripe listed in this sync ("all" only)
        self._started: set = set()
        self._checkpoints = StateCheckpoints()

    def accounts(self, platform: str) -> Iterator[str]:
        """The accounts to read: the platform (when included), then the listed or connected ones, in this shard."""
        listed = self._selection.accounts if self._selection.accounts != "all" else self._listed()
        if self._selection.include_platform and self._selection.in_shard(platform):
            yield platform
        for account in listed:  # ids are unique in Stripe's list and in the config's (deduplicated): no set kept
            if account != platform and self._selection.in_shard(account):
                yield account

    def _listed(self) -> Iterator[str]:
        try:
            for account in self._directory.connected():
                self._seen.add(account)
                yield account
        except Exception as error:
            text = getattr(error, "message", None) or str(error)
            raise _config_error(
                f"connected_accounts is \"all\" but the connected accounts could not be listed (GET /v1/accounts): "
                f"{text} If the key lacks the permission, grant {ACCOUNTS_PERMISSION} (Read on Connect accounts) to "
                f"the restricted key, or list the account ids in connected_accounts.") from None

    def messages(self, catalog: Any) -> Iterator[AirbyteMessage]:
        try:
            platform = self._directory.platform_id()
        except Exception as error:
            raise _config_error(f"Could not read the platform's account (GET /v1/account): {error}") from None
        self._state.drop_unpartitioned(self._logger)
        pool = AccountPool(self._in_flight, lambda account: self._account_messages(account, platform, catalog))
        try:
            for account, message, failure in pool.messages(self.accounts(platform)):
                if message is FINISHED:
                    yield from self._finish(account, failure)
                else:
                    yield from self._merge(account, message)
            self._forget_unlisted(platform)
        finally:
            for stream in self._state.streams():
                yield self._state.message(stream)
        for stream in self._stream_names:
            if stream in self._started:
                status = AirbyteStreamStatus.INCOMPLETE if stream in self._incomplete else AirbyteStreamStatus.COMPLETE
                yield _status(stream, status)

    def _forget_unlisted(self, platform: str) -> None:
        """With "all", an account missing from a complete listing has left the platform (disconnected, deleted): its
        state entries are dropped, so the state does not grow forever. Never after a failed or cut-short listing
        (the account may still be there), and never with a list of ids (the user chose those accounts)."""
        if self._selection.accounts != "all" or not self._directory.complete:
            return
        dropped = self._state.keep_only(self._seen | {platform})
        if dropped:
            shown = ", ".join(dropped[:20]) + (f" and {len(dropped) - 20} more" if len(dropped) > 20 else "")
            self._logger.info(f"{len(dropped)} accounts are no longer among the connected accounts Stripe lists "
                              f"(GET /v1/accounts): their saved state is dropped ({shown}). An account connected "
                              f"again is read from its beginning.")
        self._seen = set()

    def _account_messages(self, account: str, platform: str, catalog: Any) -> Iterator[AirbyteMessage]:
        """One account read by a single-account source of its own (on a reader thread of the pool)."""
        config = dict(self._config)
        if account != platform:
            config["account_id"] = account
        state = self._state.of_account(account)
        yield from self._build_source(config, state).read(self._logger, config, catalog, state)

    def _merge(self, account: str, message: AirbyteMessage) -> Iterator[AirbyteMessage]:
        """One message of one account into the sync's output: records stamped, state kept per account."""
        if message.type == Type.RECORD:
            message.record.data[ACCOUNT_FIELD] = account
            yield message
        elif message.type == Type.STATE and message.state.stream:
            name = message.state.stream.stream_descriptor.name
            self._state.update(name, account, _as_dict(message.state.stream.stream_state))
            if self._checkpoints.due(name, self._state.accounts(name)):
                yield self._state.message(name)
        elif message.type == Type.TRACE and message.trace.type == TraceType.STREAM_STATUS:
            status = message.trace.stream_status
            name = status.stream_descriptor.name
            if status.status == AirbyteStreamStatus.INCOMPLETE:
                self._failed_streams.setdefault(account, set()).add(name)
            elif status.status in (AirbyteStreamStatus.STARTED, AirbyteStreamStatus.RUNNING):
                if (name, status.status) not in self._started:
                    self._started.add((name, status.status))
                    self._started.add(name)
                    yield message
        elif message.type == Type.TRACE and message.trace.type == TraceType.ERROR:
            error = message.trace.error
            error.message = f"Account {account}: {error.message}"
            if error.stream_descriptor:
                self._failed_streams.setdefault(account, set()).add(error.stream_descriptor.name)
            yield message
        else:
            yield message

    def _finish(self, account: str, failure: Optional[BaseException]) -> Iterator[AirbyteMessage]:
        """An account's end: its failure (its own only), then its progress in the state."""
        if failure is not None:
            text = getattr(failure, "message", None) or str(failure)
            self.failures[account] = text
            self._logger.error(f"Account {account} did not sync: {text}")
        else:
            self.read += 1
        self._incomplete |= self._failed_streams.pop(account, set())
        for name in self._state.streams():  # this account's progress, unless that would flood the output
            if self._checkpoints.due(name, self._state.accounts(name), account_finished=True):
                yield self._state.message(name)

    def summary(self) -> Optional[AirbyteTracedException]:
        """The end of a sync in which accounts failed: each failed account and why, and how many finished."""
        if not self.failures:
            return None
        failed = "; ".join(f"{account}: {reason.rstrip('.')}" for account, reason in self.failures.items())
        message = (f"{len(self.failures)} of {len(self.failures) + self.read} accounts did not sync: {failed}. "
                   f"The other {self.read} accounts finished and saved their state.")
        return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.config_error)


def _config_error(message: str) -> AirbyteTracedException:
    return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.config_error)


def _status(stream: str, status: AirbyteStreamStatus) -> AirbyteMessage:
    return AirbyteMessage(type=Type.TRACE, trace=AirbyteTraceMessage(
        type=TraceType.STREAM_STATUS, emitted_at=time.time() * 1000,
        stream_status=AirbyteStreamStatusTraceMessage(stream_descriptor=StreamDescriptor(name=stream), status=status)))


def _stream_state(stream: str, state: Mapping[str, Any]) -> AirbyteStateMessage:
    return AirbyteStateMessage(type=AirbyteStateType.STREAM, stream=AirbyteStreamState(
        stream_descriptor=StreamDescriptor(name=stream), stream_state=AirbyteStateBlob(**state)))


def _as_dict(stream_state: Any) -> Dict[str, Any]:
    if stream_state is None:
        return {}
    return dict(stream_state) if isinstance(stream_state, Mapping) else dict(stream_state.__dict__)
