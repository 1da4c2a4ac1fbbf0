"""An Airbyte source for Stripe: customers, charges, subscriptions, invoices, products and payouts."""

from source_stripe_ontologie import cdk_seam  # first: keeps serpyco from reading the protocol's docs (cdk_seam 9.)
from source_stripe_ontologie.source import SourceStripeOntologie  # noqa: E402

__all__ = ["SourceStripeOntologie"]
