"""The performance engine (``engines.performance``): every statistic against empyrical-reloaded on the same
returns (1e-10), drawdown dates and time-weighted returns by hand, windows without a figure and with limited
history, the risk-free rate from ^IRX, the first snapshot's missing return, and no look-ahead."""

from __future__ import annotations

import empyrical as ep
import numpy as np
import pandas as pd
import pytest

from sigmasight_pipeline.engines import performance as pe

D = pd.Timestamp
SESSIONS = pd.bdate_range("2023-01-02", "2025-12-31")  # a weekday calendar is enough for the engine


def book(start="2024-03-01", end="2025-06-30", seed=7, irx=None) -> pd.DataFrame:
    """Snapshots from ``start`` (a first snapshot: no return) with random daily returns, SPY returns correlated
    with them, and a moving ^IRX."""
    rng = np.random.default_rng(seed)
    dates = SESSIONS[(SESSIONS >= start) & (SESSIONS <= end)]
    market = rng.normal(0.0004, 0.01, len(SESSIONS))
    r = 0.8 * market[SESSIONS.get_indexer(dates)] + rng.normal(0.0002, 0.006, len(dates))
    r[0] = np.nan
    snaps = pd.DataFrame({"date": dates, "daily_return": r})
    rate = irx if irx is not None else pd.Series(4.0 + np.cumsum(rng.normal(0, 0.02, len(SESSIONS))), index=SESSIONS)
    return pe.return_series(snaps, pd.Series(market, index=SESSIONS), rate)


def window_slice(returns: pd.DataFrame, row) -> pd.DataFrame:
    return returns[(returns.date >= row.window_start) & (returns.date <= row.date)]


def empyrical_figures(r, m, rf) -> dict:
    """The statistics of ``engines.performance`` for one window as empyrical-reloaded (and numpy, for the few it
    lacks) computes them: the reference values, from daily portfolio returns ``r``, market returns ``m`` and daily
    risk-free rates ``rf``."""
    return {
        "cumulative_return": ep.cum_returns_final(r),
        "annualized_return": ep.annual_return(r),
        "annual_volatility": ep.annual_volatility(r),
        "sharpe_ratio": ep.sharpe_ratio(r, risk_free=rf),
        "sortino_ratio": ep.sortino_ratio(r, required_return=rf),
        "max_drawdown": ep.max_drawdown(r),
        "calmar_ratio": ep.calmar_ratio(r),
        "beta": ep.beta(r, m),
        "alpha": ep.alpha(r, m, risk_free=rf),
        "correlation": np.corrcoef(r, m)[0, 1],
        "tracking_error": np.std(r - m, ddof=1) * np.sqrt(252),
        "market_return": np.prod(1 + m) - 1,
        "best_day": r.max(),
        "worst_day": r.min(),
        "positive_days_share": (r > 0).mean(),
    }


def test_every_window_of_every_date_equals_empyrical_on_the_same_returns():
    returns = book()
    as_of = SESSIONS[(SESSIONS >= "2024-12-02") & (SESSIONS <= "2025-06-30")]
    out = pe.performance_windows(returns, as_of, SESSIONS)
    assert len(out) == len(as_of) * len(pe.WINDOWS)
    computed = out[out.n_returns >= 2]
    # only the first session of a month (or year) has a window of one return: no figure there
    single = out[out.n_returns < 2]
    assert (single.n_returns == 1).all() and single.window_name.isin(["mtd", "ytd"]).all() and len(single) == 8
    for row in computed.itertuples():
        w = window_slice(returns, row)
        r, m, rf = (w[c].to_numpy() for c in ("portfolio_return", "market_return", "risk_free"))
        assert row.n_returns == len(r)
        expected = empyrical_figures(r, m, rf)
        for stat, value in expected.items():
            assert getattr(row, stat) == pytest.approx(value, rel=1e-10, abs=1e-10), (row.date, row.window_name, stat)


