"""Fail a stream that receives an object of the other mode than its key (test data under a live key, or back).

Why not the manifest: a record filter could drop such objects, but silently dropping data is the failure this
connector exists to avoid; the expected mode comes from the key's prefix (see `key_mode`), which Jinja cannot
classify, and the error must name the stream, the object and the redacted key.
"""
from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from typing import Any, Dict, Mapping, Optional

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.transformations import RecordTransformation
from airbyte_cdk.sources.types import Config, StreamSlice, StreamState
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_stripe_ontologie.error_messages import livemode_mismatch
from source_stripe_ontologie.key_mode import KeyMode, UnknownKeyPrefix


@dataclass
class RequireKeyMode(RecordTransformation):
    """Checks `livemode` of every record against the key's mode; leaves the record unchanged.

    A mismatch is an error, not a guess: the key prefix and Stripe's `livemode` must agree, and when they do not
    the API base URL or the key is not what the user thinks it is.
    """

    parameters: InitVar[Mapping[str, Any]]
    config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._stream = str(parameters.get("name") or "stream")
        self._key = str(self.config.get("client_secret") or "")
        try:
            self._mode: Optional[KeyMode] = KeyMode.from_key(self._key)
        except UnknownKeyPrefix:
            self._mode = None  # config validation refuses such keys before any read

    def transform(
        self,
        record: Dict[str, Any],
        config: Optional[Config] = None,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> None:
        livemode = record.get("livemode")
        if self._mode is None or livemode is None or livemode is self._mode.livemode:
            return
        message = livemode_mismatch(self._stream, str(record.get("id")), livemode, self._mode, self._key)
        raise AirbyteTracedException(message=message, internal_message=message,
                                     failure_type=FailureType.config_error)
