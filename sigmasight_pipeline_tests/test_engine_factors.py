"""Factor engine: rolling multivariate betas, diagnostics and dollar exposures (engines/factors.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.outliers_influence import variance_inflation_factor

from sigmasight_pipeline.engines.factors import (
    DEFAULT_FACTOR_PROXIES,
    covariance_matrix,
    factor_correlations,
    factor_diagnostics,
    factor_returns,
    portfolio_factor_exposures,
    position_factor_exposures,
    rolling_factor_betas,
    validate_factor_proxies,
    variance_inflation_factors,
)
from sigmasight_pipeline.engines.regression import rolling_ols

FACTORS = list(DEFAULT_FACTOR_PROXIES)
ETFS = list(DEFAULT_FACTOR_PROXIES.values())
N_SESSIONS = 300
TOL = 1e-10


def make_etf_returns(n: int = N_SESSIONS, seed: int = 7) -> pd.DataFrame:
    """Style ETFs that are mostly market: correlation with SPY about 0.9-0.97, as for the real ones."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2024-01-02", periods=n)
    spy = rng.normal(0.0004, 0.011, n)
    data = {"SPY": spy}
    for i, etf in enumerate(ETFS[1:]):
        data[etf] = (0.85 + 0.05 * i) * spy + rng.normal(0.0, 0.003 + 0.0005 * i, n)
    return pd.DataFrame(data, index=idx)


@pytest.fixture(scope="module")
def etfs() -> pd.DataFrame:
    return make_etf_returns()


@pytest.fixture(scope="module")
def design(etfs) -> pd.DataFrame:
    return factor_returns(etfs, DEFAULT_FACTOR_PROXIES)