def test_the_windows_of_a_date():
    returns = book(start="2024-03-01")
    out = pe.performance_windows(returns, [D("2025-06-18")], SESSIONS).set_index("window_name")
    assert list(out.index) == ["mtd", "ytd", "21d", "63d", "126d", "252d", "inception"]
    assert out.loc["mtd", "window_start"] == D("2025-06-02") and out.loc["mtd", "n_returns"] == 13
    assert out.loc["ytd", "window_start"] == D("2025-01-01") and out.loc["ytd", "n_returns"] == 121
    assert out.loc["21d", "window_start"] == SESSIONS[SESSIONS.get_loc(D("2025-06-18")) - 20]
    assert (out.loc[["21d", "63d", "126d", "252d"], "n_returns"] == [21, 63, 126, 252]).all()
    # since the first snapshot (2024-03-01, no return): from its next session
    assert out.loc["inception", "first_return_date"] == D("2024-03-04")
    assert out.loc["inception", "n_returns"] == len(SESSIONS[(SESSIONS > "2024-03-01") & (SESSIONS <= "2025-06-18")])
    assert (out.flag == "ok").all() and out.reason.isna().all()


def test_time_weighted_return_and_drawdown_with_its_dates_by_hand():
    """Index 1 -> 1.1 -> 1.21 -> 0.968 -> 0.8712 -> 0.91476 -> 1.1891880: the deepest fall is from 1.21 (day 2)
    to 0.8712 (day 4), -28%; the last day is still 1.7224% under the 1.21 peak."""
    dates = pd.DatetimeIndex(["2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06", "2025-03-07", "2025-03-10", "2025-03-11"])
    snaps = pd.DataFrame({"date": dates, "daily_return": [np.nan, 0.10, 0.10, -0.20, -0.10, 0.05, 0.30]})
    returns = pe.return_series(snaps, pd.Series(0.001, index=dates), pd.Series(0.0, index=dates))
    row = pe.performance_windows(returns, [dates[-1]], SESSIONS).set_index("window_name").loc["inception"]
    assert row.cumulative_return == pytest.approx(1.1 * 1.1 * 0.8 * 0.9 * 1.05 * 1.3 - 1, abs=1e-15)
    assert row.max_drawdown == pytest.approx(0.8712 / 1.21 - 1, abs=1e-15) == pytest.approx(-0.28)
    assert (row.peak_date, row.trough_date) == (dates[2], dates[4])
    assert row.current_drawdown == pytest.approx(1.188 * 1.001 / 1.21 - 1, abs=1e-12)
    assert (row.best_day, row.best_day_date, row.worst_day, row.worst_day_date) == (0.30, dates[6], -0.20, dates[3])
    assert row.positive_days_share == pytest.approx(4 / 6)
    assert row.annualized_return == pytest.approx((1 + row.cumulative_return) ** (252 / 6) - 1)
    assert row.calmar_ratio == pytest.approx(row.annualized_return / 0.28)
    assert row.beta is None or np.isnan(row.beta)  # the market proxy did not move: no beta, and it says so
    assert "beta, alpha, correlation (fewer than 2 market proxy returns, or they do not vary)" in row.reason


def test_a_fall_from_the_first_close_peaks_on_the_base_date():
    """The index starts at 1 on the close before the first return (the first snapshot): a book that only falls
    has its peak there."""
    dates = pd.DatetimeIndex(["2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06"])
    snaps = pd.DataFrame({"date": dates, "daily_return": [np.nan, -0.05, -0.05, 0.01]})
    returns = pe.return_series(snaps, pd.Series([0.0, 0.01, -0.02, 0.005], index=dates), pd.Series(5.0, index=dates))
    row = pe.performance_windows(returns, [dates[-1]], SESSIONS).set_index("window_name").loc["inception"]
    assert (row.peak_date, row.trough_date) == (dates[0], dates[2])
    assert row.max_drawdown == pytest.approx(0.95 * 0.95 - 1) == pytest.approx(ep.max_drawdown(np.array([-0.05, -0.05, 0.01])))


