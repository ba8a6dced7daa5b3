"""Tests of sigmasight_pipeline.marketdata: calendar, sample / yfinance / CSV sources, security master.

No test reaches the network: an autouse fixture makes every socket connection raise, and the
yfinance source is always given a fake downloader that returns frames shaped like yfinance 1.x.
"""

from __future__ import annotations

import datetime as dt
import importlib
import socket
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from sigmasight_pipeline.marketdata import (
    FACTOR_PROXIES,
    SYMBOLS,
    CsvFormatError,
    CsvSource,
    FetchReport,
    MarketDataSource,
    SampleSource,
    YFinanceSource,
    get_source,
    load_security_master,
    lookup,
    price_symbol_for,
    universe,
)
from sigmasight_pipeline.marketdata import base, sources
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.marketdata.base import is_option_symbol, option_underlying
from sigmasight_pipeline.marketdata.yfinance_source import closes_from_download

D = dt.date


class NetworkBlocked(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any socket connection in these tests fails loudly."""

    def refuse(*args, **kwargs):
        raise NetworkBlocked("network access attempted in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # yfinance 1.x talks HTTP through curl_cffi (libcurl, not Python sockets) or requests.
    for module in ("curl_cffi.requests", "requests"):
        try:
            session = importlib.import_module(module).Session
        except ImportError:  # pragma: no cover - optional backends
            continue
        monkeypatch.setattr(session, "request", refuse)


def demo_books() -> pd.DataFrame:
    base = resources.files("sigmasight_pipeline") / "data" / "demo_portfolios"
    frames = []
    for name in ("individual", "hnw", "hedge_fund"):
        with (base / f"{name}.csv").open() as fh:
            frames.append(pd.read_csv(fh).assign(book=name))
    return pd.concat(frames, ignore_index=True)


DEMO_STOCKS = sorted(t for t in set(demo_books()["ticker"]) if not is_option_symbol(t))


# --------------------------------------------------------------------------------------- calendar
class TestCalendar:
    @pytest.mark.parametrize(
        "day, reason",
        [
            (
                "2025-01-09",
                "XNYS holiday: National Day of Mourning for President Jimmy Carter (ad-hoc closure)",
            ),
            ("2025-01-20", "XNYS holiday: Dr. Martin Luther King Jr. Day"),
            ("2025-07-04", "XNYS holiday: July 4th"),
            ("2025-04-18", "XNYS holiday: Good Friday"),
            ("2025-01-11", "weekend (Saturday)"),
            ("2025-01-12", "weekend (Sunday)"),
        ],
    )
    def test_non_sessions_have_a_reason(self, day, reason):
        assert not xcal.is_session(day)
        assert not xcal.is_session(D.fromisoformat(day))
        assert xcal.non_session_reason(pd.Timestamp(day)) == reason

    def test_sessions(self):
        for day in ("2025-01-02", "2025-01-08", "2025-01-10", "2024-07-03", "2024-11-29"):
            assert xcal.is_session(day)
            assert xcal.non_session_reason(day) is None

    def test_early_closes_2024(self):
        assert xcal.is_early_close(D(2024, 7, 3))
        assert xcal.is_early_close(D(2024, 11, 29))
        assert xcal.is_early_close(D(2024, 12, 24))
        assert not xcal.is_early_close(D(2024, 7, 2))
        assert xcal.session_close(D(2024, 7, 3)) == pd.Timestamp("2024-07-03 17:00", tz="UTC")
        assert xcal.session_close(D(2024, 7, 2)) == pd.Timestamp("2024-07-02 20:00", tz="UTC")
        assert xcal.session_close(D(2025, 1, 10)) == pd.Timestamp("2025-01-10 21:00", tz="UTC")
        with pytest.raises(ValueError, match="not an XNYS session"):
            xcal.session_close(D(2025, 1, 9))

    def test_session_counts(self):
        # 2024: 262 weekdays - 10 holidays = 252.
        assert len(xcal.sessions_in_range(D(2024, 1, 1), D(2024, 12, 31))) == 252
        # 2025-01-02..06-30, by hand: Jan 20 (23 weekdays - Jan 1, Jan 9, Jan 20), Feb 19, Mar 21,
        # Apr 21 (Good Friday), May 21 (Memorial Day), Jun 20 (Juneteenth) = 122.
        first_half = xcal.sessions_in_range("2025-01-02", pd.Timestamp("2025-06-30"))
        assert len(first_half) == 122
        assert first_half[0] == pd.Timestamp("2025-01-02")
        assert first_half[-1] == pd.Timestamp("2025-06-30")
        assert first_half.tz is None
        assert len(xcal.sessions_in_range(D(2025, 1, 5), D(2025, 1, 4))) == 0

    def test_neighbours(self):
        assert xcal.previous_session(D(2025, 1, 10)) == pd.Timestamp("2025-01-08")
        assert xcal.previous_session(D(2025, 1, 8)) == pd.Timestamp("2025-01-07")
        assert xcal.session_on_or_before(D(2025, 1, 20)) == pd.Timestamp("2025-01-17")
        assert xcal.session_on_or_before(D(2025, 1, 21)) == pd.Timestamp("2025-01-21")
        assert xcal.next_session(D(2025, 1, 8)) == pd.Timestamp("2025-01-10")

    def test_sessions_window(self):
        w = xcal.sessions_window(D(2025, 1, 20), 150)
        assert len(w) == 150
        assert w[-1] == pd.Timestamp("2025-01-17")
        assert w[0] == pd.Timestamp("2024-06-13")
        assert w.is_monotonic_increasing and w.tz is None
        w2 = xcal.sessions_window(pd.Timestamp("2025-01-02"), 150)
        assert w2[-1] == pd.Timestamp("2025-01-02") and len(w2) == 150

    def test_calendar_reaches_past_the_sample_grid(self):
        cal = xcal.get_calendar()
        assert cal is xcal.get_calendar()
        assert cal.first_session <= pd.Timestamp("2000-01-03")
        assert cal.last_session >= pd.Timestamp("2027-12-31")

    def test_tz_aware_input_keeps_its_local_date(self):
        ts = pd.Timestamp("2025-01-09 23:30", tz="America/New_York")
        assert xcal.to_timestamp(ts) == pd.Timestamp("2025-01-09")

    def test_split_sessions(self):
        dates = pd.bdate_range("2025-06-17", "2025-06-20")  # 2025-06-19: Juneteenth
        sessions, closed = xcal.split_sessions(dates)
        assert list(sessions.strftime("%Y-%m-%d")) == ["2025-06-17", "2025-06-18", "2025-06-20"]
        assert list(closed) == ["2025-06-19"] and "Juneteenth" in closed["2025-06-19"]
        sessions, closed = xcal.split_sessions(pd.DatetimeIndex([]))
        assert sessions.empty and closed == {}

    def test_new_york_time_and_business_date(self):
        # A naive value is New York wall-clock time; an aware one is converted.
        assert str(xcal.new_york_time(dt.datetime(2025, 6, 27, 18, 30))) == "2025-06-27 18:30:00-04:00"
        utc = pd.Timestamp("2025-06-28 01:30", tz="UTC")  # 21:30 on the 27th in New York
        assert str(xcal.new_york_time(utc)) == "2025-06-27 21:30:00-04:00"
        assert xcal.business_date(utc) == pd.Timestamp("2025-06-27")
        assert xcal.business_date(pd.Timestamp("2025-01-15 03:00", tz="UTC")) == pd.Timestamp("2025-01-14")  # EST
        assert xcal.new_york_time().tz is not None and xcal.business_date().tzinfo is None

    def test_latest_completed_session(self):
        at = lambda *a: pd.Timestamp(dt.datetime(*a), tz=xcal.NEW_YORK)  # noqa: E731
        assert xcal.latest_completed_session(at(2025, 6, 27, 15, 59)) == pd.Timestamp("2025-06-26")
        assert xcal.latest_completed_session(at(2025, 6, 27, 16, 0)) == pd.Timestamp("2025-06-27")
        assert xcal.latest_completed_session(at(2025, 6, 29, 12, 0)) == pd.Timestamp("2025-06-27")  # Sunday
        assert xcal.latest_completed_session(at(2025, 7, 3, 13, 30)) == pd.Timestamp("2025-07-03")  # early close
        assert xcal.latest_completed_session(at(2025, 7, 4, 20, 0)) == pd.Timestamp("2025-07-03")  # holiday


# --------------------------------------------------------------------------------------- base
class TestBase:
    def test_constants(self):
        assert list(FACTOR_PROXIES.items()) == [
            ("Market", "SPY"), ("Value", "VTV"), ("Growth", "VUG"), ("Momentum", "MTUM"),
            ("Quality", "QUAL"), ("Size", "SIZE"), ("Low Volatility", "USMV"),
        ]
        assert (SYMBOLS.TREASURY_10Y, SYMBOLS.TREASURY_13W, SYMBOLS.VIX) == ("^TNX", "^IRX", "^VIX")

    def test_price_symbol_for(self):
        assert price_symbol_for("VIX") == "^VIX"
        assert price_symbol_for("NVDA") == "NVDA"
        assert price_symbol_for("BRK-B") == "BRK-B"
        assert option_underlying("VIX250716C00025000") == "VIX"
        assert option_underlying("AAPL  250815P00200000") == "AAPL"
        assert option_underlying("AAPL") is None

    def test_universe(self):
        u = universe(["NVDA", "VIX", "SPY", "NVDA", "VIX250716C00025000", "QQQ250815C00420000"])
        assert u == sorted(
            ["NVDA", "^VIX", "QQQ", "SPY", "VTV", "VUG", "MTUM", "QUAL", "SIZE", "USMV", "^TNX", "^IRX"]
        )
        assert "SLY" not in universe(DEMO_STOCKS)

    def test_get_source(self, monkeypatch, tmp_path):
        monkeypatch.delenv("SIGMASIGHT_MARKET_DATA", raising=False)
        assert isinstance(get_source(), SampleSource)
        monkeypatch.setenv("SIGMASIGHT_MARKET_DATA", "yfinance")
        assert isinstance(get_source(), YFinanceSource)
        monkeypatch.setenv("SIGMASIGHT_MARKET_DATA", "csv")
        monkeypatch.setenv("SIGMASIGHT_MARKET_DATA_CSV", str(tmp_path))
        src = get_source()
        assert isinstance(src, CsvSource) and src.directory == tmp_path
        assert isinstance(get_source("sample"), SampleSource)
        assert isinstance(get_source("csv", directory=tmp_path), CsvSource)
        with pytest.raises(ValueError, match="sample, yfinance, csv"):
            get_source("bloomberg")
        for src in (SampleSource(), YFinanceSource(download=lambda **k: None), CsvSource(tmp_path)):
            assert isinstance(src, MarketDataSource)
        # The registry sits above the sources; base knows none of them (no import circle).
        assert get_source is sources.get_source and not hasattr(base, "get_source")


# --------------------------------------------------------------------------------------- sample
@pytest.fixture(scope="module")
def sample_2024() -> pd.DataFrame:
    syms = sorted(set(DEMO_STOCKS) | set(FACTOR_PROXIES.values()) | {"^TNX", "^IRX", "^VIX"})
    return SampleSource().fetch_closes(syms, D(2024, 1, 1), D(2024, 12, 31))


@pytest.fixture(scope="module")
def sample_demo() -> pd.DataFrame:
    """Entry dates through the end of the demo window (2023-11-20 .. 2025-06-30)."""
    syms = sorted(set(DEMO_STOCKS) | set(FACTOR_PROXIES.values()) | {"^TNX", "^IRX", "^VIX"})
    return SampleSource().fetch_closes(syms, D(2023, 11, 1), D(2025, 6, 30))


def spy_fits(closes: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """(beta, R^2) of each demo symbol's daily returns on SPY's."""
    r = closes.pct_change().iloc[1:]
    x = np.column_stack([np.ones(len(r)), r["SPY"].to_numpy()])
    fits = {}
    for sym in DEMO_STOCKS:
        y = r[sym].to_numpy()
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        resid = y - x @ coef
        fits[sym] = (coef[1], 1 - resid.var() / y.var())
    return fits


class TestSampleSource:
    def test_deterministic_across_instances(self):
        syms = ["SPY", "NVDA", "^TNX", "^VIX", "ZZZZ", "BND"]
        a = SampleSource().fetch_closes(syms, D(2024, 3, 1), D(2025, 6, 30))
        b = SampleSource().fetch_closes(syms, D(2024, 3, 1), D(2025, 6, 30))
        pd.testing.assert_frame_equal(a, b)
        assert not SampleSource(seed=7).fetch_closes(["SPY"], D(2024, 3, 1), D(2024, 3, 8)).equals(
            a[["SPY"]].loc[:"2024-03-08"]
        )

    def test_values_do_not_depend_on_requested_range_or_symbols(self):
        src = SampleSource()
        long = src.fetch_closes(["AAPL", "SPY", "ZZZZ"], D(2023, 1, 1), D(2025, 6, 30))
        short = SampleSource().fetch_closes(["ZZZZ", "AAPL"], D(2025, 1, 2), D(2025, 1, 31))
        pd.testing.assert_frame_equal(short, long.loc["2025-01-02":"2025-01-31", ["ZZZZ", "AAPL"]])

    def test_frame_contract(self, sample_2024):
        assert sample_2024.index.equals(xcal.sessions_in_range(D(2024, 1, 1), D(2024, 12, 31)))
        assert sample_2024.index.name == "date" and sample_2024.index.tz is None
        assert (sample_2024.dtypes == "float64").all()
        assert not sample_2024.isna().any().any()

    def test_anchors_equal_entry_prices(self, sample_2024):
        """Each symbol's first anchor is one of its demo entries, on the split-adjusted scale of the closes: the
        books' entry prices are as of their dates (NVDA 700 before its 10-for-1 split), the closes adjusted."""
        from sigmasight_pipeline.engines.splits import split_factors

        src = SampleSource()
        books = demo_books()
        books = books[~books["ticker"].map(is_option_symbol)]
        factor = split_factors(src.fetch_splits(DEMO_STOCKS), books["ticker"], books["entry_date"])
        books = books.assign(adjusted_entry=books["entry_price"] / factor)
        full = src.fetch_closes(DEMO_STOCKS, D(2023, 11, 1), D(2024, 3, 1))
        for sym in DEMO_STOCKS:
            session, price = src.anchor(sym)
            rows = books[books["ticker"] == sym]
            assert full.at[session, sym] == price, sym
            if sym == "SPY":  # anchored at 470 on 2024-01-02 (HF book: SPY 460 call)
                assert (session, price) == (pd.Timestamp("2024-01-02"), 470.0)
                continue
            match = rows[np.isclose(rows["adjusted_entry"], price, rtol=0, atol=1e-9)]
            assert len(match), f"{sym}: anchor {price} is none of its (split-adjusted) entry prices"
            sessions = {xcal.session_on_or_before(d) for d in match["entry_date"]}
            assert session in sessions, sym
        assert src.anchor("META") == (pd.Timestamp("2024-01-19"), 530.0)  # HNW entry 2024-01-20 (Sat)
        # NVDA: the HF book's 700 on 2024-01-05 is pre-split; / 10 on the post-split scale (the re-anchoring).
        assert src.anchor("NVDA") == (pd.Timestamp("2024-01-05"), 70.0)
        assert books.loc[books["ticker"] == "NVDA", "adjusted_entry"].tolist() == [70.0, 70.0, 70.0]
        assert src.anchor("GLD") == (pd.Timestamp("2024-02-01"), 219.23)
        assert 465 <= sample_2024.at[pd.Timestamp("2024-01-02"), "SPY"] <= 475

    @pytest.mark.parametrize(
        "window, low", [(("2024-01-02", "2024-12-31"), 0.0), (("2025-01-02", "2025-06-30"), -0.15)]
    )
    def test_betas_on_spy_are_plausible(self, sample_demo, window, low):
        """2024 and the demo window (125 sessions: low-beta GLD / BND estimates are noisier)."""
        fits = spy_fits(sample_demo.loc[window[0] : window[1]])
        for sym, (beta, _) in fits.items():
            assert low <= beta <= 2.5, (sym, beta)
        for sym in ("AAPL", "MSFT", "GOOGL", "AMZN", "META", "NVDA", "JPM", "V", "BRK-B", "QQQ"):
            assert fits[sym][1] > 0.2, (sym, fits[sym])
        assert fits["NVDA"][0] > 1.3 and fits["BND"][0] < 0.2 and fits["JNJ"][0] < 0.7

    def test_bond_funds_load_on_rates(self, sample_2024):
        r = sample_2024.pct_change().iloc[1:]
        dy_bp = sample_2024["^TNX"].diff().iloc[1:] * 100
        for sym in ("BND", "FXNAX"):
            x = np.column_stack([np.ones(len(r)), dy_bp.to_numpy()])
            coef, *_ = np.linalg.lstsq(x, r[sym].to_numpy(), rcond=None)
            assert -0.0008 < coef[1] < -0.0004, (sym, coef[1])

    def test_style_etfs_track_spy(self, sample_2024):
        r = sample_2024.pct_change().iloc[1:]
        for etf in list(FACTOR_PROXIES.values())[1:]:
            assert 0.8 < r[etf].corr(r["SPY"]) < 0.99, etf

    def test_rates_and_vix_levels(self):
        full = SampleSource().fetch_closes(["^TNX", "^IRX", "^VIX", "SPY"], D(2015, 1, 1), D(2027, 12, 31))
        assert full["^TNX"].between(2, 7).all()
        assert full["^IRX"].between(0.01, 8).all()
        assert full["^VIX"].between(9, 60).all()
        assert abs(full["^TNX"].mean() - 4.2) < 0.6 and abs(full["^VIX"].median() - 18.5) < 3
        assert abs(full["^IRX"].mean() - 5.0) < 0.3 and full["^IRX"].between(3.5, 6.5).all()
        assert full["^VIX"].pct_change().corr(full["SPY"].pct_change()) < -0.5
        assert full.index[0] == pd.Timestamp("2015-01-02")

    def test_both_anchors_are_hit(self, sample_demo):
        src = SampleSource()
        for sym in sorted(set(DEMO_STOCKS) | set(FACTOR_PROXIES.values())):
            anchors = src.anchors(sym)
            assert len(anchors) == (3 if sym == "NVDA" else 2), sym  # NVDA also has its real 2025-06-30 close
            assert anchors[0] == src.anchor(sym), sym
            assert anchors[1][0] == pd.Timestamp("2025-01-02"), sym
            for session, price in anchors:
                got = sample_demo.at[session, sym]
                assert abs(got / price - 1) < 1e-9, (sym, session, got, price)
        assert src.anchors("ZZZZ") == [src.anchor("ZZZZ")]  # hashed symbols: one anchor
        assert src.anchors("^VIX") == [] and src.anchors("VIX250716C00025000") == []
        assert src.anchors("SPY")[1] == (pd.Timestamp("2025-01-02"), 585.0)

    def test_second_anchors_are_plausible_2024_returns(self):
        src = SampleSource()
        ret = {s: src.anchors(s)[1][1] / src.anchors(s)[0][1] - 1 for s in DEMO_STOCKS}
        assert all(-0.3 <= v <= 0.8 for s, v in ret.items() if s != "NVDA"), ret
        # NVDA, split-adjusted: 70 (the books' 700 / 10) to its real 138.31 (real 2024: 49.1 -> 138.3, +182 %)
        assert 0.8 <= ret["NVDA"] <= 1.9
        assert 0.2 <= ret["SPY"] <= 0.3 and abs(ret["BND"]) < 0.05
        assert 0.15 <= ret["GLD"] <= 0.35
        for etf in list(FACTOR_PROXIES.values())[1:]:  # style spreads vs SPY stay modest
            a = src.anchors(etf)
            assert abs(a[1][1] / a[0][1] - 1 - ret["SPY"]) < 0.15, etf

    def test_bridge_only_adds_a_constant_drift_between_anchors(self):
        """Daily log returns = the model's, plus one constant per day between each two anchors, nothing outside."""
        from sigmasight_pipeline.marketdata.sample import grid

        src = SampleSource()
        index = grid()
        for sym in ("SPY", "VUG", "NVDA", "AMD", "BND", "F", "FXNAX"):
            anchors = src.anchors(sym)
            got = np.diff(np.log(src.series(sym).to_numpy()))
            model = pd.Series(np.log1p(src._returns(sym, src.parameters(sym)))[1:], index=index[1:])
            excess = got - model
            tol = 1e-4 / src.series(sym).min()  # closes are rounded to 4 decimals
            (first, _), (last, _) = anchors[0], anchors[-1]
            outside = pd.concat([excess.loc[:first], excess.loc[last + pd.Timedelta(days=1) :]])
            assert outside.abs().max() < tol, sym
            for (s1, p1), (s2, p2) in zip(anchors, anchors[1:]):
                after_s1 = s1 + pd.Timedelta(days=1)
                inside = excess.loc[after_s1:s2]
                assert inside.max() - inside.min() < 2 * tol, (sym, s1)  # one constant per day
                drift = (np.log(p2 / p1) - model.loc[after_s1:s2].sum()) / len(inside)
                assert len(inside) > 100 and abs(inside.mean() - drift) < 1e-6, (sym, s1)  # the bridge's drift

    def test_demo_window_is_realistic(self, sample_demo):
        spy = sample_demo.loc["2025-01-02":"2025-06-30", "SPY"]
        assert len(spy) > 120 and spy.between(480, 700).all(), (spy.min(), spy.max())
        src = SampleSource()
        end = sample_demo.loc[pd.Timestamp("2025-06-30")]
        for sym in DEMO_STOCKS:
            session, price = src.anchor(sym)
            assert 0.33 <= end[sym] / price <= 3.0, (sym, price, end[sym])
        short = sample_demo.loc["2024-01-02":"2025-06-30", "^IRX"]
        assert short.between(3.5, 5.5).all(), (short.min(), short.max())

    def test_alphas_are_modest(self):
        params = SampleSource().parameters
        for sym in [*DEMO_STOCKS, "ZZZZ", "QWERTY", "ABCDEF", "XYZ1"]:
            assert abs(params(sym)["alpha"]) <= 0.10, sym

    def test_values_do_not_depend_on_range_across_the_anchors(self):
        long = SampleSource().fetch_closes(["NVDA", "SPY", "BND"], D(2023, 6, 1), D(2025, 12, 31))
        ranges = (
            (D(2024, 6, 3), D(2024, 6, 28)),  # between the anchors
            (D(2025, 1, 2), D(2025, 1, 2)),  # the second anchor alone
            (D(2025, 9, 1), D(2025, 9, 30)),  # after it
        )
        for lo, hi in ranges:
            short = SampleSource().fetch_closes(["BND", "NVDA", "SPY"], lo, hi)
            expected = long.loc[str(lo) : str(hi), ["BND", "NVDA", "SPY"]]
            pd.testing.assert_frame_equal(short, expected, check_freq=False)

    def test_options_are_missing(self):
        src = SampleSource()
        frame, report = src.fetch(["VIX250716C00025000", "AAPL"], D(2025, 1, 2), D(2025, 1, 10))
        assert list(frame.columns) == ["AAPL"]
        assert report.symbols_missing == ["VIX250716C00025000"]
        assert src.last_report is report
        assert report.rows == 6 and report.attempts == 1 and report.incomplete == {}

    def test_unknown_symbols_get_hashed_levels(self):
        a = SampleSource().fetch_closes(["ZZZZ", "QWERTY"], D(2024, 1, 2), D(2024, 1, 2))
        assert a.shape == (1, 2) and a.iloc[0].between(20, 400).all()

    def test_outside_grid_is_reported(self):
        frame, report = SampleSource().fetch(["SPY"], D(2014, 12, 29), D(2015, 1, 6))
        assert frame.index[0] == pd.Timestamp("2015-01-02")
        assert report.incomplete == {"SPY": 3}  # 2014-12-29, -30, -31


# --------------------------------------------------------------------------------------- yfinance
FIELDS = ("Close", "High", "Low", "Open", "Volume")


def yf_frame(closes: dict[str, list[float]], dates: list[str], tz: str | None = "America/New_York"):
    """A frame shaped like ``yfinance.download(..., group_by="column")`` in yfinance 1.x."""
    index = pd.DatetimeIndex(pd.to_datetime(dates), name="Date")
    if tz:
        index = index.tz_localize(tz)
    tickers = sorted(closes)
    data = {}
    for field in FIELDS:
        for t in tickers:
            c = np.asarray(closes[t], dtype=float)
            data[(field, t)] = {"Close": c, "High": c * 1.01, "Low": c * 0.99,
                                "Open": c * 1.002, "Volume": np.where(np.isnan(c), np.nan, 1e6)}[field]
    frame = pd.DataFrame(data, index=index)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["Price", "Ticker"])
    return frame


