"""An Airbyte source for Stripe: customers, charges, subscriptions, invoices, products and payouts."""

from source_stripe_ontologie.source import SourceStripeOntologie

__all__ = ["SourceStripeOntologie"]
