"""`make bench`: how fast the connector syncs, next to Airbyte's own Stripe connector, against the simulator.

Prints figures; asserts nothing. Three parts:
1. Rate-limited: the simulator with Stripe's limits on (100 req/s live, 25 test, 25 per endpoint) and ~250 ms
   latency per request plus jitter; all six streams, full refresh, default config, once with a live key and once
   with a test key. Records/s, requests/s, share of the rate ceiling, 429s received, peak RSS, wall time.
2. The peer, `airbyte-source-stripe==5.14.1` from PyPI in its own virtualenv, on a slice of the same simulator
   and settings (it runs at ~90 records/s, so the slice keeps it to minutes); the ratio ours/peer in records/s.
3. CPU-bound: latency 0 and limits off (the connector's own pacing lifted with `max_requests_per_second`, the
   knob for accounts with raised limits), 50,000 charges through the CLI with stdout to a file: records/s and
   peak RSS; then peak RSS for 10k versus 100k charges (memory must not grow with the dataset).
   Beside it the floor, measured in this process right after the run on the same pages: parse each page and
   write each record as a RECORD line, with orjson and with the standard json module, and our share of each,
   so that a figure from a loaded machine stays comparable.
Part 1 also prints the records ceiling: records divided by the least time Stripe's limits allow for
ceil(records/100) list pages per stream (each endpoint at 25/s, all under the account's limit), and our share.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional

import orjson
import requests

from integration_tests.connector_cli import SIX_STREAMS as STREAMS, configured_catalog, run_connector
from integration_tests.stripe_simulator import Latency, RateLimits, StripeSimulator, keys

# Balanced so that no endpoint needs more than a quarter of the requests: with Stripe's 25 req/s per endpoint
# under 100 req/s per account, a sync can only use the whole account limit while at least four endpoints are busy.
RATE_LIMITED_COUNTS = {"customers": 24_000, "charges": 25_000, "subscriptions": 18_000, "invoices": 2_500,
                       "products": 10_000, "payouts": 20_000}
PEER_SLICE_COUNTS = {"customers": 1_000, "charges": 1_500, "subscriptions": 600, "invoices": 300,
                     "products": 300, "payouts": 800}
CEILING = {"live": 100.0, "test": 25.0}
_RECORD = re.compile(rb'^\{"type":"RECORD","record":\{"stream":"([a-z_]+)"')


def count_records(path: Path) -> Counter:
    """Records per stream in a captured stdout, without parsing each JSON line (the bench shares 2 cores)."""
    counts: Counter = Counter()
    with open(path, "rb") as lines:
        for line in lines:
            match = _RECORD.match(line)
            if match:
                counts[match.group(1).decode()] += 1
    return counts


def active_seconds(sim: StripeSimulator) -> float:
    """From the first request the simulator received to the last one it answered."""
    log = list(sim.stats.log)
    if not log:
        return 0.0
    first = min(entry["time"] for entry in log)
    last = max(entry["time"] + entry.get("duration_ms", 0) / 1000 for entry in log)
    return max(last - first, 1e-9)


def fetch_pages(sim: StripeSimulator, key: str, stream: str) -> List[bytes]:
    """Every list page of `stream` as the simulator serves it (100 objects a page), raw bytes, untimed."""
    pages, after = [], None
    headers = {"Authorization": f"Bearer {key}", "Stripe-Version": "2024-06-20"}
    with requests.Session() as session:
        while True:
            params = {"limit": "100", **({"starting_after": after} if after else {})}
            body = session.get(f"{sim.url}/v1/{stream}", params=params, headers=headers, timeout=60).content
            pages.append(body)
            page = orjson.loads(body)
            if not page.get("has_more") or not page.get("data"):
                return pages
            after = page["data"][-1]["id"]


def floor_records_per_s(pages: List[bytes], stream: str, out_path: Path, loads: Callable, dumps: Callable) -> float:
    """The least work a record needs, on one core of this machine now: parse its page, write it as a RECORD
    message line to a file. Records per CPU second of this thread (the process's other threads are idle)."""
    records = 0
    started = time.process_time()
    with open(out_path, "wb") as out:
        for body in pages:
            data = loads(body)["data"]
            emitted_at = int(time.time() * 1000)
            out.write(b"".join(dumps({"type": "RECORD", "record": {"stream": stream, "data": record,
                                                                    "emitted_at": emitted_at}}) + b"\n"
                               for record in data))
            records += len(data)
    out_path.unlink()
    return records / max(time.process_time() - started, 1e-9)


def std_json_dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def least_seconds(pages_per_stream: Mapping[str, int], per_account: float, per_endpoint: float,
                  extra: int = 0) -> float:
    """The least time Stripe's limits allow for these list pages (and `extra` requests to other endpoints): each
    endpoint at its limit, all under the account's."""
    return max(max(pages_per_stream.values()) / per_endpoint, (sum(pages_per_stream.values()) + extra) / per_account)


def sub_list_requests(sim: StripeSimulator) -> int:
    """Requests for the rest of an embedded list (an invoice's lines beyond the 10 its list page carries): work Stripe
    requires of any connector, one request per object with more, which the records ceiling does not count."""
    return sum(1 for entry in sim.stats.log if entry["path"].count("/") >= 4 and entry["status"] == 200)


def our_sync(sim: StripeSimulator, key: str, out_dir: Path, streams=STREAMS, **config) -> Dict:
    sim.reset_stats()
    stdout = out_dir / f"ours-{key[:8]}.jsonl"
    run = run_connector("read", {"client_secret": key, "api_base_url": sim.url, **config},
                        configured_catalog(streams), stdout_path=stdout, timeout=1800)
    records = count_records(stdout)
    expected = sum(len(sim.objects(s, mode="live" if "_live_" in key else "test")) for s in streams)
    stats = sim.stats.as_dict(with_log=False)
    result = {"records": sum(records.values()), "expected": expected, "exit": run.returncode,
              "wall_s": run.seconds, "requests": stats["total"], "http_429": stats["rate_limited"],
              "sub_list_requests": sub_list_requests(sim),
              "active_s": active_seconds(sim), "peak_rss_mb": run.peak_rss_mb, "stderr": run.stderr[-2000:]}
    stdout.unlink()
    return result


def print_table(title: str, rows: Dict[str, Dict], ceiling: Optional[Dict[str, float]] = None) -> None:
    print(f"\n{title}")
    head = f"{'run':<22}{'records':>9}{'exact':>7}{'wall s':>8}{'rec/s':>9}{'req':>7}{'req/s':>8}"
    head += f"{'ceiling':>9}{'429s':>6}{'RSS MB':>8}"
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        req_s = r["requests"] / r["active_s"] if r.get("active_s") else float("nan")
        share = f"{req_s / ceiling[name]:.0%}" if ceiling and name in ceiling else "-"
        exact = "yes" if r["records"] == r["expected"] and r["exit"] == 0 else "NO"
        rss = f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") else "-"
        print(f"{name:<22}{r['records']:>9}{exact:>7}{r['wall_s']:>8.1f}{r['records'] / r['wall_s']:>9.0f}"
              f"{r['requests']:>7}{req_s:>8.1f}{share:>9}{r['http_429']:>6}{rss:>8}")


def rate_limited(out_dir: Path, latency_ms: int, jitter_ms: int, peer: bool) -> None:
    rows, ceilings = {}, {}
    with StripeSimulator(seed=101, counts=RATE_LIMITED_COUNTS, latency=Latency(latency_ms, jitter_ms),
                         rate_limits=RateLimits(live=100, test=25, per_endpoint=25)) as sim:
        sim_objects = {mode: {stream: sim.objects(stream, mode=mode) for stream in STREAMS} for mode in ("live", "test")}
        for mode, key in (("live", keys.LIVE_KEY), ("test", keys.TEST_KEY)):
            name = f"ours, {mode} key"
            rows[name] = our_sync(sim, key, out_dir)
            ceilings[name] = CEILING[mode]
            if rows[name]["exit"] != 0:
                print(rows[name]["stderr"])
    print_table(f"1. Rate-limited: six streams, full refresh, default config; latency {latency_ms} ms "
                f"+ up to {jitter_ms} ms jitter, Stripe's limits on ({sum(RATE_LIMITED_COUNTS.values()):,} "
                f"objects per mode). req/s and ceiling share are over the time the simulator saw requests; "
                f"rec/s over the whole command, start-up included.", rows, ceilings)
    for name, r in rows.items():
        mode = "live" if "live" in name else "test"
        pages = {stream: math.ceil(len(sim_objects[mode][stream]) / 100) for stream in STREAMS}
        least = least_seconds(pages, CEILING[mode], 25.0)
        ceiling = r["expected"] / least
        rate = r["records"] / r["active_s"] if r.get("active_s") else float("nan")
        print(f"   {name}: 429s = {r['http_429'] / max(r['requests'], 1):.2%} of requests; records ceiling "
              f"{ceiling:,.0f} records/s ({sum(pages.values())} full pages in at least {least:.1f} s); ours "
              f"{rate:,.0f} records/s from first request to last response = {rate / ceiling:.0%} of the records "
              f"ceiling ({r['records'] / r['wall_s']:,.0f} records/s over the whole command, start-up included)")
        required = least_seconds(pages, CEILING[mode], 25.0, extra=r["sub_list_requests"])
        print(f"      with the {r['sub_list_requests']} sub-list requests the data requires (invoices with more than 10 "
              f"lines) under the same limits: at least {required:.1f} s, ceiling {r['expected'] / required:,.0f} "
              f"records/s; ours = {rate / (r['expected'] / required):.0%}")
    if peer:
        compare_with_peer(out_dir, latency_ms, jitter_ms, rows["ours, live key"])


def compare_with_peer(out_dir: Path, latency_ms: int, jitter_ms: int, ours_live: Dict) -> None:
    from integration_tests.bench.peer_runner import run_peer

    with StripeSimulator(seed=101, counts=PEER_SLICE_COUNTS, latency=Latency(latency_ms, jitter_ms),
                         rate_limits=RateLimits(live=100, test=25, per_endpoint=25), preload=("live",)) as sim:
        expected = sum(len(sim.objects(s, mode="live")) for s in STREAMS)
        started = time.monotonic()
        peer = run_peer(sim.url, keys.LIVE_KEY, streams=STREAMS, timeout_s=1800, expected_records=None)
        peer_wall = time.monotonic() - started
        ours_slice = our_sync(sim, keys.LIVE_KEY, out_dir)
    peer_rate = peer["records"] / peer["seconds"]
    ours_rate = ours_live["records"] / ours_live["wall_s"]
    print(f"\n2. Peer: airbyte-source-stripe 5.14.1 on a {expected:,}-object slice, same latency and limits, live key")
    print(f"   peer: {peer['records']:,} of {expected:,} records in {peer['seconds']:.1f} s = {peer_rate:.0f} records/s, "
          f"{peer['requests']} requests, peak RSS {peer.get('peak_rss_mb') or 0:.0f} MB (wall incl. venv check {peer_wall:.1f} s)")
    print(f"   ours on the same slice: {ours_slice['records']:,} records in {ours_slice['wall_s']:.1f} s = "
          f"{ours_slice['records'] / ours_slice['wall_s']:.0f} records/s (start-up dominates a slice this small)")
    print(f"   ours on the full dataset (part 1, live): {ours_rate:.0f} records/s")
    print(f"   ratio ours/peer in records/s: {ours_rate / peer_rate:.0f}x (full dataset), "
          f"{ours_slice['records'] / ours_slice['wall_s'] / peer_rate:.0f}x (same slice)")


def cpu_bound(out_dir: Path, charges: int) -> None:
    unpaced = {"max_requests_per_second": 10_000, "max_requests_per_endpoint_per_second": 10_000}  # the maxima
    rows, floors = {}, {}
    for n in (charges, 10_000, 100_000):
        with StripeSimulator(seed=202, counts={"charges": n}, preload=("test",)) as sim:
            rows[f"{n:,} charges"] = our_sync(sim, keys.TEST_KEY, out_dir, streams=("charges",), **unpaced)
            if rows[f"{n:,} charges"]["exit"] != 0:
                print(rows[f"{n:,} charges"]["stderr"])
            if n == charges:  # the floor, in this process, on the pages this run read, right after it
                pages = fetch_pages(sim, keys.TEST_KEY, "charges")
                floors["orjson"] = floor_records_per_s(pages, "charges", out_dir / "floor.jsonl", orjson.loads,
                                                       orjson.dumps)
                floors["json"] = floor_records_per_s(pages, "charges", out_dir / "floor.jsonl", json.loads,
                                                     std_json_dumps)
    print_table("3. CPU-bound: charges only, latency 0, simulator limits off, connector pacing lifted; stdout to a "
                f"file. Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}.",
                rows)
    small, big = rows["10,000 charges"], rows["100,000 charges"]
    r = rows[f"{charges:,} charges"]
    read_s = r["active_s"]
    ours, reading = r['records'] / r['wall_s'], r['records'] / read_s
    print(f"   {charges:,} charges: {ours:,.0f} records/s over the whole command; "
          f"{reading:,.0f} records/s while reading (start-up excluded)")
    for name, floor in floors.items():
        print(f"   floor with {name:<6} (parse each page + write each record as a RECORD line, one core, same pages, "
              f"measured now): {floor:,.0f} records/s; ours = {ours / floor:.0%} over the command, "
              f"{reading / floor:.0%} while reading")
    if small.get("peak_rss_mb") and big.get("peak_rss_mb"):
        print(f"   peak RSS 10k -> 100k charges: {small['peak_rss_mb']:.0f} MB -> {big['peak_rss_mb']:.0f} MB "
              f"({big['peak_rss_mb'] / small['peak_rss_mb'] - 1:+.0%})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("rate", "cpu"), help="run one part")
    parser.add_argument("--no-peer", action="store_true", help="skip the peer comparison")
    parser.add_argument("--latency-ms", type=int, default=250)
    parser.add_argument("--jitter-ms", type=int, default=50)
    parser.add_argument("--charges", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stripe-bench-") as tmp:
        out_dir = Path(tmp)
        if args.only in (None, "rate"):
            rate_limited(out_dir, args.latency_ms, args.jitter_ms, peer=not args.no_peer)
        if args.only in (None, "cpu"):
            cpu_bound(out_dir, args.charges)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
