"""Benchmark helpers: run connectors against the local Stripe simulator and measure them."""
