"""Engine benchmark (issue: risk engines; issue 11: risk measures): prints figures, asserts nothing about time.

In one run:
* the factor engine (batched OLS over positions and dates) against a per-position statsmodels loop on the
  same data, 1,000 positions x 250 sessions, 150-session window;
* the vectorised Black-Scholes Greeks against a per-option mibian loop, 10,000 options;
* historical VaR / ES with full revaluation (``engines.risk_measures``): 1,000 positions (200 of them options)
  x 250 scenarios x 122 dates against a per-scenario Python loop over positions calling the same Black-Scholes
  function (``engines.options.bs_price``) one option at a time. The loop runs on a sample of dates
  (``--loop-dates``, default 2: the first and the last) and its time per date is scaled to 122 dates; the
  printout says so. Both give the same scenario P&L, VaR, ES and ES contributions (asserted, 1e-12 relative).

Targets: factor engine >= 10x the loop, Greeks >= 1,000x mibian, historical VaR >= 100x the loop, same results.
Usage: python benchmarks/engines.py [--full-mibian] [--loop-dates N] [--only-var]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sigmasight_pipeline.engines import risk_measures as rm  # noqa: E402
from sigmasight_pipeline.engines.options import bs_price  # noqa: E402


# --- historical VaR with full revaluation --------------------------------------------------------------------------

def _var_inputs(n_positions: int, n_options: int, n_dates: int, seed: int = 0) -> dict:
    """A synthetic book held over ``n_dates`` sessions: stocks on 400 symbols (a fifth short), options on 100 of
    them (calls and puts, long and short, 0.8-1.2 moneyness, 20-400 days, 15-60% vol, q 0-3%), factor-driven
    returns with gaps (10 symbols listed late, one with no beta), the market proxy SPY, ^IRX 4-5%."""
    rng = np.random.default_rng(seed)
    n_sym, window = 400, rm.RISK_WINDOW
    sessions = pd.bdate_range("2024-01-02", periods=n_dates + window)
    dates = sessions[-n_dates:]
    symbols = [f"S{i:03d}" for i in range(n_sym)]
    beta = rng.uniform(0.4, 1.8, n_sym)
    market = rng.standard_t(5, len(sessions)) * 0.009
    rets = market[:, None] * beta[None, :] + rng.normal(0, 0.015, (len(sessions), n_sym))
    rets[: rng.integers(50, 300), :10] = np.nan  # ten symbols listed late: filled with beta x market
    returns = pd.DataFrame(rets, index=sessions, columns=symbols)
    returns["SPY"] = market
    n_stock = n_positions - n_options
    stock_sym = rng.integers(0, n_sym, n_stock)
    opt_sym = rng.integers(0, 100, n_options)
    spot = rng.uniform(20, 500, n_sym)
    qty = np.where(rng.random(n_stock) < 0.2, -1, 1) * rng.integers(10, 2_000, n_stock)
    opt_qty = np.where(rng.random(n_options) < 0.4, -1, 1) * rng.integers(1, 50, n_options)
    strike = spot[opt_sym] * rng.uniform(0.8, 1.2, n_options)
    positions = pd.DataFrame({
        "position_id": np.arange(1, n_positions + 1),
        "symbol": [symbols[s] for s in stock_sym] + [f"{symbols[s]} OPT{i}" for i, s in enumerate(opt_sym)],
        "underlying_symbol": [symbols[s] for s in stock_sym] + [symbols[s] for s in opt_sym],
        "is_option": np.r_[np.zeros(n_stock, bool), np.ones(n_options, bool)],
        "quantity": np.r_[qty, opt_qty].astype(float),
        "multiplier": np.r_[np.ones(n_stock), np.full(n_options, 100.0)],
        "strike": np.r_[np.full(n_stock, np.nan), strike],
        "option_type": [None] * n_stock + list(np.where(rng.random(n_options) < 0.5, "C", "P")),
    })
    under = np.r_[stock_sym, opt_sym]
    drift = np.exp(np.cumsum(rng.normal(0, 0.01, (n_dates, n_sym)), axis=0)) * spot  # (T, symbols) spot path
    S = drift[:, under]  # (T, n)
    days = np.r_[np.full(n_stock, np.nan), rng.integers(20, 400, n_options).astype(float)]
    days_t = days[None, :] + np.arange(n_dates)[::-1, None]  # fixed expiries: one day nearer each session
    vol = np.r_[np.full(n_stock, np.nan), rng.uniform(0.15, 0.6, n_options)]
    q = np.r_[np.full(n_stock, np.nan), rng.uniform(0.0, 0.03, n_options)]
    n = n_positions
    long = lambda a: np.broadcast_to(a, (n_dates, n)).ravel()  # noqa: E731
    frame_dates = np.repeat(dates, n)
    ids = np.tile(positions.position_id.to_numpy(), n_dates)
    mv = S * positions.quantity.to_numpy()[None, :]  # options' market value is not read (model value instead)
    valuations = pd.DataFrame({"date": frame_dates, "position_id": ids, "market_value": mv.ravel(),
                               "delta_adjusted_exposure": mv.ravel()})
    greeks = pd.DataFrame({"date": frame_dates, "position_id": ids, "underlying_price": S.ravel(),
                           "implied_vol": long(vol), "days_to_expiry": long(days_t), "dividend_yield": long(q)})
    mbeta = beta[under].copy()
    mbeta[np.flatnonzero(under == 3)] = np.nan  # symbol S003 (listed late) has no beta: left out
    betas = pd.DataFrame({"date": frame_dates, "position_id": ids, "factor_name": "Market", "beta": long(mbeta),
                          "residual_std": 0.015})
    short_rate = pd.Series(rng.uniform(4.0, 5.0, len(sessions)), index=sessions)
    return dict(positions=positions, valuations=valuations, greeks=greeks, position_betas=betas,
                short_rate=short_rate, dates=dates, returns=returns)


def _loop_one_date(grids: rm.BookGrids, returns: pd.DataFrame, t: int, window: int):
    """The reference: for one date, a Python loop over scenarios and, inside, over positions, each option
    repriced by a scalar ``bs_price`` call; then VaR / ES and ES contributions from the sorted totals."""
    sessions = returns.index
    end = sessions.get_loc(grids.dates[t])
    rows = range(end - window + 1, end + 1)
    sym_col = {s: returns.columns.get_loc(s) for s in returns.columns}
    r = returns.to_numpy()
    m = r[:, sym_col["SPY"]]
    n = len(grids.position_ids)
    beta_m = grids.betas[t, :, grids.factors.index("Market")]
    col = [sym_col[s] for s in grids.symbols]
    # a symbol that needs a fill and has no beta is left out, as in the engine
    left = {grids.symbols[i] for i in range(n) if np.isnan(beta_m[i])
            and any(np.isnan(r[row, col[i]]) for row in rows if not np.isnan(m[row]))}
    rate = grids.rate[t]
    v0 = {}
    for i in range(n):
        if grids.is_option[i]:
            v0[i] = float(bs_price(grids.underlying_price[t, i], grids.strike[i], grids.days[t, i] / 365.0, rate,
                                   grids.vol[t, i], grids.is_call[i], grids.dividend_yield[t, i]))
    pnl = np.zeros((window, n))
    total = np.full(window, np.nan)
    for s, row in enumerate(rows):
        if np.isnan(m[row]):
            continue
        acc = 0.0
        for i in range(n):
            if not grids.held[t, i] or grids.symbols[i] in left:
                continue
            ret = r[row, col[i]]
            if np.isnan(ret):
                ret = beta_m[i] * m[row]
            if grids.is_option[i]:
                tau1 = max(grids.days[t, i] - 1.0, 0.0) / 365.0
                v1 = float(bs_price(grids.underlying_price[t, i] * (1.0 + ret), grids.strike[i], tau1, rate,
                                    grids.vol[t, i], grids.is_call[i], grids.dividend_yield[t, i]))
                p = (v1 - v0[i]) * grids.scale[i]
            else:
                p = grids.market_value[t, i] * ret
            pnl[s, i] = p
            acc += p
        total[s] = acc
    out = {}
    ok = np.isfinite(total)
    srt = sorted((total[s], s) for s in range(window) if ok[s])
    for level in rm.VAR_LEVELS:
        k = round((1 - level) * len(srt), 9)
        out[("var", level)] = -srt[int(np.floor(k))][0]
    for level in rm.ES_LEVELS:
        k = round((1 - level) * len(srt), 9)
        j = int(np.floor(k))
        tail = [s for _, s in srt[:j]]
        es = -(sum(total[s] for s in tail) + (k - j) * srt[j][0]) / k
        contrib = -(pnl[tail].sum(axis=0) + (k - j) * pnl[srt[j][1]]) / k
        out[("es", level)] = es
        out[("contrib", level)] = contrib
    return out, total


def run_var(n_positions: int = 1_000, n_options: int = 200, n_dates: int = 122, loop_dates: int = 2) -> dict:
    """Time the vectorised historical VaR against the loop; check they agree; return the figures."""
    inp = _var_inputs(n_positions, n_options, n_dates)
    t0 = time.perf_counter()
    grids = rm.book_grids(inp["positions"], inp["valuations"], inp["greeks"], inp["position_betas"],
                          inp["short_rate"], inp["dates"], ["Market"])
    t1 = time.perf_counter()
    hist = rm.historical_risk(grids, inp["returns"], inp["returns"]["SPY"])
    t2 = time.perf_counter()
    vec_grids, vec = t1 - t0, t2 - t1
    sample = np.unique(np.linspace(0, n_dates - 1, loop_dates).round().astype(int))
    t3 = time.perf_counter()
    loop = {t: _loop_one_date(grids, inp["returns"], t, rm.RISK_WINDOW) for t in sample}
    loop_time = time.perf_counter() - t3
    loop_total = loop_time / len(sample) * n_dates
    worst = 0.0
    for t, (ref, total) in loop.items():
        np.testing.assert_allclose(hist.total[t], total, rtol=1e-12, atol=1e-6)
        for i, level in enumerate(rm.VAR_LEVELS):
            np.testing.assert_allclose(hist.var[t, i], ref[("var", level)], rtol=1e-12)
        for i, level in enumerate(rm.ES_LEVELS):
            np.testing.assert_allclose(hist.es[t, i], ref[("es", level)], rtol=1e-12)
            got = np.where(hist.included[t], hist.contributions[t, :, i], 0.0)
            np.testing.assert_allclose(got, ref[("contrib", level)], rtol=1e-9, atol=1e-6)
            worst = max(worst, abs(hist.es[t, i] - ref[("es", level)]) / abs(ref[("es", level)]))
    cells = n_dates * rm.RISK_WINDOW * n_positions
    print(f"book: {n_positions:,} positions ({n_options} options) x {rm.RISK_WINDOW} scenarios x {n_dates} dates "
          f"= {cells:,} position-scenario P&Ls ({n_dates * rm.RISK_WINDOW * n_options:,} Black-Scholes revaluations)")
    print(f"vectorised: {vec:.2f} s (+ {vec_grids:.2f} s building the grids from the long frames); "
          f"filled returns on the last date {hist.filled[-1]}, left out {hist.left_out[-1]}")
    print(f"loop      : {loop_time:.2f} s for {len(sample)} date(s) {list(inp['dates'][sample].strftime('%Y-%m-%d'))}, "
          f"{loop_time / len(sample):.2f} s a date -> {loop_total:.1f} s for {n_dates} dates (extrapolated)")
    ratio = loop_total / vec
    ratio_all = loop_total / (vec + vec_grids)
    print(f"speed-up  : {ratio:.0f}x (engine), {ratio_all:.0f}x including the grids; target >= 100x")
    print(f"same results: scenario P&L, VaR 95/99, ES 95/97.5/99 and ES contributions on the sampled dates "
          f"(largest relative ES difference {worst:.1e})")
    var99 = hist.var[-1, rm.VAR_LEVELS.index(0.99)]
    print(f"last date: VaR 99% {var99:,.0f}, ES 97.5% {hist.es[-1, 1]:,.0f}")
    return {"vectorised_s": vec, "grids_s": vec_grids, "loop_s_extrapolated": loop_total, "speedup": ratio,
            "speedup_with_grids": ratio_all}


def main(argv: list[str]) -> int:
    loop_dates = int(argv[argv.index("--loop-dates") + 1]) if "--loop-dates" in argv else 2
    results = {}
    if "--only-var" not in argv:
        import bench_factors
        import bench_greeks

        print("== factor engine vs statsmodels loop (1,000 positions x 250 sessions) ==")
        results["factors"] = bench_factors.run(n_positions=1000, n_sessions=250)
        print("\n== Greeks engine vs mibian loop (10,000 options) ==")
        results["greeks"] = bench_greeks.run(n_options=10_000, n_mibian=10_000 if "--full-mibian" in argv else 1_000)
    print("\n== historical VaR / ES, full revaluation, vs a per-scenario loop over positions ==")
    results["historical VaR"] = run_var(loop_dates=loop_dates)
    print("\n== summary ==")
    for name, result in results.items():
        ratio = result.get("speedup") or result.get("ratio") or result.get("speedup_single_date")
        print(f"{name:14s} speed-up {ratio}" if ratio is not None else f"{name:14s} {result}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
