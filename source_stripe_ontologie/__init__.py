"""An Airbyte source for Stripe: every stream declared in manifest.yaml, for one account or a Connect platform."""

from source_stripe_ontologie import cdk_seam  # noqa: F401  (first: keeps serpyco from reading the protocol models' docs, cdk_seam 10.)
from source_stripe_ontologie.source import SourceStripeOntologie  # noqa: E402

__all__ = ["SourceStripeOntologie"]
