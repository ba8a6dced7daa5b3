"""The invariants of ``quality/`` on hand-computed cases: one that holds and one that breaks, for each."""

from __future__ import annotations

import pandas as pd
import pytest

from sigmasight_pipeline.quality import factors, greeks, market, snapshots, stress, valuation

D1, D2 = pd.Timestamp("2025-06-02"), pd.Timestamp("2025-06-03")


# --- market ---------------------------------------------------------------------------------------------------
def test_incomplete_symbols():
    closes = pd.DataFrame({"date": [D1, D2, D1], "symbol": ["SPY", "SPY", "QQQ"], "close": [1.0, 2.0, 3.0]})
    assert market.incomplete_symbols(closes, ["SPY"], 2) == {}
    # QQQ lacks D2; IWM was never priced.
    assert market.incomplete_symbols(closes, ["SPY", "QQQ", "IWM"], 2) == {"QQQ": 1, "IWM": 2}


def test_extreme_returns():
    rets = pd.DataFrame({"symbol": ["A", "B", "C"], "simple_return": [0.10, -0.50, 0.49]})
    assert market.extreme_returns(rets).empty  # exactly -50% is still plausible
    rets.loc[1, "simple_return"] = -0.51
    assert market.extreme_returns(rets).symbol.tolist() == ["B"]


def test_stale_symbols():
    fresh = {"SPY": ("2025-06-03", 0), "QQQ": ("2025-05-29", 3)}
    assert market.stale_symbols(fresh, 3) == {}
    stale = {**fresh, "VNQ": ("2025-05-28", 4), "AAPL": ("none", None)}
    assert market.stale_symbols(stale, 3) == {"VNQ": "2025-05-28", "AAPL": "none"}