def test_a_window_with_one_return_gives_no_figure_and_says_why():
    returns = book(start="2025-05-01")
    out = pe.performance_windows(returns, [D("2025-05-01"), D("2025-06-02")], SESSIONS)
    first_day = out[out.date == D("2025-05-01")].set_index("window_name")  # the first snapshot: no return yet
    assert (first_day.n_returns == 0).all() and (first_day.flag == "insufficient_returns").all()
    assert (first_day.reason == "no return in the window; 2 needed for a figure").all()
    june_2 = out[out.date == D("2025-06-02")].set_index("window_name").loc["mtd"]
    assert june_2.n_returns == 1 and june_2.flag == "insufficient_returns"
    assert june_2.reason == "1 return in the window; 2 needed for a figure"
    assert all(pd.isna(june_2[s]) for s in pe.STATISTICS)  # not even the one day's return as a "cumulative" figure


def test_limited_history_is_flagged_with_both_counts():
    returns = book(start="2025-05-01")
    out = pe.performance_windows(returns, [D("2025-06-30")], SESSIONS).set_index("window_name")
    assert out.loc["252d", "flag"] == "limited_history" and out.loc["252d", "n_returns"] == 42
    assert out.loc["252d", "reason"] == "42 returns over 252 sessions (first return 2025-05-02)"
    assert out.loc["ytd", "flag"] == "limited_history" and out.loc["ytd", "window_sessions"] == 129
    assert out.loc["21d", "flag"] == "ok" and out.loc["mtd", "flag"] == "ok" and out.loc["inception", "flag"] == "ok"
    assert out.loc["252d", "sharpe_ratio"] == pytest.approx(out.loc["inception", "sharpe_ratio"], abs=1e-12)


def test_undefined_ratios_are_null_with_their_reason():
    dates = SESSIONS[(SESSIONS >= "2025-03-03")][:6]
    up = pd.DataFrame({"date": dates, "daily_return": [np.nan, 0.01, 0.02, 0.01, 0.03, 0.02]})
    returns = pe.return_series(up, pd.Series([0, 0.01, -0.01, 0.02, 0.0, 0.01], index=dates), pd.Series(0.0, index=dates))
    row = pe.performance_windows(returns, [dates[-1]], SESSIONS).set_index("window_name").loc["inception"]
    assert np.isnan(row.sortino_ratio) and np.isnan(row.calmar_ratio) and row.max_drawdown == 0
    assert pd.isna(row.peak_date) and pd.isna(row.trough_date)
    assert row.reason == ("undefined: sortino_ratio (no day below the risk-free rate), calmar_ratio (no drawdown)")
    flat = up.assign(daily_return=[np.nan, 0.001, 0.001, 0.001, 0.001, 0.001])
    returns = pe.return_series(flat, pd.Series(0.01, index=dates), pd.Series(0.0, index=dates))
    row = pe.performance_windows(returns, [dates[-1]], SESSIONS).set_index("window_name").loc["inception"]
    assert np.isnan(row.sharpe_ratio) and row.annual_volatility == pytest.approx(0.0, abs=1e-15)
    assert np.isinf(ep.sharpe_ratio(np.full(5, 0.001)))  # empyrical: infinite; stored: NULL, and why
    assert "sharpe_ratio (excess returns do not vary)" in row.reason


def test_the_daily_risk_free_rate_is_irx_over_100_over_252_carried_forward():
    quotes = pd.Series([4.2, 4.5], index=pd.DatetimeIndex(["2025-03-03", "2025-03-05"]))
    rf = pe.daily_risk_free(quotes, pd.DatetimeIndex(["2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06"]))
    assert rf.tolist() == pytest.approx([4.2 / 100 / 252, 4.2 / 100 / 252, 4.5 / 100 / 252, 4.5 / 100 / 252])
    with pytest.raises(ValueError, match="no \\^IRX quote on or before 2025-03-02"):
        pe.daily_risk_free(quotes, pd.DatetimeIndex(["2025-03-02"]))


