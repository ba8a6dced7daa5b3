"""Black-Scholes engine: equality with mibian and QuantLib, finite differences, degenerate cases, defects."""

from __future__ import annotations

import itertools

import mibian
import numpy as np
import pandas as pd
import pytest

from sigmasight_pipeline.engines.options import (
    POSITION_GREEKS_COLUMNS,
    bs_greeks,
    bs_price,
    position_greeks,
    realized_volatility,
)

S0 = 100.0
MONEYNESS = [0.8, 0.9, 1.0, 1.1, 1.2]  # S / K
DAYS = [7, 30, 91, 182, 365]
VOLS = [0.10, 0.25, 0.50, 0.80]
RATES = [0.0, 0.02, 0.05, 0.08]


def _grid():
    rows = list(itertools.product(MONEYNESS, DAYS, VOLS, RATES, [True, False]))
    m, d, v, r, c = (np.array(x) for x in zip(*rows))
    return S0 / m, d.astype(float), v, r, c.astype(bool)


def _mibian(K, days, r, vol, call):
    # mibian wants r and vol in PERCENT and days
    o = mibian.BS([S0, K, r * 100.0, days], volatility=vol * 100.0)
    if call:
        return o.callPrice, o.callDelta, o.gamma, o.callTheta, o.vega, o.callRho
    return o.putPrice, o.putDelta, o.gamma, o.putTheta, o.vega, o.putRho


NAMES = ["price", "delta", "gamma", "theta", "vega", "rho"]


def test_greeks_equal_mibian_on_grid():
    K, days, vol, r, call = _grid()
    g = bs_greeks(S0, K, days / 365.0, r, vol, call)
    ref = np.array([_mibian(*args) for args in zip(K, days, r, vol, call)])
    assert (g["flag"] == "ok").all()
    for j, name in enumerate(NAMES):
        np.testing.assert_allclose(g[name], ref[:, j], rtol=0, atol=1e-6, err_msg=name)
    # a point from the reference notes: S=100, K=105, 5%, 60 days, 25% vol
    one = bs_greeks(100.0, 105.0, 60 / 365, 0.05, 0.25, True)
    assert one["price"] == pytest.approx(2.381200774762, abs=1e-11)
    assert one["theta"] == pytest.approx(-0.0363510, abs=1e-7)
    assert one["vega"] == pytest.approx(0.15216, abs=1e-5)
    assert one["rho"] == pytest.approx(0.05581, abs=1e-5)


def test_greeks_equal_quantlib_after_unit_conversion():
    ql = pytest.importorskip("QuantLib")
    today = ql.Date(15, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    K, days, vol, r, call = _grid()
    sel = np.arange(0, len(K), 3)  # every third case keeps QuantLib's object setup quick
    K, days, vol, r, call = K[sel], days[sel], vol[sel], r[sel], call[sel]
    g = bs_greeks(S0, K, days / 365.0, r, vol, call)
    ref = []
    for k, d, v, rr, c in zip(K, days, vol, r, call):
        process = ql.BlackScholesMertonProcess(
            ql.QuoteHandle(ql.SimpleQuote(S0)),
            ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc)),
            ql.YieldTermStructureHandle(ql.FlatForward(today, float(rr), dc)),
            ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), float(v), dc)),
        )
        opt = ql.EuropeanOption(
            ql.PlainVanillaPayoff(ql.Option.Call if c else ql.Option.Put, float(k)),
            ql.EuropeanExercise(today + int(d)),
        )
        opt.setPricingEngine(ql.AnalyticEuropeanEngine(process))
        # QuantLib: vega and rho per 1.00 change, theta per year; thetaPerDay = theta / 365
        ref.append([opt.NPV(), opt.delta(), opt.gamma(), opt.thetaPerDay(), opt.vega() / 100, opt.rho() / 100])
    ref = np.array(ref)
    for j, name in enumerate(NAMES):
        np.testing.assert_allclose(g[name], ref[:, j], rtol=1e-6, atol=1e-10, err_msg=name)