class FakeDownload:
    """Replays responses (frames or exceptions) and records each call's keyword arguments."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.calls: list[dict] = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        response = self.responses.pop(0) if self.responses else pd.DataFrame()
        if isinstance(response, Exception):
            raise response
        return response(kwargs) if callable(response) else response


JAN = ["2025-01-02", "2025-01-03", "2025-01-06", "2025-01-07", "2025-01-08", "2025-01-10"]


class TestYFinanceSource:
    def test_closes_missing_symbol_nan_row_and_non_session(self):
        nan = np.nan
        first = yf_frame(
            {
                "AAPL": [243.85, 243.36, 245.0, 242.21, 242.7, 236.85, 240.0],
                "MSFT": [418.58, 423.35, nan, 422.37, 424.56, 418.95, 420.0],
                "DELISTED": [nan] * 7,
            },
            JAN + ["2025-01-11"],  # a Saturday row (must be dropped)
        )
        fake = FakeDownload(first, pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
        sleeps: list[float] = []
        src = YFinanceSource(download=fake, sleep=sleeps.append, base_delay=0.5, max_attempts=3)
        frame, report = src.fetch(["AAPL", "MSFT", "DELISTED"], D(2025, 1, 2), D(2025, 1, 12))

        assert fake.calls[0]["tickers"] == ["AAPL", "MSFT", "DELISTED"]
        assert fake.calls[0]["start"] == "2025-01-02" and fake.calls[0]["end"] == "2025-01-11"
        assert fake.calls[0]["auto_adjust"] is True and fake.calls[0]["group_by"] == "column"
        assert fake.calls[0]["progress"] is False
        assert [c["tickers"] for c in fake.calls[1:]] == [["DELISTED"]] * 3  # missing-symbol round
        assert sleeps == [0.5, 1.0]
        assert list(frame.columns) == ["AAPL", "MSFT"]
        assert list(frame.index) == list(pd.to_datetime(JAN))
        assert frame.index.tz is None and frame.index.name == "date"
        assert frame.at[pd.Timestamp("2025-01-10"), "AAPL"] == 236.85
        assert np.isnan(frame.at[pd.Timestamp("2025-01-06"), "MSFT"])
        assert report.symbols_missing == ["DELISTED"]
        assert report.incomplete == {"MSFT": 1}
        assert report.attempts == 4 and report.rows == 6
        assert "DELISTED" in report.summary()

    def test_retry_after_exception(self):
        fake = FakeDownload(ConnectionError("rate limited"), yf_frame({"SPY": [591.0, 595.5]}, JAN[:2]))
        sleeps: list[float] = []
        src = YFinanceSource(download=fake, sleep=sleeps.append, base_delay=2.0)
        frame, report = src.fetch(["SPY"], D(2025, 1, 2), D(2025, 1, 3))
        assert len(fake.calls) == 2 and report.attempts == 2
        assert sleeps == [2.0]
        assert report.symbols_missing == [] and report.complete
        assert any("ConnectionError: rate limited" in e for e in report.errors)
        assert frame["SPY"].tolist() == [591.0, 595.5]

    def test_gives_up_after_max_attempts(self):
        fake = FakeDownload(*[TimeoutError("timed out")] * 5)
        sleeps: list[float] = []
        src = YFinanceSource(download=fake, sleep=sleeps.append, max_attempts=4, base_delay=1.0)
        frame, report = src.fetch(["SPY", "QQQ"], D(2025, 1, 2), D(2025, 1, 3))
        assert len(fake.calls) == 4 and sleeps == [1.0, 2.0, 4.0]
        assert frame.empty and report.symbols_missing == ["SPY", "QQQ"]
        assert len(report.errors) == 4

    def test_single_ticker_multiindex_naive_index(self):
        raw = yf_frame({"^TNX": [4.57, 4.6]}, JAN[:2], tz=None)
        assert isinstance(raw.columns, pd.MultiIndex)
        src = YFinanceSource(download=FakeDownload(raw), sleep=lambda s: None)
        frame = src.fetch_closes(["^TNX"], D(2025, 1, 2), D(2025, 1, 3))
        assert frame["^TNX"].tolist() == [4.57, 4.6]
        assert src.last_report.symbols_missing == []

    def test_flat_single_ticker_and_lowercase_request(self):
        raw = yf_frame({"BRK-B": [452.0, 455.1]}, JAN[:2]).droplevel(1, axis=1)
        closes = closes_from_download(raw, ["brk-b"])
        assert list(closes.columns) == ["brk-b"] and closes.iloc[1, 0] == 455.1

    def test_only_missing_dates_are_downloaded(self):
        def respond(kwargs):
            dates = [d for d in JAN if kwargs["start"] <= d < kwargs["end"]]
            return yf_frame({t: [100.0 + i for i in range(len(dates))] for t in kwargs["tickers"]}, dates)

        fake = FakeDownload(respond, respond, respond)
        stored = {"AAPL": [D(2025, 1, 2), D(2025, 1, 3), D(2025, 1, 6)], "SPY": JAN}
        src = YFinanceSource(download=fake, sleep=lambda s: None,
                             have=lambda s: {pd.Timestamp(d).date() for d in stored.get(s, [])})
        frame, report = src.fetch(["AAPL", "SPY", "MSFT"], D(2025, 1, 2), D(2025, 1, 10),
                                  skip={"MSFT": [D(2025, 1, 2)]})
        spans = sorted((c["start"], c["end"], tuple(c["tickers"])) for c in fake.calls)
        assert spans == [("2025-01-03", "2025-01-11", ("MSFT",)), ("2025-01-07", "2025-01-11", ("AAPL",))]
        assert "SPY" not in frame.columns and report.symbols_missing == []
        assert frame["AAPL"].dropna().index[0] == pd.Timestamp("2025-01-07")
        assert report.incomplete == {} and report.complete

    def test_batches(self):
        fake = FakeDownload(*[lambda k: yf_frame({t: [1.0] for t in k["tickers"]}, JAN[:1])] * 3)
        src = YFinanceSource(download=fake, batch_size=2, sleep=lambda s: None)
        frame = src.fetch_closes(["A", "B", "C", "D", "E"], D(2025, 1, 2), D(2025, 1, 2))
        assert [c["tickers"] for c in fake.calls] == [["A", "B"], ["C", "D"], ["E"]]
        assert list(frame.columns) == ["A", "B", "C", "D", "E"]

    def test_no_network_even_through_yfinance(self, monkeypatch):
        import yfinance

        with pytest.raises(NetworkBlocked):
            socket.create_connection(("query1.finance.yahoo.com", 443))
        with socket.socket() as sock, pytest.raises(NetworkBlocked):
            sock.connect(("127.0.0.1", 9))

        def forbidden(*args, **kwargs):
            raise AssertionError("yfinance.download must not be called")

        monkeypatch.setattr(yfinance, "download", forbidden)
        monkeypatch.setattr(yfinance, "Ticker", forbidden)
        src = YFinanceSource(download=FakeDownload(yf_frame({"SPY": [591.0]}, JAN[:1])),
                             info=lambda s: {"quoteType": "ETF", "longName": "SPDR S&P 500 ETF Trust"})
        assert src.fetch_closes(["SPY"], D(2025, 1, 2), D(2025, 1, 2))["SPY"].tolist() == [591.0]
        assert src.fetch_security_info("SPY")["asset_type"] == "etf"

    def test_real_yfinance_download_with_patched_history(self, monkeypatch):
        """yfinance's own download() assembles the frame; only Ticker.history is faked."""
        import yfinance.multi

        def history(ticker, *args, **kwargs):
            if ticker.ticker == "GONE":
                raise ValueError("possibly delisted; no price data found")
            idx = pd.DatetimeIndex(pd.to_datetime(JAN[:3]), name="Date").tz_localize("America/New_York")
            close = {"AAPL": [243.85, 243.36, 245.0], "^TNX": [4.57, 4.6, np.nan]}[ticker.ticker]
            return pd.DataFrame({"Open": close, "High": close, "Low": close, "Close": close,
                                 "Volume": [0, 0, 0]}, index=idx)

        monkeypatch.setattr(yfinance.multi.Ticker, "history", history)
        src = YFinanceSource(sleep=lambda s: None, threads=False)  # the real yfinance.download
        frame, report = src.fetch(["AAPL", "^TNX", "GONE"], D(2025, 1, 2), D(2025, 1, 6))
        assert list(frame.columns) == ["AAPL", "^TNX"]
        assert list(frame.index) == list(pd.to_datetime(JAN[:3])) and frame.index.tz is None
        assert frame["AAPL"].tolist() == [243.85, 243.36, 245.0]
        assert frame["^TNX"].tolist()[:2] == [4.57, 4.6] and np.isnan(frame["^TNX"].iloc[2])
        assert report.symbols_missing == ["GONE"] and report.incomplete == {"^TNX": 1}

    def test_failed_ticker_adj_close_column_is_ignored(self):
        raw = yf_frame({"AAPL": [243.85], "GONE": [np.nan]}, JAN[:1], tz=None)
        raw[("Adj Close", "GONE")] = np.nan  # what yfinance 1.x adds for a failed ticker
        closes = closes_from_download(raw, ["AAPL", "GONE"])
        assert closes.at[pd.Timestamp("2025-01-02"), "AAPL"] == 243.85

    def test_security_info(self):
        """``Ticker.info`` dicts shaped as yfinance 1.x returns them (the keys used, with real-looking values)."""
        infos = {
            "AAPL": {"quoteType": "EQUITY", "longName": "Apple Inc.", "shortName": "Apple Inc.",
                     "sector": "Technology", "sectorKey": "technology", "industry": "Consumer Electronics",
                     "dividendRate": 1.04, "dividendYield": 0.44, "trailingAnnualDividendRate": 1.02,
                     "trailingAnnualDividendYield": 0.004305, "fiveYearAvgDividendYield": 0.55,
                     "currentPrice": 236.5},
            "TSLA": {"quoteType": "EQUITY", "longName": "Tesla, Inc.", "sector": "Consumer Cyclical",
                     "industry": "Auto Manufacturers", "trailingAnnualDividendRate": 0.0,
                     "trailingAnnualDividendYield": 0.0},
            "SPY": {"quoteType": "ETF", "longName": "SPDR S&P 500 ETF Trust", "category": "Large Blend",
                    "fundFamily": "State Street Investment Management", "legalType": "Exchange Traded Fund",
                    "yield": 0.0121, "trailingAnnualDividendYield": 0.0119},
            "GLD": {"quoteType": "ETF", "longName": "SPDR Gold Shares", "category": "Commodities Focused"},
            "FXNAX": {"quoteType": "MUTUALFUND", "longName": "Fidelity U.S. Bond Index Fund",
                      "category": "Intermediate Core Bond", "yield": 0.0372},
            "VTIAX": {"quoteType": "MUTUALFUND", "shortName": "Vanguard Total Intl Stock Idx Admiral",
                      "category": "Foreign Large Blend"},
            "^VIX": {"quoteType": "INDEX", "shortName": "CBOE Volatility Index"},
            "ODD": {"quoteType": "EQUITY", "shortName": "Odd Co", "dividendYield": 250.0},  # not a usable yield
        }

        def info(sym):
            if sym == "BROKEN":
                raise ValueError("404")
            return infos.get(sym, {"trailingPegRatio": None})  # what 1.x gives for an unknown symbol

        src = YFinanceSource(info=info)
        assert src.fetch_security_info("AAPL") == {
            "symbol": "AAPL", "name": "Apple Inc.", "asset_type": "stock", "sector": "Technology",
            "industry": "Consumer Electronics", "category": None,
            "dividend_yield": pytest.approx(0.0044, abs=1e-15),  # dividendYield is in percent: 0.44 -> 0.0044
        }
        assert src.fetch_security_info("TSLA")["dividend_yield"] == 0.0  # pays none: trailing yield 0.0
        spy = src.fetch_security_info("spy")
        assert spy == {"symbol": "SPY", "name": "SPDR S&P 500 ETF Trust", "asset_type": "etf", "sector": "Equity",
                       "industry": "Large Blend", "category": "Large Blend", "dividend_yield": 0.0121}
        gld = src.fetch_security_info("GLD")
        assert (gld["sector"], gld["category"], gld["dividend_yield"]) == ("Commodities", "Commodities Focused", None)
        fxnax = src.fetch_security_info("FXNAX")
        assert (fxnax["asset_type"], fxnax["sector"], fxnax["dividend_yield"]) == ("mutual_fund", "Fixed Income", 0.0372)
        assert src.fetch_security_info("VTIAX")["sector"] == "International Equity"
        vix = src.fetch_security_info("^VIX")
        assert (vix["asset_type"], vix["sector"], vix["industry"], vix["dividend_yield"]) == ("index", None, None, None)
        assert src.fetch_security_info("ODD")["dividend_yield"] is None  # 250 % is no yield: unknown
        assert src.fetch_security_info("BROKEN") is None
        assert src.fetch_security_info("NOPE") is None

    def test_dividend_yield_units(self):
        from sigmasight_pipeline.marketdata.yfinance_source import dividend_yield_from_info

        # the percent field first (forward yield), then a fund's decimal yield, then the trailing decimal
        assert dividend_yield_from_info({"dividendYield": 3.04, "trailingAnnualDividendYield": 0.0296}) == pytest.approx(0.0304)
        assert dividend_yield_from_info({"yield": 0.0121, "trailingAnnualDividendYield": 0.0119}) == 0.0121
        assert dividend_yield_from_info({"trailingAnnualDividendYield": 0.0296}) == 0.0296
        assert dividend_yield_from_info({"dividendYield": None, "trailingAnnualDividendYield": "n/a"}) is None
        assert dividend_yield_from_info({}) is None


