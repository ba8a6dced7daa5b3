"""``risk_measures`` materialized through Dagster on a small book (stocks, a short stock, a long call and a short
put): its checks pass, its tables hold what the engine computes, its metadata previews the latest VaR / ES table
and top contributors, and no figure of a date moves when a price after that date changes (no look-ahead)."""

from __future__ import annotations

import shutil

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from sigmasight_pipeline import runner
from sigmasight_pipeline.defs.partitions import history_start
from sigmasight_pipeline.engines import risk_measures as rm
from sigmasight_pipeline.engines.book import book_periods
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.quality.risk_measures import backtest_problems
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.book import engine_positions, read_ledger
from sigmasight_pipeline.warehouse.io import dispose_engines, get_engine, read_table
from sigmasight_pipeline.warehouse.reads import market_window
from sigmasight_pipeline.warehouse.reference import factor_definitions
from sigmasight_pipeline_tests.conftest import sample_world

BOOK = (
    "ticker,quantity,entry_price,entry_date,tags\n"
    "AAPL,200,185.00,2024-01-08,Core\n"
    "MSFT,100,400.00,2024-01-08,Core\n"
    "XOM,-300,110.00,2024-02-01,Short\n"
    "AAPL250919C00220000,10,6.00,2024-06-03,Options\n"
    "MSFT250919P00380000,-5,5.00,2024-06-03,Options\n"
)
PID = "small-book"
START, MIDDLE, END = "2025-06-23", "2025-06-25", "2025-06-27"
#: risk_measures and what it reads (the report and the other engines are not needed here).
SELECTION = [dg.AssetKey(k) for k in ("position_greeks", "position_valuations", "factor_exposures",
                                      "portfolio_snapshots", "risk_measures")]
RISK_TABLES = (schema.portfolio_risk_measures, schema.position_risk_contributions, schema.factor_risk_contributions,
               schema.risk_backtest)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with sample_world(tmp_path_factory, "risk") as w:
        instance, defs = w.instance, w.defs
        runner.import_portfolio(instance, BOOK, name="Small book", portfolio_id=PID, defs=defs)
        market = runner.materialize_market(instance, history_start(START), END, defs=defs)
        result = runner.materialize_portfolio(instance, PID, START, END, defs=defs, selection=SELECTION)
        engine = get_engine(w.url)
        tables = {t.name: read_table(engine, t, portfolio_id=PID) for t in RISK_TABLES}
        yield {"instance": instance, "defs": defs, "engine": engine, "path": w.path, "market": market,
               "result": result, "tables": tables, "mp": w.mp}


def test_checks_pass_and_warnings_say_what_the_rows_say(world):
    checks = runner.check_results(world["result"])
    mine = {k: v for k, v in checks.items() if k.startswith("risk_measures.")}
    assert mine == {"risk_measures.es_at_least_var": True, "risk_measures.contributions_add_up": True}
    assert all(checks.values()), [k for k, v in checks.items() if not v]
    warnings = {k: v for k, v in runner.check_results(world["result"], warnings=True).items() if k.startswith("risk_measures.")}
    assert warnings["risk_measures.risk_window_history"] is True  # the market history covers the 250 sessions
    assert warnings["risk_measures.var_backtest"] is (backtest_problems(world["tables"]["risk_backtest"], PID) == [])


def test_every_session_has_both_methods_and_full_history(world):
    m = world["tables"]["portfolio_risk_measures"]
    sessions = pd.DatetimeIndex(["2025-06-23", "2025-06-24", "2025-06-25", "2025-06-26", "2025-06-27"])
    assert sorted(m.date.unique()) == list(sessions)
    per_date = m.groupby("date").size()
    assert (per_date == per_date.iloc[0]).all()
    scen = m[m.measure == "scenarios"].set_index("date").value
    assert (scen == rm.RISK_WINDOW).all()
    assert (m[m.method == "historical"].flag.str.contains("limited_history|insufficient") == False).all()  # noqa: E712
    tail = m[m.measure.isin(["var", "es"]) & (m.horizon_days == 1)]
    assert (tail.value > 0).all() and tail.value.notna().all()
    ten = m[m.measure.isin(["var", "es"]) & (m.horizon_days == 10)].set_index(["date", "method", "measure", "level"]).value
    one = tail.set_index(["date", "method", "measure", "level"]).value
    np.testing.assert_allclose(ten.loc[one.index], one * np.sqrt(10), rtol=1e-15)
    assert set(m[m.horizon_days == 10].flag) == {"scaled_sqrt10"} and set(m[m.horizon_days != 10].flag) == {"ok"}