# --- greeks -------------------------------------------------------------------------------------------------
def _pair(call_price: float, put_price: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A call and a put, S = K = 100, 73 days (T = 0.2), r = 5%: parity wants C - P = 100 - 100 e^-0.01."""
    common = dict(portfolio_id="p", date=D1, underlying_price=100.0, days_to_expiry=73, short_rate=5.0, flag="ok",
                  delta=0.5, gamma=0.02, vega=0.2, position_gamma=2.0, position_vega=20.0)
    g = pd.DataFrame([
        {**common, "position_id": 1, "model_price": call_price},
        {**common, "position_id": 2, "model_price": put_price, "delta": -0.5},
    ])
    positions = pd.DataFrame({
        "portfolio_id": ["p", "p"], "position_id": [1, 2], "symbol": ["X250815C00100000", "X250815P00100000"],
        "is_option": [True, True], "quantity": [1, 1], "underlying_symbol": ["X", "X"], "strike": [100.0, 100.0],
        "expiration": [pd.Timestamp("2025-08-15")] * 2, "option_type": ["C", "P"],
    })
    return g, positions


def test_put_call_parity():
    c_minus_p = 100.0 - 99.00498337491681  # 100 - 100 e^{-0.05 x 0.2}
    g, positions = _pair(5.0, 5.0 - c_minus_p)
    assert greeks.greeks_problems(g, positions) == []
    g, positions = _pair(5.0, 4.5)  # C - P = 0.5, not 0.995
    assert greeks.greeks_problems(g, positions) == ["p X K=100.0 2025-06-02: put-call parity broken"]


def test_greek_bounds():
    g, positions = _pair(5.0, 5.0 - (100.0 - 99.00498337491681))
    merged = g.merge(positions, on=["portfolio_id", "position_id"])
    assert greeks.greek_bound_problems(merged) == []
    merged.loc[0, "delta"] = 1.2
    merged.loc[1, ["gamma", "position_gamma"]] = [-0.01, -1.0]  # a long put with negative gamma
    assert greeks.greek_bound_problems(merged) == [
        "p X250815C00100000 2025-06-02: |delta| 1.200000 > 1",
        "p X250815P00100000 2025-06-02: negative gamma/vega",
        "p X250815P00100000 2025-06-02: long option with negative position gamma/vega",
    ]


# --- valuation ----------------------------------------------------------------------------------------------
def _exposures(**over) -> pd.DataFrame:
    row = dict(date=D1, long_exposure=300.0, short_exposure=-100.0, gross_exposure=400.0, net_exposure=200.0,
               long_count=2, short_count=1, option_count=1, stock_count=2, position_count=3,
               delta_adjusted_exposure=150.0, delta_adjusted_long=250.0, delta_adjusted_short=-100.0,
               volatility_delta_exposure=850.0)
    return pd.DataFrame([{**row, **over}])


# position 3 is a VIX call: its delta-adjusted exposure 850 is volatility exposure, apart from the equity 150
VALS = pd.DataFrame({"date": [D1] * 3, "position_id": [1, 2, 3], "market_value": [100.0, 200.0, -100.0],
                     "delta_adjusted_exposure": [250.0, -100.0, 850.0]})


def test_exposures_consistent():
    assert valuation.exposure_problems(VALS, _exposures(), pd.DataFrame(), "p") == []
    bad = _exposures(gross_exposure=200.0, position_count=4)
    assert valuation.exposure_problems(VALS, bad, pd.DataFrame(), "p") == [
        "p 2025-06-02: gross != long + |short|",
        "p 2025-06-02: counts do not add up",
        "p 2025-06-02: position_count != positions valued",
    ]
    assert valuation.exposure_problems(VALS.assign(market_value=[100.0, 200.0, -50.0]), _exposures(), pd.DataFrame(), "p") == [
        "p 2025-06-02: net != sum of position values"
    ]
    # the VIX call counted in equity exposure as well: both delta-adjusted identities break
    assert valuation.exposure_problems(VALS, _exposures(delta_adjusted_exposure=1000.0), pd.DataFrame(), "p") == [
        "p 2025-06-02: delta-adjusted long + short != delta-adjusted exposure",
        "p 2025-06-02: delta-adjusted + volatility delta != sum of position delta-adjusted exposures",
    ]
    # a row stored before the split (volatility_delta_exposure NULL) is not held to the second identity
    old_row = _exposures(delta_adjusted_exposure=1000.0, delta_adjusted_long=1100.0, volatility_delta_exposure=None)
    assert valuation.exposure_problems(VALS, old_row, pd.DataFrame(), "p") == []


# --- factors ------------------------------------------------------------------------------------------------
def test_history_window():
    start, end = pd.Timestamp("2025-01-02"), D1
    pos = pd.DataFrame({"date": [D1], "position_id": [1], "window_start": [start], "window_end": [end],
                        "n_obs": [150], "beta": [1.1], "flag": ["ok"]})
    win = pos[["date", "window_start", "window_end", "n_obs"]]
    kw = dict(expected_start={D1: start}, expected_end={D1: end}, window=150, min_obs=60)
    assert factors.history_window_problems(pos, win, "p", **kw) == []
    short = pos.assign(n_obs=40, window_end=D2)  # a look-ahead, too few observations, not flagged
    assert factors.history_window_problems(short, win.iloc[0:0], "p", **kw) == [
        "p 2025-06-02 position: window ends 2025-06-03, after the date",
        "p 2025-06-02 position: window ends 2025-06-03",
        "p 2025-06-02 position 1: 40 obs without a limited_history flag",
        "p 2025-06-02 position 1: a beta from 40 < 60 observations",
    ]


def test_duplicate_factors():
    definitions = pd.DataFrame({"factor_name": ["Market", "Value"], "proxy_symbol": ["SPY", "VTV"]})
    pos = pd.DataFrame({"date": [D1, D1], "position_id": [1, 1], "factor_name": ["Market", "Value"]})
    port = pd.DataFrame({"date": [D1, D1], "factor_name": ["Market", "Value"]})
    assert factors.duplicate_factor_problems(pos, port, definitions, "p") == []
    dup_port = pd.DataFrame({"date": [D1, D1], "factor_name": ["Market", "Market"]})
    shared = definitions.assign(proxy_symbol=["SPY", "SPY"])
    assert factors.duplicate_factor_problems(pos, dup_port, shared, "p") == [
        f"p: duplicated rows for {{'date': {D1!r}, 'factor_name': 'Market'}}",
        "p 2025-06-02: factors ['Market'] != definitions ['Market', 'Value']",
        "proxy SPY shared by Market, Value",
    ]


# --- snapshots ----------------------------------------------------------------------------------------------
def test_snapshot_sums():
    vals = pd.DataFrame({"date": [D1, D1], "position_id": [1, 2], "market_value": [100.0, 50.0]})
    pnl = pd.DataFrame({"date": [D1, D1], "daily_pnl": [3.0, -1.0]})
    snap = pd.DataFrame({"date": [D1], "total_value": [150.0], "daily_pnl": [2.0]})
    assert snapshots.snapshot_problems(snap, vals, pnl, "p") == []
    assert snapshots.snapshot_problems(snap.assign(total_value=150.03, daily_pnl=2.0), vals, pnl, "p") == [
        "p 2025-06-02: total_value 150.03 != sum of positions 150.00"  # 3 cents > a cent per position (2)
    ]
    assert snapshots.snapshot_problems(snap.assign(daily_pnl=2.015), vals, pnl, "p") == []  # within 2 cents


# --- stress -------------------------------------------------------------------------------------------------
def _results(direct: float, capped: bool = False) -> pd.DataFrame:
    return pd.DataFrame({"date": [D1], "scenario_id": ["crash"], "direct_pnl": [direct], "correlated_pnl": [direct],
                         "loss_cap_applied": [capped]})


EXPO = pd.DataFrame({"date": [D1], "gross_exposure": [1000.0], "short_count": [0]})


def test_loss_cap():
    assert stress.loss_cap_problems(_results(-999.0), EXPO, "p") == []
    assert stress.loss_cap_problems(_results(-1200.0), EXPO, "p") == ["p 2025-06-02 crash: loss -1,200.00 > gross 1,000.00"]
    assert len(stress.loss_cap_problems(_results(-1000.0, capped=True), EXPO, "p")) == 1  # capped rows are named
    # A book with a short position may lose more than its gross exposure.
    assert stress.loss_cap_problems(_results(-1200.0), EXPO.assign(short_count=1), "p") == []


def test_scenario_count():
    results = pd.DataFrame({"date": [D1, D1, D2], "scenario_id": ["a", "b", "a"]})
    assert stress.scenario_count_problems(results[results.date == D1], [D1], 2, "p") == []
    assert stress.scenario_count_problems(results, [D1, D2, pd.Timestamp("2025-06-04")], 2, "p") == [
        "p 2025-06-03: 1 scenarios, file has 2",
        "p 2025-06-04: 0 scenarios, file has 2",
    ]


@pytest.mark.parametrize("direct, problems", [(0.0, 0), (1e-10, 0), (0.01, 1)])
def test_zero_shock_zero_pnl(direct, problems):
    results = pd.DataFrame({"direct_pnl": [direct], "correlated_pnl": [0.0]})
    assert len(stress.zero_shock_problems(results, "p")) == problems


def test_losses_beyond_equity_are_named_for_any_book():
    expo = pd.DataFrame({"date": [D1, D2], "net_exposure": [400.0, -50.0], "gross_exposure": [1600.0, 1650.0],
                         "short_count": [1, 1]})
    results = pd.DataFrame({"date": [D1, D1, D2, D2], "scenario_id": ["crash", "dip", "crash", "rally"],
                            "direct_pnl": [-350.0, -100.0, -10.0, 5.0], "correlated_pnl": [-420.0, -90.0, -12.0, 6.0],
                            "loss_cap_applied": [False] * 4})
    assert stress.equity_loss_problems(results, expo, "p") == [
        "p 2025-06-02 crash: loss -420.00 beyond equity 400.00 (105.0% of equity)",
        "p 2025-06-03 crash: loss -12.00 beyond equity -50.00 (not positive: any loss exceeds it)",
    ]
    # the blocking long-only loss cap does not apply to these books (they have shorts)
    assert stress.loss_cap_problems(results, expo, "p") == []
    # within equity: nothing to name
    assert stress.equity_loss_problems(results.assign(direct_pnl=-1.0, correlated_pnl=-1.0), expo.assign(net_exposure=400.0), "p") == []


def test_the_equity_check_warns_on_a_levered_book_and_blocks_nothing(tmp_path, monkeypatch):
    """A long/short book (long QQQ, short SPY of about the same value: little equity) through Dagster: the
    ``stress_losses_within_equity`` check fails with WARN severity naming the rows, the run succeeds, the blocking
    long-only ``loss_cap`` passes, and the downstream report is written and flags the rows "beyond equity"."""
    import dagster as dg

    from sigmasight_pipeline import runner as orch
    from sigmasight_pipeline.defs.stress.checks import LOSSES_WITHIN_EQUITY
    from sigmasight_pipeline.reporting import report_dir
    from sigmasight_pipeline.warehouse import schema
    from sigmasight_pipeline.warehouse.io import dispose_engines, get_engine, read_table

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", url)
    day = "2025-01-03"
    csv = "ticker,quantity,entry_price,entry_date\nQQQ,1000,529.20,2025-01-02\nSPY,-880,585.00,2025-01-02\n"
    assert not LOSSES_WITHIN_EQUITY.blocking
    with dg.instance_for_test() as instance:
        defs = orch.load_definitions()
        pid = orch.import_portfolio(instance, csv, name="Levered", portfolio_id="levered", defs=defs)
        orch.materialize_market(instance, orch.market_history_start(day), day, defs=defs)
        result = orch.materialize_portfolio(instance, pid, day, day, defs=defs)
        assert result.success
        evals = {e.check_name: e for e in result.get_asset_check_evaluations()
                 if e.asset_key == dg.AssetKey("stress_results")}
    warn = evals["stress_losses_within_equity"]
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN
    assert evals["loss_cap"].passed  # the long-only model-error check: not this book's case
    engine = get_engine(url)
    rows = read_table(engine, schema.stress_results, portfolio_id=pid)
    expo = read_table(engine, schema.portfolio_exposures, portfolio_id=pid).iloc[0]
    beyond = rows[rows["exceeds_equity"]]
    assert len(beyond) > 0 and (rows["equity"] == expo["net_exposure"]).all()
    named = warn.metadata["rows"].value.splitlines()
    assert sorted(named) == sorted(stress.equity_loss_problems(rows, read_table(engine, schema.portfolio_exposures,
                                                                               portfolio_id=pid), pid))
    assert len(named) == len(beyond) and warn.metadata["count"].value == len(beyond)
    if expo["net_exposure"] > 0:
        ratio = rows["correlated_pnl"] / expo["net_exposure"]
        assert (rows["pct_of_equity"] - ratio).abs().max() < 1e-6  # stored P&L and equity are rounded to cents
    md = (report_dir(tmp_path / "reports", "Levered", day) / "portfolio_report.md").read_text()
    assert "**beyond equity**" in md
    dispose_engines()
