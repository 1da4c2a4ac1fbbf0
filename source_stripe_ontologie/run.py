"""Console entry point: `source-stripe-ontologie spec|check|discover|read ...` (the Airbyte protocol)."""
from __future__ import annotations

import sys
from typing import Any, List, Mapping, Optional

from airbyte_cdk.entrypoint import AirbyteEntrypoint
from airbyte_cdk.logger import PRINT_BUFFER
from airbyte_cdk.models import ConnectorSpecification

from source_stripe_ontologie.config_validation import ConfigValidator
from source_stripe_ontologie.source import SourceStripeOntologie


class StripeEntrypoint(AirbyteEntrypoint):
    """The CDK's entry point, with our config validation ahead of the CDK's JSON-schema validation.

    The CDK validates the config against the spec before `check`, `discover` and `read` reach the source, and
    its message ("'x' does not match '^acct_...'") names neither the field nor the fix. Ours runs first, with
    the same outcome (a config error: FAILED connection status for check, an error trace for the others).
    """

    @staticmethod
    def validate_connection(source_spec: ConnectorSpecification, config: Mapping[str, Any]) -> None:
        ConfigValidator().validate(config)
        AirbyteEntrypoint.validate_connection(source_spec, config)


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
    """`airbyte_cdk.entrypoint.launch`, with `StripeEntrypoint` in place of `AirbyteEntrypoint`."""
    args = sys.argv[1:] if args is None else args
    entrypoint = StripeEntrypoint(build_source(args))
    parsed_args = entrypoint.parse_args(args)
    with PRINT_BUFFER:
        for message in entrypoint.run(parsed_args):
            print(f"{message}\n", end="")


if __name__ == "__main__":
    run()