def test_contributions_cover_the_book_and_add_up(world):
    t = world["tables"]
    pc, fc, m = t["position_risk_contributions"], t["factor_risk_contributions"], t["portfolio_risk_measures"]
    assert set(pc.position_id) == {1, 2, 3, 4, 5}
    last = pd.Timestamp(END)
    es = m[(m.date == last) & (m.measure == "es") & (m.horizon_days == 1) & (m.method == "historical")].set_index("level").value
    for level, total in es.items():
        got = pc[(pc.date == last) & (pc.method == "historical") & (pc.level == level)].contribution.sum()
        assert got == pytest.approx(total, rel=1e-12)
    sigma = m[(m.date == last) & (m.measure == "volatility") & (m.horizon_days == 1)].value.iloc[0]
    assert fc[fc.date == last].contribution.sum() == pytest.approx(sigma, rel=1e-12)
    assert set(fc.factor_name) == {"Market", "Value", "Growth", "Momentum", "Quality", "Size", "Low Volatility", "Specific"}
    # the residual standard deviations the parametric model reads are stored with the betas
    betas = read_table(world["engine"], schema.position_factor_exposures, portfolio_id=PID)
    assert betas.residual_std.notna().all() and (betas.residual_std > 0).all()


def test_backtest_tests_the_previous_sessions_var_against_the_snapshot(world):
    bt = world["tables"]["risk_backtest"]
    m = world["tables"]["portfolio_risk_measures"]
    snaps = read_table(world["engine"], schema.portfolio_snapshots, portfolio_id=PID).set_index("date")
    var99 = m[(m.method == "historical") & (m.measure == "var") & (m.level == 0.99) & (m.horizon_days == 1)].set_index("date").value
    # the first session of the run has no stored VaR before it: no backtest that day
    assert list(bt.date) == list(pd.DatetimeIndex(["2025-06-24", "2025-06-25", "2025-06-26", "2025-06-27"]))
    for r in bt.itertuples():
        assert r.var_99 == var99[r.var_date] and r.var_date < r.date
        assert r.realized_pnl == pytest.approx(snaps.loc[r.date, "daily_pnl"])
        assert r.exception == (r.realized_pnl < -r.var_99)
    assert list(bt.window_sessions) == [1, 2, 3, 4]


def test_metadata_previews_the_latest_var_es_table_and_top_contributors(world):
    meta = next(iter(world["result"].asset_materializations_for_node("risk_measures"))).metadata
    label = f"VaR and ES ({END}, latest date of this run)"
    assert label in meta
    text = meta[label].value
    assert "VaR 99%" in text and "ES 97.5%" in text and "parametric" in text and "historical" in text
    top = meta[f"top five contributors ({END}, latest date of this run)"].value
    assert "AAPL" in top or "MSFT" in top
    assert f"volatility, tracking error, backtest ({END}, latest date of this run)" in meta


