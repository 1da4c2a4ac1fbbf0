"""Console entry point: `source-stripe-ontologie spec|check|discover|read ...` (the Airbyte protocol)."""
from __future__ import annotations

import sys
from typing import List, Optional

import orjson
from airbyte_cdk.entrypoint import AirbyteEntrypoint
from airbyte_cdk.models import AirbyteMessage, Type

from source_stripe_ontologie.entrypoint import launch
from source_stripe_ontologie.source import SourceStripeOntologie


class RecordPassthroughSerializer:
    """Writes RECORD messages with their data exactly as Stripe sent it, nulls included.

    The CDK's message serializer omits `None` values, which drops every top-level null field of a record
    (`"description": null` vanishes), so a destination cannot tell "Stripe said null" from "field unknown".
    Records are by far the most frequent message, so this also skips a dataclass round trip per record. Every
    other message keeps the CDK's own serializer.
    """

    cdk_serializer = staticmethod(AirbyteEntrypoint.airbyte_message_to_string)

    @classmethod
    def to_string(cls, message: AirbyteMessage) -> str:
        record = message.record
        if message.type != Type.RECORD or record.meta is not None or record.file_reference is not None:
            return cls.cdk_serializer(message)
        body = {"stream": record.stream, "data": record.data, "emitted_at": record.emitted_at}
        if record.namespace is not None:
            body["namespace"] = record.namespace
        return orjson.dumps({"type": "RECORD", "record": body}).decode()

    @classmethod
    def install(cls) -> None:
        # The CDK's read loop calls `AirbyteEntrypoint.airbyte_message_to_string` by class, so a subclass
        # override is not reached; replace it for this process only.
        AirbyteEntrypoint.airbyte_message_to_string = staticmethod(cls.to_string)


def build_source(args: List[str]) -> SourceStripeOntologie:
    """Build the source with the config, catalog and state named on the command line (CDK 7 needs them up front)."""
    config_path = AirbyteEntrypoint.extract_config(args)
    catalog_path = AirbyteEntrypoint.extract_catalog(args)
    state_path = AirbyteEntrypoint.extract_state(args)
    config = SourceStripeOntologie.read_config(config_path) if config_path else None
    catalog = SourceStripeOntologie.read_catalog(catalog_path) if catalog_path else None
    state = SourceStripeOntologie.read_state(state_path) if state_path else None
    return SourceStripeOntologie(config=config, catalog=catalog, state=state)


def run(args: Optional[List[str]] = None) -> None:
    args = sys.argv[1:] if args is None else args
    RecordPassthroughSerializer.install()
    launch(build_source(args), args)


if __name__ == "__main__":
    run()
