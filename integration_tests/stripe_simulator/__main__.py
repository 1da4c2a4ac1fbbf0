"""``python -m integration_tests.stripe_simulator --port 0 --size small --seed 7 [--rate-limits]
[--latency-ms 250 --jitter-ms 50]``: serve until interrupted, after printing the URL."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .behaviour import Latency, RateLimits
from .data import RESOURCES, SIZES
from .generic import GenericCatalog
from .simulator import MODES, StripeSimulator


def _counts(values):
    out = {}
    for item in values or []:
        name, _, n = item.partition("=")
        if (name not in RESOURCES and name not in GenericCatalog.load()) or not n.isdigit():
            raise SystemExit(f"--count expects RESOURCE=N with RESOURCE in {RESOURCES} or a generic one "
                             f"(e.g. tax_rates, treasury/transactions), got {item!r}")
        out[name] = int(n)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m integration_tests.stripe_simulator",
                                     description="Local Stripe API simulator (loopback only).")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--count", action="append", metavar="RESOURCE=N", help="override one resource's count")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate-limits", action="store_true", help="enforce Stripe's 100/25/25 req/s budgets")
    parser.add_argument("--live-rps", type=int, default=100)
    parser.add_argument("--test-rps", type=int, default=25)
    parser.add_argument("--endpoint-rps", type=int, default=25, help="0 disables the per-endpoint budget")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--preload", default="test,live", help="modes generated before listening (others lazily)")
    args = parser.parse_args(argv)
    preload = [m for m in args.preload.split(",") if m]
    if any(m not in MODES for m in preload):
        parser.error(f"--preload takes a comma list of {MODES}")
    limits = RateLimits(live=args.live_rps, test=args.test_rps, per_endpoint=args.endpoint_rps or None) \
        if args.rate_limits else None
    sim = StripeSimulator(seed=args.seed, size=args.size, counts=_counts(args.count), rate_limits=limits,
                          latency=Latency(args.latency_ms, args.jitter_ms), preload=preload, port=args.port)
    sim.start()
    print(f"Stripe simulator listening on {sim.url}", flush=True)
    print("startup seconds per mode: " + ", ".join(f"{m}={s:.2f}" for m, s in sim.startup_seconds.items()),
          file=sys.stderr, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
