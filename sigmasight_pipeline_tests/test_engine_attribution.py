"""The attribution engine (``engines.attribution``): a small book by hand, the lines adding up to the snapshot P&L
to the cent on every date, the market proxy attributed to Market alone, what goes to the residual and is
flagged, a first snapshot left out, and no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sigmasight_pipeline.engines.attribution import (
    ATTRIBUTION_COLUMNS, FLAG_CARRIES_UNCOMPUTED, FLAG_NO_EXPOSURES, FLAG_NO_FACTOR_RETURN, attribute_pnl,
)
from sigmasight_pipeline.engines.factors import factor_returns

D = pd.Timestamp
SESSIONS = pd.DatetimeIndex(["2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06"])
PROXIES = {"Market": "SPY", "Value": "VTV"}


def hand_inputs() -> dict:
    """Two sessions attributed (03-04, 03-05). Positions on each previous session: 1 = AAPL (exposure 10,000;
    betas Market 1.2, Value -0.5), 2 = JPM short (exposure -4,000; Market 0.9, Value 0.8), 3 = an option on
    XYZ without betas (delta exposure 2,000)."""
    rets = pd.DataFrame({
        "SPY": [0.0, 0.01, -0.02, 0.005], "VTV": [0.0, 0.015, -0.01, 0.0],
        "AAPL": [0.0, 0.02, -0.03, 0.01], "JPM": [0.0, 0.005, -0.01, 0.0], "XYZ": [0.0, 0.04, 0.0, 0.0],
    }, index=SESSIONS)
    prev = SESSIONS[:2]
    exposures = pd.DataFrame([(d, p, e) for d in prev for p, e in ((1, 10_000.0), (2, -4_000.0), (3, 2_000.0))],
                             columns=["date", "position_id", "delta_adjusted_exposure"])
    betas = pd.DataFrame([(d, p, f, b) for d in prev for p, f, b in (
        (1, "Market", 1.2), (1, "Value", -0.5), (2, "Market", 0.9), (2, "Value", 0.8),
        (3, "Market", np.nan), (3, "Value", np.nan))], columns=["date", "position_id", "factor_name", "beta"])
    # X_f = sum of exposure x beta over positions with betas: Market 12,000 - 3,600; Value -5,000 - 3,200
    factor_x = pd.DataFrame([(d, f, x) for d in prev for f, x in (("Market", 8_400.0), ("Value", -8_200.0))],
                            columns=["date", "factor_name", "dollar_exposure"])
    snaps = pd.DataFrame({"date": SESSIONS[:3], "daily_pnl": [5_000.0, 263.45, -411.10],
                          "is_first_snapshot": [True, False, False]})
    return dict(
        snapshots=snaps, factor_exposures=factor_x, position_exposures=exposures, position_betas=betas,
        position_symbols=pd.DataFrame({"position_id": [1, 2, 3], "market_symbol": ["AAPL", "JPM", "XYZ"]}),
        factor_returns=factor_returns(rets[["SPY", "VTV"]], PROXIES), symbol_returns=rets, sessions=SESSIONS,
    )


def lines(out: pd.DataFrame, day) -> pd.Series:
    return out[out.date == D(day)].set_index("line").pnl


def test_a_small_book_by_hand():
    out = attribute_pnl(**hand_inputs())
    assert list(out.columns) == ATTRIBUTION_COLUMNS
    assert sorted(set(out.date)) == [D("2025-03-04"), D("2025-03-05")]  # the first snapshot is not attributed
    day = lines(out, "2025-03-04")
    assert list(day.index) == ["Market", "Value", "specific", "residual"]
    # F on 03-04: Market 0.01, Value 0.015 - 0.01 = 0.005
    assert day["Market"] == pytest.approx(84.00, abs=1e-9) and day["Value"] == pytest.approx(-41.00, abs=1e-9)
    # specific: AAPL 10,000 x (0.02 - (1.2 x 0.01 - 0.5 x 0.005)) = 105.00; JPM -4,000 x (0.005 - (0.009 + 0.004)) = 32.00
    assert day["specific"] == pytest.approx(137.00, abs=1e-9)
    # residual: 263.45 - (84 - 41 + 137) = 83.45 (the option without betas: its 2,000 x 4% = 80 among it)
    assert day["residual"] == pytest.approx(83.45, abs=1e-9)
    row = out[(out.date == D("2025-03-04")) & (out.line == "Value")].iloc[0]
    assert (row.exposure, row.factor_return, row.previous_date, row.line_type, row.line_order) == (
        -8_200.0, pytest.approx(0.005), D("2025-03-03"), "factor", 2)
    specific = out[(out.date == D("2025-03-04")) & (out.line == "specific")].iloc[0]
    assert specific.flag == "left out: 1 without betas" and np.isnan(specific.exposure)
    day2 = lines(out, "2025-03-05")  # F: Market -0.02, Value 0.01
    assert day2["Market"] == pytest.approx(-168.00) and day2["Value"] == pytest.approx(-82.00)
    assert day2["specific"] == pytest.approx(10_000 * (-0.03 + 0.024 + 0.005) + -4_000 * (-0.01 + 0.018 - 0.008))
    assert day2.sum() == pytest.approx(-411.10, abs=1e-9)


def test_lines_add_up_to_the_snapshot_pnl_to_the_cent_on_every_date():
    """Random books and P&L over many dates: factor and specific lines are whole cents and the residual is the
    rest, so the sum equals the stored P&L exactly."""
    rng = np.random.default_rng(11)
    sessions = pd.bdate_range("2025-01-02", periods=80)
    factors = {"Market": "SPY", "Value": "VTV", "Growth": "VUG"}
    symbols = [f"S{i}" for i in range(12)]
    rets = pd.DataFrame(rng.normal(0, 0.015, (len(sessions), 15)), index=sessions, columns=["SPY", "VTV", "VUG", *symbols])
    prev = sessions[:-1]
    e = rng.normal(0, 50_000, (len(prev), len(symbols))).round(2)
    b = rng.normal(0.5, 0.5, (len(prev), len(symbols), 3))
    exposures = pd.DataFrame({"date": np.repeat(prev, len(symbols)), "position_id": np.tile(np.arange(1, 13), len(prev)),
                              "delta_adjusted_exposure": e.reshape(-1)})
    betas = pd.DataFrame({"date": np.repeat(prev, len(symbols) * 3),
                          "position_id": np.tile(np.repeat(np.arange(1, 13), 3), len(prev)),
                          "factor_name": np.tile(list(factors), len(prev) * len(symbols)), "beta": b.reshape(-1)})
    x = np.einsum("dp,dpk->dk", e, b).round(2)
    factor_x = pd.DataFrame({"date": np.repeat(prev, 3), "factor_name": np.tile(list(factors), len(prev)),
                             "dollar_exposure": x.reshape(-1)})
    pnl = (rng.normal(0, 20_000, len(sessions))).round(2)
    snaps = pd.DataFrame({"date": sessions, "daily_pnl": pnl, "is_first_snapshot": np.arange(len(sessions)) == 0})
    out = attribute_pnl(snaps, factor_x, exposures, betas,
                        pd.DataFrame({"position_id": np.arange(1, 13), "market_symbol": symbols}),
                        factor_returns(rets[["SPY", "VTV", "VUG"]], factors), rets, sessions)
    sums = out.groupby("date").pnl.sum()
    assert len(sums) == len(sessions) - 1
    assert np.abs(sums.to_numpy() - pnl[1:]).max() < 1e-6  # to the cent: float sums of whole cents
    cents = out.pnl.to_numpy() * 100
    assert np.abs(cents - np.round(cents)).max() < 1e-6
    assert out.flag.isna().all()


def test_holding_the_market_proxy_is_all_market():
    """SPY: Market beta 1, style betas 0, exposure = its market value; its P&L q (p_t - p_(t-1)) is X F exactly."""
    prices = pd.Series([500.0, 505.5, 498.25, 501.0], index=SESSIONS)
    r = prices.pct_change().fillna(0.0)
    rets = pd.DataFrame({"SPY": r, "VTV": r * 0.8})
    prev = SESSIONS[:-1]
    mv = 120 * prices[prev].to_numpy()
    exposures = pd.DataFrame({"date": prev, "position_id": 1, "delta_adjusted_exposure": mv})
    betas = pd.DataFrame({"date": np.repeat(prev, 2), "position_id": 1, "factor_name": ["Market", "Value"] * 3,
                          "beta": [1.0, 0.0] * 3})
    factor_x = pd.DataFrame({"date": np.repeat(prev, 2), "factor_name": ["Market", "Value"] * 3,
                             "dollar_exposure": np.column_stack([mv, np.zeros(3)]).reshape(-1)})
    pnl = 120 * prices.diff().fillna(0.0)
    snaps = pd.DataFrame({"date": SESSIONS, "daily_pnl": pnl.round(2), "is_first_snapshot": [True, False, False, False]})
    out = attribute_pnl(snaps, factor_x, exposures, betas, pd.DataFrame({"position_id": [1], "market_symbol": ["SPY"]}),
                        factor_returns(rets, PROXIES), rets, SESSIONS)
    wide = out.pivot(index="date", columns="line", values="pnl")
    np.testing.assert_allclose(wide["Market"], pnl[1:].round(2), atol=1e-9)
    assert (wide[["Value", "specific", "residual"]].abs() < 1e-9).all().all()


def test_missing_inputs_go_to_the_residual_and_are_flagged():
    inputs = hand_inputs()
    inputs["factor_exposures"] = inputs["factor_exposures"][inputs["factor_exposures"].date != D("2025-03-04")]
    rets = inputs["symbol_returns"].copy()
    rets.loc[D("2025-03-04"), "VTV"] = np.nan
    inputs["symbol_returns"] = rets
    inputs["factor_returns"] = factor_returns(rets[["SPY", "VTV"]], PROXIES)
    out = attribute_pnl(**inputs)
    first = out[out.date == D("2025-03-04")].set_index("line")  # Value's proxy has no return on 03-04
    assert np.isnan(first.loc["Value", "pnl"]) and first.loc["Value", "flag"] == FLAG_NO_FACTOR_RETURN
    assert first.loc["Market", "pnl"] == pytest.approx(84.0) and pd.isna(first.loc["Market", "flag"])
    assert np.isnan(first.loc["specific", "pnl"]) and first.loc["specific", "flag"] == FLAG_NO_FACTOR_RETURN
    assert first.loc["residual", "pnl"] == pytest.approx(263.45 - 84.0)
    assert first.loc["residual", "flag"] == FLAG_CARRIES_UNCOMPUTED
    second = out[out.date == D("2025-03-05")].set_index("line")  # no stored factor exposures on 03-04
    assert second.loc[["Market", "Value", "specific"], "pnl"].isna().all()
    assert (second.loc[["Market", "Value", "specific"], "flag"] == FLAG_NO_EXPOSURES).all()
    assert second.loc["residual", "pnl"] == pytest.approx(-411.10)


def test_a_position_without_a_return_is_left_out_of_specific():
    inputs = hand_inputs()
    rets = inputs["symbol_returns"].copy()
    rets.loc[D("2025-03-04"), "JPM"] = np.nan
    inputs["symbol_returns"] = rets
    out = attribute_pnl(**inputs)
    specific = out[(out.date == D("2025-03-04")) & (out.line == "specific")].iloc[0]
    assert specific.pnl == pytest.approx(105.00) and specific.flag == "left out: 1 without betas, 1 without a return"
    assert lines(out, "2025-03-04").sum() == pytest.approx(263.45, abs=1e-9)


def test_no_look_ahead_only_t_and_t_minus_1_enter_the_lines_of_t():
    """The lines of 03-04 use exposures and betas of 03-03 and returns of 03-04: changing exposures and betas of
    03-04 (they serve 03-05) or returns of 03-05 changes nothing of 03-04."""
    base = attribute_pnl(**hand_inputs())
    changed = hand_inputs()
    for key in ("factor_exposures", "position_exposures", "position_betas"):
        frame = changed[key].copy()
        col = {"factor_exposures": "dollar_exposure", "position_exposures": "delta_adjusted_exposure",
               "position_betas": "beta"}[key]
        frame.loc[frame.date == D("2025-03-04"), col] *= 7
        changed[key] = frame
    rets = changed["symbol_returns"].copy()
    rets.loc[D("2025-03-05"):] += 0.05
    changed["symbol_returns"] = rets
    changed["factor_returns"] = factor_returns(rets[["SPY", "VTV"]], PROXIES)
    after = attribute_pnl(**changed)
    day = D("2025-03-04")
    pd.testing.assert_frame_equal(base[base.date == day].reset_index(drop=True), after[after.date == day].reset_index(drop=True))
    assert not base[base.date == D("2025-03-05")].pnl.equals(after[after.date == D("2025-03-05")].pnl)


def test_inputs_that_cannot_be_attributed_are_errors():
    inputs = hand_inputs()
    with pytest.raises(ValueError, match="sessions must hold 2025-03-04 and the session before it"):
        attribute_pnl(**{**inputs, "sessions": SESSIONS[1:]})
    with pytest.raises(ValueError, match="without a market symbol"):
        attribute_pnl(**{**inputs, "position_symbols": inputs["position_symbols"].iloc[:2]})
    snaps = inputs["snapshots"].copy()
    snaps.loc[1, "daily_pnl"] = np.nan
    with pytest.raises(ValueError, match="without a daily P&L"):
        attribute_pnl(**{**inputs, "snapshots": snaps})
    only_first = inputs["snapshots"].iloc[:1]
    assert attribute_pnl(**{**inputs, "snapshots": only_first}).empty


def test_wide_betas_give_the_lines_of_the_long_ones():
    """The asset reads the betas pivoted by the database (a row per position and date, a column per factor): the
    lines are those of the long rows, to the last bit (the option without betas included)."""
    inputs = hand_inputs()
    long = inputs["position_betas"]
    wide = long.pivot(index=["date", "position_id"], columns="factor_name", values="beta")
    wide.columns.name = None
    out = attribute_pnl(**{**inputs, "position_betas": wide.reset_index()})
    pd.testing.assert_frame_equal(out, attribute_pnl(**inputs), check_exact=True)