TRUE_BETAS = {
    "FULL": [1.1, 0.4, -0.3, 0.2, 0.0, 0.5, -0.6],
    "LIMITED": [0.8, -0.2, 0.6, 0.0, 0.3, -0.1, 0.2],
    "SHORT": [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    "GAPPY": [1.3, 0.1, 0.1, -0.4, 0.2, 0.0, 0.0],
}


@pytest.fixture(scope="module")
def assets(design) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    x = design.to_numpy()
    out = {}
    for sym, b in TRUE_BETAS.items():
        out[sym] = 0.0002 + x @ np.array(b) + rng.normal(0, 0.008, len(x))
    frame = pd.DataFrame(out, index=design.index)
    frame.iloc[: N_SESSIONS - 100, frame.columns.get_loc("LIMITED")] = np.nan  # 100 obs of history
    frame.iloc[: N_SESSIONS - 40, frame.columns.get_loc("SHORT")] = np.nan  # 40 obs: insufficient
    gaps = rng.choice(N_SESSIONS, 25, replace=False)
    frame.iloc[gaps, frame.columns.get_loc("GAPPY")] = np.nan  # scattered holes
    return frame


def sm_fit(y: pd.Series, x: pd.DataFrame):
    ok = y.notna() & x.notna().all(axis=1)
    return sm.OLS(y[ok], sm.add_constant(x[ok])).fit()


def window_rows(index: pd.DatetimeIndex, date, window: int) -> pd.DatetimeIndex:
    p = index.get_loc(pd.Timestamp(date))
    return index[max(0, p - window + 1) : p + 1]


# --- proxies and design -----------------------------------------------------------------------------


def test_validate_factor_proxies():
    assert list(validate_factor_proxies(DEFAULT_FACTOR_PROXIES)) == FACTORS
    # Market is put first whatever the input order
    reordered = {"Value": "VTV", "Market": "SPY", "Size": "SIZE"}
    assert list(validate_factor_proxies(reordered)) == ["Market", "Value", "Size"]
    with pytest.raises(ValueError, match="Market"):
        validate_factor_proxies({"Value": "VTV", "Growth": "VUG"})
    with pytest.raises(ValueError, match="duplicate proxy"):  # SIZE in one place, SIZE again as another factor
        validate_factor_proxies({"Market": "SPY", "Size": "SIZE", "Small": "SIZE"})
    with pytest.raises(ValueError, match="proxy"):  # a factor without a proxy ("Short Interest")
        validate_factor_proxies({"Market": "SPY", "Short Interest": ""})


def test_factor_returns_is_market_plus_style_spreads(etfs, design):
    assert list(design.columns) == FACTORS
    np.testing.assert_array_equal(design["Market"], etfs["SPY"])
    for name, etf in DEFAULT_FACTOR_PROXIES.items():
        if name != "Market":
            np.testing.assert_allclose(design[name], etfs[etf] - etfs["SPY"], rtol=0, atol=0)
    with pytest.raises(ValueError, match="missing"):
        factor_returns(etfs.drop(columns=["USMV"]), DEFAULT_FACTOR_PROXIES)


# --- betas equal statsmodels -------------------------------------------------------------------------


def test_betas_t_stats_r2_equal_statsmodels_with_limited_and_insufficient_history(assets, design):
    dates = design.index[[-60, -1]]
    out = rolling_factor_betas(assets, design, dates, window=150, min_obs=60)
    assert list(out.columns) == [
        "date", "symbol", "factor_name", "beta", "t_stat", "r_squared", "n_obs", "window_start",
        "window_end", "flag", "exact_fit",  # exact_fit: books.md, "Numbers that must not mislead"
        "residual_std",  # the specific risk of the parametric VaR (risk_measures.md)
    ]
    assert not out["exact_fit"].any()  # noisy symbols: their t-stats are statistics, kept
    assert len(out) == len(dates) * assets.shape[1] * len(FACTORS)
    checked = 0
    for d in dates:
        rows = window_rows(design.index, d, 150)
        for sym in assets.columns:
            got = out[(out["date"] == d) & (out["symbol"] == sym)].set_index("factor_name").loc[FACTORS]
            ok = assets.loc[rows, sym].notna()
            n = int(ok.sum())
            assert (got["n_obs"] == n).all()
            if n < 60:
                assert (got["flag"] == "insufficient_history").all()
                assert got[["beta", "t_stat", "r_squared"]].isna().all().all()
                continue
            fit = sm_fit(assets.loc[rows, sym], design.loc[rows])
            np.testing.assert_allclose(got["beta"], fit.params[FACTORS], rtol=0, atol=TOL)
            np.testing.assert_allclose(got["t_stat"], fit.tvalues[FACTORS], rtol=TOL, atol=TOL)
            np.testing.assert_allclose(got["r_squared"], fit.rsquared, rtol=0, atol=TOL)
            assert int(fit.nobs) == n
            checked += 1
    assert checked == 5  # FULL and GAPPY on both dates, LIMITED (41 obs on the first date) on the last
    last = out[out["date"] == dates[-1]].groupby("symbol")["flag"].first()
    assert last["FULL"] == "ok"
    assert last["LIMITED"] == "limited_history"  # 100 observations
    assert last["SHORT"] == "insufficient_history"  # 40 observations
    assert last["GAPPY"] == "limited_history"  # holes inside the window
    assert out[(out["date"] == dates[-1]) & (out["symbol"] == "LIMITED")]["n_obs"].iloc[0] == 100


def test_regression_core_matches_statsmodels_bse_intercept_and_resid_std(assets, design):
    d = design.index[-1]
    res = rolling_ols(assets, design, [d], window=150, min_obs=60)
    rows = window_rows(design.index, d, 150)
    for j, sym in enumerate(assets.columns):
        if res.flag[0, j] == "insufficient_history":
            continue
        fit = sm_fit(assets.loc[rows, sym], design.loc[rows])
        np.testing.assert_allclose(res.params[0, j], fit.params.to_numpy(), rtol=0, atol=TOL)
        np.testing.assert_allclose(res.bse[0, j], fit.bse.to_numpy(), rtol=TOL, atol=TOL)
        np.testing.assert_allclose(res.resid_std[0, j], np.sqrt(fit.scale), rtol=TOL)


def test_window_is_exactly_150_sessions_ending_on_the_date(assets, design):
    idx = design.index
    d = idx[200]
    out = rolling_factor_betas(assets, design, [d])
    full = out[out["symbol"] == "FULL"]
    assert (full["window_start"] == idx[200 - 149]).all()
    assert (full["window_end"] == d).all()
    assert (full["n_obs"] == 150).all() and (full["flag"] == "ok").all()

    # the session just before the window does not matter; the first session of the window does
    before = assets.copy()
    before.iloc[200 - 150, before.columns.get_loc("FULL")] += 0.5
    same = rolling_factor_betas(before, design, [d])
    np.testing.assert_array_equal(same["beta"], out["beta"])
    first = assets.copy()
    first.iloc[200 - 149, first.columns.get_loc("FULL")] += 0.5
    moved = rolling_factor_betas(first, design, [d])
    assert not np.allclose(moved[moved["symbol"] == "FULL"]["beta"], full["beta"])


def test_no_look_ahead(assets, design):
    d = design.index[220]
    base = rolling_factor_betas(assets, design, [d])
    future_assets = assets.copy()
    future_assets.iloc[221:] = np.random.default_rng(1).normal(0, 0.05, future_assets.iloc[221:].shape)
    future_design = design.copy()
    future_design.iloc[221:] = np.nan
    for a, x in [(future_assets, design), (assets, future_design), (future_assets, future_design)]:
        again = rolling_factor_betas(a, x, [d])
        pd.testing.assert_frame_equal(again, base)
    # and a range run gives each date the same numbers as a run for that date alone
    rng_run = rolling_factor_betas(assets, design, design.index[200:230])
    one = rng_run[rng_run["date"] == d].reset_index(drop=True)
    pd.testing.assert_frame_equal(one, base, check_exact=False, rtol=1e-12, atol=1e-14)


def test_as_of_date_missing_from_data_is_an_error(assets, design):
    with pytest.raises(ValueError, match="not among the sessions"):
        rolling_factor_betas(assets, design, [pd.Timestamp("2030-01-01")])


# --- defects of the earlier system ---------------------------------------------------------------------


def test_exact_linear_combination_recovers_betas_without_cap(design):
    """A synthetic beta of 4 comes out as 4 (the earlier system silently capped betas at +-3)."""
    true = np.array([4.0, -3.5, 0.25, 0.0, 1.5, -0.75, 5.0])
    x = design.to_numpy()
    rng = np.random.default_rng(3)
    assets = pd.DataFrame(
        {
            "EXACT": 0.0001 + x @ true,
            "TINY": 0.0001 + x @ true + rng.normal(0, 1e-9, len(x)),
        },
        index=design.index,
    )
    out = rolling_factor_betas(assets, design, design.index[[-1]])
    for sym in ["EXACT", "TINY"]:
        got = out[out["symbol"] == sym].set_index("factor_name").loc[FACTORS]
        np.testing.assert_allclose(got["beta"], true, rtol=0, atol=1e-6)
        assert (got["flag"] == "ok").all()
        assert got["r_squared"].iloc[0] > 1 - 1e-9
        # both are exact fits: EXACT's residuals are round-off; TINY's (1e-9 on returns of ~5%) are below
        # EXACT_FIT_RTOL (SSR <= 1e-12 x ||y||^2): no t-statistic is reported for either, betas are kept
        assert got["exact_fit"].all() and got["t_stat"].isna().all()
    assert out.loc[(out["symbol"] == "EXACT") & (out["factor_name"] == "Market"), "beta"].iloc[0] == pytest.approx(4.0, abs=1e-9)


def test_multivariate_not_univariate_betas(assets, design):
    """One OLS on all factors; univariate regressions per factor double count the market."""
    d = design.index[-1]
    rows = window_rows(design.index, d, 150)
    out = rolling_factor_betas(assets, design, [d])
    got = out[out["symbol"] == "FULL"].set_index("factor_name")["beta"].loc[FACTORS]
    y = assets.loc[rows, "FULL"]
    multi = sm_fit(y, design.loc[rows]).params[FACTORS]
    uni = pd.Series({f: sm_fit(y, design.loc[rows, [f]]).params[f] for f in FACTORS})
    np.testing.assert_allclose(got, multi, rtol=0, atol=TOL)
    assert (got - uni).abs().max() > 0.1  # the univariate numbers are materially different


def test_spread_design_keeps_style_betas_and_makes_market_the_total_beta(assets, etfs, design):
    d = design.index[-1]
    raw = etfs.rename(columns={v: k for k, v in DEFAULT_FACTOR_PROXIES.items()})[FACTORS]
    b_spread = rolling_factor_betas(assets[["FULL"]], design, [d]).set_index("factor_name")
    b_raw = rolling_factor_betas(assets[["FULL"]], raw, [d]).set_index("factor_name")
    styles = FACTORS[1:]
    np.testing.assert_allclose(b_spread.loc[styles, "beta"], b_raw.loc[styles, "beta"], atol=1e-10)
    np.testing.assert_allclose(b_spread.loc[styles, "t_stat"], b_raw.loc[styles, "t_stat"], rtol=1e-8)
    assert b_spread["r_squared"].iloc[0] == pytest.approx(b_raw["r_squared"].iloc[0], abs=1e-12)
    total = b_raw["beta"].sum()  # market + every style loading of the raw design
    assert b_spread.loc["Market", "beta"] == pytest.approx(total, abs=1e-10)


def test_singular_design_is_flagged_not_raised(design):
    x = design.copy()
    x["Size"] = 0.0  # a factor that does not move in the window
    assets = pd.DataFrame({"A": design["Market"] * 1.2 + 0.001}, index=design.index)
    out = rolling_factor_betas(assets, x, design.index[[-1]])
    assert (out["flag"] == "singular_design").all()
    assert out["beta"].isna().all()
    x2 = design.copy()
    x2["Value"] = x2["Growth"] * 2.0  # exactly collinear
    out2 = rolling_factor_betas(assets, x2, design.index[[-1]])
    assert (out2["flag"] == "singular_design").all()


# --- diagnostics ---------------------------------------------------------------------------------------


def test_vif_equals_statsmodels_and_spread_design_is_well_conditioned(etfs, design):
    d = design.index[-1]
    rows = window_rows(design.index, d, 150)
    exog = sm.add_constant(design.loc[rows]).to_numpy()
    expected = [variance_inflation_factor(exog, j) for j in range(1, exog.shape[1])]
    cov = design.loc[rows].cov().to_numpy()
    np.testing.assert_allclose(variance_inflation_factors(cov), expected, rtol=1e-9)

    diag = factor_diagnostics(design, [d])
    assert list(diag.columns) == ["date", "n_obs", "window_start", "window_end", "condition_number", "max_vif"]
    assert diag["max_vif"].iloc[0] == pytest.approx(max(expected), rel=1e-9)
    assert diag["n_obs"].iloc[0] == 150
    assert diag["window_start"].iloc[0] == rows[0] and diag["window_end"].iloc[0] == d
    fit = sm.OLS(np.zeros(len(rows)), exog).fit()
    assert diag["condition_number"].iloc[0] == pytest.approx(fit.condition_number, rel=1e-8)

    raw = etfs.rename(columns={v: k for k, v in DEFAULT_FACTOR_PROXIES.items()})[FACTORS]
    raw_vif = factor_diagnostics(raw, [d])["max_vif"].iloc[0]
    exog_raw = sm.add_constant(raw.loc[rows]).to_numpy()
    assert raw_vif == pytest.approx(max(variance_inflation_factor(exog_raw, j) for j in range(1, 8)), rel=1e-9)
    assert raw_vif > 30
    assert diag["max_vif"].iloc[0] < 5
    assert raw_vif > 10 * diag["max_vif"].iloc[0]


def test_factor_correlations_and_covariance_rebuild(design):
    d = design.index[-1]
    rows = window_rows(design.index, d, 150)
    out = factor_correlations(design, [design.index[-2], d], threshold=0.8)
    assert list(out.columns) == ["date", "factor_a", "factor_b", "correlation", "covariance", "high_correlation"]
    one = out[out["date"] == d]
    assert len(one) == 7 * 8 // 2  # upper triangle including the diagonal
    order = {f: i for i, f in enumerate(FACTORS)}
    assert (one["factor_a"].map(order) <= one["factor_b"].map(order)).all()
    diag = one[one["factor_a"] == one["factor_b"]]
    assert len(diag) == 7 and not diag["high_correlation"].any()
    np.testing.assert_allclose(diag["correlation"], 1.0, atol=1e-12)

    expected_cov = design.loc[rows].cov()
    expected_corr = design.loc[rows].corr()
    for r in one.itertuples():
        assert r.covariance == pytest.approx(expected_cov.loc[r.factor_a, r.factor_b], rel=1e-10)
        assert r.correlation == pytest.approx(expected_corr.loc[r.factor_a, r.factor_b], abs=1e-12)
        assert r.high_correlation == (r.factor_a != r.factor_b and abs(r.correlation) > 0.8)
    rebuilt = covariance_matrix(one)
    assert list(rebuilt.index) == FACTORS and list(rebuilt.columns) == FACTORS
    np.testing.assert_allclose(rebuilt.to_numpy(), expected_cov.to_numpy(), rtol=1e-10)

    # raw ETFs are highly correlated and get flagged
    raw = make_etf_returns()
    raw_corr = factor_correlations(raw, [d])
    assert raw_corr["high_correlation"].sum() >= 15


# --- dollar exposures ------------------------------------------------------------------------------------


def _betas_frame(date, rows):
    out = []
    for sym, betas, flag in rows:
        for f, b in zip(FACTORS, betas):
            out.append(
                dict(date=date, symbol=sym, factor_name=f, beta=b, t_stat=np.nan if np.isnan(b) else 2.0,
                     r_squared=np.nan if np.isnan(b) else 0.5, n_obs=150 if flag == "ok" else 30,
                     window_start=date, window_end=date, flag=flag)
            )
    return pd.DataFrame(out)


def test_position_and_portfolio_exposures_sum_over_positions():
    d = pd.Timestamp("2025-03-31")
    nan7 = [np.nan] * 7
    betas = _betas_frame(
        d,
        [
            ("AAPL", [1.2, -0.1, 0.5, 0.2, 0.1, -0.3, -0.2], "ok"),
            ("XOM", [0.7, 0.6, -0.4, 0.0, 0.1, 0.2, 0.3], "ok"),
            ("NEWCO", nan7, "insufficient_history"),
        ],
    )
    positions = pd.DataFrame(
        {
            "position_id": ["p1", "p2", "p3", "p4"],
            "symbol": ["AAPL", "XOM", "AAPL250620C00200000", "NEWCO"],
            "underlying_symbol": ["AAPL", "XOM", "AAPL", "NEWCO"],
            "is_option": [False, False, True, False],
        }
    )
    # long AAPL 100k, short XOM -60k, a long call: delta 0.5 x 10 contracts x 100 x $200 = 100k, NEWCO 20k
    exposures = pd.DataFrame(
        {"date": d, "position_id": ["p1", "p2", "p3", "p4"], "delta_adjusted_exposure": [100_000.0, -60_000.0, 100_000.0, 20_000.0]}
    )
    pos = position_factor_exposures(positions, betas, exposures)
    assert list(pos.columns) == [
        "date", "position_id", "factor_name", "beta", "t_stat", "r_squared", "n_obs", "flag", "exact_fit",
        "dollar_exposure", "residual_std",
    ]
    assert not pos["exact_fit"].any()  # p4 (no beta) included: not regressed is not an exact fit
    assert len(pos) == 4 * 7
    p = pos.set_index(["position_id", "factor_name"])
    # the option takes AAPL's betas (it has no return history of its own), scaled by its delta-adjusted exposure
    aapl = betas[betas["symbol"] == "AAPL"].set_index("factor_name")["beta"]
    for f in FACTORS:
        assert p.loc[("p3", f), "beta"] == aapl[f]
        assert p.loc[("p3", f), "dollar_exposure"] == pytest.approx(100_000 * aapl[f])
        assert p.loc[("p2", f), "dollar_exposure"] == pytest.approx(-60_000 * betas.set_index(["symbol", "factor_name"]).loc[("XOM", f), "beta"])
    # no beta: NaN beta, flag kept, 0 dollars
    assert p.loc[("p4", "Market"), "flag"] == "insufficient_history"
    assert np.isnan(p.loc[("p4", "Market"), "beta"]) and p.loc[("p4", "Market"), "dollar_exposure"] == 0.0

    long_, short = 100_000 + 100_000 + 20_000, 60_000
    equity = pd.DataFrame({"date": [d], "net_exposure": [long_ - short], "gross_exposure": [long_ + short]})
    port = portfolio_factor_exposures(pos, equity)
    assert list(port.columns) == [
        "date", "factor_name", "dollar_exposure", "beta_net", "beta_gross", "positions_with_beta", "positions_without_beta",
    ]
    assert list(port["factor_name"]) == FACTORS
    mkt = port.set_index("factor_name").loc["Market"]
    expected = 100_000 * 1.2 - 60_000 * 0.7 + 100_000 * 1.2  # sum of MV x beta = 198,000
    assert mkt["dollar_exposure"] == pytest.approx(expected)
    # the earlier system's shortcut: portfolio beta x total value; with a value-weighted beta over gross it gives
    beta_vw = (100_000 * 1.2 + 60_000 * 0.7 + 100_000 * 1.2) / (long_ + short)
    shortcut = beta_vw * (long_ - short)  # "portfolio beta x total portfolio value"
    assert abs(shortcut - expected) > 10_000  # far off in a long/short book ...
    assert mkt["dollar_exposure"] != pytest.approx(shortcut, rel=1e-3)  # ... and not what the engine returns
    assert mkt["beta_net"] == pytest.approx(expected / (long_ - short))
    assert mkt["beta_gross"] == pytest.approx(expected / (long_ + short))
    assert mkt["positions_with_beta"] == 3 and mkt["positions_without_beta"] == 1
    # seven factors do not "expose" the book 7x: each factor's dollars are its own sum
    for f in FACTORS:
        assert port.set_index("factor_name").loc[f, "dollar_exposure"] == pytest.approx(pos[pos["factor_name"] == f]["dollar_exposure"].sum())

    zero = portfolio_factor_exposures(pos, equity.assign(net_exposure=0.0))
    assert zero["beta_net"].isna().all()


def test_position_without_regression_rows_gets_flag_not_made_up_beta():
    d = pd.Timestamp("2025-03-31")
    betas = _betas_frame(d, [("AAPL", [1.0] * 7, "ok")])
    positions = pd.DataFrame(
        {"position_id": [1, 2], "symbol": ["AAPL", "ZZZZ"], "underlying_symbol": [None, None], "is_option": [False, False]}
    )
    exposures = pd.DataFrame({"date": [d, d], "position_id": [1, 2], "delta_adjusted_exposure": [50_000.0, 10_000.0]})
    out = position_factor_exposures(positions, betas, exposures)
    z = out[out["position_id"] == 2]
    assert (z["flag"] == "no_return_history").all() and z["beta"].isna().all() and (z["dollar_exposure"] == 0).all()
    assert (out[out["position_id"] == 1]["dollar_exposure"] == 50_000.0).all()  # stock without underlying uses its own symbol
    with pytest.raises(ValueError, match="underlying"):
        position_factor_exposures(
            positions.assign(is_option=[False, True]), betas, exposures
        )


def test_benchmark_runs_and_matches_statsmodels():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_factors.py"
    spec = importlib.util.spec_from_file_location("bench_factors", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    figures = bench.run(n_positions=40, n_sessions=200, repeat=1)
    assert figures["results_match"]
    assert figures["positions_fitted"] == 40
    assert figures["max_abs_beta_diff"] < 1e-10


# --- exact fits (books.md, "Numbers that must not mislead") -------------------------------------------


def test_exact_fit_on_a_tiny_hand_built_design_keeps_betas_and_nulls_t_stats():
    """y equals regressor a exactly (y = 0 + 1 a + 0 b): betas 0, 1, 0 by hand; residuals are zero, so the
    t-statistics (round-off / round-off) are NaN and the fit is flagged. A y with a genuine residual is not."""
    idx = pd.bdate_range("2025-01-01", periods=6)
    a = np.array([0.01, 0.02, 0.03, 0.00, -0.01, 0.00])
    b = np.array([0.00, 0.01, 0.01, -0.02, 0.01, 0.02])
    x = pd.DataFrame({"a": a, "b": b}, index=idx)
    # NOISY = a + e with e = (1, -1, 0, 0, -1, 1) x 0.001: e has mean 0 and e . a = e . b = 0, so OLS gives
    # betas (0, 1, 0) and residuals exactly e: SSR = 4e-6 against ||y||^2 = ||a||^2 + ||e||^2 = 1.5e-3 + 4e-6.
    e = np.array([1.0, -1.0, 0.0, 0.0, -1.0, 1.0]) * 0.001
    assert abs(e @ a) < 1e-15 and abs(e @ b) < 1e-15 and e.sum() == 0
    y = pd.DataFrame({"SAME": a, "NOISY": a + e}, index=idx)
    res = rolling_ols(y, x, [idx[-1]], window=6, min_obs=4)
    assert res.exact_fit[0].tolist() == [True, False]
    np.testing.assert_allclose(res.params[0, 0], [0.0, 1.0, 0.0], atol=1e-14)
    assert np.isnan(res.tvalues[0, 0]).all()
    assert res.rsquared[0, 0] == pytest.approx(1.0, abs=1e-14) and res.flag[0, 0] == "ok"
    # the noisy series: hand-computed betas and a finite t-stat that equals statsmodels'
    np.testing.assert_allclose(res.params[0, 1], [0.0, 1.0, 0.0], atol=1e-14)
    fit = sm.OLS(y["NOISY"], sm.add_constant(x)).fit()
    np.testing.assert_allclose(res.tvalues[0, 1], fit.tvalues.to_numpy(), rtol=1e-10, atol=1e-10)
    assert np.isfinite(res.tvalues[0, 1]).all()
    assert fit.ssr == pytest.approx(4e-6, rel=1e-9)

    out = rolling_factor_betas(y, x, [idx[-1]], window=6, min_obs=4).set_index(["symbol", "factor_name"])
    assert out.loc["SAME", "exact_fit"].all() and out.loc["SAME", "t_stat"].isna().all()
    np.testing.assert_allclose(out.loc["SAME", "beta"], [1.0, 0.0], atol=1e-14)
    assert not out.loc["NOISY", "exact_fit"].any() and out.loc["NOISY", "t_stat"].notna().all()


def test_spy_on_a_design_containing_spy_is_an_exact_fit_and_a_normal_symbol_is_unchanged(etfs, design, assets):
    """SPY regressed on Market (= SPY) and spreads: beta 1 on Market, 0 on the styles, t-stats NaN (they
    used to be ~1e16, and noise like "t = -3.24" on the styles). FULL is fitted as before (statsmodels)."""
    d = design.index[-1]
    y = pd.concat([etfs[["SPY"]], assets[["FULL"]]], axis=1)
    out = rolling_factor_betas(y, design, [d], window=150, min_obs=60)
    spy = out[out["symbol"] == "SPY"].set_index("factor_name").loc[FACTORS]
    assert spy["exact_fit"].all() and spy["t_stat"].isna().all()
    np.testing.assert_allclose(spy["beta"], [1.0] + [0.0] * 6, atol=1e-12)
    assert (spy["flag"] == "ok").all() and spy["r_squared"].iloc[0] == pytest.approx(1.0, abs=1e-12)
    full = out[out["symbol"] == "FULL"].set_index("factor_name").loc[FACTORS]
    assert not full["exact_fit"].any()
    rows = window_rows(design.index, d, 150)
    fit = sm_fit(assets.loc[rows, "FULL"], design.loc[rows])
    np.testing.assert_allclose(full["t_stat"], fit.tvalues[FACTORS], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(full["beta"], fit.params[FACTORS], rtol=0, atol=TOL)
    # a position in SPY carries the flag and the NaN t-stats, and keeps its dollar exposure
    positions = pd.DataFrame({"position_id": [1, 2], "symbol": ["SPY", "FULL"], "underlying_symbol": ["SPY", "FULL"],
                              "is_option": [False, False]})
    expo = pd.DataFrame({"date": d, "position_id": [1, 2], "delta_adjusted_exposure": [10_000.0, 5_000.0]})
    pos = position_factor_exposures(positions, out, expo).set_index(["position_id", "factor_name"])
    assert pos.loc[1, "exact_fit"].all() and pos.loc[1, "t_stat"].isna().all()
    assert pos.loc[(1, "Market"), "dollar_exposure"] == pytest.approx(10_000.0)
    assert not pos.loc[2, "exact_fit"].any() and pos.loc[2, "t_stat"].notna().all()
