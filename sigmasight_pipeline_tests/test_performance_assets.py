"""``portfolio_performance`` and ``pnl_attribution`` through Dagster on the sample source: three books (the demo
hedge fund: long/short with options; a book that trades inside the run; a book holding only SPY, the market
proxy) over a range that crosses a month end. The attribution lines add up to the snapshot P&L on every date,
the SPY book's P&L is all Market, the stored performance equals empyrical-reloaded on the stored returns, and
a date recomputed alone after every later price, return and snapshot was changed gives the same rows (no
look-ahead)."""

from __future__ import annotations

import sqlite3

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from sigmasight_pipeline import runner as orch
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.engines.attribution import attribute_pnl
from sigmasight_pipeline.engines.factors import DEFAULT_FACTOR_PROXIES, factor_returns
from sigmasight_pipeline.engines.performance import WINDOWS, performance_windows, return_series
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.onboarding import DEMO_BOOKS, demo_csv_text
from sigmasight_pipeline.sqlmodels import build_models, drop_models, load_manifest, read_relation, run_model_tests
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import dispose_engines, get_engine, read_table, write_partition
from sigmasight_pipeline_tests.test_engine_performance import empyrical_figures

START, MIDDLE, END = "2025-05-20", "2025-06-10", "2025-06-30"
HEDGE = next(b for b in DEMO_BOOKS if b.portfolio_id == "demo-hedge-fund")
SPY_BOOK = "ticker,quantity,entry_price,entry_date\nSPY,100,500.00,2025-01-02\n"
TRADER_BOOK = "ticker,quantity,entry_price,entry_date\nAAPL,100,200.00,2025-01-02\nJPM,-50,250.00,2025-01-02\n"
TRADES = ("trade_date,ticker,quantity,price,fees,trade_id,tags,close_and_reverse\n"
          "2025-06-04,AAPL,-40,205.00,2.00,s1,,\n"
          "2025-06-05,MSFT,20,400.00,,b1,,\n")
PORTFOLIOS = ["demo-hedge-fund", "trader", "spy-only"]
SELECTION = [dg.AssetKey(k) for k in ("position_greeks", "position_valuations", "factor_exposures",
                                      "portfolio_snapshots", "portfolio_performance", "pnl_attribution")]
MINE = [dg.AssetKey("portfolio_performance"), dg.AssetKey("pnl_attribution")]
FACTORS = list(DEFAULT_FACTOR_PROXIES)
D = pd.Timestamp


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("performance")
    url = f"sqlite:///{home / 'warehouse.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIGMASIGHT_DATABASE_URL", url)
        mp.setenv("SIGMASIGHT_MARKET_DATA", "sample")
        mp.setenv("SIGMASIGHT_REPORTS_DIR", str(home / "reports"))
        instance = dg.DagsterInstance.ephemeral()
        defs = orch.load_definitions()
        orch.import_portfolio(instance, demo_csv_text(HEDGE), name=HEDGE.name, portfolio_id=HEDGE.portfolio_id, defs=defs)
        orch.import_portfolio(instance, TRADER_BOOK, name="Trader", portfolio_id="trader", defs=defs)
        orch.import_trades(instance, "trader", TRADES, filename="trades.csv", defs=defs)
        orch.import_portfolio(instance, SPY_BOOK, name="SPY only", portfolio_id="spy-only", defs=defs)
        orch.materialize_market(instance, orch.market_history_start(START), END, defs=defs)
        results = {pid: orch.materialize_portfolio(instance, pid, START, END, defs=defs, selection=SELECTION)
                   for pid in PORTFOLIOS}
        engine = get_engine(url)
        yield {"engine": engine, "url": url, "home": home, "instance": instance, "defs": defs, "results": results}
    dispose_engines()


def stored(world, table, pid=None) -> pd.DataFrame:
    frame = read_table(world["engine"], table, portfolio_id=pid)
    return frame.assign(date=pd.to_datetime(frame["date"]))


