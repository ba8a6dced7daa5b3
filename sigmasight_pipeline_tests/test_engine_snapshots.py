"""Daily P&L on prices (not exposure changes), first snapshot from entry, cumulative continuity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sigmasight_pipeline.engines.options import position_greeks
from sigmasight_pipeline.engines.snapshots import (
    POSITION_PNL_COLUMNS,
    SNAPSHOT_COLUMNS,
    daily_position_pnl,
    portfolio_snapshots,
)
from sigmasight_pipeline.engines.valuation import portfolio_exposures, value_positions

DATES = pd.DatetimeIndex(["2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06"])
CALL = "AAPL250620C00200000"


def positions() -> pd.DataFrame:
    rows = [
        # id, symbol, qty, entry_price, entry_date, underlying, opt, K, mult, is_option, iv
        (1, "AAPL", 100.0, 180.0, "2025-01-02", "AAPL", None, np.nan, 1.0, False, np.nan),
        (2, "TSLA", -50.0, 240.0, "2025-01-02", "TSLA", None, np.nan, 1.0, False, np.nan),
        (3, CALL, 2.0, 5.0, "2025-01-02", "AAPL", "C", 200.0, 100.0, True, 0.3),
        (4, "MSFT", 10.0, 400.0, "2025-03-05", "MSFT", None, np.nan, 1.0, False, np.nan),  # opened on day 3
    ]
    cols = ["position_id", "symbol", "quantity", "entry_price", "entry_date", "underlying_symbol", "option_type",
            "strike", "multiplier", "is_option", "implied_vol"]
    df = pd.DataFrame(rows, columns=cols)
    df["entry_date"] = pd.to_datetime(df["entry_date"])
    df["expiration"] = pd.to_datetime([None, None, "2025-06-20", None])
    df["position_type"] = ["LONG", "SHORT", "LC", "LONG"]
    return df


def prices() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "AAPL": [190.0, 192.0, 191.0, 195.0],
            "TSLA": [250.0, 260.0, np.nan, 270.0],  # TSLA rallies (the book is short); no close on day 3
            CALL: [4.0, 4.5, 4.25, 5.0],
            "MSFT": [np.nan, np.nan, 405.0, 410.0],
        },
        index=DATES,
    )


def pipeline(previous_prices=None, previous_snapshot=None, dates=DATES):
    pos = positions()
    px = prices()
    greeks = position_greeks(pos, px, dates, 4.0, None)
    vals = value_positions(pos, px, dates, greeks)
    ex = portfolio_exposures(vals, pos)
    pnl = daily_position_pnl(pos, vals, previous_prices)
    snaps = portfolio_snapshots(vals, ex, greeks, pnl, previous_snapshot)
    return vals, ex, greeks, pnl, snaps


def test_short_that_rallies_loses_money():
    vals, ex, _, pnl, snaps = pipeline()
    p = pnl.set_index(["date", "position_id"])
    assert p.loc[(DATES[1], 2), "daily_pnl"] == -500.0  # -50 x (260 - 250)
    assert p.loc[(DATES[1], 2), "pnl_basis"] == "previous_close"
    # the earlier system's "P&L" (change in gross exposure) shows this short as a gain
    tsla = vals[vals["position_id"] == 2].set_index("date")["market_value"].abs()
    assert tsla[DATES[1]] - tsla[DATES[0]] == +500.0
    # a book that is only the short
    pos = positions()
    only = pos[pos["position_id"] == 2]
    v = value_positions(only, prices(), DATES[:2], None)
    s = portfolio_snapshots(v, portfolio_exposures(v, only), position_greeks(only, prices(), DATES[:2], 4.0, None),
                            daily_position_pnl(only, v, pd.Series({2: 250.0})), {"cumulative_pnl": 0.0, "gross_exposure": 12_500.0})
    assert s["daily_pnl"].tolist() == [0.0, -500.0]
    assert s["gross_exposure"].diff().iloc[1] == 500.0


def test_first_snapshot_is_measured_from_entry_and_flagged():
    vals, ex, greeks, pnl, snaps = pipeline()
    assert list(snaps.columns) == SNAPSHOT_COLUMNS
    assert list(pnl.columns) == POSITION_PNL_COLUMNS
    first = snaps.iloc[0]
    assert bool(first["is_first_snapshot"]) and first["pnl_basis"] == "entry_price"
    # since entry: AAPL 100 x (190 - 180) + TSLA -50 x (250 - 240) + call 2 x (4.00 - 5.00) x 100
    assert first["daily_pnl"] == 1_000.0 - 500.0 - 200.0
    assert first["cumulative_pnl"] == 300.0
    p0 = pnl[pnl["date"] == DATES[0]]
    assert (p0["pnl_basis"] == "entry_price").all() and p0["daily_pnl"].sum() == 300.0
    # No daily return: the P&L since entry is not a one-day return. (Before books.md's "Numbers that must not
    # mislead" this was 300 / 31,000, the P&L since entry on the gross entry cost booked as ONE day's return,
    # which then fed volatility, Sharpe and VaR backtests.)
    assert np.isnan(first["daily_return"])
    assert not snaps["is_first_snapshot"].iloc[1:].any()
    # the second snapshot's return is as before: its P&L (day 2: AAPL +200, TSLA -500, call +100) on the
    # previous day's equity base, the first snapshot's gross exposure 19,000 + 12,500 + 800 = 32,300
    second = snaps.iloc[1]
    assert snaps.iloc[0]["gross_exposure"] == pytest.approx(32_300.0)
    assert second["daily_return"] == pytest.approx(-200.0 / 32_300.0)
    assert np.isfinite(snaps["daily_return"].iloc[1:]).all()


def test_pnl_sums_values_and_cumulative():
    vals, ex, greeks, pnl, snaps = pipeline()
    s = snaps.set_index("date")
    p = pnl.set_index(["date", "position_id"])["daily_pnl"]
    # day 2: AAPL +200, TSLA -500, call 2 x 0.5 x 100 = +100
    assert s.loc[DATES[1], "daily_pnl"] == pytest.approx(-200.0)
    # day 3: TSLA has no close (NaN, not 0); MSFT opened today counts from entry 400 -> 405
    assert np.isnan(p[(DATES[2], 2)])
    assert p[(DATES[2], 4)] == 50.0
    assert pnl.set_index(["date", "position_id"]).loc[(DATES[2], 4), "pnl_basis"] == "entry_price"
    assert s.loc[DATES[2], "pnl_basis"] == "mixed"
    assert s.loc[DATES[2], "daily_pnl"] == pytest.approx(-100.0 - 50.0 + 50.0)
    # day 4: TSLA's two-day move (260 -> 270) is recognised once, from its last close
    assert p[(DATES[3], 2)] == -500.0
    for d in DATES:
        assert s.loc[d, "daily_pnl"] == pytest.approx(np.nansum(p[d]))
        assert s.loc[d, "total_value"] == pytest.approx(vals.loc[vals["date"] == d, "market_value"].sum())
    np.testing.assert_allclose(s["cumulative_pnl"], s["daily_pnl"].cumsum())
    # daily return on the previous day's gross exposure
    assert s.loc[DATES[1], "daily_return"] == pytest.approx(-200.0 / s.loc[DATES[0], "gross_exposure"])
    # Greeks totals carry the multiplier: the call's position delta is 2 x 100 x delta
    g = greeks[greeks["date"] == DATES[1]]
    assert s.loc[DATES[1], "portfolio_delta"] == pytest.approx(g["position_delta"].sum())
    assert s.loc[DATES[1], "portfolio_delta"] == pytest.approx(100 - 50 + 200 * g.loc[g["position_id"] == 3, "delta"].iloc[0])
    assert s.loc[DATES[2], "missing_price_count"] == 1
    # total P&L since entry over the whole period equals the final unrealised P&L of the same book
    final = vals[vals["date"] == DATES[3]]
    assert s["daily_pnl"].sum() == pytest.approx(final["unrealized_pnl"].sum())


def test_cumulative_continues_from_previous_snapshot():
    prev_prices = pd.Series({1: 189.0, 2: 252.0, 3: 4.1})
    previous = {"date": pd.Timestamp("2025-02-28"), "cumulative_pnl": 5_000.0, "gross_exposure": 40_000.0}
    vals, ex, greeks, pnl, snaps = pipeline(prev_prices, previous, DATES[:2])
    s = snaps.set_index("date")
    # day 1 from the previous closes: AAPL +100, TSLA -50 x (250 - 252) = +100, call 2 x (4.0 - 4.1) x 100 = -20
    assert s.loc[DATES[0], "daily_pnl"] == pytest.approx(180.0)
    assert s.loc[DATES[0], "pnl_basis"] == "previous_close"
    assert not s["is_first_snapshot"].any()
    assert s.loc[DATES[0], "cumulative_pnl"] == pytest.approx(5_180.0)
    assert s.loc[DATES[1], "cumulative_pnl"] == pytest.approx(5_180.0 - 200.0)
    assert s.loc[DATES[0], "daily_return"] == pytest.approx(180.0 / 40_000.0)
    # a previous snapshot without previous prices: positions count from entry, flagged per position
    _, _, _, pnl2, snaps2 = pipeline(None, previous, DATES[:1])
    assert (pnl2["pnl_basis"] == "entry_price").all()
    assert snaps2["cumulative_pnl"].iloc[0] == pytest.approx(5_300.0)
