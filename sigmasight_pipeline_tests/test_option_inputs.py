"""Options inputs a real book needs (books.md, "Market data that a real book needs"): Black-Scholes-Merton
with a continuous dividend yield (QuantLib reference values; q = 0 bitwise the earlier formula), the
optional implied_vol upload column used before realised volatility (vol_source), index options (symbol
aliases; VIX options priced off spot with a note, their delta-adjusted exposure reported apart from equity
exposure), and how the report says which volatility priced each option.
"""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr
from scipy.stats import norm

from sigmasight_pipeline.engines import options as engine
from sigmasight_pipeline.engines.options import (
    POSITION_GREEKS_COLUMNS,
    SPOT_PRICING_NOTE,
    VOLATILITY_INDEXES,
    bs_greeks,
    bs_price,
    is_volatility_index_option,
    position_greeks,
)
from sigmasight_pipeline.engines.valuation import EXPOSURE_COLUMNS, group_exposures, portfolio_exposures, value_positions
from sigmasight_pipeline.marketdata.base import INDEX_OPTION_ROOTS, SYMBOLS, price_symbol_for, universe
from sigmasight_pipeline.onboarding.portfolio_csv import PortfolioValidationError, parse_portfolio_csv
from sigmasight_pipeline.quality.greeks import put_call_parity_problems
from sigmasight_pipeline.reporting.sections.risk import option_pricing_note

GREEKS = ["price", "delta", "gamma", "theta", "vega", "rho"]
VIX_NOTE = "priced off VIX spot; futures curve not modelled"


# --- Black-Scholes-Merton: QuantLib with dividends ----------------------------------------------------------
def _quantlib(ql, today, S, K, days, r, q, vol, call):
    """QuantLib's AnalyticEuropeanEngine on a BlackScholesMertonProcess (flat ACT/365 curves, so its year
    fraction is days / 365, the engine's T), converted to the engine's units: theta per calendar day
    (``thetaPerDay`` = annual theta / 365), vega and rho per 0.01 (QuantLib's are per 1.00)."""
    dc = ql.Actual365Fixed()
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(S)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, q, dc)),  # dividend yield (continuous)
        ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), vol, dc)),
    )
    option = ql.EuropeanOption(
        ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, K), ql.EuropeanExercise(today + int(days))
    )
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return [option.NPV(), option.delta(), option.gamma(), option.thetaPerDay(), option.vega() / 100, option.rho() / 100]