def test_a_first_snapshots_missing_return_is_never_used():
    """A first snapshot (and a later restart of the book's history) has a NULL daily return: it is the base of
    the next return, never a return of 0."""
    dates = SESSIONS[(SESSIONS >= "2025-03-03")][:6]
    snaps = pd.DataFrame({"date": dates, "daily_return": [np.nan, 0.01, -0.02, np.nan, 0.03, 0.01]})
    returns = pe.return_series(snaps, pd.Series(0.0, index=dates), pd.Series(4.0, index=dates))
    assert returns.date.tolist() == [dates[1], dates[2], dates[4], dates[5]]
    assert returns.base_date.tolist() == [dates[0], dates[1], dates[3], dates[4]]
    row = pe.performance_windows(returns, [dates[-1]], SESSIONS).set_index("window_name").loc["inception"]
    assert row.n_returns == 4 and row.flag == "limited_history"  # 5 sessions since the first return, 4 returns
    assert row.annual_volatility == pytest.approx(ep.annual_volatility(np.array([0.01, -0.02, 0.03, 0.01])), abs=1e-15)


def test_no_look_ahead_later_returns_change_nothing_of_a_date():
    returns = book()
    day = D("2025-03-14")
    changed = returns.copy()
    later = changed.date > day
    changed.loc[later, ["portfolio_return", "market_return"]] *= -3
    changed.loc[later, "risk_free"] += 0.001
    a = pe.performance_windows(returns, [day], SESSIONS)
    b = pe.performance_windows(changed, [day], SESSIONS)
    pd.testing.assert_frame_equal(a, b)
    # and a date computed within a range equals the same date computed alone
    ranged = pe.performance_windows(returns, SESSIONS[(SESSIONS >= "2025-03-03") & (SESSIONS <= "2025-06-30")], SESSIONS)
    pd.testing.assert_frame_equal(ranged[ranged.date == day].reset_index(drop=True), a)


def test_blocks_of_dates_give_the_same_figures(monkeypatch):
    returns = book()
    as_of = SESSIONS[(SESSIONS >= "2025-01-02") & (SESSIONS <= "2025-06-30")]
    whole = pe.performance_windows(returns, as_of, SESSIONS)
    monkeypatch.setattr(pe, "BLOCK_CELLS", 500)  # a handful of dates per block
    pd.testing.assert_frame_equal(pe.performance_windows(returns, as_of, SESSIONS), whole)


def test_inputs_that_cannot_give_a_figure_are_errors():
    returns = book()
    with pytest.raises(ValueError, match="sessions must reach 125 sessions before 2024-06-03"):
        pe.performance_windows(returns, [D("2024-06-03")], SESSIONS[SESSIONS >= "2024-01-01"])
    with pytest.raises(ValueError, match="after returns of window ytd"):
        pe.performance_windows(returns, [D("2025-03-14")], SESSIONS[SESSIONS >= "2025-01-02"])
    with pytest.raises(ValueError, match="not among the sessions"):
        pe.performance_windows(returns, [D("2025-03-15")], SESSIONS)
    bad = returns.copy()
    bad.loc[3, "portfolio_return"] = np.nan
    with pytest.raises(ValueError, match="non-finite portfolio_return"):
        pe.performance_windows(bad, [D("2025-03-14")], SESSIONS)
    assert pe.sessions_needed([D("2025-03-14")], D("2024-03-04")) == (D("2024-03-04"), 251)
    assert pe.sessions_needed([D("2025-03-14")], D("2025-02-03")) == (D("2025-01-01"), 251)


def test_a_book_with_only_its_first_snapshot_has_rows_without_figures():
    snaps = pd.DataFrame({"date": [D("2025-03-03")], "daily_return": [np.nan]})
    returns = pe.return_series(snaps, pd.Series(0.01, index=[D("2025-03-03")]), pd.Series(4.0, index=[D("2025-03-03")]))
    assert returns.empty
    out = pe.performance_windows(returns, [D("2025-03-03")], SESSIONS).set_index("window_name")
    assert (out.n_returns == 0).all() and (out.flag == "insufficient_returns").all()
    assert pd.isna(out.loc["inception", "window_start"]) and out.loc["inception", "window_sessions"] == 0
    assert out.loc["mtd", "window_start"] == D("2025-03-03") and out.loc["mtd", "window_sessions"] == 1
    assert out[pe.STATISTICS].isna().all().all()