def test_each_greek_matches_central_finite_difference():
    K, days, vol, r, call = _grid()
    T = days / 365.0
    g = bs_greeks(S0, K, T, r, vol, call)

    def P(S=S0, T=T, r=r, v=vol):
        return bs_price(S, K, T, r, v, call)

    h = 1e-3  # $0.001: small against the narrowest distribution (7 days, 10% vol: S sigma sqrt(T) = 1.4)
    np.testing.assert_allclose(g["delta"], (P(S0 + h) - P(S0 - h)) / (2 * h), rtol=1e-6, atol=1e-8)
    h = 1e-2
    gamma_fd = (P(S0 + h) - 2 * P() + P(S0 - h)) / h**2
    np.testing.assert_allclose(g["gamma"], gamma_fd, rtol=1e-4, atol=1e-8)
    dv = 1e-5
    vega_fd = (P(v=vol + dv) - P(v=vol - dv)) / (2 * dv) * 0.01  # per 0.01 sigma
    np.testing.assert_allclose(g["vega"], vega_fd, rtol=1e-6, atol=1e-9)
    dr = 1e-5
    rho_fd = (P(r=r + dr) - P(r=r - dr)) / (2 * dr) * 0.01  # per 0.01 r
    np.testing.assert_allclose(g["rho"], rho_fd, rtol=1e-6, atol=1e-9)
    dT = 1e-6
    theta_fd = -(P(T=T + dT) - P(T=T - dT)) / (2 * dT) / 365.0  # one calendar day passing shortens T
    np.testing.assert_allclose(g["theta"], theta_fd, rtol=1e-5, atol=1e-9)
    # sign conventions
    assert (g["delta"][call] > 0).all() and (g["delta"][~call] < 0).all()
    assert (g["gamma"] > 0).all() and (g["vega"] > 0).all()
    assert (g["rho"][call] >= 0).all() and (g["rho"][~call] <= 0).all()
    assert (g["theta"][call] < 0).all()  # no dividends: a long call always decays
    # one actual calendar day of decay is close to theta
    one_day = P(T=T - 1 / 365.0) - P()
    long_dated = days >= 30
    np.testing.assert_allclose(g["theta"][long_dated], one_day[long_dated], rtol=0.05, atol=2e-3)


def test_put_call_parity():
    K, days, vol, r, _ = _grid()
    T = days / 365.0
    c = bs_price(S0, K, T, r, vol, True)
    p = bs_price(S0, K, T, r, vol, False)
    np.testing.assert_allclose(c - p, S0 - K * np.exp(-r * T), atol=1e-11)


def test_expiry_day_gives_intrinsic_and_step_delta():
    S = np.array([110.0, 90.0, 100.0, 110.0, 90.0, 100.0])
    call = np.array([True, True, True, False, False, False])
    g = bs_greeks(S, 100.0, 0.0, 0.05, 0.3, call)
    np.testing.assert_array_equal(g["price"], [10.0, 0.0, 0.0, 0.0, 10.0, 0.0])
    np.testing.assert_array_equal(g["delta"], [1.0, 0.0, 0.5, 0.0, -1.0, -0.5])
    for k in ["gamma", "theta", "vega", "rho"]:
        np.testing.assert_array_equal(g[k], 0.0)
    assert (g["flag"] == "expiry_day").all()


def test_zero_vol_gives_discounted_forward_intrinsic():
    T, r, K = 0.5, 0.04, 100.0
    disc_k = K * np.exp(-r * T)  # 98.0199
    S = np.array([105.0, 95.0, 105.0, 95.0])
    call = np.array([True, True, False, False])
    g = bs_greeks(S, K, T, r, 0.0, call)
    np.testing.assert_allclose(g["price"], [105.0 - disc_k, 0.0, 0.0, disc_k - 95.0], atol=1e-12)
    np.testing.assert_array_equal(g["delta"], [1.0, 0.0, 0.0, -1.0])
    np.testing.assert_array_equal(g["gamma"], 0.0)
    np.testing.assert_array_equal(g["vega"], 0.0)
    # theta and rho of the discounted intrinsic (the sigma -> 0 limits)
    np.testing.assert_allclose(g["theta"], [-r * disc_k / 365, 0.0, 0.0, r * disc_k / 365], atol=1e-15)
    np.testing.assert_allclose(g["rho"], [T * disc_k / 100, 0.0, 0.0, -T * disc_k / 100], atol=1e-15)
    assert (g["flag"] == "zero_vol").all()
    # the limit agrees with a tiny positive vol
    np.testing.assert_allclose(bs_price(S, K, T, r, 1e-9, call), g["price"], atol=1e-9)
    tiny = bs_greeks(S, K, T, r, 1e-6, call)
    np.testing.assert_allclose(tiny["theta"], g["theta"], atol=1e-9)
    np.testing.assert_allclose(tiny["rho"], g["rho"], atol=1e-9)