# --------------------------------------------------------------------------------------- csv
class TestCsvSource:
    def test_one_file_per_symbol(self, tmp_path):
        (tmp_path / "AAPL.csv").write_text(
            "Date,Open,Close,Adj Close\n2025-01-02,248.9,243.85,243.26\n"
            "2025-01-03,243.4,243.36,242.77\n2025-01-04,1,1,1\n"
        )
        (tmp_path / "TNX.csv").write_text("date,close\n2025-01-02,4.57\n2025-01-03,\n")
        (tmp_path / "spy.csv").write_text("date,close\n2025-01-02 00:00:00-05:00,584.64\n")
        symbols = ["AAPL", "^TNX", "SPY", "MSFT"]
        frame, report = CsvSource(tmp_path).fetch(symbols, D(2025, 1, 1), D(2025, 1, 31))
        assert frame.loc["2025-01-02"].tolist() == [243.26, 4.57, 584.64]  # adjusted close preferred
        assert frame["AAPL"].tolist() == [243.26, 242.77]  # Saturday row dropped
        assert np.isnan(frame.at[pd.Timestamp("2025-01-03"), "^TNX"])
        assert report.symbols_missing == ["MSFT"]
        assert any("non-session" in n for n in report.notes)

    def test_long_file(self, tmp_path):
        (tmp_path / "prices.csv").write_text(
            "date,symbol,close\n2025-01-02,SPY,584.64\n2025-01-03,SPY,591.95\n"
            "2025-01-02,^IRX,4.28\n2025-01-03,QQQ,518.58\n"
        )
        (tmp_path / "QQQ.csv").write_text("date,close\n2025-01-02,511.23\n2025-01-03,518.58\n")
        frame = CsvSource(tmp_path).fetch_closes(["SPY", "^IRX", "QQQ"], D(2025, 1, 2), D(2025, 1, 3))
        assert frame["SPY"].tolist() == [584.64, 591.95]
        assert frame.at[pd.Timestamp("2025-01-02"), "^IRX"] == 4.28
        assert frame["QQQ"].tolist() == [511.23, 518.58]  # its own file wins

    @pytest.mark.parametrize(
        "name, text, match",
        [
            ("prices.csv", "date,symbol,close\n2025-01-02,SPY,584.64\n2025-01-03,SPY,abc\n",
             r"prices.csv: row 3, column 'close': cannot read 'abc' as a number"),
            ("NVDA.csv", "Date,Close\n2025-01-02,138.31\n01/03/2025,144.47\n",
             r"NVDA.csv: row 3, column 'Date': cannot read '01/03/2025' as a date"),
            ("NVDA.csv", "date,close\n2025-01-02,138.31\n2025-01-03,-1\n",
             r"NVDA.csv: row 3, column 'close': '-1' is not a valid close"),
            ("NVDA.csv", "date,close\n2025-01-02,138.31\n2025-01-02,139\n",
             r"NVDA.csv: row 3, column 'date': date 2025-01-02 repeated"),
            ("NVDA.csv", "day,close\n2025-01-02,138.31\n", r"NVDA.csv: row 1, column 'date': missing column"),
        ],
    )
    def test_bad_rows_name_file_row_and_column(self, tmp_path, name, text, match):
        (tmp_path / name).write_text(text)
        with pytest.raises(CsvFormatError, match=match) as err:
            CsvSource(tmp_path).fetch_closes(["SPY", "NVDA"], D(2025, 1, 2), D(2025, 1, 3))
        assert err.value.file.endswith(name)

    def test_missing_directory(self, tmp_path):
        with pytest.raises(ValueError, match="not found"):
            CsvSource(tmp_path / "nope")