def evaluations(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {f"{e.asset_key.to_user_string()}.{e.check_name}": e for e in result.get_asset_check_evaluations()}


def test_the_checks_run_and_the_blocking_one_passes(world):
    for pid, result in world["results"].items():
        ev = evaluations(result)
        assert ev["pnl_attribution.attribution_sums_to_pnl"].passed, pid
        assert ev["pnl_attribution.attribution_sums_to_pnl"].severity == dg.AssetCheckSeverity.ERROR
        assert ev["portfolio_performance.performance_history"].severity == dg.AssetCheckSeverity.WARN
        assert ev["pnl_attribution.attribution_coverage"].severity == dg.AssetCheckSeverity.WARN
        # the history starts on START: the longer windows of END rest on fewer returns than sessions
        assert not ev["portfolio_performance.performance_history"].passed
        text = ev["portfolio_performance.performance_history"].metadata["windows"].value
        assert f"{pid} 2025-06-30 252d: limited_history" in text and "2025-06-30 21d" not in text


def test_attribution_lines_add_up_to_the_snapshot_pnl_on_every_date(world):
    attribution = stored(world, schema.pnl_attribution)
    snaps = stored(world, schema.portfolio_snapshots)
    sessions = pd.DatetimeIndex(snaps["date"].unique())
    assert len(sessions) == 28  # 2025-05-20 .. 2025-06-30 without Memorial Day and Juneteenth
    for pid in PORTFOLIOS:
        s = snaps[snaps.portfolio_id == pid].set_index("date").sort_index()
        a = attribution[attribution.portfolio_id == pid]
        first = s.index[s.is_first_snapshot.astype(bool)]
        assert list(first) == [pd.Timestamp(START)]
        assert set(a.date) == set(s.index) - set(first)  # a first snapshot (P&L since entry) is not attributed
        sums = a.groupby("date").pnl.sum()
        np.testing.assert_allclose(sums.to_numpy(), s.daily_pnl.reindex(sums.index).to_numpy(), rtol=0, atol=0.005)
        per_date = a.sort_values(["date", "line_order"]).groupby("date").line.apply(list)
        assert all(lines == FACTORS + ["specific", "residual"] for lines in per_date)
        assert (a.date > pd.to_datetime(a.previous_date)).all()


def test_factor_lines_are_the_previous_sessions_exposure_times_the_factors_return(world):
    attribution = stored(world, schema.pnl_attribution, "demo-hedge-fund")
    exposures = stored(world, schema.portfolio_factor_exposures, "demo-hedge-fund")
    rets = read_table(world["engine"], schema.security_returns, symbols=list(DEFAULT_FACTOR_PROXIES.values()))
    rets = rets.assign(date=pd.to_datetime(rets.date)).pivot(index="date", columns="symbol", values="simple_return")
    day = pd.Timestamp("2025-06-03")  # the session after 2025-06-02
    row = attribution[(attribution.date == day) & (attribution.line == "Value")].iloc[0]
    x = exposures[(exposures.date == pd.Timestamp("2025-06-02")) & (exposures.factor_name == "Value")].dollar_exposure.iloc[0]
    f = rets.loc[day, "VTV"] - rets.loc[day, "SPY"]
    assert row.exposure == pytest.approx(x, abs=0.005) and row.factor_return == pytest.approx(f, abs=1e-15)
    assert row.pnl == pytest.approx(round(x * f, 2), abs=0.005)
    market = attribution[(attribution.date == day) & (attribution.line == "Market")].iloc[0]
    assert market.factor_return == pytest.approx(rets.loc[day, "SPY"], abs=1e-15)


def test_a_book_holding_the_market_proxy_is_all_market(world):
    a = stored(world, schema.pnl_attribution, "spy-only")
    snaps = stored(world, schema.portfolio_snapshots, "spy-only").set_index("date")
    wide = a.pivot(index="date", columns="line", values="pnl")
    pnl = snaps.daily_pnl.reindex(wide.index)
    assert (pnl.abs() > 10).all()  # SPY moves every day: real P&L to attribute
    np.testing.assert_allclose(wide["Market"], pnl, rtol=0, atol=0.02)
    assert (wide["specific"].abs() <= 0.01).all() and (wide["residual"].abs() <= 0.02).all()
    assert (wide[[f for f in FACTORS if f != "Market"]].abs() <= 0.01).all().all()


def test_a_traded_book_puts_the_trades_in_the_residual(world):
    """The linear lines explain the book held on t-1; what the day's trades add beyond that is the residual:
    the sale of 40 AAPL at 205.00 (fees 2.00) gives 40 x (205 - close) - 2; the purchase of 20 MSFT at 400.00
    gives 20 x (close - 400)."""
    a = stored(world, schema.pnl_attribution, "trader")
    assert a[a.line == "specific"].flag.isna().all()  # every position held on t-1 had betas and a return
    residual = a[a.line == "residual"].set_index("date").pnl
    closes = read_table(world["engine"], schema.market_prices, symbols=["AAPL", "MSFT"])
    closes = closes.assign(date=pd.to_datetime(closes.date)).pivot(index="date", columns="symbol", values="close")
    sale, purchase = pd.Timestamp("2025-06-04"), pd.Timestamp("2025-06-05")
    assert residual[sale] == pytest.approx(40 * (205.0 - closes.loc[sale, "AAPL"]) - 2.0, abs=0.03)
    assert residual[purchase] == pytest.approx(20 * (closes.loc[purchase, "MSFT"] - 400.0), abs=0.03)
    quiet = residual.drop([sale, purchase])
    assert (quiet.abs() <= 0.03).all()  # a book of stocks without trades: nothing left but cents


def _empyrical_window(returns: pd.DataFrame, row) -> dict:
    """The empyrical reference figures (``empyrical_figures``) of the stored window ``row`` and its return count."""
    w = returns[(returns.date >= row.window_start) & (returns.date <= row.date)]
    r, m, rf = (w[c].to_numpy(dtype=float) for c in ("portfolio_return", "market_return", "risk_free"))
    return {"n_returns": len(r), **empyrical_figures(r, m, rf)}


def test_stored_performance_equals_empyrical_on_the_stored_returns(world):
    for pid in PORTFOLIOS:
        perf = stored(world, schema.portfolio_performance, pid)
        snaps = stored(world, schema.portfolio_snapshots, pid).sort_values("date")
        spy = read_table(world["engine"], schema.security_returns, symbols=["SPY"])
        irx = read_table(world["engine"], schema.market_prices, symbols=["^IRX"])
        returns = pd.DataFrame({"date": snaps.date, "portfolio_return": snaps.daily_return}).dropna()
        returns["market_return"] = returns.date.map(spy.set_index(pd.to_datetime(spy.date)).simple_return)
        returns["risk_free"] = returns.date.map(irx.set_index(pd.to_datetime(irx.date)).close) / 100 / 252
        latest = perf[perf.date == pd.Timestamp(END)].set_index("window_name")
        assert set(latest.index) == {w.name for w in WINDOWS}
        for name in ("mtd", "21d", "inception"):
            row = latest.loc[name]
            want = _empyrical_window(returns, row.to_frame().T.assign(date=pd.Timestamp(END)).iloc[0])
            assert row.n_returns == want.pop("n_returns")
            for stat, value in want.items():
                assert row[stat] == pytest.approx(value, rel=1e-10, abs=1e-10), (pid, name, stat)
        # the inception window starts at the first return, the day after the first snapshot
        assert pd.Timestamp(latest.loc["inception", "first_return_date"]) == pd.Timestamp("2025-05-21")
        assert latest.loc["inception", "flag"] == "ok" and latest.loc["252d", "flag"] == "limited_history"
        june_2 = perf[(perf.date == pd.Timestamp("2025-06-02")) & (perf.window_name == "mtd")].iloc[0]
        assert june_2.n_returns == 1 and june_2.flag == "insufficient_returns" and pd.isna(june_2.sharpe_ratio)
        assert june_2.reason == "1 return in the window; 2 needed for a figure"


def test_metadata_previews_the_latest_window_table_and_todays_attribution(world):
    result = world["results"]["demo-hedge-fund"]
    perf = result.asset_materializations_for_node("portfolio_performance")[0].metadata
    attr = result.asset_materializations_for_node("pnl_attribution")[0].metadata
    perf_table = perf["performance (2025-06-30, latest date of this run)"].value
    attr_table = attr["attribution (2025-06-30, latest date of this run)"].value
    assert "sharpe_ratio" in perf_table and "inception" in perf_table and "| mtd" in perf_table
    assert "Market" in attr_table and "residual" in attr_table
    assert perf["run_sessions"].value == 28


def test_stored_rows_are_the_engines_on_the_upstream_rows_read_whole(world):
    """The assets read only the columns they use (the betas pivoted by the database, a row per position and date)
    and their checks judge the frames they write: the stored rows are what the engines compute from the upstream
    tables read whole, every column and the betas a row per factor (attribution: to the last bit, the exposure
    in cents as the table stores money; performance: to the last bit)."""
    engine, sessions = world["engine"], pd.DatetimeIndex(xcal.sessions_in_range(START, END))
    calendar = xcal.sessions_in_range(xcal.previous_session(sessions[0]), sessions[-1])
    previous = calendar[calendar.get_indexer(sessions) - 1]
    rets = read_table(engine, schema.security_returns, start=START, end=END)
    rets = rets.pivot(index="date", columns="symbol", values="simple_return")
    rets.index = pd.DatetimeIndex(rets.index)
    irx = read_table(engine, schema.market_prices, symbols=["^IRX"])
    for pid in PORTFOLIOS:
        positions = read_table(engine, schema.positions, portfolio_id=pid)
        symbol = positions.underlying_symbol.where(positions.underlying_symbol.fillna("") != "", positions.symbol)
        before = lambda table: read_table(engine, table, dates=previous, portfolio_id=pid)  # noqa: E731
        snaps = read_table(engine, schema.portfolio_snapshots, dates=sessions, portfolio_id=pid)
        lines = attribute_pnl(
            snapshots=snaps, factor_exposures=before(schema.portfolio_factor_exposures),
            position_exposures=before(schema.position_valuations), position_betas=before(schema.position_factor_exposures),
            position_symbols=pd.DataFrame({"position_id": positions.position_id, "market_symbol": symbol}),
            factor_returns=factor_returns(rets[list(DEFAULT_FACTOR_PROXIES.values())], DEFAULT_FACTOR_PROXIES),
            symbol_returns=rets, sessions=calendar)
        got = stored(world, schema.pnl_attribution, pid).drop(columns="portfolio_id")
        want = lines.assign(exposure=lines.exposure.round(2)).sort_values(["date", "line"]).reset_index(drop=True)
        want = want[list(got.columns)]
        pd.testing.assert_frame_equal(got, want.astype({"date": got.date.dtype, "previous_date": got.previous_date.dtype}),
                                      check_exact=True, check_dtype=False)
        history = read_table(engine, schema.portfolio_snapshots, end=END, portfolio_id=pid)
        returns = return_series(history, rets["SPY"], irx.set_index(pd.to_datetime(irx.date)).close)
        windows = performance_windows(returns, sessions, xcal.sessions_in_range("2024-01-01", END))
        got = stored(world, schema.portfolio_performance, pid).drop(columns="portfolio_id")
        want = windows.sort_values(["date", "window_name"]).reset_index(drop=True)[list(got.columns)]
        for column in got.columns:
            assert got[column].equals(want[column].astype(got[column].dtype)), (pid, column)


def test_no_look_ahead_a_date_alone_after_every_later_figure_changed(world, tmp_path):
    """Copy the warehouse, change every price, return and snapshot after MIDDLE, recompute MIDDLE alone: its rows
    equal the ones the range run stored."""
    copy = tmp_path / "warehouse.db"
    with sqlite3.connect(world["home"] / "warehouse.db") as source, sqlite3.connect(copy) as target:
        source.backup(target)  # the committed state, WAL included
    url = f"sqlite:///{copy}"
    engine = get_engine(url)
    after = pd.Timestamp(MIDDLE).date()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE security_returns SET simple_return = simple_return + 0.03 WHERE date > :d"), {"d": after})
        conn.execute(sa.text("UPDATE market_prices SET close = close * 1.5 WHERE date > :d"), {"d": after})
        conn.execute(sa.text("UPDATE portfolio_snapshots SET daily_pnl = daily_pnl + 1000, "
                             "daily_return = daily_return + 0.01 WHERE date > :d"), {"d": after})
        conn.execute(sa.text("UPDATE portfolio_factor_exposures SET dollar_exposure = dollar_exposure * 3 WHERE date > :d"),
                     {"d": after})
    resources = {**dict(world["defs"].resources or {}), "warehouse": WarehouseResource(database_url=url)}
    for pid in PORTFOLIOS:
        orch.materialize_portfolio(world["instance"], pid, MIDDLE, MIDDLE, defs=world["defs"], selection=MINE,
                                   resources=resources)
    for table in (schema.portfolio_performance, schema.pnl_attribution):
        before = read_table(world["engine"], table, dates=[MIDDLE])
        again = read_table(engine, table, dates=[MIDDLE])
        assert len(before) == len(again) > 0
        pd.testing.assert_frame_equal(before, again)


MODELS = ["stg_portfolios", "stg_portfolio_snapshots", "stg_pnl_attribution", "stg_portfolio_performance",
          "mart_pnl_attribution_cumulative"]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_cumulative_attribution_mart_sums_the_daily_lines(world, dialect, request):
    """``mart_pnl_attribution_cumulative`` on the stored rows (copied to PostgreSQL for that dialect): running sums
    per portfolio and line since the first attributed date, within the month and the year; the lines of a date
    add up to the snapshot P&L there too; the staging models select every row and their tests pass."""
    engine = world["engine"]
    if dialect == "postgresql":
        engine = request.getfixturevalue("postgres_engine")
        for table in (schema.portfolios, schema.portfolio_snapshots, schema.pnl_attribution, schema.portfolio_performance):
            write_partition(engine, table, read_table(world["engine"], table), portfolio_ids=PORTFOLIOS)
    manifest = load_manifest()
    try:
        built = build_models(engine, manifest, MODELS)
        outcomes = [o for name in MODELS for o in run_model_tests(engine, manifest, name)]
        assert outcomes and all(o.passed for o in outcomes)
        mart = read_relation(engine, "mart_pnl_attribution_cumulative")
        assert built["stg_portfolio_performance"].rows == len(read_table(world["engine"], schema.portfolio_performance))
    finally:
        drop_models(engine, manifest, MODELS)
    mart = mart.assign(as_of_date=pd.to_datetime(mart.as_of_date)).sort_values(["portfolio_id", "line", "as_of_date"])
    attribution = stored(world, schema.pnl_attribution)
    assert len(mart) == len(attribution)
    expected = mart.groupby(["portfolio_id", "line"]).pnl.transform(lambda s: s.fillna(0).cumsum())
    np.testing.assert_allclose(mart.cumulative_pnl, expected, atol=1e-6)
    june = mart[mart.as_of_date >= D("2025-06-01")]
    np.testing.assert_allclose(june.cumulative_pnl_mtd, june.groupby(["portfolio_id", "line"]).pnl.cumsum(), atol=1e-6)
    np.testing.assert_allclose(mart.cumulative_pnl_ytd, mart.cumulative_pnl, atol=1e-6)  # one year in range
    day = mart[(mart.portfolio_id == "spy-only") & (mart.as_of_date == D(END))].set_index("line")
    assert day.pnl.sum() == pytest.approx(day.snapshot_daily_pnl.iloc[0], abs=0.005)
    # over the whole range, the lines add up to the P&L since the first snapshot
    last = mart[mart.as_of_date == D(END)].groupby("portfolio_id").cumulative_pnl.sum()
    snaps = stored(world, schema.portfolio_snapshots)
    since_first = snaps[~snaps.is_first_snapshot.astype(bool)].groupby("portfolio_id").daily_pnl.sum()
    np.testing.assert_allclose(last.sort_index(), since_first.sort_index(), atol=0.01)