def test_expired_and_missing_inputs_are_defined():
    g = bs_greeks(
        [100.0, np.nan, 100.0, 100.0, 100.0, -1.0],
        [100.0, 100.0, 100.0, np.nan, 0.0, 100.0],
        [-1 / 365, 0.1, 0.1, 0.1, 0.1, 0.1],
        0.05,
        [0.2, 0.2, np.nan, 0.2, 0.2, 0.2],
        True,
    )
    assert list(g["flag"]) == ["expired"] + ["missing_input"] * 5
    assert g["price"][0] == 0.0
    assert np.isnan(g["price"][1:]).all()
    for k in ["delta", "gamma", "theta", "vega", "rho"]:
        np.testing.assert_array_equal(g[k], 0.0)  # never NaN in a sum
    # S == 0 (a worthless underlying after a crash): call 0, put K e^{-rT}
    assert bs_price(0.0, 100.0, 1.0, 0.05, 0.3, True) == 0.0
    assert bs_price(0.0, 100.0, 1.0, 0.05, 0.3, False) == pytest.approx(100 * np.exp(-0.05))
    # no warnings, no exceptions on a mixed batch
    with np.errstate(all="raise"):
        bs_greeks([100.0, 0.0, np.nan], [100.0, 100.0, 100.0], [0.0, 0.5, -0.1], 0.0, [0.0, 0.2, 0.2], [True, False, True])


# --- defects of the earlier system -------------------------------------------------------------------


def test_defect_rate_passed_as_decimal_to_mibian():
    """The engine's price at r = 0.05 is mibian's at r = 5 (percent), not mibian's at 0.05 (= 0.05%)."""
    ours = float(bs_price(100.0, 100.0, 365 / 365, 0.05, 0.25, True))
    right = mibian.BS([100.0, 100.0, 5.0, 365], volatility=25.0).callPrice
    wrong = mibian.BS([100.0, 100.0, 0.05, 365], volatility=25.0).callPrice
    assert ours == pytest.approx(right, abs=1e-9)
    assert abs(ours - wrong) > 1.0  # 12.34 vs 9.95: the 0.05% rate is a different option price


def test_defect_vega_and_rho_scaled_twice():
    """Vega per vol point is the price change for sigma + 0.01, not a hundredth of it."""
    S, K, T, r, v = 100.0, 100.0, 0.5, 0.04, 0.3
    g = bs_greeks(S, K, T, r, v, True)
    one_point = float(bs_price(S, K, T, r, v + 0.005, True) - bs_price(S, K, T, r, v - 0.005, True))
    one_pct_rate = float(bs_price(S, K, T, r + 0.005, v, True) - bs_price(S, K, T, r - 0.005, v, True))
    assert g["vega"] == pytest.approx(one_point, rel=1e-4)
    assert g["rho"] == pytest.approx(one_pct_rate, rel=1e-4)
    assert g["vega"] > 10 * one_point / 100  # the twice-divided value would be 100x smaller
    assert g["rho"] > 10 * one_pct_rate / 100


# --- realised vol ------------------------------------------------------------------------------------


def test_realized_volatility_window_and_no_lookahead():
    idx = pd.bdate_range("2024-01-01", periods=120)
    rng = np.random.default_rng(7)
    lr = pd.DataFrame({"AAA": rng.normal(0, 0.01, 120), "BBB": rng.normal(0, 0.02, 120)}, index=idx)
    as_of = idx[[59, 80, 119]]
    rv = realized_volatility(lr, as_of, window=60)
    expected = lr["AAA"].iloc[21:81].std(ddof=1) * np.sqrt(252)
    assert rv.loc[idx[80], "AAA"] == pytest.approx(expected, rel=1e-12)
    assert rv.loc[idx[59], "BBB"] == pytest.approx(lr["BBB"].iloc[:60].std() * np.sqrt(252), rel=1e-12)
    shocked = lr.copy()
    shocked.iloc[81:] *= 50  # the future changes; values as of idx[80] must not
    assert realized_volatility(shocked, as_of, window=60).loc[idx[80], "AAA"] == rv.loc[idx[80], "AAA"]
    assert np.isnan(realized_volatility(lr, idx[[58]], window=60).iloc[0, 0])  # too short
    long = lr.rename_axis(index="date", columns="symbol").stack().rename("log_return").reset_index()
    pd.testing.assert_frame_equal(realized_volatility(long, as_of), rv, check_names=False)


# --- position Greeks ---------------------------------------------------------------------------------


def _positions():
    rows = [
        # id, symbol, type, qty, entry, entry_date, underlying, opt, K, expiry, mult, is_option, iv
        (1, "AAPL", "LONG", 100.0, 180.0, "2025-01-02", "AAPL", None, np.nan, None, 1.0, False, np.nan),
        (2, "AAPL250620C00200000", "LC", 2.0, 5.0, "2025-01-02", "AAPL", "C", 200.0, "2025-06-20", 100.0, True, 0.30),
        (3, "AAPL250620P00180000", "SP", -3.0, 4.0, "2025-01-03", "AAPL", "P", 180.0, "2025-06-20", 100.0, True, np.nan),
        (4, "VIX250115C00020000", "LC", 5.0, 1.5, "2025-01-02", "^VIX", "C", 20.0, "2025-01-03", 100.0, True, 0.9),
    ]
    cols = ["position_id", "symbol", "position_type", "quantity", "entry_price", "entry_date", "underlying_symbol",
            "option_type", "strike", "expiration", "multiplier", "is_option", "implied_vol"]
    df = pd.DataFrame(rows, columns=cols)
    df["entry_date"] = pd.to_datetime(df["entry_date"])
    df["expiration"] = pd.to_datetime(df["expiration"])
    return df


