"""The CDK's entry point with our config validation first, and `launch` that uses it.

Why not the manifest: the CDK validates the config against the spec's JSON schema before `check`, `discover`
and `read` reach the source, and its message ("'x' does not match '^acct_...'") names neither the field nor the
fix; nothing in a manifest runs before that.
"""
from __future__ import annotations

from typing import Any, List, Mapping

from airbyte_cdk.entrypoint import AirbyteEntrypoint
from airbyte_cdk.logger import PRINT_BUFFER
from airbyte_cdk.models import ConnectorSpecification
from airbyte_cdk.sources import Source

from source_stripe_ontologie.config_validation import ConfigValidator


class StripeEntrypoint(AirbyteEntrypoint):
    """Runs `ConfigValidator` ahead of the CDK's JSON-schema validation, with the same outcome (a config error:
    FAILED connection status for check, an error trace and a non-zero exit for discover and read)."""

    @staticmethod
    def validate_connection(source_spec: ConnectorSpecification, config: Mapping[str, Any]) -> None:
        ConfigValidator().validate(config)
        AirbyteEntrypoint.validate_connection(source_spec, config)


def launch(source: Source, args: List[str]) -> None:
    """`airbyte_cdk.entrypoint.launch`, with `StripeEntrypoint` in place of `AirbyteEntrypoint`."""
    entrypoint = StripeEntrypoint(source)
    parsed_args = entrypoint.parse_args(args)
    with PRINT_BUFFER:
        for message in entrypoint.run(parsed_args):
            print(f"{message}\n", end="")