def test_bsm_price_and_greeks_with_dividends_equal_quantlib():
    ql = pytest.importorskip("QuantLib")
    today = ql.Date(15, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    cases = list(itertools.product(
        [0.8, 1.0, 1.25],  # S / K
        [7, 91, 365, 730],  # calendar days
        [0.15, 0.45],  # sigma
        [0.0, 0.045],  # r
        [0.0, 0.013, 0.035, 0.09],  # q
        [True, False],
    ))
    S = 100.0
    K, days, vol, r, q, call = (np.array(x) for x in zip(*[(S / m, d, v, rr, qq, c) for m, d, v, rr, qq, c in cases]))
    ours = bs_greeks(S, K, days / 365.0, r, vol, call.astype(bool), q)
    assert (ours["flag"] == "ok").all()
    ref = np.array([_quantlib(ql, today, S, *map(float, (k, d, rr, qq, v)), bool(c))
                    for k, d, rr, qq, v, c in zip(K, days, r, q, vol, call)])
    for j, name in enumerate(GREEKS):
        np.testing.assert_allclose(ours[name], ref[:, j], rtol=0, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(bs_price(S, K, days / 365.0, r, vol, call.astype(bool), q), ref[:, 0], rtol=0, atol=1e-6)
    # one case by hand: S=100, K=95, T=0.5, r=4%, q=3%, sigma=25%
    d1 = (np.log(100 / 95) + (0.04 - 0.03 + 0.5 * 0.25**2) * 0.5) / (0.25 * np.sqrt(0.5))
    d2 = d1 - 0.25 * np.sqrt(0.5)
    call_value = 100 * np.exp(-0.015) * norm.cdf(d1) - 95 * np.exp(-0.02) * norm.cdf(d2)
    g = bs_greeks(100.0, 95.0, 0.5, 0.04, 0.25, True, 0.03)
    assert float(g["price"]) == pytest.approx(call_value, abs=1e-12)
    assert float(g["delta"]) == pytest.approx(np.exp(-0.015) * norm.cdf(d1), abs=1e-14)


def test_dividends_lower_calls_raise_puts_and_keep_parity():
    K, T, r, v = 100.0, 0.75, 0.04, 0.3
    for q in (0.01, 0.05):
        c0, p0 = bs_price(100.0, K, T, r, v, True), bs_price(100.0, K, T, r, v, False)
        c, p = bs_price(100.0, K, T, r, v, True, q), bs_price(100.0, K, T, r, v, False, q)
        assert c < c0 and p > p0
        assert float(c - p) == pytest.approx(100.0 * np.exp(-q * T) - K * np.exp(-r * T), abs=1e-12)


def test_zero_vol_with_dividends_is_the_discounted_forward_intrinsic():
    S, K, T, r, q = 105.0, 100.0, 0.5, 0.04, 0.06
    fwd_s, fwd_k = S * np.exp(-q * T), K * np.exp(-r * T)  # 101.897 vs 98.020: the call is in the money
    g = bs_greeks(S, K, T, r, 0.0, np.array([True, False]), q)
    assert list(g["flag"]) == ["zero_vol", "zero_vol"]
    np.testing.assert_allclose(g["price"], [fwd_s - fwd_k, 0.0], atol=1e-12)
    np.testing.assert_allclose(g["delta"], [np.exp(-q * T), 0.0], atol=1e-15)
    np.testing.assert_allclose(g["theta"], [(q * fwd_s - r * fwd_k) / 365, 0.0], atol=1e-15)
    np.testing.assert_allclose(g["rho"], [T * fwd_k / 100, 0.0], atol=1e-15)
    tiny = bs_greeks(S, K, T, r, 1e-7, np.array([True, False]), q)  # the sigma -> 0 limit
    for name in GREEKS:
        np.testing.assert_allclose(tiny[name], g[name], atol=1e-9, err_msg=name)
    assert bs_greeks(S, K, T, r, 0.2, True, np.nan)["flag"] == "missing_input"  # a NaN q is a missing input


# --- q = 0 is the earlier formula, bit for bit -------------------------------------------------------------
def _same_bits(a, b) -> bool:
    """Equal bit for bit (the sign of zero included); NaN equals NaN."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(((a.view(np.int64) == b.view(np.int64)) | (np.isnan(a) & np.isnan(b))).all())


def test_q_zero_is_bitwise_the_formula_without_dividends():
    rng = np.random.default_rng(20250115)
    n = 50_000
    S = rng.uniform(0.0, 400.0, n)
    S[::97], S[1::101], S[2::103] = 0.0, np.nan, -1.0
    K = rng.uniform(1.0, 400.0, n)
    K[3::107] = 0.0
    T = rng.uniform(-0.05, 3.0, n)
    T[::7], T[1::13] = 0.0, 1e-9
    r = rng.uniform(-0.01, 0.09, n)
    r[::5], r[1::17] = 0.0, -0.0
    v = rng.uniform(0.0, 1.5, n)
    v[::11], v[1::19] = 0.0, 1e-12
    call = rng.random(n) < 0.5
    old = old_bs_greeks(S, K, T, r, v, call)
    assert set(old["flag"]) == set(FLAGS)  # every branch (closed form, expiry day, zero vol, expired, missing)
    for new in (bs_greeks(S, K, T, r, v, call), bs_greeks(S, K, T, r, v, call, 0.0), bs_greeks(S, K, T, r, v, call, np.zeros(n))):
        assert (new["flag"] == old["flag"]).all()
        for name in GREEKS:
            assert _same_bits(new[name], old[name]), name
    assert _same_bits(bs_price(S, K, T, r, v, call), old_bs_price(S, K, T, r, v, call))
    assert _same_bits(bs_price(S, K, T, r, v, call, 0.0), old_bs_price(S, K, T, r, v, call))


# --- position Greeks: implied vol before realised, dividend yield, VIX spot note ----------------------------
DATES = pd.DatetimeIndex(["2025-03-03", "2025-03-04"])
RATE = 4.3  # percent (^IRX)


def _book() -> pd.DataFrame:
    rows = [
        # id, symbol, qty, underlying, opt, K, expiry, mult, implied_vol, dividend_yield
        (1, "SPY", 100.0, "SPY", None, np.nan, None, 1.0, np.nan, 0.013),
        (2, "SPY250620C00600000", 2.0, "SPY", "C", 600.0, "2025-06-20", 100.0, 0.32, 0.013),  # uploaded IV
        (3, "SPY250620P00550000", -3.0, "SPY", "P", 550.0, "2025-06-20", 100.0, np.nan, 0.013),  # realised vol
        (4, "VIX250416C00020000", 10.0, "^VIX", "C", 20.0, "2025-04-16", 100.0, np.nan, np.nan),  # VIX, realised
        (5, "SPXW250620P05500000", 1.0, "^GSPC", "P", 5500.0, "2025-06-20", 100.0, 0.18, np.nan),  # SPX, uploaded IV
        (6, "ZZZZ250620C00050000", 1.0, "ZZZZ", "C", 50.0, "2025-06-20", 100.0, np.nan, np.nan),  # no vol at all
    ]
    cols = ["position_id", "symbol", "quantity", "underlying_symbol", "option_type", "strike", "expiration",
            "multiplier", "implied_vol", "dividend_yield"]
    df = pd.DataFrame(rows, columns=cols)
    df["is_option"] = df["option_type"].notna()
    df["entry_date"] = pd.Timestamp("2025-01-02")
    df["expiration"] = pd.to_datetime(df["expiration"])
    return df


def _market():
    prices = pd.DataFrame({"SPY": [580.0, 585.0], "^VIX": [17.5, 19.0], "^GSPC": [5820.0, 5870.0], "ZZZZ": [48.0, 49.0]},
                          index=DATES)
    realized = pd.DataFrame({"SPY": [0.20, 0.21], "^VIX": [0.95, 0.97], "^GSPC": [0.17, 0.18]}, index=DATES)
    return prices, realized


def test_position_greeks_use_implied_vol_before_realised_and_say_which():
    prices, realized = _market()
    out = position_greeks(_book(), prices, DATES, RATE, realized)
    assert list(out.columns) == POSITION_GREEKS_COLUMNS
    row = out.set_index(["date", "position_id"])
    d = DATES[1]
    T = (pd.Timestamp("2025-06-20") - d).days / 365

    call = row.loc[(d, 2)]  # implied vol 0.32 although SPY's realised vol is 0.21
    assert (call["vol_source"], call["implied_vol"], call["dividend_yield"]) == ("implied", 0.32, 0.013)
    g = bs_greeks(585.0, 600.0, T, 0.043, 0.32, True, 0.013)
    assert call["model_price"] == pytest.approx(float(g["price"]), rel=1e-12)
    assert call["position_delta"] == pytest.approx(2 * 100 * float(g["delta"]), rel=1e-12)
    assert call["position_theta"] == pytest.approx(2 * 100 * float(g["theta"]), rel=1e-12)

    put = row.loc[(d, 3)]  # no implied vol: the underlying's realised vol
    assert (put["vol_source"], put["implied_vol"], put["dividend_yield"]) == ("realized", 0.21, 0.013)
    g = bs_greeks(585.0, 550.0, T, 0.043, 0.21, False, 0.013)
    assert put["model_price"] == pytest.approx(float(g["price"]), rel=1e-12)
    assert put["position_vega"] == pytest.approx(-3 * 100 * float(g["vega"]), rel=1e-12)

    spx = row.loc[(d, 5)]  # an index option: priced off ^GSPC with its uploaded vol, no note
    assert (spx["underlying_price"], spx["vol_source"], spx["implied_vol"]) == (5870.0, "implied", 0.18)
    assert pd.isna(spx["pricing_note"]) and spx["dividend_yield"] == 0.0  # no yield known: q = 0
    assert spx["model_price"] == pytest.approx(float(bs_price(5870.0, 5500.0, T, 0.043, 0.18, False)), rel=1e-12)

    none = row.loc[(d, 6)]  # neither an implied vol nor a realised history
    assert (none["vol_source"], none["flag"]) == ("none", "missing_input") and np.isnan(none["model_price"])

    stock = row.loc[(d, 1)]
    assert stock["vol_source"] == "none" and np.isnan(stock["implied_vol"]) and np.isnan(stock["dividend_yield"])
    assert pd.isna(stock["pricing_note"]) and stock["delta"] == 1.0
    assert set(out["vol_source"]) == {"implied", "realized", "none"} == set(engine.VOL_SOURCES)


def test_vix_options_are_priced_off_spot_with_a_note():
    prices, realized = _market()
    out = position_greeks(_book(), prices, DATES, RATE, realized)
    vix = out[out.position_id == 4]
    assert vix["underlying_price"].tolist() == [17.5, 19.0]  # the ^VIX spot close
    assert vix["pricing_note"].tolist() == [VIX_NOTE, VIX_NOTE]
    assert vix["vol_source"].tolist() == ["realized", "realized"] and vix["implied_vol"].tolist() == [0.95, 0.97]
    T = (pd.Timestamp("2025-04-16") - DATES[0]).days / 365
    assert vix["model_price"].iloc[0] == pytest.approx(float(bs_price(17.5, 20.0, T, 0.043, 0.95, True)), rel=1e-12)
    assert out.loc[out.position_id != 4, "pricing_note"].isna().all()
    assert is_volatility_index_option(_book()).tolist() == [False, False, False, True, False, False]


def test_position_greeks_without_a_dividend_yield_are_unchanged():
    prices, realized = _market()
    book = _book()
    without = position_greeks(book.drop(columns="dividend_yield"), prices, DATES, RATE, realized)
    for same in (book.assign(dividend_yield=np.nan), book.assign(dividend_yield=0.0)):
        pd.testing.assert_frame_equal(position_greeks(same, prices, DATES, RATE, realized), without, check_exact=True)
    with_q = position_greeks(book, prices, DATES, RATE, realized)
    spy_options = with_q.position_id.isin([2, 3])
    assert (with_q.loc[spy_options, "model_price"] != without.loc[spy_options, "model_price"]).all()
    assert (with_q.loc[~spy_options, "model_price"].fillna(-1) == without.loc[~spy_options, "model_price"].fillna(-1)).all()


def test_a_dividend_yield_that_is_not_a_decimal_is_refused_by_position():
    prices, realized = _market()
    book = _book()
    book.loc[book.position_id == 2, "dividend_yield"] = 1.3  # 1.3 % written as a percent
    book.loc[book.position_id == 3, "dividend_yield"] = -0.01
    with pytest.raises(ValueError, match=r"position 2 \(SPY250620C00600000\): 1\.3.*position 3 \(SPY250620P00550000\): -0\.01"):
        position_greeks(book, prices, DATES, RATE, realized)


def test_put_call_parity_check_holds_with_dividends():
    S, K, days, r, q, v = 585.0, 580.0, 108, 4.3, 0.013, 0.2
    T = days / 365
    row = dict(portfolio_id="p", date=DATES[1], underlying_symbol="SPY", strike=K, expiration=pd.Timestamp("2025-06-20"),
               days_to_expiry=days, short_rate=r, underlying_price=S, dividend_yield=q, is_option=True, flag="ok")
    g = pd.DataFrame([
        {**row, "option_type": "C", "model_price": float(bs_price(S, K, T, r / 100, v, True, q))},
        {**row, "option_type": "P", "model_price": float(bs_price(S, K, T, r / 100, v, False, q))},
    ])
    assert put_call_parity_problems(g) == []
    assert put_call_parity_problems(g.drop(columns="dividend_yield")) == [  # parity without q is broken by ~$2.2
        "p SPY K=580.0 2025-03-04: put-call parity broken"
    ]


# --- exposures: VIX options apart from equity exposure ------------------------------------------------------
def _exposure_book() -> pd.DataFrame:
    rows = [
        # id, symbol, qty, entry, underlying, opt, K, mult
        (1, "SPY", 100.0, 500.0, "SPY", None, np.nan, 1.0),
        (2, "VIX250416C00020000", 10.0, 2.0, "^VIX", "C", 20.0, 100.0),
        (3, "VIX250416P00018000", -5.0, 1.2, "^VIX", "P", 18.0, 100.0),
        (4, "SPXW250620P05500000", 1.0, 40.0, "^GSPC", "P", 5500.0, 100.0),
    ]
    df = pd.DataFrame(rows, columns=["position_id", "symbol", "quantity", "entry_price", "underlying_symbol",
                                     "option_type", "strike", "multiplier"])
    df["is_option"] = df["option_type"].notna()
    df["entry_date"] = pd.Timestamp("2025-01-02")
    df["tags"] = [("core",), ("vol",), ("vol",), ("hedge",)]
    return df


def _exposure_valuations(book: pd.DataFrame) -> pd.DataFrame:
    d = DATES[0]
    prices = pd.DataFrame({"SPY": [600.0], "^VIX": [20.0], "^GSPC": [5800.0]}, index=[d])
    model = pd.DataFrame({"date": [d] * 3, "position_id": [2, 3, 4], "model_price": [2.5, 1.0, 50.0],
                          "delta": [0.6, -0.3, -0.4], "underlying_price": [20.0, 20.0, 5800.0]})
    return value_positions(book, prices, [d], model)


def test_vix_option_exposure_is_reported_apart_from_equity_exposure():
    from sigmasight_pipeline.quality.valuation import exposure_problems

    book = _exposure_book()
    vals = _exposure_valuations(book)
    # each position keeps its own delta-adjusted exposure (delta x contracts x 100 x underlying)
    assert vals.set_index("position_id")["delta_adjusted_exposure"].to_dict() == pytest.approx(
        {1: 60_000.0, 2: 12_000.0, 3: 3_000.0, 4: -232_000.0})
    e = portfolio_exposures(vals, book).set_index("date").iloc[0]
    assert list(portfolio_exposures(vals, book).columns) == EXPOSURE_COLUMNS
    # equity: SPY 60,000 and the SPX put -0.4 x 100 x 5,800 = -232,000 (an equity index stays equity exposure)
    assert e["delta_adjusted_exposure"] == pytest.approx(-172_000.0)
    assert e["delta_adjusted_long"] == pytest.approx(60_000.0) and e["delta_adjusted_short"] == pytest.approx(-232_000.0)
    # volatility: the VIX call 0.6 x 10 x 100 x 20 = 12,000 and the short VIX put -0.3 x -5 x 100 x 20 = 3,000
    assert e["volatility_delta_exposure"] == pytest.approx(15_000.0)
    assert e["delta_adjusted_exposure"] + e["volatility_delta_exposure"] == pytest.approx(vals["delta_adjusted_exposure"].sum())
    # market values are unchanged: every option counts in long/short/net/gross and options exposure
    assert (e["long_exposure"], e["short_exposure"], e["net_exposure"], e["gross_exposure"]) == (67_500.0, -500.0, 67_000.0, 68_000.0)
    assert (e["options_exposure"], e["stock_exposure"], e["option_count"], e["position_count"]) == (7_000.0, 60_000.0, 3, 4)
    expo = portfolio_exposures(vals, book)
    assert exposure_problems(vals, expo, book, "p") == []
    assert exposure_problems(vals, expo.assign(delta_adjusted_exposure=-157_000.0, delta_adjusted_long=75_000.0), book, "p") == [
        f"p {DATES[0]:%Y-%m-%d}: delta-adjusted + volatility delta != sum of position delta-adjusted exposures"
    ]  # VIX counted twice


def test_group_exposures_carry_the_volatility_delta_exposure():
    book = _exposure_book()
    vals = _exposure_valuations(book)
    by_und = group_exposures(vals, book, by="underlying").set_index("group")
    assert by_und.loc["^VIX", "delta_adjusted_exposure"] == 0.0
    assert by_und.loc["^VIX", "volatility_delta_exposure"] == pytest.approx(15_000.0)
    assert by_und.loc["^VIX", "net_exposure"] == pytest.approx(2_000.0)
    assert by_und.loc["^GSPC", "delta_adjusted_exposure"] == pytest.approx(-232_000.0)
    assert by_und.loc["^GSPC", "volatility_delta_exposure"] == 0.0
    by_tag = group_exposures(vals, book, by="tag").set_index("group")
    assert by_tag.loc["vol", "volatility_delta_exposure"] == pytest.approx(15_000.0)
    assert by_tag.loc["core", "delta_adjusted_exposure"] == pytest.approx(60_000.0)


def test_a_book_without_vix_options_has_zero_volatility_exposure_and_unchanged_figures():
    book = _exposure_book()
    book = book[book.position_id.isin([1, 4])]
    vals = _exposure_valuations(book)
    e = portfolio_exposures(vals, book).iloc[0]
    assert e["volatility_delta_exposure"] == 0.0
    assert e["delta_adjusted_exposure"] == vals["delta_adjusted_exposure"].sum()


# --- index option symbols ------------------------------------------------------------------------------------
def test_index_option_roots_map_to_their_index():
    expected = {"VIX": "^VIX", "VIXW": "^VIX", "SPX": "^GSPC", "SPXW": "^GSPC", "NDX": "^NDX", "NDXP": "^NDX",
                "RUT": "^RUT", "RUTW": "^RUT"}
    assert {root: price_symbol_for(root) for root in expected} == expected == INDEX_OPTION_ROOTS
    assert price_symbol_for(" spxw ") == "^GSPC" and price_symbol_for("AAPL") == "AAPL" and price_symbol_for("SPY") == "SPY"
    held = universe(["SPXW250620P05500000", "NDX250620C20000000", "RUT250620C02200000", "VIX250416C00020000"])
    assert {"^GSPC", "^NDX", "^RUT", "^VIX"} <= set(held) and not {"SPXW", "NDX", "RUT", "VIX"} & set(held)
    # the engines' volatility index is marketdata's VIX symbol (engines may not import marketdata)
    assert set(VOLATILITY_INDEXES) == {SYMBOLS.VIX} == {INDEX_OPTION_ROOTS["VIX"]}
    assert SPOT_PRICING_NOTE.format(name=VOLATILITY_INDEXES[SYMBOLS.VIX]) == VIX_NOTE


def test_the_migration_backfills_with_the_engines_vix_symbol_and_note():
    import importlib

    migration = importlib.import_module("sigmasight_pipeline.warehouse.migrations.versions.0005_option_inputs")
    assert migration.VIX == SYMBOLS.VIX and migration.SPOT_NOTE == VIX_NOTE


# --- the upload's implied_vol column --------------------------------------------------------------------------
TODAY = date(2025, 6, 1)


def test_implied_vol_column_is_parsed_for_options():
    text = (
        "ticker,quantity,entry_price,entry_date,Implied_Vol\n"
        "AAPL,10,180,2025-01-02,\n"
        "AAPL250620C00200000,2,5,2025-01-02,0.32\n"
        "SPXW250620P05500000,-1,40,2025-01-02, 0.1875 \n"
        "AAPL250620P00180000,2,5,2025-01-02,\n"
    )
    parsed = parse_portfolio_csv(text, today=TODAY)
    assert [p.implied_vol for p in parsed] == [None, 0.32, 0.1875, None]
    assert isinstance(parsed[1].implied_vol, float)
    assert parsed[2].underlying_symbol == "SPXW" and price_symbol_for(parsed[2].underlying_symbol) == "^GSPC"
    # the column is optional
    assert [p.implied_vol for p in parse_portfolio_csv("ticker,quantity,entry_price,entry_date\nAAPL,1,1,2025-01-02\n", today=TODAY)] == [None]


def test_implied_vol_errors_are_all_reported_with_row_and_column():
    text = (
        "ticker,quantity,entry_price,entry_date,implied_vol\n"
        "SPY,5,500,2025-01-02,0.2\n"                       # row 2: a stock
        "SPY250620C00600000,1,5,2025-01-02,32\n"           # row 3: a percent
        "SPY250620P00500000,1,5,2025-01-02,0\n"            # row 4: zero
        "SPY250620P00400000,1,5,2025-01-02,abc\n"          # row 5: not a number
        "SPY250620P00300000,1,5,2025-01-02,-0.1\n"         # row 6: negative
        "SPY250620P00350000,0,5,2025-01-02,5\n"            # row 7: zero quantity and 5 (not < 5)
        "SPY250620P00360000,1,5,2025-01-02,4.99\n"         # row 8: fine
    )
    with pytest.raises(PortfolioValidationError) as info:
        parse_portfolio_csv(text, today=TODAY)
    errors = [(e.row, e.column, e.value) for e in info.value.errors]
    assert errors == [
        (2, "implied_vol", "0.2"), (3, "implied_vol", "32"), (4, "implied_vol", "0"), (5, "implied_vol", "abc"),
        (6, "implied_vol", "-0.1"), (7, "quantity", "0"), (7, "implied_vol", "5"),
    ]
    reasons = {e.row: e.reason for e in info.value.errors if e.column == "implied_vol"}
    assert "only meaningful for options" in reasons[2] and "SPY" in reasons[2]
    assert "greater than 0 and less than 5" in reasons[3] and "looks like a percent: write 0.32" in reasons[3]
    assert "greater than 0" in reasons[4] and reasons[5] == "not a decimal number"
    assert "row 3, column 'implied_vol'" in str(info.value) and "nothing was imported" in str(info.value)


# --- the report says which volatility priced each option ----------------------------------------------------
def test_option_pricing_note_names_the_volatility_used():
    assert option_pricing_note({"vol_source": "implied", "implied_vol": 0.32, "dividend_yield": 0.0}) == "volatility: implied 32.00%"
    assert option_pricing_note({"vol_source": "realized", "implied_vol": 0.95, "dividend_yield": 0.0,
                                "pricing_note": VIX_NOTE}) == f"volatility: realized 95.00%; {VIX_NOTE}"
    # the JSON's formatted strings read the same
    assert option_pricing_note({"vol_source": "implied", "implied_vol": "0.1800", "dividend_yield": "0.013000",
                                "pricing_note": None}) == "volatility: implied 18.00%; dividend yield 1.30%"
    assert option_pricing_note({"vol_source": "none", "implied_vol": None}) == (
        "volatility: none (no implied vol uploaded and no realised history)"
    )
    assert option_pricing_note({}) is None


# ---------------------------------------------------------------------------------------------------------
# A frozen copy of engines/options.py's Black-Scholes before dividends entered (commit 2d9842f), verbatim but
# for the names (old_bs_price, old_bs_greeks and their helpers): the q = 0 reference of
# test_q_zero_is_bitwise_the_formula_without_dividends. Do not edit.
# ---------------------------------------------------------------------------------------------------------
FLAGS = np.array(["ok", "expiry_day", "zero_vol", "expired", "missing_input"])
_OK, _EXPIRY_DAY, _ZERO_VOL, _EXPIRED, _MISSING = range(5)

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
DAYS_PER_YEAR = 365.0


def _old_prepare(S, K, T, r, sigma, is_call):
    """Broadcast inputs to float arrays and classify every element into a flag code."""
    S, K, T, r, sigma, is_call = np.broadcast_arrays(
        np.asarray(S, dtype=float),
        np.asarray(K, dtype=float),
        np.asarray(T, dtype=float),
        np.asarray(r, dtype=float),
        np.asarray(sigma, dtype=float),
        np.asarray(is_call, dtype=bool),
    )
    with np.errstate(invalid="ignore"):
        missing = (
            np.isnan(S) | np.isnan(K) | np.isnan(T) | np.isnan(r) | np.isnan(sigma)
            | (S < 0) | (K <= 0) | (sigma < 0)
        )
        code = np.full(S.shape, _OK, dtype=np.int8)
        code[(sigma == 0) & (T > 0)] = _ZERO_VOL
        code[T == 0] = _EXPIRY_DAY
        code[missing] = _MISSING
        code[T < 0] = _EXPIRED  # an expired option is worth 0 whatever its other inputs
    # deterministic branch: zero vol, or a worthless underlying
    deterministic = (code == _ZERO_VOL) | ((code == _OK) & (S == 0))
    closed = code == _OK
    closed &= ~deterministic
    return S, K, T, r, sigma, is_call, code, closed, deterministic


def _old_step(x):
    """1 where x > 0, 0.5 where x == 0, 0 where x < 0 (the limit of N(d) as sigma*sqrt(T) -> 0)."""
    return np.where(x > 0, 1.0, np.where(x == 0, 0.5, 0.0))


def _old_closed_form(S, K, T, r, sigma, closed):
    """The closed-form pieces; elements outside ``closed`` get dummy inputs so nothing warns."""
    if not closed.all():
        S = np.where(closed, S, 1.0)
        K = np.where(closed, K, 1.0)
        T = np.where(closed, T, 1.0)
        r = np.where(closed, r, 0.0)
        sigma = np.where(closed, sigma, 1.0)
    sqrt_t = np.sqrt(T)
    vol_sqrt_t = sigma * sqrt_t
    d1 = (np.log(S / K) + (r + 0.5 * sigma * sigma) * T) / vol_sqrt_t
    d2 = d1 - vol_sqrt_t
    disc_k = K * np.exp(-r * T)
    # N(-d) directly, not 1 - N(d): deep in-the-money puts and out-of-the-money put deltas keep precision
    nd1, nd2, nm1, nm2 = ndtr(d1), ndtr(d2), ndtr(-d1), ndtr(-d2)
    return S, T, r, sigma, sqrt_t, vol_sqrt_t, d1, disc_k, nd1, nd2, nm1, nm2


def _old_special_prices(price, S, K, T, r, is_call, code, deterministic):
    """Overwrite the degenerate elements of ``price``; returns (price, discounted strike or None)."""
    fwd_k = None
    if deterministic.any():
        with np.errstate(invalid="ignore", over="ignore"):
            fwd_k = K * np.exp(-np.where(deterministic, r * T, 0.0))
        det = np.where(is_call, np.maximum(S - fwd_k, 0.0), np.maximum(fwd_k - S, 0.0))
        price = np.where(deterministic, det, price)
    if ((code == _EXPIRY_DAY) | (code >= _EXPIRED)).any():
        intrinsic = np.where(is_call, np.maximum(S - K, 0.0), np.maximum(K - S, 0.0))
        price = np.where(code == _EXPIRY_DAY, intrinsic, price)
        price = np.where(code == _EXPIRED, 0.0, price)
        price = np.where(code == _MISSING, np.nan, price)
    return price, fwd_k


def old_bs_price(S, K, T, r, sigma, is_call) -> np.ndarray:
    """Black-Scholes value per share (see the module docstring for units and degenerate cases).

    Broadcasts all arguments; returns a float array of the broadcast shape (NaN only where an input is
    missing or invalid, flag "missing_input").
    """
    S, K, T, r, sigma, is_call, code, closed, deterministic = _old_prepare(S, K, T, r, sigma, is_call)
    Sc, _, _, _, _, _, _, disc_k, nd1, nd2, nm1, nm2 = _old_closed_form(S, K, T, r, sigma, closed)
    price = np.where(is_call, Sc * nd1 - disc_k * nd2, disc_k * nm2 - Sc * nm1)
    price, _ = _old_special_prices(price, S, K, T, r, is_call, code, deterministic)
    return np.asarray(price, dtype=float)


def old_bs_greeks(S, K, T, r, sigma, is_call) -> dict[str, np.ndarray]:
    """Black-Scholes value and Greeks per share.

    Returns a dict of arrays of the broadcast shape: ``price``, ``delta``, ``gamma``, ``theta`` (per
    calendar day), ``vega`` (per vol point), ``rho`` (per 1% rate) and ``flag`` (strings from ``FLAGS``).
    """
    S, K, T, r, sigma, is_call, code, closed, deterministic = _old_prepare(S, K, T, r, sigma, is_call)
    Sc, Tc, rc, vc, sqrt_t, vol_sqrt_t, d1, disc_k, nd1, nd2, nm1, nm2 = _old_closed_form(S, K, T, r, sigma, closed)
    price = np.where(is_call, Sc * nd1 - disc_k * nd2, disc_k * nm2 - Sc * nm1)
    price, fwd_k = _old_special_prices(price, S, K, T, r, is_call, code, deterministic)

    pdf_d1 = np.exp(-0.5 * d1 * d1) * _INV_SQRT_2PI
    time_decay = -Sc * pdf_d1 * vc / (2.0 * sqrt_t)
    r_disc_k = rc * disc_k
    t_disc_k = Tc * disc_k
    delta = np.where(is_call, nd1, -nm1)
    gamma = pdf_d1 / (Sc * vol_sqrt_t)
    vega = Sc * pdf_d1 * sqrt_t / 100.0
    theta = np.where(is_call, time_decay - r_disc_k * nd2, time_decay + r_disc_k * nm2) / DAYS_PER_YEAR
    rho = np.where(is_call, t_disc_k * nd2, -t_disc_k * nm2) / 100.0

    if fwd_k is not None:
        # deterministic branch (zero vol / worthless underlying): Greeks of the discounted intrinsic
        itm = _old_step(np.where(is_call, S - fwd_k, fwd_k - S))  # 1 ITM, 0.5 at the discounted strike, 0 OTM
        with np.errstate(invalid="ignore"):
            sign = np.where(is_call, 1.0, -1.0)
            delta = np.where(deterministic, sign * itm, delta)
            theta = np.where(deterministic, -sign * r * fwd_k * itm / DAYS_PER_YEAR, theta)
            rho = np.where(deterministic, sign * T * fwd_k * itm / 100.0, rho)
        gamma = np.where(deterministic, 0.0, gamma)
        vega = np.where(deterministic, 0.0, vega)

    flat = (code == _EXPIRY_DAY) | (code >= _EXPIRED)
    if flat.any():
        # expiry day: step delta at the strike; expired or missing: delta 0; other Greeks 0
        step = _old_step(np.where(is_call, S - K, K - S))
        delta = np.where(code == _EXPIRY_DAY, np.where(is_call, step, -step), delta)
        delta = np.where(code >= _EXPIRED, 0.0, delta)
        gamma = np.where(flat, 0.0, gamma)
        theta = np.where(flat, 0.0, theta)
        vega = np.where(flat, 0.0, vega)
        rho = np.where(flat, 0.0, rho)

    return {
        "price": np.asarray(price, dtype=float),
        "delta": np.asarray(delta, dtype=float),
        "gamma": np.asarray(gamma, dtype=float),
        "theta": np.asarray(theta, dtype=float),
        "vega": np.asarray(vega, dtype=float),
        "rho": np.asarray(rho, dtype=float),
        "flag": FLAGS[code],
    }


def test_the_sample_source_prices_index_option_underlyings_on_their_etfs_scale():
    """An SPX / NDX / RUT option's underlying is the index level; offline, the sample source follows the tracking
    ETF's path at the index/ETF ratio, and the shipped security master classifies the three indexes."""
    import datetime as dt

    from sigmasight_pipeline.marketdata.base import price_symbol_for
    from sigmasight_pipeline.marketdata.sample import SampleSource
    from sigmasight_pipeline.marketdata.security_master import load_security_master

    closes = SampleSource().fetch_closes(["SPY", "^GSPC", "QQQ", "^NDX"], dt.date(2025, 3, 3), dt.date(2025, 3, 7))
    assert (closes["^GSPC"] - closes["SPY"] * 10.05).abs().max() <= 0.005
    assert (closes["^NDX"] - closes["QQQ"] * 41.0).abs().max() <= 0.005
    assert [price_symbol_for(u) for u in ("SPX", "SPXW", "NDX", "RUT")] == ["^GSPC", "^GSPC", "^NDX", "^RUT"]
    master = load_security_master().set_index("symbol")
    assert master.loc[["^GSPC", "^NDX", "^RUT"], "sector"].tolist() == ["Equity"] * 3
