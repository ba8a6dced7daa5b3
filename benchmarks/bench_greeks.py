"""Benchmark: vectorised Black-Scholes Greeks (engines.options.bs_greeks) vs a per-option mibian loop.

Both compute price, delta, gamma, theta (per day), vega (per vol point) and rho (per 1%) for the same
random options (moneyness 0.8-1.2, 7-365 days, vol 10-80%, rate 0-8%, calls and puts). mibian costs about
half a millisecond per option, so by default it is looped over the first ``n_mibian`` options only and its
per-option time is scaled to ``n_options``; the printout says so. The results must agree to 1e-6.

    python benchmarks/bench_greeks.py [n_options] [n_mibian]
"""

from __future__ import annotations

import sys
import time

import mibian
import numpy as np

from sigmasight_pipeline.engines.options import bs_greeks

NAMES = ["price", "delta", "gamma", "theta", "vega", "rho"]


def _inputs(n: int, seed: int):
    rng = np.random.default_rng(seed)
    S = np.full(n, 100.0)
    K = S / rng.uniform(0.8, 1.2, n)
    days = rng.integers(7, 366, n).astype(float)
    vol = rng.uniform(0.10, 0.80, n)
    r = rng.uniform(0.0, 0.08, n)
    call = rng.random(n) < 0.5
    return S, K, days, r, vol, call


def _mibian_loop(S, K, days, r, vol, call) -> np.ndarray:
    out = np.empty((len(S), 6))
    for i in range(len(S)):
        # mibian takes the rate and the vol in PERCENT, and calendar days
        o = mibian.BS([S[i], K[i], r[i] * 100.0, days[i]], volatility=vol[i] * 100.0)
        if call[i]:
            out[i] = (o.callPrice, o.callDelta, o.gamma, o.callTheta, o.vega, o.callRho)
        else:
            out[i] = (o.putPrice, o.putDelta, o.gamma, o.putTheta, o.vega, o.putRho)
    return out


def run(n_options: int = 10_000, n_mibian: int = 1_000, repeats: int = 20, seed: int = 0) -> dict:
    """Time both implementations; return timings, the speed ratio and the largest difference."""
    S, K, days, r, vol, call = _inputs(n_options, seed)
    T = days / 365.0

    bs_greeks(S, K, T, r, vol, call)  # warm-up
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        g = bs_greeks(S, K, T, r, vol, call)
        best = min(best, time.perf_counter() - t0)
    vec_total = best
    vec_per_option = vec_total / n_options

    m = min(n_mibian, n_options)
    t0 = time.perf_counter()
    ref = _mibian_loop(S[:m], K[:m], days[:m], r[:m], vol[:m], call[:m])
    mib_subset = time.perf_counter() - t0
    mib_per_option = mib_subset / m
    mib_total = mib_per_option * n_options  # scaled when m < n_options

    max_abs_diff = {name: float(np.max(np.abs(g[name][:m] - ref[:, j]))) for j, name in enumerate(NAMES)}
    agree = all(d <= 1e-6 for d in max_abs_diff.values())
    result = {
        "n_options": n_options,
        "n_mibian_timed": m,
        "mibian_scaled": m < n_options,
        "vectorised_seconds": vec_total,
        "vectorised_ns_per_option": vec_per_option * 1e9,
        "mibian_seconds": mib_total,
        "mibian_us_per_option": mib_per_option * 1e6,
        "speedup": mib_per_option / vec_per_option,
        "max_abs_diff": max_abs_diff,
        "agree_1e-6": agree,
    }
    scaled = (
        f" (looped over {m:,} options, {mib_subset:.3f} s, scaled to {n_options:,})" if m < n_options else ""
    )
    print(f"Black-Scholes Greeks (price, delta, gamma, theta, vega, rho) for {n_options:,} options")
    print(f"  vectorised bs_greeks : {vec_total * 1e3:9.3f} ms  ({vec_per_option * 1e9:8.1f} ns/option, best of {repeats})")
    print(f"  mibian loop          : {mib_total * 1e3:9.1f} ms  ({mib_per_option * 1e6:8.1f} us/option){scaled}")
    print(f"  speed-up             : {result['speedup']:,.0f}x")
    print(f"  max |difference| on the {m:,} common options: "
          + ", ".join(f"{k} {v:.1e}" for k, v in max_abs_diff.items())
          + f"  -> {'agree' if agree else 'DISAGREE'} to 1e-6")
    return result


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    out = run(*args)
    sys.exit(0 if out["agree_1e-6"] else 1)
