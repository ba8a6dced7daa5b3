"""Engine benchmark (issue: risk engines): prints figures, asserts nothing about time.

In one run:
* the factor engine (batched OLS over positions and dates) against a per-position statsmodels loop on the
  same data, 1,000 positions x 250 sessions, 150-session window;
* the vectorised Black-Scholes Greeks against a per-option mibian loop, 10,000 options.

Targets: factor engine >= 10x the loop, Greeks >= 1,000x mibian, same results.
Usage: python benchmarks/engines.py [--full-mibian]   (mibian over all 10,000 options: ~20-30 s)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_factors  # noqa: E402
import bench_greeks  # noqa: E402


def main(argv: list[str]) -> int:
    print("== factor engine vs statsmodels loop (1,000 positions x 250 sessions) ==")
    factors = bench_factors.run(n_positions=1000, n_sessions=250)
    print("\n== Greeks engine vs mibian loop (10,000 options) ==")
    greeks = bench_greeks.run(n_options=10_000, n_mibian=10_000 if "--full-mibian" in argv else 1_000)
    print("\n== summary ==")
    for name, result in (("factors", factors), ("greeks", greeks)):
        ratio = result.get("speedup") or result.get("ratio") or result.get("speedup_single_date")
        print(f"{name:8s} speed-up {ratio}" if ratio is not None else f"{name:8s} {result}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