# --------------------------------------------------------------------------------------- security master
class TestSecurityMaster:
    def test_covers_the_demo_universe(self):
        master = load_security_master()
        assert list(master.columns) == ["symbol", "name", "asset_type", "sector", "industry", "category",
                                        "dividend_yield"]
        assert master["symbol"].is_unique
        assert set(universe(demo_books()["ticker"])) <= set(master["symbol"])
        assert set(master["asset_type"]) <= {"stock", "etf", "mutual_fund", "index", "option"}
        row = master.set_index("symbol")
        nvda = tuple(row.loc["NVDA", ["asset_type", "sector", "industry"]])
        assert nvda == ("stock", "Technology", "Semiconductors")
        assert row.loc["BRK-B", "sector"] == "Financial Services"
        assert tuple(row.loc["GLD", ["asset_type", "sector"]]) == ("etf", "Commodities")
        assert row.loc["FXNAX", "asset_type"] == "mutual_fund"
        assert row.loc["^TNX", "asset_type"] == "index"

    def test_dividend_yields_and_categories(self):
        row = load_security_master().set_index("symbol")
        q = row["dividend_yield"]
        # decimals, realistic: SPY ~1.3 %, AAPL ~0.45 %, JNJ ~3 %, XOM ~3.4 %, NVDA ~0.03 %; no dividend: 0
        assert q["SPY"] == 0.013 and q["AAPL"] == 0.0045 and q["MSFT"] == 0.0075 and q["NVDA"] == 0.0003
        assert q["JNJ"] == 0.031 and q["XOM"] == 0.034 and q["JPM"] == 0.022
        assert (q[["TSLA", "AMZN", "NFLX", "AMD", "BRK-B", "GLD"]] == 0.0).all()
        assert q[["^VIX", "^TNX", "^IRX"]].isna().all()  # an index has no yield: unknown
        stocks, funds = row[row.asset_type == "stock"], row[row.asset_type.isin(["etf", "mutual_fund"])]
        assert stocks["dividend_yield"].between(0, 0.08).all() and funds["dividend_yield"].between(0, 0.05).all()
        assert stocks["category"].isna().all()
        assert (funds["category"] == funds["industry"]).all() and row.loc["SPY", "category"] == "Large Blend"
        # the shipped funds' sectors are the asset classes their categories map to (as yfinance's are mapped)
        from sigmasight_pipeline.marketdata.security_master import fund_sector

        assert {s: fund_sector(c) for s, c in funds["category"].items()} == funds["sector"].to_dict()

    def test_lookup(self):
        out = lookup(["nvda", "ZZZZ", "VIX", "AAPL250815P00200000"])
        assert out["symbol"].tolist() == ["NVDA", "ZZZZ", "VIX", "AAPL250815P00200000"]
        assert out.loc[1, ["asset_type", "sector"]].tolist() == ["unknown", "Unclassified"]
        assert np.isnan(out.loc[1, "dividend_yield"]) and out.loc[1, "category"] is None
        assert out.loc[2, "asset_type"] == "index"
        # an option: its underlying's sector and dividend yield (the q of its Black-Scholes-Merton price)
        assert out.loc[3, ["asset_type", "sector", "dividend_yield"]].tolist() == ["option", "Technology", 0.0045]
        info = {"name": "Zed", "asset_type": "stock", "sector": "Energy"}
        online = lookup(["ZZZZ"], fetch_info=lambda s: info)
        assert online.iloc[0, :5].tolist() == ["ZZZZ", "Zed", "stock", "Energy", "Unclassified"]

    def test_lookup_online_first_then_the_file(self):
        """Online (yfinance) values win; a field the source lacks comes from the file; offline is the file."""
        src = YFinanceSource(info=lambda s: {
            "AAPL": {"quoteType": "EQUITY", "longName": "Apple Inc.", "sector": "Technology",
                     "industry": "Consumer Electronics", "dividendYield": 0.41},
            "^VIX": {"quoteType": "INDEX", "shortName": "CBOE Volatility Index"},
            "NEWCO": {"quoteType": "EQUITY", "longName": "New Co", "sector": "Energy", "industry": "Oil & Gas E&P",
                      "trailingAnnualDividendYield": 0.021},
        }.get(s, {}))
        out = lookup(["AAPL", "^VIX", "NEWCO", "GONE", "NEWCO250117C00010000"], fetch_info=src.fetch_security_info)
        out = out.set_index("symbol")
        assert out.loc["AAPL", "dividend_yield"] == pytest.approx(0.0041)  # online, not the file's 0.0045
        assert tuple(out.loc["^VIX", ["sector", "industry"]]) == ("Volatility", "Volatility Index")  # from the file
        assert tuple(out.loc["NEWCO", ["asset_type", "sector", "dividend_yield"]]) == ("stock", "Energy", 0.021)
        assert tuple(out.loc["GONE", ["asset_type", "sector"]]) == ("unknown", "Unclassified")
        assert tuple(out.loc["NEWCO250117C00010000", ["asset_type", "sector", "dividend_yield"]]) == (
            "option", "Energy", 0.021)
        offline = lookup(["AAPL"], fetch_info=SampleSource().fetch_security_info).iloc[0]
        assert offline["dividend_yield"] == 0.0045 and offline["sector"] == "Technology"

    def test_fund_sector(self):
        from sigmasight_pipeline.marketdata.security_master import fund_sector

        assert fund_sector("Large Blend") == "Equity" and fund_sector("Mid-Cap Growth") == "Equity"
        assert fund_sector("Foreign Large Blend") == "International Equity"
        assert fund_sector("Diversified Emerging Mkts") == "International Equity"
        assert fund_sector("Emerging Markets Bond") == "Fixed Income"
        assert fund_sector("Muni National Interm") == "Fixed Income"
        assert fund_sector("Global Real Estate") == "Real Estate"
        assert fund_sector("Commodities Broad Basket") == "Commodities"
        assert fund_sector("Moderate Allocation") == "Allocation"
        assert fund_sector("Trading--Leveraged Equity") == "Alternative"
        assert fund_sector("Digital Assets") is None and fund_sector(None) is None and fund_sector("") is None


def test_fetch_report_summary():
    r = FetchReport(symbols_requested=["A", "B"], symbols_missing=["B"], rows=3, attempts=1, source="x")
    assert not r.complete and "missing: B" in r.summary()
