"""`make demo`: a whole sync of all six streams against the bundled Stripe simulator, with a short report.

The data is SIMULATED: a seeded generator makes Stripe-shaped objects; nothing here talks to Stripe.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from integration_tests.connector_cli import REPO, STREAMS, configured_catalog, run_connector
from integration_tests.stripe_simulator import StripeSimulator, keys
from source_stripe_ontologie.key_mode import redact


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", help="simulated dataset size (tiny, small, medium, large)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO / "demo_output")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    with StripeSimulator(seed=args.seed, size=args.size) as sim:
        config = {"client_secret": keys.TEST_KEY, "api_base_url": sim.url}
        print(f"SIMULATED Stripe account (seed {args.seed}, size {args.size}) at {sim.url}; key {redact(keys.TEST_KEY)}\n")

        check = run_connector("check", config)
        status = check.connection_status()
        print(f"check:    {status['status']}" + (f" ({status.get('message')})" if status.get("message") else ""))
        if status["status"] != "SUCCEEDED":
            return 1

        discover = run_connector("discover", config)
        print(f"discover: {', '.join(s['name'] for s in discover.catalog()['streams'])}")

        sim.reset_stats()
        read = run_connector("read", config, configured_catalog())
        if read.returncode != 0:
            print(read.stderr[-2000:])
            for error in read.errors():
                print(f"error: {error['message']}")
            return 1
        pages = dict(sim.stats.requests)
        seconds = _seconds_per_stream(read)

    print(f"read:     {len(read.records())} records in {read.seconds:.1f} s, {sum(pages.values())} requests\n")
    print(f"{'stream':<15}{'records':>9}{'pages':>7}{'seconds':>9}   written to")
    for stream in STREAMS:
        records = read.records(stream)
        path = args.out / f"{stream}.jsonl"
        path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        stream_pages = pages.get("/v1/" + stream, 0)
        print(f"{stream:<15}{len(records):>9}{stream_pages:>7}{seconds.get(stream, 0.0):>9.2f}   {shown}")
    line_pages = pages.get("/v1/invoices/{invoice}/lines", 0)
    if line_pages:
        print(f"(plus {line_pages} pages of /v1/invoices/{{id}}/lines completing invoices with more than 10 lines)")
    print("\nThese records are simulated data in Stripe's shape (API 2024-06-20), not a real account's.")
    return 0


def _seconds_per_stream(read) -> dict:
    """Wall time per stream from the STREAM_STATUS trace messages (STARTED to COMPLETE)."""
    started, seconds = {}, {}
    for trace in read.traces("STREAM_STATUS"):
        name = trace["stream_status"]["stream_descriptor"]["name"]
        if trace["stream_status"]["status"] == "STARTED":
            started[name] = trace["emitted_at"]
        elif trace["stream_status"]["status"] == "COMPLETE" and name in started:
            seconds[name] = (trace["emitted_at"] - started[name]) / 1000
    return seconds


if __name__ == "__main__":
    raise SystemExit(main())