def test_no_look_ahead_a_later_price_changes_no_figure_of_an_earlier_date(world, tmp_path):
    copy = tmp_path / "warehouse.db"
    dispose_engines()
    shutil.copy(world["path"], copy)
    url = f"sqlite:///{copy}"
    engine = get_engine(url)
    with engine.begin() as conn:  # AAPL crashes on the last session, after MIDDLE
        last = pd.Timestamp(END).date()
        conn.execute(schema.market_prices.update().where(
            (schema.market_prices.c.date == last) & (schema.market_prices.c.symbol == "AAPL")
        ).values(close=schema.market_prices.c.close * 0.5))
        conn.execute(schema.security_returns.update().where(
            (schema.security_returns.c.date == last) & (schema.security_returns.c.symbol == "AAPL")
        ).values(simple_return=-0.5, log_return=float(np.log(0.5))))
    world["mp"].setenv("SIGMASIGHT_DATABASE_URL", url)
    try:
        for day in (MIDDLE, END):
            runner.materialize_portfolio(world["instance"], PID, day, day, defs=world["defs"], selection=SELECTION)
    finally:
        world["mp"].setenv("SIGMASIGHT_DATABASE_URL", f"sqlite:///{world['path']}")
    for table in RISK_TABLES:
        before = world["tables"][table.name]
        after = read_table(engine, table, portfolio_id=PID)
        day = pd.Timestamp(MIDDLE)
        pd.testing.assert_frame_equal(before[before.date == day].reset_index(drop=True),
                                      after[after.date == day].reset_index(drop=True))
    # the control: the last date reads its own session's return, so its figures move
    m0, m1 = world["tables"]["portfolio_risk_measures"], read_table(engine, schema.portfolio_risk_measures, portfolio_id=PID)
    end = pd.Timestamp(END)
    assert not np.allclose(m0[m0.date == end].value.to_numpy(dtype=float), m1[m1.date == end].value.to_numpy(dtype=float))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.risk_backtest)).scalar() == 4
    dispose_engines()


def test_stored_rows_are_the_engine_on_the_upstream_rows_read_whole(world):
    """The asset reads only the columns it uses, the betas pivoted by the database (a row per position and date)
    and the market window's returns and ^IRX alone, and its checks judge the frames it writes: the stored rows
    are exactly, to the last bit, what the engine computes from the upstream tables read whole (every column,
    the betas a row per factor, ``warehouse.reads.market_window``)."""
    engine = world["engine"]
    sessions = pd.bdate_range(START, END)
    (_, held), = book_periods(read_ledger(engine, PID), sessions)
    positions = engine_positions(engine, held)
    definitions = factor_definitions()
    proxy = dict(zip(definitions.factor_name, definitions.proxy_symbol))["Market"]

    def whole(table):
        return read_table(engine, table, dates=sessions, portfolio_id=PID).drop(columns="portfolio_id")

    symbols = set(positions.underlying_symbol) | set(positions.symbol) | {proxy, "^IRX"}
    mkt = market_window(engine, symbols, sessions, rm.RISK_WINDOW)
    returns = mkt.simple_returns.reindex(xcal.sessions_in_range(mkt.start, mkt.end))
    out = rm.risk_measures_range(
        positions=positions, valuations=whole(schema.position_valuations), greeks=whole(schema.position_greeks),
        position_betas=whole(schema.position_factor_exposures), factor_cov=whole(schema.factor_correlations),
        returns=returns, market_returns=returns[proxy], short_rate=mkt.prices["^IRX"],
        equity=whole(schema.portfolio_exposures).set_index("date")["net_exposure"], dates=sessions,
        factors=list(definitions.factor_name),
    )
    for table, frame in ((schema.portfolio_risk_measures, out.measures),
                         (schema.position_risk_contributions, out.position_contributions),
                         (schema.factor_risk_contributions, out.factor_contributions)):
        keys = [c.name for c in table.primary_key.columns if c.name != "portfolio_id"]
        stored = world["tables"][table.name].drop(columns="portfolio_id")
        computed = frame[list(stored.columns)].astype({"date": stored["date"].dtype})  # the unit pandas reads
        pd.testing.assert_frame_equal(stored.sort_values(keys).reset_index(drop=True),
                                      computed.sort_values(keys).reset_index(drop=True), check_exact=True,
                                      obj=table.name)