def test_position_greeks_book():
    pos = _positions()
    dates = pd.DatetimeIndex(["2025-01-02", "2025-01-03", "2025-01-06"])
    prices = pd.DataFrame({"AAPL": [190.0, 192.0, 195.0], "^VIX": [18.0, 19.0, 21.0]}, index=dates)
    short_rate = pd.Series([4.0, np.nan, 4.2], index=dates)  # percent; the NaN day carries 4.0 forward
    rv = pd.DataFrame({"AAPL": [0.25, 0.26, 0.27]}, index=dates)
    out = position_greeks(pos, prices, dates, short_rate, rv)
    assert list(out.columns) == POSITION_GREEKS_COLUMNS
    # position 3 enters on 01-03: 3 + 4 + 4 rows
    assert len(out) == 11
    assert out.groupby("date").size().tolist() == [3, 4, 4]
    row = out.set_index(["date", "position_id"])

    stock = row.loc[(dates[1], 1)]
    assert stock["delta"] == 1.0 and stock["gamma"] == 0.0
    assert stock["position_delta"] == 100.0
    assert stock["dollar_delta"] == pytest.approx(100 * 192.0)

    call = row.loc[(dates[1], 2)]
    T = (pd.Timestamp("2025-06-20") - dates[1]).days / 365
    g = bs_greeks(192.0, 200.0, T, 0.04, 0.30, True)
    assert call["vol_source"] == "implied"
    assert call["days_to_expiry"] == (pd.Timestamp("2025-06-20") - dates[1]).days
    assert call["model_price"] == pytest.approx(float(g["price"]), abs=1e-12)
    # defect: position Greeks carry the x100 multiplier: 2 long calls -> 2 x 100 x delta
    assert call["position_delta"] == pytest.approx(2 * 100 * float(g["delta"]), abs=1e-12)
    assert call["position_vega"] == pytest.approx(2 * 100 * float(g["vega"]), abs=1e-12)
    assert call["position_rho"] == pytest.approx(2 * 100 * float(g["rho"]), abs=1e-12)
    assert call["dollar_delta"] == pytest.approx(call["position_delta"] * 192.0)
    # dollar gamma: change in dollar delta for a 1% move = position_gamma x S^2 / 100
    assert call["dollar_gamma"] == pytest.approx(2 * 100 * float(g["gamma"]) * 192.0**2 / 100)

    put = row.loc[(dates[2], 3)]
    g = bs_greeks(195.0, 180.0, (pd.Timestamp("2025-06-20") - dates[2]).days / 365, 0.042, 0.27, False)
    assert put["vol_source"] == "realized" and put["implied_vol"] == 0.27
    assert put["position_delta"] == pytest.approx(-3 * 100 * float(g["delta"]))
    assert put["position_delta"] > 0  # a short put is long delta

    vix = row.loc[[(dates[0], 4), (dates[1], 4), (dates[2], 4)]]
    assert vix["underlying_price"].tolist() == [18.0, 19.0, 21.0]  # priced off ^VIX
    assert vix["flag"].tolist() == ["ok", "expiry_day", "expired"]
    assert vix["model_price"].tolist()[1:] == [0.0, 0.0]  # OTM on expiry day, then expired
    assert vix["position_delta"].iloc[2] == 0.0


def test_position_greeks_missing_vol_and_price_are_flagged_not_nan_in_sums():
    pos = _positions()
    pos.loc[pos["position_id"] == 2, "implied_vol"] = np.nan
    dates = pd.DatetimeIndex(["2025-01-06"])
    prices = pd.DataFrame({"AAPL": [195.0]}, index=dates)  # no ^VIX
    out = position_greeks(pos, prices, dates, 4.0, None).set_index("position_id")
    assert out.loc[2, "vol_source"] == "none" and out.loc[2, "flag"] == "missing_input"
    assert np.isnan(out.loc[2, "model_price"])
    assert out.loc[4, "flag"] == "expired"
    assert out[["position_delta", "position_gamma", "dollar_delta", "dollar_gamma"]].notna().all().all()
    pos.loc[pos["position_id"] == 4, "expiration"] = pd.Timestamp("2025-03-21")
    out = position_greeks(pos, prices, dates, 4.0, None).set_index("position_id")
    assert out.loc[4, "flag"] == "missing_input"  # no ^VIX close
    assert out.loc[4, "dollar_delta"] == 0.0
