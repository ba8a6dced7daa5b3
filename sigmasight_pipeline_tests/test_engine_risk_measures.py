"""``engines.risk_measures`` on hand-computed cases and independent references (spec/risk_measures.md).

* VaR and ES equal ``skfolio.measures.value_at_risk`` / ``cvar`` (skfolio 1.12) on the same P&L vectors, with
  integer and fractional k = (1 - a) N; ES >= VaR; a book of gains has a negative VaR, flagged.
* Full revaluation: a long call's P&L in a -20% session is Black-Scholes-Merton repricing computed here by hand
  (not delta x move); a short put loses more than its delta says.
* Parametric: a one-factor book without specific risk has sigma = |x| sqrt(F); Euler contributions add up to
  sigma and to ES; scaling a position by 2 doubles its contribution.
* Backtest: 12 exceptions in 250 sessions is red, with Kupiec's statistic computed by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from skfolio.measures import cvar, value_at_risk as skfolio_var

from sigmasight_pipeline.engines import risk_measures as rm
from sigmasight_pipeline.engines.factors import rolling_factor_betas

SESSIONS = pd.bdate_range("2024-01-02", periods=260)
DAY = SESSIONS[-1]


# --- VaR and ES ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "level", "k"), [
    (100, 0.95, 5.0), (100, 0.99, 1.0), (200, 0.975, 5.0),  # integer k: VaR is the (k+1)-th worst
    (250, 0.95, 12.5), (250, 0.975, 6.25), (250, 0.99, 2.5), (37, 0.95, 1.85),  # fractional k
])
def test_var_and_es_equal_skfolio(n, level, k):
    rng = np.random.default_rng(n)
    pnl = rng.standard_t(4, size=(6, n)) * 10_000.0
    assert rm.tail_count(level, n) == k
    var, es, weights = rm.tail_risk(pnl, level)
    for row in range(len(pnl)):
        ref_var, ref_es = skfolio_var(pnl[row], level), cvar(pnl[row], level)
        assert var[row] == pytest.approx(ref_var, rel=1e-12, abs=0)
        assert es[row] == pytest.approx(ref_es, rel=1e-12, abs=0)
        assert es[row] >= var[row]
        # the spec's definitions: VaR = -p(j + 1), ES = -(p(1) + ... + p(j) + (k - j) p(j + 1)) / k
        p, j = np.sort(pnl[row]), math.floor(k)
        assert var[row] == -p[j]
        assert es[row] == pytest.approx(-(p[:j].sum() + (k - j) * p[j]) / k, rel=1e-13)
        assert -(weights[row] * pnl[row]).sum() == pytest.approx(es[row], rel=1e-13)
    assert rm.value_at_risk(pnl[0], level) == var[0] and rm.expected_shortfall(pnl[0], level) == es[0]


def test_integer_k_takes_the_next_worst_scenario():
    pnl = -np.arange(1.0, 101.0)  # losses 1..100: the worst is -100
    assert rm.value_at_risk(pnl, 0.95) == 95.0  # the sixth worst of 100 (k = 5): 100, 99, 98, 97, 96, 95
    assert rm.expected_shortfall(pnl, 0.95) == pytest.approx((100 + 99 + 98 + 97 + 96) / 5)


def test_es_is_never_below_var_and_nans_are_not_scenarios():
    rng = np.random.default_rng(7)
    pnl = rng.normal(size=(500, 250)) * rng.uniform(1, 1e6, size=(500, 1))
    for level in (0.95, 0.975, 0.99):
        var, es, _ = rm.tail_risk(pnl, level)
        assert (es >= var).all()
    with_gaps = np.concatenate([pnl[:1, :120], np.full((1, 30), np.nan)], axis=1)
    assert rm.value_at_risk(with_gaps, 0.99)[0] == skfolio_var(pnl[0, :120], 0.99)
    assert np.isnan(rm.tail_risk(np.full((1, 5), np.nan), 0.99)[0]).all()


def test_parametric_var_es_are_the_normal_quantile_and_tail_mean():
    var, es = rm.normal_var_es(1_000.0, 0.99)
    assert var == pytest.approx(2326.3478740408408, rel=1e-14)
    assert es == pytest.approx(1000 * math.exp(-0.5 * 2.3263478740408408 ** 2) / math.sqrt(2 * math.pi) / 0.01, rel=1e-12)
    assert es > var


# --- a small book: inputs as the warehouse stores them -------------------------------------------------------------

def bs_by_hand(S, K, T, r, sigma, q, call):
    """Black-Scholes-Merton with a continuous dividend yield, written out."""
    n = lambda x: 0.5 * math.erfc(-x / math.sqrt(2.0))  # noqa: E731
    d1 = (math.log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / (sigma * math.sqrt(T))
    d2 = d1 - sigma * math.sqrt(T)
    if call:
        return S * math.exp(-q * T) * n(d1) - K * math.exp(-r * T) * n(d2)
    return K * math.exp(-r * T) * n(-d2) - S * math.exp(-q * T) * n(-d1)


def delta_by_hand(S, K, T, r, sigma, q, call):
    d1 = (math.log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / (sigma * math.sqrt(T))
    n = 0.5 * math.erfc(-d1 / math.sqrt(2.0))
    return math.exp(-q * T) * (n if call else n - 1.0)


S0, STRIKE, DAYS, VOL, Q, IRX = 100.0, 100.0, 30, 0.30, 0.01, 4.0


def book(rows: list[dict], dates=(DAY,), betas: dict | None = None, resid: dict | None = None,
         factors=("Market",), returns: pd.DataFrame | None = None):
    """Everything ``risk_measures_range`` reads, for ``rows`` (symbol, quantity[, option_type, strike]) held on
    ``dates``: stocks at S0 = 100, options on XYZ at S0 with 30 days, 30% vol, q 1%, ^IRX 4%."""
    dates = pd.DatetimeIndex(dates)
    pos, vals, greeks, pb = [], [], [], []
    for i, r in enumerate(rows, start=1):
        opt = "option_type" in r
        under = r.get("underlying", "XYZ") if opt else r["symbol"]
        mult = 100.0 if opt else 1.0
        pos.append(dict(position_id=i, symbol=r["symbol"], underlying_symbol=under, is_option=opt,
                        quantity=float(r["quantity"]), multiplier=mult, strike=r.get("strike", np.nan),
                        option_type=r.get("option_type")))
        for d in dates:
            if opt:
                call = r["option_type"] == "C"
                v = bs_by_hand(S0, r["strike"], DAYS / 365, IRX / 100, VOL, Q, call)
                delta = delta_by_hand(S0, r["strike"], DAYS / 365, IRX / 100, VOL, Q, call)
                mv, dae = v * r["quantity"] * mult, delta * r["quantity"] * mult * S0
            else:
                mv = dae = r["quantity"] * S0
            vals.append(dict(date=d, position_id=i, market_value=mv, delta_adjusted_exposure=dae))
            greeks.append(dict(date=d, position_id=i, underlying_price=S0, implied_vol=VOL if opt else np.nan,
                               days_to_expiry=DAYS if opt else np.nan, dividend_yield=Q if opt else np.nan))
            for f in factors:
                b = (betas or {}).get(under, {}).get(f, 1.0 if f == "Market" else 0.0)
                pb.append(dict(date=d, position_id=i, factor_name=f, beta=b, residual_std=(resid or {}).get(under, 0.01)))
    symbols = sorted({p["underlying_symbol"] for p in pos} | {"SPY"})
    if returns is None:
        rng = np.random.default_rng(0)
        returns = pd.DataFrame(rng.normal(0, 0.01, size=(len(SESSIONS), len(symbols))), index=SESSIONS, columns=symbols)
    k = len(factors)
    return dict(
        positions=pd.DataFrame(pos), valuations=pd.DataFrame(vals), greeks=pd.DataFrame(greeks),
        position_betas=pd.DataFrame(pb), factor_cov=np.broadcast_to(np.eye(k) * 1e-4, (len(dates), k, k)).copy(),
        returns=returns, market_returns=returns["SPY"], short_rate=pd.Series(IRX, index=SESSIONS),
        equity=pd.Series(1e6, index=dates), dates=dates, factors=list(factors),
    )


def scenarios(inputs: dict) -> rm.Scenarios:
    g = rm.book_grids(inputs["positions"], inputs["valuations"], inputs["greeks"], inputs["position_betas"],
                      inputs["short_rate"], inputs["dates"], inputs["factors"])
    return rm.scenario_pnl(g, inputs["returns"], inputs["market_returns"])


def crash_returns(move: float = -0.20) -> pd.DataFrame:
    r = pd.DataFrame(0.001, index=SESSIONS, columns=["SPY", "XYZ"])
    r.loc[SESSIONS[-40], ["SPY", "XYZ"]] = move
    return r


# --- full revaluation ----------------------------------------------------------------------------------------------

def test_a_long_call_in_a_minus_20_day_is_repriced_not_delta_approximated():
    inputs = book([{"symbol": "XYZ C100", "quantity": 10, "option_type": "C", "strike": STRIKE}], returns=crash_returns())
    sc = scenarios(inputs)
    s = list(pd.DatetimeIndex(sc.sessions[0])).index(SESSIONS[-40])
    before = bs_by_hand(S0, STRIKE, DAYS / 365, 0.04, VOL, Q, True)
    after = bs_by_hand(S0 * 0.8, STRIKE, (DAYS - 1) / 365, 0.04, VOL, Q, True)
    assert sc.pnl[0, s, 0] == pytest.approx((after - before) * 10 * 100, rel=1e-10)
    delta_pnl = delta_by_hand(S0, STRIKE, DAYS / 365, 0.04, VOL, Q, True) * -20.0 * 1000
    assert sc.pnl[0, s, 0] > delta_pnl + 1_000  # convexity: a long call loses far less than delta x move
    # a quiet session (+0.1%): the same repricing, one day of theta included
    quiet = bs_by_hand(S0 * 1.001, STRIKE, (DAYS - 1) / 365, 0.04, VOL, Q, True)
    assert sc.pnl[0, 0, 0] == pytest.approx((quiet - before) * 1000, rel=1e-10)


def test_a_short_put_loses_more_than_its_delta_says():
    inputs = book([{"symbol": "XYZ P100", "quantity": -10, "option_type": "P", "strike": STRIKE}], returns=crash_returns())
    sc = scenarios(inputs)
    s = list(pd.DatetimeIndex(sc.sessions[0])).index(SESSIONS[-40])
    delta = delta_by_hand(S0, STRIKE, DAYS / 365, 0.04, VOL, Q, False)  # per share, negative
    delta_pnl = delta * -10 * 100 * (-20.0)  # the short put's linear loss
    before = bs_by_hand(S0, STRIKE, DAYS / 365, 0.04, VOL, Q, False)
    after = bs_by_hand(80.0, STRIKE, (DAYS - 1) / 365, 0.04, VOL, Q, False)
    assert sc.pnl[0, s, 0] == pytest.approx((after - before) * -1000, rel=1e-10)
    assert sc.pnl[0, s, 0] < delta_pnl - 1_000


def test_stocks_gain_market_value_times_return_and_gaps_are_filled_with_beta_times_market():
    r = crash_returns()
    r["NEW"] = np.nan  # listed 20 sessions ago
    r.iloc[-20:, r.columns.get_loc("NEW")] = 0.002
    r["GAP"] = 0.0015
    r.iloc[-5, r.columns.get_loc("GAP")] = np.nan  # one gap
    r["DARK"] = np.where(np.arange(len(r)) % 2, 0.001, np.nan)  # gaps and no beta: left out
    rows = [{"symbol": "NEW", "quantity": 1_000}, {"symbol": "GAP", "quantity": -500}, {"symbol": "DARK", "quantity": 10}]
    inputs = book(rows, betas={"NEW": {"Market": 1.5}, "GAP": {"Market": 0.5}, "DARK": {"Market": np.nan}}, returns=r)
    sc = scenarios(inputs)
    s = list(pd.DatetimeIndex(sc.sessions[0])).index(SESSIONS[-40])
    assert sc.pnl[0, s, 0] == pytest.approx(100_000 * 1.5 * -0.20)  # NEW filled: beta x market
    assert sc.pnl[0, s, 1] == pytest.approx(-50_000 * 0.0015)
    assert sc.pnl[0, -5, 1] == pytest.approx(-50_000 * 0.5 * 0.001)  # GAP's gap filled
    assert (sc.pnl[0, :, 2] == 0).all() and sc.left_out[0] == ["DARK"]
    assert sc.filled[0] == (250 - 20) + 1
    assert not sc.included[0, 2] and sc.included[0, :2].all()
    out = rm.risk_measures_range(**inputs)
    flag = out.measures.query("method == 'historical' and measure == 'var'").flag.iloc[0]
    assert "filled_returns=231" in flag and "left_out=DARK" in flag
    assert out.measures.query("measure == 'filled_returns'").value.iloc[0] == 231


def test_a_book_of_gains_has_a_negative_var_flagged_never_clipped():
    r = pd.DataFrame({"SPY": 0.001, "UP": np.linspace(0.001, 0.02, len(SESSIONS))}, index=SESSIONS)
    out = rm.risk_measures_range(**book([{"symbol": "UP", "quantity": 1_000}], returns=r))
    hist = out.measures.query("method == 'historical' and measure in ['var', 'es'] and horizon_days == 1")
    assert (hist.value < 0).all()
    var99 = hist.query("measure == 'var' and level == 0.99").iloc[0]
    gains = np.sort(100_000 * r["UP"].iloc[-250:].to_numpy())
    assert var99.value == -gains[2] and "negative_var" in var99.flag
    assert hist.query("measure == 'es'").flag.str.contains("negative_es").all()


def test_history_flags_limited_and_insufficient():
    r = crash_returns()
    r.iloc[: len(r) - 150] = np.nan  # 150 sessions with a market return
    out = rm.risk_measures_range(**book([{"symbol": "XYZ", "quantity": 100}], returns=r))
    row = out.measures.query("measure == 'scenarios'").iloc[0]
    assert row.value == 150 and row.flag.startswith("limited_history")
    r.iloc[: len(r) - 99] = np.nan
    out = rm.risk_measures_range(**book([{"symbol": "XYZ", "quantity": 100}], returns=r))
    hist = out.measures.query("method == 'historical' and measure in ['var', 'es']")
    assert hist.value.isna().all() and hist.flag.str.contains("insufficient_history").all()
    assert out.position_contributions.query("method == 'historical'").empty


def test_each_date_reads_its_own_window_only():
    dates = SESSIONS[-3:]
    inputs = book([{"symbol": "XYZ", "quantity": 100}], dates=dates)
    out = rm.risk_measures_range(**inputs)
    later = inputs["returns"].copy()
    later.iloc[-1] = -0.5  # the last session's returns: after the first two dates
    changed = rm.risk_measures_range(**{**inputs, "returns": later, "market_returns": later["SPY"]})
    first_two = out.measures["date"] < dates[-1]
    pd.testing.assert_frame_equal(out.measures[first_two], changed.measures[first_two])
    assert not out.measures[~first_two].equals(changed.measures[~first_two])


# --- parametric --------------------------------------------------------------------------------------------------------

def test_one_factor_book_without_specific_risk_has_sigma_x_sqrt_f():
    rows = [{"symbol": "A", "quantity": 1_000}, {"symbol": "B", "quantity": 500}]
    inputs = book(rows, betas={"A": {"Market": 1.2}, "B": {"Market": -0.5}}, resid={"A": 0.0, "B": 0.0})
    inputs["factor_cov"] = np.full((1, 1, 1), 2.5e-4)
    out = rm.risk_measures_range(**inputs)
    x = 100_000 * 1.2 + 50_000 * -0.5  # 95,000 dollars of Market exposure
    sigma = abs(x) * math.sqrt(2.5e-4)
    m = out.measures.set_index(["method", "measure", "level", "horizon_days"])["value"]
    assert m[("parametric", "volatility", 0.0, 1)] == pytest.approx(sigma, rel=1e-14)
    assert m[("parametric", "var", 0.99, 1)] == pytest.approx(2.3263478740408408 * sigma, rel=1e-13)
    assert m[("parametric", "var", 0.99, 10)] == pytest.approx(2.3263478740408408 * sigma * math.sqrt(10), rel=1e-13)
    assert m[("parametric", "volatility", 0.0, 252)] == pytest.approx(sigma * math.sqrt(252), rel=1e-14)
    assert m[("parametric", "volatility_of_equity", 0.0, 252)] == pytest.approx(sigma * math.sqrt(252) / 1e6, rel=1e-14)
    assert m[("parametric", "factor_share", 0.0, 1)] == 1.0 and m[("parametric", "specific_share", 0.0, 1)] == 0.0
    # tracking error: the active Market exposure is x - equity
    assert m[("parametric", "tracking_error", 0.0, 1)] == pytest.approx(abs(x - 1e6) * math.sqrt(2.5e-4), rel=1e-13)
    fac = out.factor_contributions.set_index("factor_name")
    assert fac.loc["Market", "contribution"] == pytest.approx(sigma, rel=1e-14)
    assert fac.loc["Market", "dollar_exposure"] == pytest.approx(x, rel=1e-15)
    assert fac.loc["Specific", "contribution"] == 0.0


def test_a_stock_and_its_options_share_one_specific_risk():
    rows = [{"symbol": "XYZ", "quantity": 1_000}, {"symbol": "XYZ C100", "quantity": -5, "option_type": "C", "strike": STRIKE}]
    inputs = book(rows, resid={"XYZ": 0.02})
    inputs["factor_cov"] = np.zeros((1, 1, 1))  # specific risk only
    out = rm.risk_measures_range(**inputs)
    e = inputs["valuations"].delta_adjusted_exposure.to_numpy()
    sigma = out.measures.query("measure == 'volatility' and horizon_days == 1").value.iloc[0]
    assert sigma == pytest.approx(abs(e.sum()) * 0.02, rel=1e-14)  # the written call nets the stock's residual
    assert sigma < math.hypot(*(e * 0.02))
    pc = out.position_contributions.query("method == 'parametric'").set_index("position_id")
    assert pc.contribution.to_numpy() == pytest.approx(e * e.sum() * 0.02 ** 2 / sigma, rel=1e-13)


def _euler_book(scale: float = 1.0, split: bool = False):
    factors = ("Market", "Value", "Growth")
    betas = {"A": {"Market": 1.1, "Value": 0.4, "Growth": -0.2}, "B": {"Market": 0.8, "Value": -0.3, "Growth": 0.5},
             "XYZ": {"Market": 1.3, "Value": 0.1, "Growth": 0.6}}
    rows = [{"symbol": "A", "quantity": 2_000 * scale}, {"symbol": "B", "quantity": -800 * scale},
            {"symbol": "XYZ C100", "quantity": 15 * scale, "option_type": "C", "strike": 105.0},
            {"symbol": "XYZ P100", "quantity": -12 * scale, "option_type": "P", "strike": 95.0}]
    if split:  # position A as two lots of 1,000 (two positions on the same symbol)
        rows = [{"symbol": "A", "quantity": 1_000 * scale}, *rows[1:], {"symbol": "A", "quantity": 1_000 * scale}]
    rng = np.random.default_rng(11)
    f = rng.multivariate_normal(np.zeros(3), [[1e-4, 2e-5, -1e-5], [2e-5, 4e-5, 5e-6], [-1e-5, 5e-6, 6e-5]], size=len(SESSIONS))
    r = pd.DataFrame({"SPY": f[:, 0]}, index=SESSIONS)
    for sym, b in betas.items():
        r[sym] = f @ np.array([b[k] for k in factors]) + rng.normal(0, 0.012, len(SESSIONS))
    inputs = book(rows, betas=betas, resid={"A": 0.012, "B": 0.009, "XYZ": 0.015}, factors=factors,
                  returns=r)
    inputs["factor_cov"] = np.array([[[1e-4, 2e-5, -1e-5], [2e-5, 4e-5, 5e-6], [-1e-5, 5e-6, 6e-5]]])
    return rm.risk_measures_range(**inputs)


def test_euler_contributions_add_up_to_es_and_sigma():
    out = _euler_book()
    m = out.measures.set_index(["method", "measure", "level", "horizon_days"])["value"]
    pc = out.position_contributions
    for level in rm.ES_LEVELS:
        got = pc.query("method == 'historical' and level == @level").contribution.sum()
        assert got == pytest.approx(m[("historical", "es", level, 1)], rel=1e-12)
        shares = pc.query("method == 'historical' and level == @level").share.sum()
        assert shares == pytest.approx(1.0, rel=1e-12)
    sigma = m[("parametric", "volatility", 0.0, 1)]
    par = pc.query("method == 'parametric'")
    assert par.contribution.sum() == pytest.approx(sigma, rel=1e-12)
    assert out.factor_contributions.contribution.sum() == pytest.approx(sigma, rel=1e-12)
    # the marginal contribution is the derivative of sigma in the position's exposure
    g, F = out.parametric, np.array([[1e-4, 2e-5, -1e-5], [2e-5, 4e-5, 5e-6], [-1e-5, 5e-6, 6e-5]])
    e = np.array([200_000.0, -80_000.0, 0, 0])
    grids_e = par.set_index("position_id")
    assert (grids_e.contribution / grids_e.marginal).to_numpy()[:2] == pytest.approx(e[:2], rel=1e-12)
    shares = m[("parametric", "factor_share", 0.0, 1)] + m[("parametric", "specific_share", 0.0, 1)]
    assert shares == pytest.approx(1.0, rel=1e-14)
    assert g.sigma[0] ** 2 == pytest.approx(g.exposures[0] @ F @ g.exposures[0] + g.specific_variance[0], rel=1e-14)


def test_scaling_a_position_by_2_doubles_its_contribution():
    one, two = _euler_book(), _euler_book(scale=2.0)
    a, b = one.position_contributions, two.position_contributions
    np.testing.assert_allclose(b.contribution, 2.0 * a.contribution, rtol=1e-12)  # the whole book x 2
    np.testing.assert_allclose(b.share, a.share, rtol=1e-12)
    # position A of 2,000 shares against two positions of 1,000: its contribution is twice each half's
    halves = _euler_book(split=True).position_contributions
    for (method, level), whole in a[a.position_id == 1].groupby(["method", "level"]):
        part = halves[(halves.method == method) & (halves.level == level)].set_index("position_id").contribution
        assert part[1] == pytest.approx(part[5], rel=1e-12)
        assert whole.contribution.iloc[0] == pytest.approx(2.0 * part[1], rel=1e-12)


# --- backtest ------------------------------------------------------------------------------------------------------

def test_twelve_exceptions_in_250_is_red_with_kupiec_by_hand():
    dates = pd.bdate_range("2025-01-02", periods=250)
    var = np.full(250, 1_000.0)
    pnl = np.full(250, -10.0)
    pnl[np.arange(5, 250, 20)[:12]] = -1_500.0
    out = rm.var_backtest(dates, dates - pd.offsets.BDay(1), var, pnl)
    last = out.iloc[-1]
    assert (last.exceptions, last.window_sessions, last.zone) == (12, 250, "red")
    p, x, n = 0.01, 12, 250
    lr = -2 * ((n - x) * math.log(1 - p) + x * math.log(p)) + 2 * ((n - x) * math.log(1 - x / n) + x * math.log(x / n))
    assert last.kupiec_lr == pytest.approx(lr, rel=1e-12)
    assert last.kupiec_p_value == pytest.approx(math.erfc(math.sqrt(lr / 2)), rel=1e-10)  # chi-square(1) tail
    assert last.kupiec_p_value < 1e-4
    assert out.exception.sum() == 12 and out.exceptions.is_monotonic_increasing


def test_backtest_zones_window_and_prior_rows():
    assert list(rm.basel_zone([0, 4, 5, 9, 10])) == ["green", "green", "yellow", "yellow", "red"]
    lr, p = rm.kupiec_pof(0, 250)
    assert lr == pytest.approx(-2 * 250 * math.log(0.99)) and 0 < p < 1
    dates = pd.bdate_range("2025-01-02", periods=3)
    # 249 earlier sessions with 6 exceptions, the first of them the oldest: it leaves the window on the 2nd date
    prior = [True] + [False] * 243 + [True] * 5
    out = rm.var_backtest(dates, dates - pd.offsets.BDay(1), [1.0, 1.0, np.nan], [-2.0, 0.0, -5.0], prior)
    assert list(out.date) == list(dates[:2])  # no VaR of the previous session: no backtest that day
    assert list(out.exceptions) == [7, 6] and list(out.window_sessions) == [250, 250]
    assert list(out.zone) == ["yellow", "yellow"] and list(out.exception) == [True, False]


# --- the regression's residual standard deviation ------------------------------------------------------------------

def test_residual_std_is_the_regressions_and_equals_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(3)
    design = pd.DataFrame(rng.normal(0, 0.01, size=(200, 2)), index=SESSIONS[:200], columns=["Market", "Value"])
    y = pd.DataFrame({"A": design @ [1.1, 0.3] + rng.normal(0, 0.02, 200)}, index=design.index)
    out = rolling_factor_betas(y, design, [design.index[-1]], window=150, min_obs=60)
    fit = sm.OLS(y["A"].iloc[-150:], sm.add_constant(design.iloc[-150:])).fit()
    assert out["residual_std"].nunique() == 1
    assert out["residual_std"].iloc[0] == pytest.approx(math.sqrt(fit.scale), rel=1e-10)


# --- the betas as the asset reads them ----------------------------------------------------------------------------


def _wide(long: pd.DataFrame) -> pd.DataFrame:
    """The long beta rows pivoted as the asset's SQL reads them: a row per (date, position), a column per factor."""
    wide = long.pivot(index=["date", "position_id"], columns="factor_name", values="beta")
    wide.columns.name = None
    resid = long.groupby(["date", "position_id"])["residual_std"].first()
    return wide.assign(residual_std=resid).reset_index()


