"""Console entry point: `source-stripe-ontologie spec|check|discover|read ...` (the Airbyte protocol)."""
from __future__ import annotations

import sys
from typing import List, Optional

from airbyte_cdk.entrypoint import AirbyteEntrypoint

from source_stripe_ontologie.entrypoint import launch
from source_stripe_ontologie.source import SourceStripeOntologie


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
    launch(build_source(args), args)


if __name__ == "__main__":
    run()
