"""Connect benchmark: one source reading a platform with many small connected accounts and a few big ones.

Runs the connector's CLI (as Airbyte does) against the simulator, paced as users get it (the key's mode limits)
unless `--unpaced`, and prints per sync: accounts, records, records/s, requests per account, the share of the rate
ceiling used, and the peak RSS. A first (full) sync, then an incremental sync with nothing new.

    python -m integration_tests.bench.connect_bench --accounts 1000 --big 3 [--live] [--unpaced] [--six]
"""
from __future__ import annotations

import argparse
import json
import time

from integration_tests.connector_cli import SIX_STREAMS, STREAMS, configured_catalog, run_connector, simulator_config
from integration_tests.stripe_simulator import StripeSimulator, keys

FEW = {"customers": 2, "charges": 3, "subscriptions": 1, "invoices": 1, "products": 1, "payouts": 1}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50, help="small connected accounts (a few objects each)")
    parser.add_argument("--big", type=int, default=2, help="big connected accounts (simulator size 'small')")
    parser.add_argument("--live", action="store_true", help="live key (100 req/s) instead of test (25 req/s)")
    parser.add_argument("--unpaced", action="store_true", help="lift the connector's pacing")
    parser.add_argument("--six", action="store_true", help="the six core streams only (default: every stream)")
    args = parser.parse_args(argv)

    key = keys.LIVE_KEY if args.live else keys.TEST_KEY
    mode = "live" if args.live else "test"
    with StripeSimulator(seed=7, size="tiny", preload=(mode,)) as sim:
        for n in range(args.accounts):
            sim.connect_account(counts=FEW if n % 10 else {name: 0 for name in FEW})  # one in ten empty
        for _ in range(args.big):
            sim.connect_account(size="small")
        config = {"client_secret": key, "api_base_url": sim.url, "connected_accounts": "all", "read_lag_seconds": 2}
        if args.unpaced:
            config = simulator_config(sim.url, key, connected_accounts="all", read_lag_seconds=2)
        ceiling = 100 if args.live else 25
        state = None
        for name in ("first", "incremental, nothing new"):
            sim.reset_stats()
            catalog = configured_catalog(SIX_STREAMS if args.six else STREAMS, "incremental")
            run = run_connector("read", config, catalog, state, timeout=36_000)
            requests = sim.stats.total
            accounts = 1 + args.accounts + args.big
            records = len(run.records())
            print(json.dumps({
                "sync": name, "exit": run.returncode, "accounts": accounts, "records": records,
                "seconds": round(run.seconds, 1), "records_per_s": round(records / run.seconds, 1),
                "requests": requests, "requests_per_account": round(requests / accounts, 2),
                "share_of_rate_ceiling": None if args.unpaced else round(requests / run.seconds / ceiling, 2),
                "peak_rss_mb": run.peak_rss_mb,
            }))
            state = run.final_state()
            time.sleep(3)  # past the read lag
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
