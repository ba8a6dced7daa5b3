"""Rate engine: yield changes in bp, rolling rate betas, position and portfolio sensitivity (engines/rates.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from sigmasight_pipeline.engines.rates import (
    portfolio_rate_sensitivity,
    position_rate_sensitivity,
    rolling_rate_betas,
    yield_change_bp,
)

TOL = 1e-10


@pytest.fixture(scope="module")
def market():
    rng = np.random.default_rng(5)
    n = 260
    idx = pd.bdate_range("2024-03-01", periods=n)
    tnx = pd.Series(4.2 + np.cumsum(rng.normal(0, 0.06, n)), index=idx, name="^TNX")  # percent
    dy = tnx.diff() * 100
    returns = pd.DataFrame(
        {
            # a rate-sensitive utility: return -0.0008 (-8 bp) per +1 bp of the 10-year yield
            "UTIL": -0.0008 * dy + rng.normal(0, 0.006, n),
            "BANK": 0.0005 * dy + rng.normal(0, 0.01, n),
            "NEW": rng.normal(0, 0.01, n),
        },
        index=idx,
    )
    returns.iloc[:200, returns.columns.get_loc("NEW")] = np.nan  # 60 obs at the last date
    returns.iloc[0] = np.nan
    return returns, tnx


def test_yield_change_is_absolute_basis_points_not_relative():
    levels = pd.Series([4.00, 4.10, 4.05, np.nan, 4.20], index=pd.bdate_range("2025-01-06", periods=5))
    bp = yield_change_bp(levels)
    assert np.isnan(bp.iloc[0])
    assert bp.iloc[1] == pytest.approx(10.0)  # 4.00% -> 4.10% is +10 bp, not +2.5% (relative change)
    assert bp.iloc[1] != pytest.approx(levels.pct_change().iloc[1] * 100)
    assert bp.iloc[2] == pytest.approx(-5.0)
    assert np.isnan(bp.iloc[3]) and np.isnan(bp.iloc[4])  # no spanning a missing level


def test_rate_betas_equal_statsmodels_and_recover_truth(market):
    returns, tnx = market
    dates = returns.index[[-40, -1]]
    out = rolling_rate_betas(returns, tnx, dates, window=150, min_obs=60)
    assert list(out.columns) == ["date", "symbol", "rate_beta", "t_stat", "r_squared", "n_obs", "flag"]
    assert len(out) == 2 * 3
    dy = yield_change_bp(tnx)
    for d in dates:
        p = returns.index.get_loc(d)
        rows = returns.index[p - 149 : p + 1]
        for sym in returns.columns:
            got = out[(out["date"] == d) & (out["symbol"] == sym)].iloc[0]
            y = returns.loc[rows, sym]
            ok = y.notna() & dy.loc[rows].notna()
            assert got["n_obs"] == ok.sum()
            if ok.sum() < 60:
                assert got["flag"] == "insufficient_history" and np.isnan(got["rate_beta"])
                continue
            fit = sm.OLS(y[ok], sm.add_constant(dy.loc[rows][ok])).fit()
            assert got["rate_beta"] == pytest.approx(fit.params.iloc[1], abs=TOL)
            assert got["t_stat"] == pytest.approx(fit.tvalues.iloc[1], rel=TOL, abs=TOL)
            assert got["r_squared"] == pytest.approx(fit.rsquared, abs=TOL)
    last = out[out["date"] == dates[-1]].set_index("symbol")
    assert last.loc["UTIL", "rate_beta"] == pytest.approx(-0.0008, abs=0.0002)
    assert last.loc["BANK", "rate_beta"] == pytest.approx(0.0005, abs=0.0003)
    assert last.loc["UTIL", "flag"] == "ok" and last.loc["NEW", "flag"] == "limited_history"
    assert last.loc["NEW", "n_obs"] == 60
    first = out[out["date"] == dates[0]].set_index("symbol")
    assert first.loc["NEW", "flag"] == "insufficient_history"


def test_rate_betas_no_look_ahead(market):
    returns, tnx = market
    d = returns.index[210]
    base = rolling_rate_betas(returns, tnx, [d])
    tnx2 = tnx.copy()
    tnx2.iloc[211:] += 3.0
    r2 = returns.copy()
    r2.iloc[211:] *= -5
    pd.testing.assert_frame_equal(rolling_rate_betas(r2, tnx2, [d]), base)


def test_position_rate_sensitivity_adds_option_rho_and_never_makes_up_betas():
    d = pd.Timestamp("2025-04-01")
    rate_betas = pd.DataFrame(
        {
            "date": [d, d, d],
            "symbol": ["XLU", "JPM", "TINY"],
            "rate_beta": [-0.0008, 0.0004, np.nan],
            "t_stat": [-5.0, 2.0, np.nan],
            "r_squared": [0.2, 0.05, np.nan],
            "n_obs": [150, 150, 30],
            "flag": ["ok", "ok", "insufficient_history"],
        }
    )
    positions = pd.DataFrame(
        {
            "position_id": ["a", "b", "c", "d", "e"],
            "symbol": ["XLU", "JPM", "JPM250620C00250000", "TINY", "JPM250620P00200000"],
            "underlying_symbol": ["XLU", "JPM", "JPM", "TINY", "JPM"],
            "is_option": [False, False, True, False, True],
        }
    )
    exposures = pd.DataFrame(
        {
            "date": d,
            "position_id": ["a", "b", "c", "d", "e"],
            "delta_adjusted_exposure": [200_000.0, -50_000.0, 75_000.0, 15_000.0, -20_000.0],
        }
    )
    rho = pd.DataFrame({"date": [d], "position_id": ["c"], "position_rho": [1_200.0]})  # +$1,200 per +1%
    out = position_rate_sensitivity(positions, rate_betas, exposures, rho)
    assert list(out.columns) == [
        "date", "position_id", "rate_beta", "t_stat", "r_squared", "n_obs", "flag", "dollar_per_bp",
    ]
    o = out.set_index("position_id")
    assert o.loc["a", "dollar_per_bp"] == pytest.approx(200_000 * -0.0008)  # -$160 per bp
    assert o.loc["b", "dollar_per_bp"] == pytest.approx(-50_000 * 0.0004)
    # option: underlying's rate beta x delta-adjusted exposure + rho per bp (1,200 / 100)
    assert o.loc["c", "rate_beta"] == 0.0004
    assert o.loc["c", "dollar_per_bp"] == pytest.approx(75_000 * 0.0004 + 12.0)
    # no beta: NaN, flag kept, 0 dollars (the earlier system made betas up when a key was missing)
    assert np.isnan(o.loc["d", "rate_beta"]) and o.loc["d", "flag"] == "insufficient_history"
    assert o.loc["d", "dollar_per_bp"] == 0.0
    # an option without a rho row is flagged
    assert o.loc["e", "flag"] == "missing_rho" and o.loc["e", "rate_beta"] == 0.0004
    assert o.loc["e", "dollar_per_bp"] == pytest.approx(-20_000 * 0.0004)

    market = pd.DataFrame({"date": [d], "dollar_exposure": [310_000.0]})
    port = portfolio_rate_sensitivity(out, market)
    assert list(port.columns) == [
        "date", "dollar_per_bp", "pnl_rates_up_100bp", "pnl_rates_down_100bp", "pnl_rates_up_200bp",
        "pnl_rates_down_200bp", "pnl_market_up_5", "pnl_market_down_5", "pnl_market_up_10",
        "pnl_market_down_10", "pnl_market_up_20", "pnl_market_down_20",
    ]
    r = port.iloc[0]
    total = -160.0 - 20.0 + 42.0 + 0.0 - 8.0
    assert r["dollar_per_bp"] == pytest.approx(total)
    assert r["pnl_rates_up_100bp"] == pytest.approx(100 * total)
    assert r["pnl_rates_down_100bp"] == pytest.approx(-100 * total)
    assert r["pnl_rates_up_200bp"] == pytest.approx(200 * total)
    assert r["pnl_rates_down_200bp"] == pytest.approx(-200 * total)
    assert r["pnl_rates_up_100bp"] != 0.0  # the earlier system's rate scenarios always gave 0
    assert r["pnl_market_up_5"] == pytest.approx(15_500.0)
    assert r["pnl_market_down_10"] == pytest.approx(-31_000.0)
    assert r["pnl_market_down_20"] == pytest.approx(-62_000.0)
    # a portfolio_factor_exposures frame can be passed as is: only the Market row is used
    factors = pd.DataFrame({"date": [d, d], "factor_name": ["Market", "Value"], "dollar_exposure": [310_000.0, 5.0]})
    pd.testing.assert_frame_equal(portfolio_rate_sensitivity(out, factors), port)
    # no market exposure for the date: NaN, not 0
    assert portfolio_rate_sensitivity(out, market.iloc[:0])["pnl_market_up_5"].isna().all()
