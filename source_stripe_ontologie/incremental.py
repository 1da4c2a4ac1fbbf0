"""The state of an incremental sync: what it means when written, and what is accepted when it comes back.

The manifest's `incremental_cursor` walks the windows. A stream's state is
`{"created": "<epoch seconds>", "events_created": "<epoch seconds>"}`. `created` is the end of the unbroken run of
finished windows, i.e. every object created up to that second has been emitted; the next sync reads from one
second after it. `events_created` is the events cursor (source_stripe_ontologie.change_capture): every change Stripe
recorded up to that second has been emitted.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable, List, Mapping, Optional

from airbyte_cdk.models import (
    AirbyteStateMessage,
    AirbyteStateType,
    ConfiguredAirbyteCatalog,
    FailureType,
    SyncMode,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

logger = logging.getLogger("airbyte")

CURSOR_FIELD = "created"
EVENTS_CURSOR_FIELD = "events_created"  # written by source_stripe_ontologie.change_capture
UNSETTLED_CURSOR_FIELD = "unsettled_since"  # written by source_stripe_ontologie.unsettled
CURSOR_KEYS = (CURSOR_FIELD, EVENTS_CURSOR_FIELD, UNSETTLED_CURSOR_FIELD)
# What the CDK writes for a stream read in full_refresh mode: no cursor, so the next incremental read starts
# from start_date (that stream has never been read incrementally).
NO_CURSOR_MARKER = "__ab_no_cursor_state_message"
# A Connect sync's state (source_stripe_ontologie/connected_accounts.py): the Airbyte protocol's per-partition state,
# {"states": [{"partition": {"stripe_account_id": "acct_..."}, "cursor": {<the keys above>}}]}.
PER_ACCOUNT_KEY = "states"


def state_example(stream: str) -> str:
    return ('[{"type": "STREAM", "stream": {"stream_descriptor": {"name": "%s"}, '
            '"stream_state": {"created": "1718000000", "events_created": "1718000000"}}}]' % stream)


class FullRefreshStateDropper:
    """Removes the saved state of every stream the catalog reads in `full_refresh` mode.

    In CDK 7 a stream with `incremental_sync` starts from its saved state whatever its sync mode, so a
    full_refresh read handed a state file silently returns only the objects created after it. The manifest has no
    per-sync-mode switch, so the state is filtered before the source is built.
    """

    def __init__(self, catalog: Optional[ConfiguredAirbyteCatalog]) -> None:
        self._full_refresh = {
            configured.stream.name
            for configured in (catalog.streams if catalog else [])
            if configured.sync_mode == SyncMode.full_refresh
        }

    def keep(self, state: Optional[List[AirbyteStateMessage]]) -> Optional[List[AirbyteStateMessage]]:
        if not state:
            return state
        kept = [message for message in state if _stream_name(message) not in self._full_refresh]
        for name in sorted({_stream_name(m) for m in state} - {_stream_name(m) for m in kept}):
            logger.info(f"Stream {name} is read in full_refresh mode: its saved state is not used.")
        return kept


class IncomingStateValidator:
    """Rejects a saved state that cannot be trusted, with a message naming the stream and what is wrong.

    Left to the CDK, a state for an unknown stream is ignored without a word, a `created` that is not epoch
    seconds fails deep inside the cursor with "No format in ['%s'] matching ...", and a `created` in the future
    silently reads nothing until the clock catches up (objects created meanwhile are skipped for good). None of
    that can be said in the manifest.
    """

    def __init__(self, stream_names: Iterable[str], clock: Callable[[], float] = time.time) -> None:
        self._stream_names = sorted(stream_names)
        self._clock = clock

    def validate(self, state: Optional[List[AirbyteStateMessage]]) -> None:
        for message in state or []:
            self._validate_message(message)

    def _validate_message(self, message: AirbyteStateMessage) -> None:
        if message.type != AirbyteStateType.STREAM or message.stream is None:
            _reject(f"The saved state holds a {_type_name(message)} state message; this connector reads and writes "
                    f"only per-stream (STREAM) state, e.g. {state_example(self._stream_names[0])}.")
        name = _stream_name(message)
        if name not in self._stream_names:
            _reject(f"The saved state names stream '{name}', which this connector does not have (streams: "
                    f"{', '.join(self._stream_names)}). Remove that entry or reset the connection's state.")
        stream_state = _as_dict(message.stream.stream_state)
        if PER_ACCOUNT_KEY in stream_state:  # a Connect sync's state: one cursor per account
            self._validate_per_account(name, stream_state[PER_ACCOUNT_KEY])
            return
        self._validate_cursors(name, stream_state)

    def _validate_per_account(self, name: str, entries: Any) -> None:
        example = ('{"states": [{"partition": {"stripe_account_id": "acct_..."}, "cursor": {"created": "1718000000", '
                   '"events_created": "1718000000"}}]}')
        if not isinstance(entries, list):
            _reject(f"The saved state of stream '{name}' has a 'states' that is not a list; expected {example}.")
        for entry in entries:
            partition = entry.get("partition") if isinstance(entry, Mapping) else None
            account = partition.get("stripe_account_id") if isinstance(partition, Mapping) else None
            cursor = entry.get("cursor") if isinstance(entry, Mapping) else None
            if not isinstance(account, str) or not account.startswith("acct_") or not isinstance(cursor, Mapping):
                _reject(f"The saved state of stream '{name}' has a per-account entry {str(entry)[:80]} that is not "
                        f"{{\"partition\": {{\"stripe_account_id\": \"acct_...\"}}, \"cursor\": {{...}}}}; expected "
                        f"{example}. Fix or reset the state of this stream.")
            self._validate_cursors(f"{name} (account {account})", cursor)

    def _validate_cursors(self, name: str, stream_state: Mapping[str, Any]) -> None:
        unknown = sorted(set(stream_state) - {*CURSOR_KEYS, NO_CURSOR_MARKER})
        if unknown:
            _reject(f"The saved state of stream '{name}' has keys {unknown} this connector never writes; expected "
                    f'{{"{CURSOR_FIELD}": "<epoch seconds>", "{EVENTS_CURSOR_FIELD}": "<epoch seconds>"}}.')
        for key in CURSOR_KEYS:
            if key in stream_state:
                self._validate_cursor(name, key, stream_state[key])

    def _validate_cursor(self, name: str, key: str, value: Any) -> None:
        seconds = _epoch_seconds(value)
        if seconds is None:
            _reject(f"The saved state of stream '{name}' has {key}={value!r}; expected whole epoch seconds "
                    f'such as "1718000000". Fix or reset the state of this stream.')
        now = int(self._clock())
        if seconds > now:
            _reject(f"The saved state of stream '{name}' has {key}={seconds}, which is in the future (now is "
                    f"{now}): reading from it would skip everything Stripe records until then. Reset the state of this "
                    f"stream, or check this machine's clock.")


def _epoch_seconds(value: Any) -> Optional[int]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _as_dict(stream_state: Any) -> Mapping[str, Any]:
    if stream_state is None:
        return {}
    return stream_state if isinstance(stream_state, Mapping) else stream_state.__dict__


def _stream_name(message: AirbyteStateMessage) -> Optional[str]:
    return message.stream.stream_descriptor.name if message.stream else None


def _type_name(message: AirbyteStateMessage) -> str:
    return message.type.value if message.type else "legacy"


def _reject(text: str) -> None:
    raise AirbyteTracedException(message=text, internal_message=text, failure_type=FailureType.config_error)
