"""Stress engine: exact P&L on simple books, conditional factor moves, full option revaluation, invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sigmasight_pipeline.engines.options import bs_price, position_greeks
from sigmasight_pipeline.engines.stress import (
    BREAKDOWN_COLUMNS,
    CONVEXITY_ROW,
    POSITION_PNL_COLUMNS,
    RATE_FACTOR,
    RESULT_COLUMNS,
    VIX_SHOCK,
    conditional_factor_moves,
    equity_loss_rows,
    loss_cap_violations,
    loss_exceeds_equity,
    stress_test,
    stress_test_range,
)
from sigmasight_pipeline.engines.valuation import portfolio_exposures, value_positions

AS_OF = pd.Timestamp("2025-03-03")
FACTORS = ["Market", "Value", "Growth", "Momentum", "Quality", "Size", "Low Volatility"]
RATE_PCT = 4.0  # ^IRX level, percent

# the scenario file (spec/stress_scenarios.md) as data
SCENARIO_SHOCKS = {
    "market_up_10": {"Market": 0.10},
    "market_down_10": {"Market": -0.10},
    "market_rally_25": {"Market": 0.25},
    "market_crash_35": {"Market": -0.35},
    "rates_up_25bp": {RATE_FACTOR: 0.0025},
    "rates_down_25bp": {RATE_FACTOR: -0.0025},
    "rates_up_100bp": {RATE_FACTOR: 0.01},
    "rates_down_100bp": {RATE_FACTOR: -0.01},
    "rate_spike_300bp": {RATE_FACTOR: 0.03},
    "value_rotation_20": {"Value": 0.20, "Growth": -0.10},
    "growth_rally_15": {"Growth": 0.15, "Momentum": 0.10},
    "small_cap_outperformance_10": {"Size": 0.10},
    "quality_flight_12": {"Quality": 0.12, "Market": -0.05},
    "vix_spike_150": {"Low Volatility": -0.25, "Market": -0.15},
    "liquidity_crisis": {"Market": -0.20, "Low Volatility": -0.30, "Quality": 0.15, "Size": -0.10},
    "financial_crisis_2008": {"Market": -0.45, "Value": -0.30, "Size": -0.25, "Quality": 0.20, "Low Volatility": -0.35},
    "covid_crash_2020": {"Market": -0.35, "Growth": 0.15, "Value": -0.40, "Size": -0.30, "Quality": 0.10},
    "dotcom_crash_2000": {"Market": -0.45, "Growth": -0.60, "Value": 0.20, "Momentum": -0.50, "Quality": 0.15},
}


def scenario_frames(spec: dict[str, dict[str, float]]):
    scenarios = pd.DataFrame(
        {"scenario_id": list(spec), "name": list(spec), "category": "test", "severity": "moderate"}
    )
    shocks = pd.DataFrame(
        [(sid, f, s) for sid, fs in spec.items() for f, s in fs.items()],
        columns=["scenario_id", "factor_name", "shock"],
    )
    return scenarios, shocks


def realistic_cov() -> pd.DataFrame:
    """Daily covariance of the 7 factors: ETF-like, highly correlated with the market."""
    vols = np.array([0.011, 0.010, 0.013, 0.012, 0.0105, 0.012, 0.008])
    corr = np.full((7, 7), 0.85)
    np.fill_diagonal(corr, 1.0)
    corr[0, 1:] = corr[1:, 0] = [0.9, 0.95, 0.88, 0.97, 0.9, 0.85]
    return pd.DataFrame(corr * np.outer(vols, vols), index=FACTORS, columns=FACTORS)


def diagonal_cov() -> pd.DataFrame:
    return pd.DataFrame(np.diag(np.full(7, 1e-4)), index=FACTORS, columns=FACTORS)


def make_positions(rows) -> pd.DataFrame:
    """rows: (id, symbol, qty, underlying, option_type, strike, expiry, iv)."""
    out = []
    for pid, sym, qty, und, ot, k, exp, iv in rows:
        is_opt = ot is not None
        out.append(
            {
                "position_id": pid,
                "symbol": sym,
                "position_type": ("L" if qty > 0 else "S") + ot if is_opt else ("LONG" if qty > 0 else "SHORT"),
                "quantity": float(qty),
                "entry_price": 1.0,
                "entry_date": pd.Timestamp("2025-01-02"),
                "underlying_symbol": und,
                "option_type": ot,
                "strike": k if is_opt else np.nan,
                "expiration": pd.Timestamp(exp) if is_opt else pd.NaT,
                "multiplier": 100.0 if is_opt else 1.0,
                "is_option": is_opt,
                "implied_vol": iv,
            }
        )
    return pd.DataFrame(out)


def run(positions, spot: dict, betas: dict, rate_betas: dict | None = None, cov=None, spec=None, **kw):
    prices = pd.DataFrame(spot, index=pd.DatetimeIndex([AS_OF]))
    greeks = position_greeks(positions, prices, [AS_OF], RATE_PCT, None)
    vals = value_positions(positions, prices, [AS_OF], greeks)
    b = pd.DataFrame.from_dict(betas, orient="index").reindex(columns=FACTORS).fillna(0.0)
    rb = pd.Series(rate_betas or {pid: 0.0 for pid in positions["position_id"]}, dtype=float)
    scenarios, shocks = scenario_frames(spec or SCENARIO_SHOCKS)
    res = stress_test(
        positions, vals, greeks, b, rb, realistic_cov() if cov is None else cov, scenarios, shocks, RATE_PCT, AS_OF, **kw
    )
    return res, vals, greeks


def by_scen(frame):
    return frame.set_index("scenario_id")


# --- conditional expectation ---------------------------------------------------------------------------


def three_factor_cov():
    #            Market  Value  Growth
    # Market     0.040   0.012  0.006
    # Value      0.012   0.090  0.000
    # Growth     0.006   0.000  0.010
    f = ["Market", "Value", "Growth"]
    return pd.DataFrame([[0.040, 0.012, 0.006], [0.012, 0.090, 0.0], [0.006, 0.0, 0.010]], index=f, columns=f)


def test_conditional_moves_hand_computed_three_factors():
    cov = three_factor_cov()
    # one shock: E[f_u | Market = -0.10] = S_u,M / S_MM x -0.10
    m = conditional_factor_moves(pd.Series({"Market": -0.10}), cov)
    assert m["Market"] == -0.10
    assert m["Value"] == pytest.approx(0.012 / 0.040 * -0.10, abs=1e-15)  # -0.030
    assert m["Growth"] == pytest.approx(0.006 / 0.040 * -0.10, abs=1e-15)  # -0.015
    # two shocks, Market -0.10 and Value +0.05:
    #   S_ss = [[0.040, 0.012], [0.012, 0.090]], det = 0.003456
    #   S_ss^-1 f_s = [(-0.009 - 0.0006), (0.0012 + 0.002)] / 0.003456 = [-25/9, 25/27]
    #   E[Growth] = 0.006 x (-25/9) + 0.0 x 25/27 = -1/60
    m = conditional_factor_moves(pd.Series({"Market": -0.10, "Value": 0.05, RATE_FACTOR: 0.01}), cov)
    assert m["Growth"] == pytest.approx(-1 / 60, abs=1e-14)
    assert m["Market"] == -0.10 and m["Value"] == 0.05
    assert m[RATE_FACTOR] == 0.01  # not in the equity covariance: moves only as shocked
    assert m.attrs["method"] == "solve"
    # nothing shocked among the equity factors: nothing moves
    m = conditional_factor_moves(pd.Series({RATE_FACTOR: 0.01}), cov)
    assert (m[["Market", "Value", "Growth"]] == 0).all() and m[RATE_FACTOR] == 0.01


def test_conditional_moves_singular_block_uses_least_squares():
    # Value is a perfect copy of Market: S_ss singular when both are shocked together
    f = ["Market", "Value", "Growth"]
    cov = pd.DataFrame([[0.04, 0.04, 0.006], [0.04, 0.04, 0.006], [0.006, 0.006, 0.01]], index=f, columns=f)
    m = conditional_factor_moves(pd.Series({"Market": -0.10, "Value": -0.10}), cov)
    assert m.attrs["method"] == "lstsq"
    assert m["Growth"] == pytest.approx(0.006 / 0.04 * -0.10, abs=1e-12)  # as if one of them was shocked


# --- exact books ---------------------------------------------------------------------------------------


def spy_book(shares=1_000.0):
    pos = make_positions([(1, "SPY", shares, "SPY", None, None, None, np.nan)])
    return pos, {"SPY": [500.0]}, {1: {"Market": 1.0}}


def test_spy_book_loses_exactly_ten_percent():
    pos, spot, betas = spy_book()
    res, vals, _ = run(pos, spot, betas)
    r = by_scen(res.results)
    assert list(res.results.columns) == RESULT_COLUMNS
    assert list(res.factor_breakdown.columns) == BREAKDOWN_COLUMNS
    assert list(res.position_pnl.columns) == POSITION_PNL_COLUMNS
    assert r.loc["market_down_10", "direct_pnl"] == -50_000.0  # 10% of 500,000
    assert r.loc["market_down_10", "correlated_pnl"] == -50_000.0  # zero betas to the co-moving factors
    assert r.loc["market_down_10", "pct_of_gross_exposure"] == pytest.approx(-0.10, abs=1e-15)
    assert r.loc["market_down_10", "gross_exposure"] == 500_000.0
    assert r.loc["market_crash_35", "direct_pnl"] == pytest.approx(-175_000.0, abs=1e-9)
    assert r.loc["rates_up_100bp", "direct_pnl"] == 0.0
    assert (res.results["flag"] == "ok").all()


def mixed_book():
    pos = make_positions(
        [
            (1, "AAPL", 300.0, "AAPL", None, None, None, np.nan),
            (2, "XLU", -400.0, "XLU", None, None, None, np.nan),
            (3, "TLT", 500.0, "TLT", None, None, None, np.nan),
            (4, "AAPLC", 5.0, "AAPL", "C", 200.0, "2025-06-20", 0.30),
            (5, "AAPLP", -4.0, "AAPL", "P", 170.0, "2025-04-17", 0.35),
            (6, "SPYP", 3.0, "SPY", "P", 480.0, "2025-05-16", 0.22),
        ]
    )
    spot = {"AAPL": [190.0], "XLU": [70.0], "TLT": [92.0], "SPY": [500.0]}
    betas = {
        1: {"Market": 1.2, "Growth": 0.4, "Momentum": 0.2, "Quality": 0.1},
        2: {"Market": 0.6, "Value": 0.3, "Low Volatility": 0.5},
        3: {"Market": -0.1, "Quality": 0.05},
        4: {"Market": 1.2, "Growth": 0.4, "Momentum": 0.2, "Quality": 0.1},
        5: {"Market": 1.2, "Growth": 0.4, "Momentum": 0.2, "Quality": 0.1},
        6: {"Market": 1.0},
    }
    rate_betas = {1: -0.0001, 2: -0.0002, 3: -0.0006, 4: -0.0001, 5: -0.0001, 6: 0.0}
    return pos, spot, betas, rate_betas


def test_parts_sum_to_totals_and_positions_sum_to_totals():
    pos, spot, betas, rb = mixed_book()
    res, _, _ = run(pos, spot, betas, rb)
    totals = by_scen(res.results)
    parts = res.factor_breakdown.groupby("scenario_id")[["direct_pnl", "correlated_pnl"]].sum()
    by_pos = res.position_pnl.groupby("scenario_id")[["direct_pnl", "correlated_pnl"]].sum()
    for col in ["direct_pnl", "correlated_pnl"]:
        np.testing.assert_allclose(parts.loc[totals.index, col], totals[col], rtol=1e-12, atol=1e-8)
        np.testing.assert_allclose(by_pos.loc[totals.index, col], totals[col], rtol=1e-12, atol=1e-8)
    np.testing.assert_allclose(totals["correlation_effect"], totals["correlated_pnl"] - totals["direct_pnl"], atol=1e-9)
    # every scenario has one row per factor plus Interest Rate and Option convexity
    assert res.factor_breakdown.groupby("scenario_id").size().eq(len(FACTORS) + 2).all()
    bd = res.factor_breakdown.set_index(["scenario_id", "factor_name"])
    assert bd.loc[("value_rotation_20", "Value"), "shock"] == 0.20
    assert bd.loc[("value_rotation_20", "Market"), "shock"] == 0.0
    assert bd.loc[("value_rotation_20", "Market"), "implied_move"] != 0.0  # co-moves in the correlated run
    assert bd.loc[("rates_up_100bp", RATE_FACTOR), "implied_move"] == 0.01


def test_correlated_equals_direct_with_diagonal_covariance():
    pos, spot, betas, rb = mixed_book()
    res, _, _ = run(pos, spot, betas, rb, cov=diagonal_cov())
    r = res.results
    np.testing.assert_array_equal(r["correlated_pnl"].to_numpy(), r["direct_pnl"].to_numpy())
    assert (r["correlation_effect"] == 0.0).all()
    # with the realistic (ETF-like) covariance a market-only shock also moves the style factors
    res2, _, _ = run(pos, spot, betas, rb)
    assert by_scen(res2.results).loc["market_down_10", "correlation_effect"] != 0.0


def test_long_call_crash_loss_bounded_by_premium():
    pos = make_positions([(1, "SPYC", 1.0, "SPY", "C", 500.0, "2025-04-02", 0.20)])  # 30 days, ATM
    res, vals, greeks = run(pos, {"SPY": [500.0]}, {1: {"Market": 1.0}}, spec={"crash": {"Market": -0.35}})
    premium = vals["market_value"].iloc[0]  # 1 contract x 100 x model price
    assert premium == pytest.approx(100 * float(bs_price(500.0, 500.0, 30 / 365, 0.04, 0.20, True)))
    loss = res.results["direct_pnl"].iloc[0]
    assert -premium <= loss < -0.99 * premium  # loses (almost) the whole premium, never more
    bd = res.factor_breakdown.set_index("factor_name")
    delta_only = bd.loc["Market", "direct_pnl"]  # delta x contracts x 100 x S x -35%
    assert delta_only < -5 * premium  # a delta-only approximation would lose several premiums
    assert bd.loc[CONVEXITY_ROW, "direct_pnl"] > 0  # the convexity row brings it back to the full revaluation
    # put the other way: a long put gains, a short put loses more than delta says
    pos = make_positions([(1, "SPYP", -1.0, "SPY", "P", 500.0, "2025-04-02", 0.20)])
    res, _, _ = run(pos, {"SPY": [500.0]}, {1: {"Market": 1.0}}, spec={"crash": {"Market": -0.35}})
    expected = -(float(bs_price(325.0, 500.0, 30 / 365, 0.04, 0.2, False)) - float(bs_price(500.0, 500.0, 30 / 365, 0.04, 0.2, False))) * 100
    assert res.results["direct_pnl"].iloc[0] == pytest.approx(expected, rel=1e-12)


def test_linear_pnl_is_antisymmetric():
    pos, spot, betas, rb = mixed_book()
    linear = pos[~pos["is_option"]]
    spec = {"up": {"Market": 0.1, "Value": 0.05, RATE_FACTOR: 0.01}, "down": {"Market": -0.1, "Value": -0.05, RATE_FACTOR: -0.01}}
    res, _, _ = run(linear, spot, {k: betas[k] for k in (1, 2, 3)}, {k: rb[k] for k in (1, 2, 3)}, spec=spec)
    r = by_scen(res.results)
    for col in ["direct_pnl", "correlated_pnl"]:
        assert r.loc["up", col] == pytest.approx(-r.loc["down", col], rel=1e-14)
        assert r.loc["up", col] != 0.0
    p = res.position_pnl.pivot(index="position_id", columns="scenario_id", values="direct_pnl")
    np.testing.assert_allclose(p["up"], -p["down"], rtol=1e-14)


def test_scaling_the_book_scales_pnl():
    pos, spot, betas, rb = mixed_book()
    res1, _, _ = run(pos, spot, betas, rb)
    big = pos.assign(quantity=pos["quantity"] * 3.0)
    res3, _, _ = run(big, spot, betas, rb)
    for col in ["direct_pnl", "correlated_pnl"]:
        np.testing.assert_allclose(res3.results[col], 3.0 * res1.results[col], rtol=1e-12)
    np.testing.assert_allclose(res3.factor_breakdown["correlated_pnl"], 3.0 * res1.factor_breakdown["correlated_pnl"], rtol=1e-9, atol=1e-9)


def test_zero_shock_gives_exactly_zero():
    pos, spot, betas, rb = mixed_book()
    spec = {"zero": {"Market": 0.0, RATE_FACTOR: 0.0}, "empty": {}}
    res, _, _ = run(pos, spot, betas, rb, spec=spec)
    assert (res.results[["direct_pnl", "correlated_pnl"]] == 0.0).all().all()
    assert (res.position_pnl[["direct_pnl", "correlated_pnl"]] == 0.0).all().all()


def test_rate_scenario_bond_like_position():
    pos = make_positions([(1, "TLT", 1_000.0, "TLT", None, None, None, np.nan)])
    res, _, _ = run(pos, {"TLT": [90.0]}, {1: {"Market": -0.1}}, {1: -0.0006})
    r = by_scen(res.results)
    assert r.loc["rates_up_100bp", "pct_of_gross_exposure"] == pytest.approx(-0.06, rel=1e-12)  # -0.0006/bp x 100 bp
    assert r.loc["rates_up_100bp", "direct_pnl"] == pytest.approx(-0.06 * 90_000.0, rel=1e-12)
    assert r.loc["rates_down_25bp", "direct_pnl"] == pytest.approx(0.015 * 90_000.0, rel=1e-12)
    bd = res.factor_breakdown.set_index(["scenario_id", "factor_name"])
    assert bd.loc[("rates_up_100bp", RATE_FACTOR), "direct_pnl"] == pytest.approx(-5_400.0, rel=1e-12)


def test_rate_shock_revalues_options_at_shifted_rate():
    pos = make_positions([(1, "SPYC", 2.0, "SPY", "C", 520.0, "2025-09-19", 0.18)])
    res, _, greeks = run(pos, {"SPY": [500.0]}, {1: {"Market": 1.0}}, {1: 0.0}, spec={"up": {RATE_FACTOR: 0.01}})
    T = greeks["days_to_expiry"].iloc[0] / 365
    expected = (float(bs_price(500.0, 520.0, T, 0.05, 0.18, True)) - float(bs_price(500.0, 520.0, T, 0.04, 0.18, True))) * 200
    assert res.results["direct_pnl"].iloc[0] == pytest.approx(expected, rel=1e-12)
    bd = res.factor_breakdown.set_index("factor_name")
    assert bd.loc[RATE_FACTOR, "direct_pnl"] == pytest.approx(greeks["position_rho"].iloc[0], rel=1e-12)  # rho per 1%
    assert abs(bd.loc[CONVEXITY_ROW, "direct_pnl"]) < 0.02 * abs(expected)


def test_unknown_factor_name_raises():
    pos, spot, betas = spy_book()
    with pytest.raises(ValueError, match="Market Beta"):
        run(pos, spot, betas, spec={"bad": {"Market Beta": -0.1}})


def test_missing_price_and_beta_are_flagged():
    pos, spot, betas, rb = mixed_book()
    spot = dict(spot, XLU=[np.nan])
    betas = {k: v for k, v in betas.items() if k != 3}
    res, _, _ = run(pos, spot, betas, rb, spec={"down": {"Market": -0.1}})
    flag = res.results["flag"].iloc[0]
    assert "missing_price=1" in flag and "missing_beta=1" in flag
    pp = res.position_pnl.set_index("position_id")
    assert np.isnan(pp.loc[2, "direct_pnl"])
    assert res.results["direct_pnl"].iloc[0] == pytest.approx(np.nansum(pp["direct_pnl"]))


def test_loss_cap_violation_detected_and_display_cap_scales_parts():
    # a long-only book whose betas (3x) make a 45% fall lose 135% of its value: a model error
    pos = make_positions([(1, "TQQQ", 1_000.0, "TQQQ", None, None, None, np.nan)])
    spec = {"crash": {"Market": -0.45}, "mild": {"Market": -0.05}}
    res, vals, _ = run(pos, {"TQQQ": [50.0]}, {1: {"Market": 3.0}}, spec=spec)
    r = by_scen(res.results)
    assert r.loc["crash", "direct_pnl"] == pytest.approx(-67_500.0)  # not clipped silently
    assert not r["loss_cap_applied"].any()
    assert "loss_exceeds_gross" in r.loc["crash", "flag"]
    ex = portfolio_exposures(vals, pos)
    bad = loss_cap_violations(res.results, ex)
    assert bad["scenario_id"].tolist() == ["crash"] and bad["violation"].tolist() == ["model_error"]

    capped, _, _ = run(pos, {"TQQQ": [50.0]}, {1: {"Market": 3.0}}, spec=spec, cap_losses=True)
    c = by_scen(capped.results)
    assert c.loc["crash", "direct_pnl"] == pytest.approx(-50_000.0)
    assert c.loc["crash", "correlated_pnl"] == pytest.approx(-50_000.0)
    assert c.loc["crash", "loss_cap_applied"] and "loss_capped" in c.loc["crash", "flag"]
    assert c.loc["mild", "direct_pnl"] == pytest.approx(-7_500.0) and not c.loc["mild", "loss_cap_applied"]
    parts = capped.factor_breakdown.groupby("scenario_id")["direct_pnl"].sum()
    assert parts["crash"] == pytest.approx(-50_000.0)
    assert capped.position_pnl.groupby("scenario_id")["direct_pnl"].sum()["crash"] == pytest.approx(-50_000.0)
    assert loss_cap_violations(capped.results, ex)["scenario_id"].tolist() == ["crash"]  # still reported


def test_stress_test_range_and_scenario_data_need_no_code():
    pos, spot, betas = spy_book()
    dates = pd.DatetimeIndex([AS_OF, AS_OF + pd.Timedelta(days=1)])
    prices = pd.DataFrame({"SPY": [500.0, 510.0]}, index=dates)
    greeks = position_greeks(pos, prices, dates, RATE_PCT, None)
    vals = value_positions(pos, prices, dates, greeks)
    spec = dict(SCENARIO_SHOCKS, new_one={"Market": -0.2, "Size": 0.05})
    scenarios, shocks = scenario_frames(spec)
    b = pd.DataFrame({"Market": [1.0]}, index=[1])
    out = stress_test_range(pos, vals, greeks, b, pd.Series({1: 0.0}), realistic_cov(), scenarios, shocks, RATE_PCT, dates)
    assert len(out.results) == 2 * len(spec)
    r = out.results.set_index(["date", "scenario_id"])
    assert r.loc[(dates[1], "market_down_10"), "direct_pnl"] == pytest.approx(-51_000.0)
    assert r.loc[(dates[0], "new_one"), "direct_pnl"] == pytest.approx(-100_000.0)


def test_long_format_betas_from_the_factor_and_rate_engines():
    """Betas arrive as long rows per (date, position, factor); other dates are ignored."""
    pos, spot, betas, rb = mixed_book()
    wide_res, _, _ = run(pos, spot, betas, rb)
    other = AS_OF - pd.Timedelta(days=1)
    long_betas = pd.DataFrame(
        [(d, pid, f, b * (1.0 if d == AS_OF else 9.0)) for d in (other, AS_OF) for pid, fs in betas.items() for f, b in fs.items()],
        columns=["date", "position_id", "factor_name", "beta"],
    )
    long_rates = pd.DataFrame(
        [(d, pid, b * (1.0 if d == AS_OF else 9.0)) for d in (other, AS_OF) for pid, b in rb.items()],
        columns=["date", "position_id", "rate_beta"],
    )
    prices = pd.DataFrame(spot, index=pd.DatetimeIndex([AS_OF]))
    greeks = position_greeks(pos, prices, [AS_OF], RATE_PCT, None)
    vals = value_positions(pos, prices, [AS_OF], greeks)
    scenarios, shocks = scenario_frames(SCENARIO_SHOCKS)
    res = stress_test(pos, vals, greeks, long_betas, long_rates, realistic_cov(), scenarios, shocks, RATE_PCT, AS_OF)
    pd.testing.assert_frame_equal(res.results, wide_res.results)


def test_range_is_vectorised_date_by_date_stress_with_a_changing_book():
    """The range run (long betas, stored covariance rows, a book that changes) equals one stress_test per date."""
    from sigmasight_pipeline.engines.factors import factor_correlations

    pos, spot, betas, rb = mixed_book()
    dates = pd.DatetimeIndex([AS_OF, AS_OF + pd.Timedelta(days=1), AS_OF + pd.Timedelta(days=2)])
    prices = pd.DataFrame({s: [p[0], p[0] * 1.01, p[0] * 0.97] for s, p in spot.items()}, index=dates)
    greeks = position_greeks(pos, prices, dates, RATE_PCT, None)
    vals = value_positions(pos, prices, dates, greeks)
    first_id = pos["position_id"].iloc[0]
    vals = vals[~((vals["date"] == dates[0]) & (vals["position_id"] == first_id))]  # bought on day 2
    long_betas = pd.DataFrame(
        [(d, pid, f, b * (1.0 + 0.1 * j)) for j, d in enumerate(dates) for pid, fs in betas.items() for f, b in fs.items()],
        columns=["date", "position_id", "factor_name", "beta"],
    )
    long_rates = pd.DataFrame(
        [(d, pid, b * (1.0 - 0.2 * j)) for j, d in enumerate(dates) for pid, b in rb.items()],
        columns=["date", "position_id", "rate_beta"],
    )
    rng = np.random.default_rng(3)
    history = pd.bdate_range(end=dates[-1], periods=200)
    common = rng.normal(0, 0.01, (200, 1))
    factor_returns = pd.DataFrame(common + rng.normal(0, 0.004, (200, 7)), index=history, columns=FACTORS)
    corr_rows = factor_correlations(factor_returns, dates, window=150)
    scenarios, shocks = scenario_frames(SCENARIO_SHOCKS)
    short = pd.Series([4.0, 4.1, 3.9], index=dates)

    ranged = stress_test_range(pos, vals, greeks, long_betas, long_rates, corr_rows, scenarios, shocks, short, dates)
    from sigmasight_pipeline.engines.factors import covariance_matrix

    singles = [
        stress_test(pos, vals, greeks, long_betas, long_rates, covariance_matrix(corr_rows[corr_rows["date"] == d]),
                    scenarios, shocks, short, d)
        for d in dates
    ]
    for field in ranged._fields:
        expected = pd.concat([getattr(s, field) for s in singles], ignore_index=True)
        pd.testing.assert_frame_equal(getattr(ranged, field), expected, rtol=1e-12, atol=1e-9)
    # the position bought on day 2 is not in day 1's book, and day 1's totals leave it out
    pp = ranged.position_pnl
    assert not ((pp["date"] == dates[0]) & (pp["position_id"] == first_id)).any()
    assert ((pp["date"] == dates[1]) & (pp["position_id"] == first_id)).sum() == len(SCENARIO_SHOCKS)
    day1 = ranged.results[ranged.results["date"] == dates[0]].set_index("scenario_id")["direct_pnl"]
    day1_sum = pp[pp["date"] == dates[0]].groupby("scenario_id")["direct_pnl"].sum()
    pd.testing.assert_series_equal(day1.sort_index(), day1_sum.sort_index(), check_names=False, rtol=1e-12)
    # a date without covariance rows is an error, not an uncorrelated answer
    with pytest.raises(ValueError, match="no factor covariance"):
        stress_test_range(pos, vals, greeks, long_betas, long_rates, corr_rows[corr_rows["date"] != dates[1]],
                          scenarios, shocks, short, dates)


def test_conditional_moves_batched_over_dates_and_scenarios_match_one_by_one():
    """The vectorised core groups scenarios by shocked set and dates by covariance: same moves as one call each."""
    from sigmasight_pipeline.engines.stress import _conditional_moves

    rng = np.random.default_rng(11)
    covs = []
    for _ in range(4):
        a = rng.normal(size=(7, 7))
        covs.append(a @ a.T * 1e-4 + np.eye(7) * 1e-6)
    covs[2][1, :] = covs[2][:, 1] = np.nan  # one date without Value's covariance
    named = np.full((len(SCENARIO_SHOCKS), 7), np.nan)
    for i, fs in enumerate(SCENARIO_SHOCKS.values()):
        for f, v in fs.items():
            if f in FACTORS:
                named[i, FACTORS.index(f)] = v
    moves, lstsq = _conditional_moves(named, np.stack(covs))
    assert not lstsq.any()
    for t, c in enumerate(covs):
        cov = pd.DataFrame(c, index=FACTORS, columns=FACTORS)
        for i, fs in enumerate(SCENARIO_SHOCKS.values()):
            one = conditional_factor_moves(pd.Series({f: v for f, v in fs.items() if f in FACTORS}, dtype=float), cov)
            np.testing.assert_allclose(moves[t, i], one.reindex(FACTORS).to_numpy(), rtol=1e-12, atol=1e-15)
    # Value left out of the conditioning on date 2: it moves only where a scenario names it
    unnamed_value = np.isnan(named[:, 1])
    assert (moves[2, unnamed_value, 1] == 0.0).all()


# --- losses against equity (books.md, "Numbers that must not mislead") ------------------------------------


def levered_book():
    """Long 1,000 A at $100 (market beta 1.5), short 600 B at $100 (market beta 0.5): gross 160,000,
    equity (net liquidation value, no cash modelled) 100,000 - 60,000 = 40,000."""
    pos = make_positions([(1, "AAA", 1_000.0, "AAA", None, None, None, np.nan),
                          (2, "BBB", -600.0, "BBB", None, None, None, np.nan)])
    return pos, {"AAA": [100.0], "BBB": [100.0]}, {1: {"Market": 1.5}, 2: {"Market": 0.5}}


def test_levered_long_short_book_percentages_and_losses_beyond_equity_by_hand():
    pos, spot, betas = levered_book()
    spec = {"crash": {"Market": -0.35}, "down": {"Market": -0.10}, "rally": {"Market": 0.25}}
    res, vals, _ = run(pos, spot, betas, cov=diagonal_cov(), spec=spec)
    r = by_scen(res.results)
    assert list(res.results.columns) == RESULT_COLUMNS
    # crash: A 100,000 x 1.5 x -0.35 = -52,500; B -60,000 x 0.5 x -0.35 = +10,500; total -42,000
    assert r.loc["crash", "direct_pnl"] == pytest.approx(-42_000.0, abs=1e-9)
    assert r.loc["crash", "correlated_pnl"] == pytest.approx(-42_000.0, abs=1e-9)  # diagonal: nothing co-moves
    assert r.loc["crash", "gross_exposure"] == 160_000.0 and r.loc["crash", "equity"] == 40_000.0
    assert r.loc["crash", "pct_of_gross_exposure"] == pytest.approx(-42_000 / 160_000, rel=1e-14)  # -0.2625
    assert r.loc["crash", "pct_of_equity"] == pytest.approx(-42_000 / 40_000, rel=1e-14)  # -1.05
    assert r.loc["crash", "exceeds_equity"] and "loss_exceeds_equity" in r.loc["crash", "flag"]
    assert "loss_exceeds_gross" not in r.loc["crash", "flag"]
    # down 10%: -15,000 + 3,000 = -12,000: 7.5% of gross, 30% of equity, within equity
    assert r.loc["down", "direct_pnl"] == pytest.approx(-12_000.0, abs=1e-9)
    assert r.loc["down", "pct_of_gross_exposure"] == pytest.approx(-0.075, rel=1e-14)
    assert r.loc["down", "pct_of_equity"] == pytest.approx(-0.30, rel=1e-14)
    assert not r.loc["down", "exceeds_equity"] and r.loc["down", "flag"] == "ok"
    # rally 25%: +37,500 - 7,500 = +30,000 = 75% of equity
    assert r.loc["rally", "pct_of_equity"] == pytest.approx(0.75, rel=1e-14) and not r.loc["rally", "exceeds_equity"]
    # equity is portfolio_exposures' net exposure, gross its gross exposure
    ex = portfolio_exposures(vals, pos)
    assert ex["net_exposure"].iloc[0] == 40_000.0 and ex["gross_exposure"].iloc[0] == 160_000.0
    beyond = equity_loss_rows(res.results, ex)
    assert beyond["scenario_id"].tolist() == ["crash"] and beyond["book_equity"].tolist() == [40_000.0]
    # the book has a short: the (blocking) long-only loss cap does not apply to it
    assert loss_cap_violations(res.results, ex).empty


def test_non_positive_equity_has_no_pct_of_equity_and_any_loss_exceeds_it():
    # long 100 A at $100, short 300 B at $100: equity 10,000 - 30,000 = -20,000
    pos = make_positions([(1, "AAA", 100.0, "AAA", None, None, None, np.nan),
                          (2, "BBB", -300.0, "BBB", None, None, None, np.nan)])
    spec = {"up": {"Market": 0.10}, "down": {"Market": -0.10}}
    res, vals, _ = run(pos, {"AAA": [100.0], "BBB": [100.0]}, {1: {"Market": 1.0}, 2: {"Market": 1.0}},
                       cov=diagonal_cov(), spec=spec)
    r = by_scen(res.results)
    assert r.loc["up", "direct_pnl"] == pytest.approx(-2_000.0)  # +1,000 - 3,000
    assert r.loc["up", "equity"] == -20_000.0 and np.isnan(r.loc["up", "pct_of_equity"])
    assert r.loc["up", "pct_of_gross_exposure"] == pytest.approx(-2_000.0 / 40_000.0)
    assert r.loc["up", "exceeds_equity"]  # a book with no equity: any loss is beyond it
    assert r.loc["up", "flag"] == "equity_nonpositive;loss_exceeds_equity"
    assert r.loc["down", "direct_pnl"] == pytest.approx(2_000.0) and not r.loc["down", "exceeds_equity"]
    assert r.loc["down", "flag"] == "equity_nonpositive" and np.isnan(r.loc["down", "pct_of_equity"])
    assert equity_loss_rows(res.results, portfolio_exposures(vals, pos))["scenario_id"].tolist() == ["up"]


def test_loss_exceeds_equity_rule():
    got = loss_exceeds_equity([-101.0, -100.0, -1.0, 0.0, 5.0, -1.0, np.nan, -1.0],
                              [100.0, 100.0, 0.0, 0.0, -3.0, -3.0, 10.0, np.nan])
    assert got.tolist() == [True, False, True, False, False, True, False, False]


def test_unlevered_long_only_book_is_within_equity():
    pos, spot, betas = spy_book()
    res, _, _ = run(pos, spot, betas)
    r = res.results
    np.testing.assert_allclose(r["pct_of_equity"], r["pct_of_gross_exposure"], rtol=0, atol=0)  # equity == gross
    assert not r["exceeds_equity"].any() and (r["equity"] == 500_000.0).all()


# --- the VIX shock ---------------------------------------------------------------------------------------


def bs_call_by_hand(S, K, T, r, sigma):
    """Black-Scholes call from the textbook formula (scipy's normal cdf), independent of engines.options."""
    from scipy.stats import norm

    d1 = (np.log(S / K) + (r + 0.5 * sigma**2) * T) / (sigma * np.sqrt(T))
    d2 = d1 - sigma * np.sqrt(T)
    return S * norm.cdf(d1) - K * np.exp(-r * T) * norm.cdf(d2)


def test_vix_shock_revalues_vix_options_at_the_shocked_level_and_nothing_else():
    # 10 VIX 25 calls (VIX at 20, 60% vol, 90 days), plus 100 SPY shares; ^VIX has market beta -4
    pos = make_positions([(1, "VIXC", 10.0, "^VIX", "C", 25.0, "2025-06-01", 0.60),
                          (2, "SPY", 100.0, "SPY", None, None, None, np.nan)])
    spot = {"^VIX": [20.0], "SPY": [500.0]}
    betas = {1: {"Market": -4.0}, 2: {"Market": 1.0}}
    spec = {"spike": {"Market": -0.15, VIX_SHOCK: 1.50}, "no_vix": {"Market": -0.15}, "vix_only": {VIX_SHOCK: 1.50}}
    res, vals, greeks = run(pos, spot, betas, cov=diagonal_cov(), spec=spec)
    T = (pd.Timestamp("2025-06-01") - AS_OF).days / 365.0
    r = RATE_PCT / 100
    v0 = bs_call_by_hand(20.0, 25.0, T, r, 0.60)
    pp = res.position_pnl.set_index(["scenario_id", "position_id"])
    # spike: the VIX goes 20 -> 50 (+150%), whatever its market beta says; SPY loses 15%
    vix_pnl = (bs_call_by_hand(50.0, 25.0, T, r, 0.60) - v0) * 10 * 100
    assert pp.loc[("spike", 1), "direct_pnl"] == pytest.approx(vix_pnl, rel=1e-10)
    assert pp.loc[("spike", 1), "correlated_pnl"] == pytest.approx(vix_pnl, rel=1e-10)
    assert pp.loc[("spike", 2), "direct_pnl"] == pytest.approx(-7_500.0, rel=1e-14)
    # no VIX shock: as before, through its betas: -4 x -15% = +60%, 20 -> 32
    beta_pnl = (bs_call_by_hand(32.0, 25.0, T, r, 0.60) - v0) * 10 * 100
    assert pp.loc[("no_vix", 1), "direct_pnl"] == pytest.approx(beta_pnl, rel=1e-10)
    # the VIX alone moves only the VIX options
    assert pp.loc[("vix_only", 1), "direct_pnl"] == pytest.approx(vix_pnl, rel=1e-10)
    assert pp.loc[("vix_only", 2), "direct_pnl"] == 0.0
    # breakdown: a VIX row (delta-linear part), the rest in convexity; rows add up to the total
    bd = res.factor_breakdown.set_index(["scenario_id", "factor_name"])
    delta = greeks.set_index("position_id").loc[1, "delta"]
    assert bd.loc[("spike", VIX_SHOCK), "direct_pnl"] == pytest.approx(delta * 10 * 100 * 20.0 * 1.5, rel=1e-12)
    assert bd.loc[("spike", VIX_SHOCK), "shock"] == 1.5 and bd.loc[("no_vix", VIX_SHOCK), "shock"] == 0.0
    assert bd.loc[("no_vix", VIX_SHOCK), "direct_pnl"] == 0.0
    assert bd.loc[("spike", "Market"), "direct_pnl"] == pytest.approx(-7_500.0, rel=1e-14)  # SPY only
    assert bd.loc[("no_vix", "Market"), "direct_pnl"] == pytest.approx(
        -7_500.0 + delta * 10 * 100 * 20.0 * 0.60, rel=1e-12)  # the option's delta through its beta
    totals = by_scen(res.results)
    parts = res.factor_breakdown.groupby("scenario_id")[["direct_pnl", "correlated_pnl"]].sum()
    np.testing.assert_allclose(parts.loc[totals.index], totals[["direct_pnl", "correlated_pnl"]], rtol=1e-12)
    assert res.factor_breakdown.groupby("scenario_id").size().eq(len(FACTORS) + 3).all()


def test_vix_shock_is_not_a_factor_and_the_scenario_file_carries_it():
    from sigmasight_pipeline.warehouse.reference import stress_scenarios

    cov = three_factor_cov()
    m = conditional_factor_moves(pd.Series({"Market": -0.10}), cov)
    assert VIX_SHOCK not in m.index  # never in the conditioning
    _, shocks = stress_scenarios()
    vix = shocks[shocks["factor_name"] == VIX_SHOCK]
    assert vix[["scenario_id", "shock"]].values.tolist() == [["vix_spike_150", 1.5]]
    # a zero VIX shock (as the zero-shock check runs) is exactly zero P&L, VIX options included
    pos = make_positions([(1, "VIXC", 10.0, "^VIX", "C", 25.0, "2025-06-01", 0.60)])
    res, _, _ = run(pos, {"^VIX": [20.0]}, {1: {"Market": -4.0}}, spec={"zero": {"Market": 0.0, VIX_SHOCK: 0.0}})
    assert (res.results[["direct_pnl", "correlated_pnl"]] == 0.0).all().all()


def test_the_scenario_file_refuses_a_vix_shock_that_would_take_the_level_to_zero_or_below(monkeypatch):
    from sigmasight_pipeline.warehouse import reference

    text = "scenarios:\n  - {id: bad, name: Bad, category: volatility, severity: severe, shocks: {VIX: -1.0}}\n"
    monkeypatch.setattr(reference, "read_text", lambda name: text)
    with pytest.raises(ValueError, match="scenario 'bad' VIX shock -1.0 must be above -1"):
        reference.stress_scenarios()
    monkeypatch.setattr(reference, "read_text", lambda name: text.replace("-1.0", "-0.4"))
    assert reference.stress_scenarios()[1]["shock"].tolist() == [-0.4]


def test_options_are_revalued_with_the_dividend_yield_their_greeks_used():
    """Black-Scholes-Merton in the stress engine: a call on a 3%-yield underlying in a -20% market is repriced
    with q = 0.03 (the yield position_greeks used and stored), so its P&L is BSM(q) at 400 minus BSM(q) at 500,
    and a zero shock is exactly zero (today's value is the stored model price)."""
    pos = make_positions([(1, "SPYC", 2.0, "SPY", "C", 480.0, "2025-06-02", 0.25)]).assign(dividend_yield=0.03)
    T = (pd.Timestamp("2025-06-02") - pd.Timestamp(AS_OF)).days / 365
    res, vals, greeks = run(pos, {"SPY": [500.0]}, {1: {"Market": 1.0}},
                            spec={"crash": {"Market": -0.20}, "flat": {"Market": 0.0}})
    assert greeks["dividend_yield"].iloc[0] == 0.03
    v0 = float(bs_price(500.0, 480.0, T, 0.04, 0.25, True, q=0.03))
    assert vals["market_value"].iloc[0] == pytest.approx(200 * v0, abs=0.005)
    expected = (float(bs_price(400.0, 480.0, T, 0.04, 0.25, True, q=0.03)) - v0) * 200
    got = by_scen(res.results)
    assert got.loc["crash", "direct_pnl"] == pytest.approx(expected, rel=1e-12)
    assert expected != pytest.approx((float(bs_price(400.0, 480.0, T, 0.04, 0.25, True)) - float(bs_price(500.0, 480.0, T, 0.04, 0.25, True))) * 200, rel=1e-6)
    assert got.loc["flat", "direct_pnl"] == 0.0
