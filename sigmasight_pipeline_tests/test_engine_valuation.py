"""Valuation and exposures on a hand-computed book."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sigmasight_pipeline.engines.options import bs_greeks, position_greeks
from sigmasight_pipeline.engines.valuation import (
    EXPOSURE_COLUMNS,
    VALUATION_COLUMNS,
    group_exposures,
    portfolio_exposures,
    value_positions,
)

D1, D2 = pd.Timestamp("2025-03-03"), pd.Timestamp("2025-03-04")
CALL, PUT = "AAPL250620C00200000", "AAPL250620P00180000"


def book() -> pd.DataFrame:
    rows = [
        # id, symbol, type, qty, entry, underlying, opt, K, mult, is_option, tags
        (1, "AAPL", "LONG", 100.0, 180.0, "AAPL", None, np.nan, 1.0, False, "Core,Tech"),
        (2, "TSLA", "SHORT", -50.0, 250.0, "TSLA", None, np.nan, 1.0, False, "Hedges"),
        (3, CALL, "LC", 2.0, 5.0, "AAPL", "C", 200.0, 100.0, True, "Tech"),
        (4, PUT, "SP", -3.0, 4.0, "AAPL", "P", 180.0, 100.0, True, None),
    ]
    cols = ["position_id", "symbol", "position_type", "quantity", "entry_price", "underlying_symbol", "option_type",
            "strike", "multiplier", "is_option", "tags"]
    df = pd.DataFrame(rows, columns=cols)
    df["entry_date"] = pd.Timestamp("2025-01-02")
    df["expiration"] = pd.to_datetime([None, None, "2025-06-20", "2025-06-20"])
    df["implied_vol"] = np.nan
    return df


def prices() -> pd.DataFrame:
    # the call trades (market price); the put has no quote (marked to model); TSLA missing on D2
    return pd.DataFrame(
        {"AAPL": [190.0, 191.0], "TSLA": [260.0, np.nan], CALL: [4.0, 4.2]}, index=pd.DatetimeIndex([D1, D2])
    )


def model_prices() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": [D1, D1, D2, D2],
            "position_id": [3, 4, 3, 4],
            "model_price": [4.1, 3.5, 4.3, 3.4],
            "delta": [0.40, -0.30, 0.41, -0.29],
            "underlying_price": [190.0, 190.0, 191.0, 191.0],
        }
    )


def test_value_positions_by_hand():
    v = value_positions(book(), prices(), [D1, D2], model_prices())
    assert list(v.columns) == VALUATION_COLUMNS
    d1 = v[v["date"] == D1].set_index("position_id")
    assert d1["market_value"].to_dict() == {1: 19_000.0, 2: -13_000.0, 3: 800.0, 4: -1_050.0}
    assert d1["price_source"].to_dict() == {1: "market", 2: "market", 3: "market", 4: "model"}
    assert d1.loc[4, "price"] == 3.5
    # defect: option cost basis carries the x100 multiplier
    assert d1["cost_basis"].to_dict() == {1: 18_000.0, 2: -12_500.0, 3: 1_000.0, 4: -1_200.0}
    assert d1["unrealized_pnl"].to_dict() == {1: 1_000.0, 2: -500.0, 3: -200.0, 4: 150.0}
    assert d1["notional"].to_dict() == {1: 19_000.0, 2: 13_000.0, 3: 38_000.0, 4: 57_000.0}
    assert d1["delta_adjusted_exposure"].to_dict() == pytest.approx({1: 19_000.0, 2: -13_000.0, 3: 15_200.0, 4: 17_100.0})
    assert d1["underlying_price"].to_dict() == {1: 190.0, 2: 260.0, 3: 190.0, 4: 190.0}
    assert d1["is_long"].to_dict() == {1: True, 2: False, 3: True, 4: False}


def test_portfolio_exposures_by_hand():
    pos = book()
    v = value_positions(pos, prices(), [D1, D2], model_prices())
    ex = portfolio_exposures(v, pos)
    assert list(ex.columns) == EXPOSURE_COLUMNS
    e = ex.set_index("date").loc[D1]
    assert e["long_exposure"] == 19_800.0
    assert e["short_exposure"] == -14_050.0
    assert e["gross_exposure"] == 33_850.0 == e["long_exposure"] + abs(e["short_exposure"])
    assert e["net_exposure"] == 5_750.0 == e["long_exposure"] + e["short_exposure"]
    assert e["notional"] == 127_000.0
    assert e["delta_adjusted_exposure"] == pytest.approx(38_300.0)
    assert e["delta_adjusted_long"] == pytest.approx(51_300.0)
    assert e["delta_adjusted_short"] == pytest.approx(-13_000.0)
    assert e["options_exposure"] == -250.0 and e["stock_exposure"] == 6_000.0
    assert e["options_exposure"] + e["stock_exposure"] == e["net_exposure"]
    assert (e["long_count"], e["short_count"], e["option_count"], e["stock_count"], e["position_count"]) == (2, 2, 2, 2, 4)
    assert e["missing_price_count"] == 0
    assert e["total_cost_basis"] == 5_300.0
    assert e["total_unrealized_pnl"] == 450.0 == e["net_exposure"] - e["total_cost_basis"]


def test_missing_price_is_not_zero():
    pos = book()
    v = value_positions(pos, prices(), [D1, D2], model_prices())
    tsla = v[(v["date"] == D2) & (v["position_id"] == 2)].iloc[0]
    assert tsla["price_source"] == "missing"
    assert np.isnan(tsla["market_value"]) and np.isnan(tsla["unrealized_pnl"])
    e = portfolio_exposures(v, pos).set_index("date").loc[D2]
    assert e["missing_price_count"] == 1
    assert e["position_count"] == 4 and e["short_count"] == 2  # still held, still counted
    # short side holds only the put: -3 x 3.40 x 100; TSLA is left out, not valued at 0 silently
    assert e["short_exposure"] == pytest.approx(-1_020.0)
    assert e["long_exposure"] == pytest.approx(100 * 191.0 + 2 * 4.2 * 100)


def test_option_without_any_price_is_missing_and_before_entry_excluded():
    pos = book()
    pos.loc[pos["position_id"] == 1, "entry_date"] = D2
    mp = model_prices()
    mp.loc[(mp["date"] == D1) & (mp["position_id"] == 4), "model_price"] = np.nan
    v = value_positions(pos, prices(), [D1, D2], mp)
    assert set(v.loc[v["date"] == D1, "position_id"]) == {2, 3, 4}
    put = v[(v["date"] == D1) & (v["position_id"] == 4)].iloc[0]
    assert put["price_source"] == "missing" and np.isnan(put["market_value"])


def test_model_prices_from_greeks_engine():
    pos = book()
    px = prices().drop(columns=[CALL])  # neither option trades now
    pos["implied_vol"] = [np.nan, np.nan, 0.30, 0.28]
    greeks = position_greeks(pos, px, [D1], 4.5, None)
    v = value_positions(pos, px, [D1], greeks).set_index("position_id")
    assert v.loc[3, "price_source"] == "model" and v.loc[4, "price_source"] == "model"
    T = (pd.Timestamp("2025-06-20") - D1).days / 365
    g = bs_greeks(190.0, 200.0, T, 0.045, 0.30, True)
    assert v.loc[3, "market_value"] == pytest.approx(2 * 100 * float(g["price"]), abs=1e-9)
    assert v.loc[3, "delta_adjusted_exposure"] == pytest.approx(float(g["delta"]) * 2 * 100 * 190.0, abs=1e-9)


def test_group_exposures_by_tag_and_underlying():
    pos = book()
    v = value_positions(pos, prices(), [D1], model_prices())
    by_und = group_exposures(v, pos, by="underlying").set_index("group")
    assert by_und.loc["AAPL", "net_exposure"] == 19_000.0 + 800.0 - 1_050.0
    assert by_und.loc["AAPL", "position_count"] == 3
    assert by_und.loc["TSLA", "short_exposure"] == -13_000.0
    assert by_und["gross_exposure"].sum() == 33_850.0  # underlyings partition the book
    by_tag = group_exposures(v, pos, by="tag").set_index("group")
    assert set(by_tag.index) == {"Core", "Tech", "Hedges", "(untagged)"}
    assert by_tag.loc["Tech", "long_exposure"] == 19_800.0  # AAPL stock (two tags) + the call
    assert by_tag.loc["Core", "long_exposure"] == 19_000.0
    assert by_tag.loc["(untagged)", "net_exposure"] == -1_050.0
    # a position with two tags counts in both groups: tag groups add to more than the book
    assert by_tag["gross_exposure"].sum() == 33_850.0 + 19_000.0
    with pytest.raises(ValueError):
        group_exposures(v, pos, by="sector")
