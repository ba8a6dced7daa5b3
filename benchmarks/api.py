"""A bounded load test of the API on the loopback (api.md, "Speed"): p50 / p95 / p99 and errors.

Starts ``sigmasight serve`` on a free loopback port over the warehouse of the environment (after ``make demo``:
the demo warehouse), creates a key for the demo hedge fund's owner, sends ``--requests`` requests per endpoint
from ``--clients`` concurrent clients (threads, each with its own keep-alive connection), revokes the key and
stops the server. Endpoints: the portfolio summary and the position list (30 rows) of the demo hedge fund;
a what-if is timed too (a few sequential requests; spec: under 2 s).

    .venv/bin/python benchmarks/api.py                 # 20 clients, 2,000 requests per endpoint
    .venv/bin/python benchmarks/api.py --clients 20 --requests 4000

The rate limit is raised for the benchmark's server (SIGMASIGHT_API_RATE_LIMIT), so no request is refused for it.
Prints the machine load before and after: the client threads share the machine's CPUs with the server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PORTFOLIO = "demo-hedge-fund"
OWNER = "demo_hedgefundstyle@sigmasight.com"
WHATIF_TRADES = "trade_date,ticker,quantity,price\n2025-06-30,NVDA,-4000,157.99\n2025-06-30,SPY250919P00580000,20,9.50\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def hammer(port: int, token: str, path: str, requests: int, clients: int) -> tuple[np.ndarray, int, float]:
    """Send ``requests`` GETs of ``path`` from ``clients`` threads; (latencies in ms, errors, wall seconds)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    remaining = [requests]
    headers = {"Authorization": f"Bearer {token}"}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        bad = 0
        while True:
            with lock:
                if remaining[0] <= 0:
                    break
                remaining[0] -= 1
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine.append((time.perf_counter() - started) * 1000)
            bad += not ok
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return np.array(latencies), errors[0], time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000, help="requests per endpoint")
    parser.add_argument("--as-of", default="2025-06-30")
    args = parser.parse_args(argv)

    from sigmasight_pipeline.warehouse.api_keys import create_key, revoke_key
    from sigmasight_pipeline.warehouse.io import database_url, get_engine

    engine = get_engine()
    _key, token = create_key(engine, OWNER, label="benchmarks/api.py")
    port = _free_port()
    env = {**os.environ, "SIGMASIGHT_API_RATE_LIMIT": str(10 * args.requests * args.clients), "PYTHONWARNINGS": "ignore"}
    server = subprocess.Popen([str(Path(sys.executable).parent / "sigmasight"), "serve", "--port", str(port),
                               "--no-access-log", "--log-level", "warning"], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/v1/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                print("error: the server did not start", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print(f"API load test on the loopback: {args.clients} concurrent clients, {args.requests} requests per endpoint; "
              f"warehouse {database_url()}; {os.cpu_count()} CPUs, load before {_load()}")
        endpoints = {
            "portfolio summary": f"/api/v1/portfolios/{PORTFOLIO}?as_of={args.as_of}",
            "position list": f"/api/v1/portfolios/{PORTFOLIO}/positions?as_of={args.as_of}",
        }
        print(f"{'endpoint':<20} {'rows':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'req/s':>7} {'errors':>6}")
        for name, path in endpoints.items():
            warm, _, _ = hammer(port, token, path, 50, 4)  # the first requests pay for imports and caches
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            body = json.loads(conn.getresponse().read())
            rows = len(body.get("items", [])) if isinstance(body, dict) and "items" in body else 1
            ms, errors, wall = hammer(port, token, path, args.requests, args.clients)
            p50, p95, p99 = np.percentile(ms, [50, 95, 99])
            print(f"{name:<20} {rows:>5} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f} {ms.max():>8.1f} {len(ms) / wall:>7.0f} {errors:>6}")
        times = []
        for _ in range(4):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            started = time.perf_counter()
            conn.request("POST", f"/api/v1/portfolios/{PORTFOLIO}/whatif",
                         body=json.dumps({"trades_csv": WHATIF_TRADES, "as_of": args.as_of}),
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            times.append(time.perf_counter() - started)
            if response.status != 200:
                print(f"what-if: HTTP {response.status}")
                break
        else:
            print(f"what-if (sequential, 4 requests): first {times[0]:.2f} s, median of the rest "
                  f"{float(np.median(times[1:])):.2f} s")
        print(f"load after {_load()}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        revoke_key(engine, token)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