def test_wide_betas_give_the_rows_of_the_long_ones_to_the_last_bit():
    """``book_grids`` reads the stored betas long (a row per factor) or wide (a column per factor, what the
    asset's pivot returns): the grids and every row ``risk_measures_range`` returns are identical, including a
    position whose beta on one factor is missing (NaN: left out of the parametric model) and a factor the wide
    frame has no column for (no beta)."""
    factors = ("Market", "Value", "Size")
    rows = [{"symbol": "A", "quantity": 2_000}, {"symbol": "B", "quantity": -800},
            {"symbol": "XYZC", "underlying": "XYZ", "quantity": 10, "option_type": "C", "strike": 105.0},
            {"symbol": "C", "quantity": 500}]
    betas = {"A": {"Market": 1.1, "Value": 0.3, "Size": -0.2}, "B": {"Market": 0.8, "Value": -0.4, "Size": 0.1},
             "XYZ": {"Market": 1.4, "Value": 0.0, "Size": 0.5}, "C": {"Market": 0.9, "Value": np.nan, "Size": 0.0}}
    inputs = book(rows, dates=SESSIONS[-3:], betas=betas, resid={"A": 0.012, "B": 0.009, "XYZ": 0.015, "C": 0.02},
                  factors=factors)
    inputs["factor_cov"] = np.broadcast_to(np.diag([1e-4, 4e-5, 6e-5]), (3, 3, 3)).copy()
    long = inputs["position_betas"]
    out_long = rm.risk_measures_range(**inputs)
    out_wide = rm.risk_measures_range(**{**inputs, "position_betas": _wide(long)})
    for name in ("measures", "position_contributions", "factor_contributions"):
        pd.testing.assert_frame_equal(getattr(out_wide, name), getattr(out_long, name), check_exact=True)
    assert (out_long.parametric.without_beta == 1).all()  # C: no Value beta
    # a factor without a column has no beta, as a factor without rows
    no_size = rm.book_grids(inputs["positions"], inputs["valuations"], inputs["greeks"],
                            _wide(long).drop(columns="Size"), inputs["short_rate"], inputs["dates"], factors)
    long_no_size = rm.book_grids(inputs["positions"], inputs["valuations"], inputs["greeks"],
                                 long[long.factor_name != "Size"], inputs["short_rate"], inputs["dates"], factors)
    np.testing.assert_array_equal(no_size.betas, long_no_size.betas)
    np.testing.assert_array_equal(no_size.residual_std, long_no_size.residual_std)
    assert np.isnan(no_size.betas[:, :, 2]).all() and np.isfinite(no_size.betas[:, :3, 0]).all()