# --- the checks' invariants (quality.risk_measures) on hand-made rows: one that holds, one that breaks -------------

D = pd.Timestamp("2025-06-30")


def _measures(var: float, es: float, sigma: float, flag: str = "ok", scenarios: int = 250) -> pd.DataFrame:
    rows = [("historical", "var", 0.99, 1, var), ("historical", "es", 0.99, 1, es),
            ("historical", "scenarios", 0.0, 1, scenarios), ("parametric", "volatility", 0.0, 1, sigma)]
    return pd.DataFrame([dict(date=D, method=m, measure=k, level=lv, horizon_days=h, value=v, flag=flag)
                         for m, k, lv, h, v in rows])


def test_quality_es_at_least_var():
    from sigmasight_pipeline.quality.risk_measures import es_at_least_var_problems

    assert es_at_least_var_problems(_measures(100.0, 100.0, 1.0), "p") == []  # equal is fine
    assert es_at_least_var_problems(_measures(100.0, 99.0, 1.0), "p") == [
        "p 2025-06-30 historical 99.000% 1d: ES 99.000000 < VaR 100.000000"]
    assert es_at_least_var_problems(_measures(np.nan, np.nan, 1.0, "insufficient_history"), "p") == []


def test_quality_contributions_add_up():
    from sigmasight_pipeline.quality.risk_measures import contribution_sum_problems

    m = _measures(100.0, 120.0, 10.0)
    pos = pd.DataFrame({"date": D, "position_id": [1, 2, 1, 2], "method": ["historical"] * 2 + ["parametric"] * 2,
                        "measure": ["es", "es", "volatility", "volatility"], "level": [0.99, 0.99, 0.0, 0.0],
                        "contribution": [90.0, 30.0, 6.0, 4.0]})
    fac = pd.DataFrame({"date": D, "factor_name": ["Market", "Specific"], "contribution": [7.0, 3.0]})
    assert contribution_sum_problems(m, pos, fac, "p") == []
    off = pos.assign(contribution=[90.0, 30.0 + 120.0 * 2e-9, 6.0, 4.0])  # 2e-9 relative: beyond 1e-9
    assert contribution_sum_problems(m, off, fac, "p") == [
        "p 2025-06-30 historical ES 99.000% by position: contributions sum to 120.000000, total 120.000000"]
    assert contribution_sum_problems(m, pos, fac.iloc[:1], "p") == [
        "p 2025-06-30 parametric sigma by factor and specific: contributions sum to 7.000000, total 10.000000"]
    assert contribution_sum_problems(m, pos[pos.method == "historical"], fac, "p") == [
        "p 2025-06-30 parametric sigma by position: a total without contributions"]


def test_quality_backtest_and_history_warnings():
    from sigmasight_pipeline.quality.risk_measures import limited_history_problems

    bt = pd.DataFrame({"date": [D, D + pd.Timedelta(days=1)], "exceptions": [4, 10], "window_sessions": [250, 250],
                       "zone": ["green", "red"], "kupiec_p_value": [0.2, 1e-5]})
    assert backtest_problems(bt.iloc[:1], "p") == []
    assert backtest_problems(bt, "p") == ["p 2025-07-01: 10 exceptions in 250 sessions, zone red, Kupiec p 0.0000"]
    assert backtest_problems(bt.assign(zone="yellow", kupiec_p_value=[0.2, 0.04]).iloc[1:], "p") == [
        "p 2025-07-01: 10 exceptions in 250 sessions, zone yellow, Kupiec p 0.0400"]
    assert limited_history_problems(_measures(1.0, 2.0, 1.0), "p") == []
    assert limited_history_problems(_measures(1.0, 2.0, 1.0, "limited_history;filled_returns=3", 180), "p") == [
        "p 2025-06-30: 180 scenarios (limited_history)"]
    assert limited_history_problems(_measures(np.nan, np.nan, 1.0, "insufficient_history", 60), "p") == [
        "p 2025-06-30: 60 scenarios (insufficient_history: not computed)"]
