"""Options Greeks: bounds every Black-Scholes-Merton Greek obeys, and put-call parity on matched pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Parity must hold to this fraction of the underlying price (one model prices both legs).
PARITY_TOLERANCE = 1e-6
PAIR_KEYS = ["portfolio_id", "date", "underlying_symbol", "strike", "expiration"]


def greek_bound_problems(g: pd.DataFrame, tol: float = 1e-9) -> list[str]:
    """Per-share |delta| <= 1; gamma and vega >= 0; a long option's position gamma and vega >= 0.

    ``g`` is Greeks merged with their positions (``symbol``, ``is_option``, ``quantity``).
    """
    out = []
    bad_delta = g[g.delta.abs() > 1 + tol]
    out += [f"{r.portfolio_id} {r.symbol} {r.date:%Y-%m-%d}: |delta| {r.delta:.6f} > 1" for r in bad_delta.itertuples()]
    bad_convexity = g[(g.gamma < -tol) | (g.vega < -tol)]
    out += [f"{r.portfolio_id} {r.symbol} {r.date:%Y-%m-%d}: negative gamma/vega" for r in bad_convexity.itertuples()]
    long_opt = g[g.is_option & (g.quantity > 0)]
    bad_long = long_opt[(long_opt.position_gamma < -tol) | (long_opt.position_vega < -tol)]
    out += [f"{r.portfolio_id} {r.symbol} {r.date:%Y-%m-%d}: long option with negative position gamma/vega" for r in bad_long.itertuples()]
    return out


def put_call_parity_problems(g: pd.DataFrame) -> list[str]:
    """Matched call/put pairs (same portfolio, date, underlying, strike, expiry; model-priced, flag "ok") whose
    prices break C - P = S e^{-qT} - K e^{-rT} (T = days_to_expiry / 365, r = ``short_rate`` in percent / 100,
    q = the call row's ``dividend_yield``, 0 when absent or NaN) by more than ``PARITY_TOLERANCE`` x S."""
    opts = g[g.is_option & g.model_price.notna() & (g.flag == "ok")]
    calls = opts[opts.option_type == "C"].drop_duplicates(PAIR_KEYS)
    puts = opts[opts.option_type == "P"].drop_duplicates(PAIR_KEYS)
    pairs = calls.merge(puts[PAIR_KEYS + ["model_price"]], on=PAIR_KEYS, suffixes=("_c", "_p"))
    if pairs.empty:
        return []
    T = pairs.days_to_expiry.to_numpy(float) / 365.0
    r = pairs.short_rate.to_numpy(float) / 100.0
    lhs = pairs.model_price_c - pairs.model_price_p
    q = pairs["dividend_yield"].fillna(0.0).to_numpy(float) if "dividend_yield" in pairs else 0.0
    rhs = pairs.underlying_price * np.exp(-q * T) - pairs.strike * np.exp(-r * T)
    broken = pairs[(lhs - rhs).abs() > PARITY_TOLERANCE * pairs.underlying_price]
    return [f"{r.portfolio_id} {r.underlying_symbol} K={r.strike} {r.date:%Y-%m-%d}: put-call parity broken" for r in broken.itertuples()]


def greeks_problems(greeks: pd.DataFrame, positions: pd.DataFrame, tol: float = 1e-9) -> list[str]:
    """Violations of the Greeks' sanity rules (empty when sane): the bounds, then put-call parity.

    ``greeks``: position Greeks with ``portfolio_id`` and ``short_rate``; ``positions``: the positions of the
    same portfolios (``portfolio_id``, ``position_id``, ``symbol``, ``is_option``, ``quantity``, option fields).
    """
    if greeks.empty:
        return []
    # the Greeks' own columns keep their names (positions also carry implied_vol and dividend_yield: inputs)
    g = greeks.merge(positions, on=["portfolio_id", "position_id"], how="left", suffixes=("", "_position"))
    return greek_bound_problems(g, tol) + put_call_parity_problems(g)
