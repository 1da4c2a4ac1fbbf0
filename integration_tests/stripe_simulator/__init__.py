"""Local Stripe API simulator for the connector's integration tests and benchmarks (docstring completed below)."""

from . import keys
from .behaviour import Faults, Latency, RateLimits, Stats
from .data import RESOURCES, SIZES, Dataset
from .simulator import StripeSimulator

__all__ = ["StripeSimulator", "keys", "RateLimits", "Latency", "Faults", "Stats", "Dataset", "RESOURCES", "SIZES"]
