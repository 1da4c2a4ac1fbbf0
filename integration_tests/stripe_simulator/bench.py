"""Measure the simulator: dataset startup time and loopback throughput with 100-record pages.

    python -m integration_tests.stripe_simulator.bench [--size large] [--threads 8] [--seconds 5]

Startup is measured in-process (``Dataset.generate`` + indexing for one mode). Throughput is measured against
a simulator started as a separate process (so client and server do not share one GIL), rate limits off, with
``--threads`` keep-alive clients each paging /v1/charges (limit=100, starting_after) from the newest object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import keys
from .data import SIZES
from .simulator import StripeSimulator

REPO = Path(__file__).resolve().parents[2]


def measure_startup(size: str, seed: int = 7) -> dict:
    sim = StripeSimulator(seed=seed, size=size, preload=())
    started = time.perf_counter()
    sim._state("live")
    elapsed = time.perf_counter() - started
    return {"size": size, "objects": sum(SIZES[size].values()), "seconds_one_mode": round(elapsed, 2)}


def _client(host: str, port: int, path: str, deadline: float, counts: list, latencies: list) -> None:
    conn = http.client.HTTPConnection(host, port)
    headers = {"Authorization": f"Bearer {keys.LIVE_KEY}", "Stripe-Version": "2024-06-20"}
    after = None
    requests_done = records = 0
    while time.perf_counter() < deadline:
        url = f"{path}?limit=100" + (f"&starting_after={after}" if after else "")
        t0 = time.perf_counter()
        conn.request("GET", url, headers=headers)
        response = conn.getresponse()
        body = json.loads(response.read())
        latencies.append(time.perf_counter() - t0)
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {body}")
        requests_done += 1
        records += len(body["data"])
        after = body["data"][-1]["id"] if body["has_more"] else None
    conn.close()
    counts.append((requests_done, records))


def measure_throughput(size: str, threads: int, seconds: float, seed: int = 7) -> dict:
    proc = subprocess.Popen([sys.executable, "-m", "integration_tests.stripe_simulator", "--port", "0", "--size", size,
                             "--seed", str(seed), "--preload", "live"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        url = proc.stdout.readline().strip().rsplit(" ", 1)[1]
        host, port = url.replace("http://", "").split(":")
        # warm the per-object JSON caches once, as a first sync would
        _client(host, int(port), "/v1/charges", time.perf_counter() + 3, [], [])
        counts: list = []
        latencies: list = []
        deadline = time.perf_counter() + seconds
        workers = [threading.Thread(target=_client, args=(host, int(port), "/v1/charges", deadline, counts, latencies))
                   for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        total_requests = sum(c[0] for c in counts)
        total_records = sum(c[1] for c in counts)
        latencies.sort()
        return {"threads": threads, "seconds": seconds, "requests_per_s": round(total_requests / seconds),
                "records_per_s": round(total_records / seconds),
                "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
                "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2)}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large", choices=sorted(SIZES))
    parser.add_argument("--threads", type=int, action="append")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    print(json.dumps({"startup": measure_startup(args.size)}), flush=True)
    for threads in args.threads or [1, 4, 8]:
        print(json.dumps({"throughput": measure_throughput(args.size, threads, args.seconds)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
