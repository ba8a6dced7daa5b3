"""Reports: Markdown / JSON / CSV / charts from hand-built warehouse rows, atomic writes, pre-publish checks.

The fixture book (anchor 2025-03-14): a long stock (AAPL), a short stock (TSLA), a long call on AAPL and a
short put on SPY, with made-up but consistent rows for every section of that date.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
import json
import re
from dataclasses import replace

import pandas as pd
import pytest
from jsonschema import Draft202012Validator

from sigmasight_pipeline.reporting import (
    CSV_COLUMNS,
    ReportInput,
    build_report,
    format_field,
    load_report_input,
    load_report_schema,
    prepublish_problems,
    render_charts,
    report_dir,
    report_slug,
    write_report,
)
from sigmasight_pipeline.reporting.formatting import format_decimal, plain_position_type
from sigmasight_pipeline.reporting.charts import PNG_SIGNATURE
from sigmasight_pipeline.reporting.validation import markdown_availability

ANCHOR = dt.date(2025, 3, 14)
PREV = dt.date(2025, 3, 13)
PID = "test-book"
NAME = "Test Book"
GENERATED = dt.datetime(2025, 3, 15, 6, 30, tzinfo=dt.timezone.utc)
FACTORS = ["Market", "Value", "Growth", "Momentum", "Quality", "Size", "Low Volatility"]

# the 34 columns of spec/report.md, written out independently of the implementation
SPEC_COLUMNS = [
    "position_id", "symbol", "position_type", "quantity", "entry_price", "current_price", "market_value", "cost_basis",
    "unrealized_pnl", "realized_pnl", "daily_pnl", "total_pnl",
    "delta", "gamma", "theta", "vega", "rho",
    "underlying_symbol", "strike_price", "expiration_date", "days_to_expiry",
    "entry_date", "exit_date", "sector", "industry", "tags", "notes",
    "portfolio_name", "report_date", "gross_exposure", "net_exposure", "notional", "portfolio_weight", "position_exposure",
]

# (id, name, category, severity, correlated P&L)
SCENARIOS = [
    ("market_up_10", "Market Rally 10%", "market", "moderate", 15000.0),
    ("market_down_10", "Market Decline 10%", "market", "moderate", -15000.0),
    ("market_rally_25", "Market Rally 25%", "market", "severe", 30000.0),
    ("market_crash_35", "Market Crash 35%", "market", "severe", -40000.0),
    ("rates_up_25bp", "Rates Up 25bp", "rates", "mild", -500.0),
    ("rates_down_25bp", "Rates Down 25bp", "rates", "mild", 500.0),
    ("rates_up_100bp", "Rates Up 100bp", "rates", "moderate", -2000.0),
    ("rates_down_100bp", "Rates Down 100bp", "rates", "moderate", 2000.0),
    ("rate_spike_300bp", "Rate Spike 300bp", "rates", "severe", -6000.0),
    ("value_rotation_20", "Value Rotation 20%", "rotation", "moderate", 1200.0),
    ("growth_rally_15", "Growth Rally 15%", "rotation", "moderate", 9000.0),
    ("small_cap_outperformance_10", "Small Cap Outperformance 10%", "rotation", "mild", 800.0),
    ("quality_flight_12", "Flight to Quality 12%", "rotation", "mild", -4000.0),
    ("vix_spike_150", "VIX Spike 150%", "volatility", "severe", -21000.0),
    ("liquidity_crisis", "Liquidity Crisis", "volatility", "severe", -26000.0),
    ("financial_crisis_2008", "2008 Financial Crisis Replay", "historical", "extreme", -55000.0),
    ("covid_crash_2020", "COVID-19 Crash Replay (March 2020)", "historical", "extreme", -42000.0),
    ("dotcom_crash_2000", "Dot-Com Crash Replay (2000-2002)", "historical", "extreme", -48000.0),
]
WORST = ["2008 Financial Crisis Replay", "Dot-Com Crash Replay (2000-2002)", "COVID-19 Crash Replay (March 2020)",
         "Market Crash 35%", "Liquidity Crisis"]
BEST = ["Market Rally 25%", "Market Rally 10%", "Growth Rally 15%", "Rates Down 100bp", "Value Rotation 20%"]


def _dated(rows: list[dict], date=ANCHOR) -> pd.DataFrame:
    return pd.DataFrame([{"date": pd.Timestamp(date), "portfolio_id": PID, **r} for r in rows])


# Risk measures of the anchor date (spec/risk_measures.md), hand-made and consistent: historical VaR / ES over
# 180 scenarios (limited history, 3 filled returns), parametric from sigma = $1,500 a day (z sigma and
# sigma phi(z) / (1 - a)), 10-day = 1-day x sqrt(10); Euler contributions adding up to ES 99% and sigma.
SIGMA = 1500.0
HIST_TAIL = {("var", 0.95): 2500.0, ("var", 0.99): 4000.0, ("es", 0.95): 3100.0, ("es", 0.975): 3600.0,
             ("es", 0.99): 4400.0}
PAR_TAIL = {("var", 0.95): 2467.2804404272083, ("var", 0.99): 3489.5218110612614, ("es", 0.95): 3094.069211261139,
            ("es", 0.975): 3506.7041883021197, ("es", 0.99): 3997.8213305187082}
HIST_FLAG = "limited_history;filled_returns=3"
#: position -> (ES 95%, ES 97.5%, ES 99% contributions, contribution to sigma); exposures 16000, -12000, 72000, 84000
POSITION_RISK = {1: (600.0, 700.0, 800.0, 250.0), 2: (-200.0, -250.0, -300.0, -100.0),
                 3: (1300.0, 1550.0, 1900.0, 650.0), 4: (1400.0, 1600.0, 2000.0, 700.0)}
DAE = {1: 16000.0, 2: -12000.0, 3: 72000.0, 4: 84000.0}
#: factor -> (dollar exposure, contribution to sigma): factors add up to 1200 (80% of the variance), Specific 300
FACTOR_RISK = {"Market": (168000.0, 1000.0), "Value": (11200.0, 50.0), "Growth": (19200.0, 80.0),
               "Momentum": (12800.0, 40.0), "Quality": (12400.0, 20.0), "Size": (-11200.0, -10.0),
               "Low Volatility": (-11600.0, 20.0), "Specific": (None, 300.0)}
#: the VaR backtest: (date, VaR date, 99% VaR, realised P&L); one exception (2025-03-11)
BACKTEST = [("2025-03-10", "2025-03-07", 4000.0, 1000.0), ("2025-03-11", "2025-03-10", 4100.0, -4500.0),
            ("2025-03-12", "2025-03-11", 3900.0, 500.0), ("2025-03-13", "2025-03-12", 3950.0, 1265.5),
            ("2025-03-14", "2025-03-13", 3900.0, 1234.5)]
KUPIEC_LR, KUPIEC_P = 0.4487018338243196, 0.5029520782829524  # 2 exceptions in 120 sessions at 1%


def risk_frames() -> dict[str, pd.DataFrame]:
    measures = []
    for method, tail, flag in (("historical", HIST_TAIL, HIST_FLAG), ("parametric", PAR_TAIL, "ok")):
        for (measure, level), value in tail.items():
            measures.append(dict(method=method, measure=measure, level=level, horizon_days=1, value=value, flag=flag))
            measures.append(dict(method=method, measure=measure, level=level, horizon_days=10,
                                 value=value * 10 ** 0.5, flag=("" if flag == "ok" else flag + ";") + "scaled_sqrt10"))
    measures += [
        dict(method="historical", measure="scenarios", level=0.0, horizon_days=1, value=180.0, flag=HIST_FLAG),
        dict(method="historical", measure="filled_returns", level=0.0, horizon_days=1, value=3.0, flag=HIST_FLAG),
        dict(method="parametric", measure="volatility", level=0.0, horizon_days=1, value=SIGMA, flag="ok"),
        dict(method="parametric", measure="volatility", level=0.0, horizon_days=252, value=SIGMA * 252 ** 0.5, flag="ok"),
        dict(method="parametric", measure="volatility_of_equity", level=0.0, horizon_days=252,
             value=SIGMA * 252 ** 0.5 / 8500.0, flag="ok"),
        dict(method="parametric", measure="tracking_error", level=0.0, horizon_days=1, value=900.0, flag="ok"),
        dict(method="parametric", measure="tracking_error", level=0.0, horizon_days=252, value=900.0 * 252 ** 0.5, flag="ok"),
        dict(method="parametric", measure="tracking_error_of_equity", level=0.0, horizon_days=252,
             value=900.0 * 252 ** 0.5 / 8500.0, flag="ok"),
        dict(method="parametric", measure="factor_share", level=0.0, horizon_days=1, value=0.8, flag="ok"),
        dict(method="parametric", measure="specific_share", level=0.0, horizon_days=1, value=0.2, flag="ok"),
    ]
    positions = []
    for pid, (es95, es975, es99, vol) in POSITION_RISK.items():
        for level, c, total in ((0.95, es95, 3100.0), (0.975, es975, 3600.0), (0.99, es99, 4400.0)):
            positions.append(dict(position_id=pid, method="historical", measure="es", level=level, contribution=c,
                                  marginal=None, share=c / total))
        positions.append(dict(position_id=pid, method="parametric", measure="volatility", level=0.0, contribution=vol,
                              marginal=vol / DAE[pid], share=vol / SIGMA))
    factors = [dict(factor_name=f, dollar_exposure=x, contribution=c, marginal=None if x is None else c / x,
                    share=c / SIGMA) for f, (x, c) in FACTOR_RISK.items()]
    history = pd.DataFrame([
        dict(date=pd.Timestamp(d), portfolio_id=PID, var_date=pd.Timestamp(v), var_99=var, realized_pnl=pnl,
             exception=pnl < -var) for d, v, var, pnl in BACKTEST
    ])
    backtest = history.iloc[[-1]].reset_index(drop=True).assign(
        window_sessions=120, exceptions=2, kupiec_lr=KUPIEC_LR, kupiec_p_value=KUPIEC_P, zone="green")
    return dict(risk_measures=_dated(measures), position_risk=_dated(positions), factor_risk=_dated(factors),
                risk_backtest=backtest, backtest_history=history)


# the statistics of the four returns of the snapshot history (figures made up where the fixture has no input
# for them: volatility, ratios, market)
_WINDOW_STATS = dict(
    cumulative_return=0.0505045394736842, annualized_return=20.7123456789, annual_volatility=0.6153846,
    sharpe_ratio=5.1234567, sortino_ratio=9.8765, max_drawdown=-0.05, peak_date=pd.Timestamp("2025-03-11"),
    trough_date=pd.Timestamp("2025-03-12"), current_drawdown=0.0, calmar_ratio=414.2469, best_day=0.05,
    best_day_date=pd.Timestamp("2025-03-13"), worst_day=-0.05, worst_day_date=pd.Timestamp("2025-03-12"),
    positive_days_share=0.75, beta=1.05123, alpha=0.1234567, correlation=0.8512345678, tracking_error=0.08,
    market_return=0.0123,
)
_NO_STATS = {k: None for k in _WINDOW_STATS}
#: (window, start, first return, sessions, returns, statistics, flag, reason); month to date is made to hold a
#: single return, to show a window without figures
WINDOWS = [
    ("mtd", "2025-03-03", "2025-03-14", 10, 1, _NO_STATS, "insufficient_returns",
     "1 return in the window; 2 needed for a figure"),
    ("ytd", "2025-01-02", "2025-03-11", 49, 4, _WINDOW_STATS, "limited_history",
     "4 returns over 49 sessions (first return 2025-03-11)"),
    ("21d", "2025-02-13", "2025-03-11", 21, 4, _WINDOW_STATS, "limited_history",
     "4 returns over 21 sessions (first return 2025-03-11)"),
    ("63d", "2024-12-12", "2025-03-11", 63, 4, _WINDOW_STATS, "limited_history",
     "4 returns over 63 sessions (first return 2025-03-11)"),
    ("126d", "2024-09-13", "2025-03-11", 126, 4, _WINDOW_STATS, "limited_history",
     "4 returns over 126 sessions (first return 2025-03-11)"),
    ("252d", "2024-03-15", "2025-03-11", 252, 4, _WINDOW_STATS, "limited_history",
     "4 returns over 252 sessions (first return 2025-03-11)"),
    ("inception", "2025-03-11", "2025-03-11", 4, 4, {**_WINDOW_STATS, "sortino_ratio": None}, "ok",
     "undefined: sortino_ratio (no day below the risk-free rate)"),
]
FACTOR_EXPOSURE = {f: x for f, (x, _) in FACTOR_RISK.items() if x is not None}
#: the P&L attribution: date -> line -> P&L (each date adds up to the snapshot's daily P&L; 2025-03-10 is the
#: first snapshot, not attributed); today's factor lines are exposure x factor return
TODAY_RETURNS = {"Market": 0.005, "Value": -0.002, "Growth": 0.001, "Momentum": 0.0025, "Quality": -0.001,
                 "Size": 0.0005, "Low Volatility": -0.0015}
ATTRIBUTION = {
    "2025-03-11": {"Market": 700.0, "Value": 10.0, "Growth": 20.0, "Momentum": 30.0, "Quality": -10.0, "Size": 5.0,
                   "Low Volatility": -5.0, "specific": 150.0, "residual": 100.0},
    "2025-03-12": {"Market": 300.0, "Value": -5.0, "Growth": 10.0, "Momentum": 0.0, "Quality": 5.0, "Size": -10.0,
                   "Low Volatility": 0.0, "specific": 120.0, "residual": 80.0},
    "2025-03-13": {"Market": 900.25, "Value": 0.0, "Growth": -20.25, "Momentum": 15.0, "Quality": 0.0, "Size": 0.0,
                   "Low Volatility": 10.0, "specific": 200.5, "residual": 160.0},
    "2025-03-14": {**{f: round(FACTOR_EXPOSURE[f] * r, 2) for f, r in TODAY_RETURNS.items()},
                   "specific": 250.0, "residual": 116.3},
}


def _attribution_rows(day: str, lines: dict[str, float]) -> list[dict]:
    previous = {"2025-03-11": "2025-03-10", "2025-03-12": "2025-03-11", "2025-03-13": "2025-03-12",
                "2025-03-14": "2025-03-13"}[day]
    rows = []
    for i, (line, pnl) in enumerate(lines.items()):
        kind = line if line in ("specific", "residual") else "factor"
        rows.append(dict(date=pd.Timestamp(day), portfolio_id=PID, line=line, line_type=kind, line_order=i,
                         previous_date=pd.Timestamp(previous),
                         exposure=FACTOR_EXPOSURE[line] if kind == "factor" else None,
                         factor_return=TODAY_RETURNS[line] if kind == "factor" and day == "2025-03-14" else (
                             0.001 if kind == "factor" else None),
                         pnl=pnl, flag=None))
    return rows


def performance_frames() -> dict[str, pd.DataFrame]:
    performance = _dated([
        dict(window_name=w, window_start=pd.Timestamp(start), first_return_date=pd.Timestamp(first),
             window_sessions=sessions, n_returns=n, **stats, flag=flag, reason=reason)
        for w, start, first, sessions, n, stats, flag, reason in WINDOWS
    ])
    history = pd.DataFrame([r for day, lines in ATTRIBUTION.items() for r in _attribution_rows(day, lines)])
    today = history[history["date"] == pd.Timestamp(ANCHOR)].reset_index(drop=True)
    return dict(performance=performance, attribution=today,
                attribution_history=history[["date", "portfolio_id", "line", "line_type", "line_order", "pnl"]])


def make_input(**overrides) -> ReportInput:
    positions = pd.DataFrame(
        [
            dict(position_id=1, symbol="AAPL", position_type="LONG", quantity=100.0, entry_price=150.0,
                 entry_date=pd.Timestamp("2025-01-02"), underlying_symbol="AAPL", option_type=None, strike=None,
                 expiration=pd.NaT, multiplier=1.0, cost_basis=15000.0, source_row=2, is_option=False,
                 tags=("core", "tech"), sector="Technology", industry="Consumer Electronics", asset_type="stock"),
            dict(position_id=2, symbol="TSLA", position_type="SHORT", quantity=-50.0, entry_price=250.0,
                 entry_date=pd.Timestamp("2025-01-02"), underlying_symbol="TSLA", option_type=None, strike=None,
                 expiration=pd.NaT, multiplier=1.0, cost_basis=-12500.0, source_row=3, is_option=False,
                 tags=("hedge",), sector="Consumer Cyclical", industry="Auto Manufacturers", asset_type="stock"),
            dict(position_id=3, symbol="AAPL250620C00160000", position_type="LC", quantity=10.0, entry_price=5.0,
                 entry_date=pd.Timestamp("2025-01-02"), underlying_symbol="AAPL", option_type="C", strike=160.0,
                 expiration=pd.Timestamp("2025-06-20"), multiplier=100.0, cost_basis=5000.0, source_row=4,
                 is_option=True, tags=("options", "tech"), sector="Technology", industry="Consumer Electronics",
                 asset_type="option"),
            dict(position_id=4, symbol="SPY250620P00500000", position_type="SP", quantity=-5.0, entry_price=8.0,
                 entry_date=pd.Timestamp("2025-01-02"), underlying_symbol="SPY", option_type="P", strike=500.0,
                 expiration=pd.Timestamp("2025-06-20"), multiplier=100.0, cost_basis=-4000.0, source_row=5,
                 is_option=True, tags=(), sector=None, industry=None, asset_type="option"),
        ]
    )
    valuations = _dated([
        dict(position_id=1, price=160.0, price_source="market", underlying_price=160.0, market_value=16000.0,
             cost_basis=15000.0, unrealized_pnl=1000.0, notional=16000.0, delta_adjusted_exposure=16000.0, is_long=True),
        dict(position_id=2, price=240.0, price_source="market", underlying_price=240.0, market_value=-12000.0,
             cost_basis=-12500.0, unrealized_pnl=500.0, notional=12000.0, delta_adjusted_exposure=-12000.0, is_long=False),
        dict(position_id=3, price=7.5, price_source="market", underlying_price=160.0, market_value=7500.0,
             cost_basis=5000.0, unrealized_pnl=2500.0, notional=160000.0, delta_adjusted_exposure=72000.0, is_long=True),
        dict(position_id=4, price=6.0, price_source="market", underlying_price=560.0, market_value=-3000.0,
             cost_basis=-4000.0, unrealized_pnl=1000.0, notional=280000.0, delta_adjusted_exposure=84000.0, is_long=False),
    ])
    exposures = _dated([dict(
        long_exposure=23500.0, short_exposure=-15000.0, gross_exposure=38500.0, net_exposure=8500.0,
        notional=468000.0, delta_adjusted_exposure=160000.0, delta_adjusted_long=172000.0,
        delta_adjusted_short=-12000.0, volatility_delta_exposure=0.0, options_exposure=4500.0, stock_exposure=4000.0,
        total_cost_basis=3500.0, total_unrealized_pnl=5000.0, long_count=2, short_count=2, option_count=2, stock_count=2, position_count=4,
        missing_price_count=0,
    )])
    greeks = _dated([
        dict(position_id=1, underlying_price=160.0, implied_vol=None, vol_source="none", days_to_expiry=None,
             model_price=160.0, delta=1.0, gamma=0.0, theta=0.0, vega=0.0, rho=0.0, position_delta=100.0,
             position_gamma=0.0, position_theta=0.0, position_vega=0.0, position_rho=0.0, dollar_delta=16000.0,
             dollar_gamma=0.0, flag="ok"),
        dict(position_id=2, underlying_price=240.0, implied_vol=None, vol_source="none", days_to_expiry=None,
             model_price=240.0, delta=1.0, gamma=0.0, theta=0.0, vega=0.0, rho=0.0, position_delta=-50.0,
             position_gamma=0.0, position_theta=0.0, position_vega=0.0, position_rho=0.0, dollar_delta=-12000.0,
             dollar_gamma=0.0, flag="ok"),
        dict(position_id=3, underlying_price=160.0, implied_vol=0.28, vol_source="realized", days_to_expiry=98,
             model_price=7.48, delta=0.45, gamma=0.02, theta=-0.05, vega=0.300123456, rho=0.15, position_delta=450.0,
             position_gamma=20.0, position_theta=-50.0, position_vega=300.123456, position_rho=150.0,
             dollar_delta=72000.0, dollar_gamma=5120.0, flag="ok"),
        dict(position_id=4, underlying_price=560.0, implied_vol=0.18, vol_source="realized", days_to_expiry=98,
             model_price=6.02, delta=-0.30, gamma=0.004, theta=-0.08, vega=0.9, rho=-0.5, position_delta=150.0,
             position_gamma=-2.0, position_theta=40.0, position_vega=-450.0, position_rho=250.0,
             dollar_delta=84000.0, dollar_gamma=-6272.0, flag="ok"),
    ])
    betas = {1: [1.2, 0.1, 0.3, 0.2, 0.1, -0.1, -0.2], 2: [1.8, -0.2, 0.6, 0.4, -0.3, 0.2, -0.5],
             3: [1.2, 0.1, 0.3, 0.2, 0.1, -0.1, -0.2], 4: [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]}
    dae = {1: 16000.0, 2: -12000.0, 3: 72000.0, 4: 84000.0}
    position_factors = _dated([
        dict(position_id=p, factor_name=f, beta=b, t_stat=b * 10.0 + 0.123456, r_squared=0.55, n_obs=150, flag="ok",
             exact_fit=False, dollar_exposure=round(b * dae[p], 2))
        for p, bs in betas.items() for f, b in zip(FACTORS, bs)
    ])
    portfolio_factors = _dated([
        dict(factor_name=f, dollar_exposure=round(sum(betas[p][i] * dae[p] for p in betas), 2),
             beta_net=sum(betas[p][i] * dae[p] for p in betas) / 160000.0,
             beta_gross=sum(betas[p][i] * dae[p] for p in betas) / 184000.0,
             positions_with_beta=4, positions_without_beta=0)
        for i, f in enumerate(FACTORS)
    ])
    factor_window = _dated([dict(window_start=pd.Timestamp("2024-08-09"), window_end=pd.Timestamp(ANCHOR), n_obs=150,
                                 condition_number=12.3, max_vif=3.4)])
    position_rates = _dated([
        dict(position_id=p, rate_beta=-0.00002, t_stat=-1.5, r_squared=0.02, n_obs=150, flag="ok",
             dollar_per_bp=round(-0.00002 * dae[p], 2))
        for p in dae
    ])
    portfolio_rates = _dated([dict(
        dollar_per_bp=-3.2, pnl_rates_up_100bp=-320.0, pnl_rates_down_100bp=320.0, pnl_rates_up_200bp=-640.0,
        pnl_rates_down_200bp=640.0, pnl_market_up_5=7500.0, pnl_market_down_5=-7500.0, pnl_market_up_10=15000.0,
        pnl_market_down_10=-15000.0, pnl_market_up_20=30000.0, pnl_market_down_20=-30000.0,
    )])
    correlation_summary = _dated([dict(positions_included=4, overall_correlation=0.123456789, concentration_score=0.31,
                                       effective_positions=3.2, clusters=1)])
    correlation_clusters = _dated([dict(cluster_id=1, cluster_name="tech", position_id=1),
                                   dict(cluster_id=1, cluster_name="tech", position_id=3)])
    stress_results = _dated([
        dict(scenario_id=sid, direct_pnl=round(c * 0.8, 2), correlated_pnl=c, correlation_effect=round(c * 0.2, 2),
             pct_of_gross_exposure=c / 38500.0, gross_exposure=38500.0, equity=8500.0, pct_of_equity=c / 8500.0,
             exceeds_equity=c < -8500.0, loss_cap_applied=False, flag="loss_exceeds_equity" if c < -8500.0 else "ok")
        for sid, _, _, _, c in SCENARIOS
    ])
    stress_breakdown = _dated([
        dict(scenario_id=sid, factor_name="Market", shock=-0.1, implied_move=-0.1, direct_pnl=round(c * 0.8, 2),
             correlated_pnl=c)
        for sid, _, _, _, c in SCENARIOS
    ])
    scenarios = pd.DataFrame(
        [dict(scenario_id=s, name=n, category=c, severity=v, display_order=i + 1) for i, (s, n, c, v, _) in enumerate(SCENARIOS)]
    )
    snapshot = _dated([dict(
        total_value=8500.0, long_exposure=23500.0, short_exposure=-15000.0, gross_exposure=38500.0, net_exposure=8500.0,
        delta_adjusted_exposure=160000.0, notional=468000.0, dollar_delta=160000.0, dollar_gamma=-1152.0,
        daily_pnl=1234.5, cumulative_pnl=5000.0, position_count=4, long_count=2, short_count=2, option_count=2,
        stock_count=2, missing_price_count=0, portfolio_delta=650.0, portfolio_gamma=18.0, portfolio_theta=-10.0, portfolio_vega=-149.876544,
        portfolio_rho=400.0, daily_return=1234.5 / 38000.0, is_first_snapshot=False, pnl_basis="previous_close",
        realized_pnl=0.0, cumulative_realized_pnl=312.25,
    )])
    position_pnl = _dated([
        dict(position_id=1, daily_pnl=200.0, pnl_basis="previous_close"),
        dict(position_id=2, daily_pnl=-100.0, pnl_basis="previous_close"),
        dict(position_id=3, daily_pnl=1500.0, pnl_basis="previous_close"),
        dict(position_id=4, daily_pnl=-365.5, pnl_basis="previous_close"),
    ])
    history = pd.DataFrame({
        "date": pd.to_datetime(["2025-03-10", "2025-03-11", "2025-03-12", "2025-03-13", "2025-03-14"]),
        "daily_pnl": [1000.0, 1000.0, 500.0, 1265.5, 1234.5],
        "cumulative_pnl": [1000.0, 2000.0, 2500.0, 3765.5, 5000.0],
        # the first snapshot has no daily return; the index 1, 1.02, 0.969, 1.01745, 1.0505 has the drawdowns
        # 0, 0, -5%, -0.25%, 0
        "daily_return": [float("nan"), 0.02, -0.05, 0.05, 1234.5 / 38000.0],
        "is_first_snapshot": [True, False, False, False, False],
    })
    kwargs = dict(
        portfolio={"portfolio_id": PID, "name": NAME, "owner": "owner@example.com"},
        anchor_date=ANCHOR, positions=positions, valuations=valuations, exposures=exposures, greeks=greeks,
        position_factors=position_factors, portfolio_factors=portfolio_factors, factor_window=factor_window,
        position_rates=position_rates, portfolio_rates=portfolio_rates, correlation_summary=correlation_summary,
        correlation_clusters=correlation_clusters, stress_results=stress_results, stress_breakdown=stress_breakdown,
        scenarios=scenarios, snapshot=snapshot, position_pnl=position_pnl, snapshot_history=history,
        **risk_frames(), **performance_frames(), failed_checks=[], flags=[],
    )
    kwargs.update(overrides)
    return ReportInput(**kwargs)


def build(inp=None):
    return build_report(inp or make_input(), GENERATED)


def csv_rows(rendered) -> list[dict]:
    return list(csv.DictReader(io.StringIO(rendered.csv)))


def section(markdown: str, heading: str) -> str:
    """Lines under ``heading`` up to the next heading of the same or a higher level."""
    lines = markdown.splitlines()
    level = len(heading) - len(heading.lstrip("#"))
    start = lines.index(heading)
    out = []
    for line in lines[start + 1:]:
        m = re.match(r"^(#+) ", line)
        if m and len(m.group(1)) <= level:
            break
        out.append(line)
    return "\n".join(out)


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---") and not re.match(r"^\|[-:|]+\|$", line):
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            rows.append([c.strip() for c in cells])
    return rows


# ---------------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------------
def test_full_report_json_validates_and_holds_the_figures():
    rendered = build()
    Draft202012Validator(load_report_schema()).validate(rendered.json)
    js = rendered.json
    assert js["version"] == "1.0"
    assert js["metadata"]["anchor_date"] == js["metadata"]["report_date"] == "2025-03-14"
    assert js["metadata"]["generated_at"] == "2025-03-15T06:30:00+00:00"
    assert js["metadata"]["portfolio_name"] == NAME and js["metadata"]["portfolio_id"] == PID
    policy = js["metadata"]["precision_policy"]
    assert policy["money"]["decimals"] == 2 and policy["greeks_betas"]["decimals"] == 4
    assert any("realized_pnl is realised up to the report date" in n for n in policy["notes"])
    for engine in ("exposures", "greeks", "factor_exposures", "rate_sensitivity", "correlations", "stress_tests", "snapshot"):
        assert js[engine]["available"] is True, engine
        assert "reason" not in js[engine]
        assert js[engine]["as_of"] == ["2025-03-14"]
    assert js["exposures"]["data"]["gross_exposure"] == "38500.00"
    assert js["exposures"]["data"]["long_count"] == 2
    assert js["greeks"]["data"]["portfolio"]["vega"] == "-149.8765"
    assert js["greeks"]["data"]["portfolio"]["dollar_gamma"] == "-1152.00"
    call = next(p for p in js["greeks"]["data"]["positions"] if p["position_id"] == 3)
    assert call["vega"] == "0.3001" and call["position_vega"] == "300.1235" and call["days_to_expiry"] == 98
    factors = js["factor_exposures"]["data"]["factors"]
    assert [f["factor_name"] for f in factors] == FACTORS
    assert factors[0]["dollar_exposure"] == "168000.00"  # 1.2*16000 + 1.8*-12000 + 1.2*72000 + 1.0*84000
    assert factors[0]["beta_net"] == "1.0500" and factors[0]["beta_gross"] == "0.9130"
    assert js["correlations"]["data"]["summary"]["overall_correlation"] == "0.123457"
    assert js["correlations"]["data"]["clusters"][0]["symbols"] == ["AAPL", "AAPL250620C00160000"]
    stress = js["stress_tests"]["data"]
    assert stress["scenario_count"] == 18 and len(stress["scenarios"]) == 18
    assert [s["scenario_id"] for s in stress["scenarios"]] == [s[0] for s in SCENARIOS]  # full list, file order
    crash = next(s for s in stress["scenarios"] if s["scenario_id"] == "market_crash_35")
    assert crash["correlated_pnl"] == "-40000.00" and crash["direct_pnl"] == "-32000.00"
    assert crash["pct_of_gross_exposure"] == "-1.038961" and crash["pct_of_equity"] == "-4.705882"
    assert crash["exceeds_equity"] is True and crash["flag"] == "loss_exceeds_equity"
    assert stress["gross_exposure"] == "38500.00" and stress["equity"] == "8500.00"  # the net exposure
    assert stress["worst_five"][0] == "financial_crisis_2008" and stress["best_five"][0] == "market_rally_25"
    snap = js["snapshot"]["data"]
    assert snap["daily_pnl"] == "1234.50" and snap["cumulative_pnl"] == "5000.00"
    assert snap["daily_return"] == "0.032487"
    assert snap["missing_price_count"] == 0 and snap["long_count"] == 2
    assert js["positions_summary"]["by_type"] == {"LONG": 1, "SHORT": 1, "LC": 1, "SC": 0, "LP": 0, "SP": 1}
    assert [list(p) for p in js["positions"]] == [SPEC_COLUMNS] * 4
    assert json.loads(json.dumps(js)) == js  # plain JSON types only


def test_missing_sections_still_validate_and_say_why_in_markdown_and_json():
    empty = pd.DataFrame()
    inp = make_input(greeks=empty, stress_results=empty, stress_breakdown=empty, portfolio_factors=empty,
                     position_factors=empty, factor_window=empty)
    rendered = build(inp)
    Draft202012Validator(load_report_schema()).validate(rendered.json)
    js, md = rendered.json, rendered.markdown
    reasons = {
        "greeks": "no rows in position_greeks for 2025-03-14",
        "stress_tests": "no rows in stress_results for 2025-03-14",
        "factor_exposures": "no rows in portfolio_factor_exposures for 2025-03-14; "
                            "no rows in position_factor_exposures for 2025-03-14",
    }
    for engine, reason in reasons.items():
        assert js[engine] == {"available": False, "reason": reason, "as_of": [], "data": None}
        assert rendered.availability[engine] == (False, reason)
        assert f"**Not available** (engine: {engine}): {reason}" in md
        assert js["data_quality"]["engines"][engine] is False
    assert js["exposures"]["available"] and js["snapshot"]["available"]
    dq = dict((r[0], (r[1], r[2])) for r in table_rows(section(md, "## 6. Data quality")) if r[0] in rendered.availability)
    assert dq["greeks"] == ("not available", reasons["greeks"])
    assert dq["snapshot"] == ("available", "")
    # the charts section says which charts were skipped and why; the stress chart is not linked
    charts_md = section(md, "## 5. Charts")
    assert "(stress_pnl.png)" not in charts_md.replace("_Chart skipped (stress_pnl.png)", "")
    assert "_Chart skipped (stress_pnl.png): stress tests not available: no rows in stress_results for 2025-03-14._" in charts_md
    assert "![Cumulative P&L history](cumulative_pnl.png)" in charts_md
    assert rendered.chart_files == ["cumulative_pnl.png", "drawdown.png", "var_backtest.png"]
    # Greeks and days to expiry are blank (not made up) when the Greeks engine has no rows
    rows = csv_rows(rendered)
    assert rows[2]["delta"] == "" and rows[2]["days_to_expiry"] == ""
    assert prepublish_problems(rendered, inp, expected_scenarios=18) == []


def test_no_fallback_to_another_date():
    """Rows of the day before never stand in for the anchor date."""
    inp = make_input(greeks=make_input().greeks.assign(date=pd.Timestamp(PREV)))
    rendered = build(inp)
    assert rendered.json["greeks"]["available"] is False
    assert rendered.json["greeks"]["reason"] == "no rows in position_greeks for 2025-03-14"
    assert csv_rows(rendered)[2]["delta"] == ""
    problems = prepublish_problems(rendered, inp, 18)
    assert any("position_greeks: 4 row(s) dated 2025-03-13, not the anchor date 2025-03-14" in p for p in problems)


def test_positions_entered_after_the_anchor_and_other_portfolios_rows_are_left_out():
    inp = make_input()
    later = inp.positions.iloc[[0]].assign(position_id=5, symbol="MSFT", underlying_symbol="MSFT",
                                           entry_date=pd.Timestamp("2025-04-01"))
    other = inp.valuations.iloc[[0]].assign(portfolio_id="someone-else", market_value=1e9)
    inp = replace(inp, positions=pd.concat([inp.positions, later], ignore_index=True),
                  valuations=pd.concat([inp.valuations, other], ignore_index=True))
    rendered = build(inp)
    assert [r["symbol"] for r in csv_rows(rendered)] == ["AAPL", "TSLA", "AAPL250620C00160000", "SPY250620P00500000"]
    assert rendered.json["positions_summary"]["not_yet_entered"] == 1
    assert "1 position(s) entered after 2025-03-14 are not in this report" in rendered.json["data_quality"]["other_flags"]
    assert csv_rows(rendered)[0]["market_value"] == "16000.00"
    problems = prepublish_problems(rendered, inp, 18)
    assert problems == ["position_valuations: rows of other portfolios (someone-else)"]


def test_schema_requires_a_reason_when_an_engine_is_not_available():
    validator = Draft202012Validator(load_report_schema())
    js = json.loads(json.dumps(build(make_input(greeks=pd.DataFrame())).json))
    assert not list(validator.iter_errors(js))
    del js["greeks"]["reason"]
    assert any("reason" in e.message for e in validator.iter_errors(js))
    js = json.loads(json.dumps(build().json))
    js["greeks"]["data"]["positions"][0]["delta"] = "1.00"  # a Greek with 2 decimals
    js["correlations"]["data"]["summary"]["overall_correlation"] = "0.1235"
    js["unexpected"] = 1
    paths = {"/".join(map(str, e.absolute_path)) for e in validator.iter_errors(js)}
    assert {"greeks/data/positions/0/delta", "correlations/data/summary/overall_correlation", ""} <= paths


# ---------------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------------
def test_csv_has_the_34_columns_in_order_and_real_values():
    rendered = build()
    reader = csv.reader(io.StringIO(rendered.csv))
    header = next(reader)
    assert header == SPEC_COLUMNS == list(CSV_COLUMNS) and len(header) == 34
    rows = csv_rows(rendered)
    assert [r["position_type"] for r in rows] == ["LONG", "SHORT", "LC", "SP"]
    assert "PositionType" not in rendered.csv
    aapl, tsla, call, put = rows
    # options' cost basis carries the x100 multiplier (as stored)
    assert call["cost_basis"] == "5000.00" == format_decimal(10 * 5.0 * 100, 2)
    assert put["cost_basis"] == "-4000.00"
    assert call["quantity"] == "10" and put["quantity"] == "-5"
    assert call["market_value"] == "7500.00" and call["current_price"] == "7.50"
    # filled where the earlier system left them blank
    assert [r["daily_pnl"] for r in rows] == ["200.00", "-100.00", "1500.00", "-365.50"]
    assert [r["days_to_expiry"] for r in rows] == ["", "", "98", "98"]
    assert [r["tags"] for r in rows] == ["core, tech", "hedge", "options, tech", ""]
    assert aapl["realized_pnl"] == "0.00" and aapl["total_pnl"] == "1000.00" and aapl["unrealized_pnl"] == "1000.00"
    assert aapl["exit_date"] == "" and aapl["notes"] == ""
    # an option's notes say which volatility priced it
    assert call["notes"] == "volatility: realized 28.00%" and put["notes"] == "volatility: realized 18.00%"
    assert call["delta"] == "450.0000" and call["vega"] == "300.1235" and put["gamma"] == "-2.0000"
    assert call["underlying_symbol"] == "AAPL" and call["strike_price"] == "160.00"
    assert call["expiration_date"] == "2025-06-20" and aapl["expiration_date"] == "" and aapl["underlying_symbol"] == ""
    assert aapl["entry_date"] == "2025-01-02" and aapl["sector"] == "Technology"
    assert aapl["industry"] == "Consumer Electronics" and put["sector"] == ""
    assert {r["portfolio_name"] for r in rows} == {NAME} and {r["report_date"] for r in rows} == {"2025-03-14"}
    assert {r["gross_exposure"] for r in rows} == {"38500.00"} and {r["net_exposure"] for r in rows} == {"8500.00"}
    assert {r["notional"] for r in rows} == {"468000.00"}
    assert [r["portfolio_weight"] for r in rows] == ["0.415584", "-0.311688", "0.194805", "-0.077922"]
    assert [r["position_exposure"] for r in rows] == ["16000.00", "-12000.00", "72000.00", "84000.00"]


class _PositionType(enum.Enum):
    LONG_CALL = "LC"


def test_position_type_is_plain_even_from_an_enum():
    assert plain_position_type(_PositionType.LONG_CALL) == "LC"
    assert plain_position_type("PositionType.SP") == "SP"
    assert plain_position_type(" short ") == "SHORT"
    with pytest.raises(ValueError):
        plain_position_type("CALL")
    pos = make_input().positions.copy()
    pos["position_type"] = pos["position_type"].astype(object)
    pos.loc[2, "position_type"] = _PositionType.LONG_CALL
    rendered = build(make_input(positions=pos))
    assert csv_rows(rendered)[2]["position_type"] == "LC"
    assert "_PositionType" not in rendered.csv + rendered.markdown + json.dumps(rendered.json)


# ---------------------------------------------------------------------------------------------------
# Precision
# ---------------------------------------------------------------------------------------------------
def test_money_has_exactly_two_decimals_and_never_a_negative_zero():
    assert format_field("market_value", 1234.5) == "1234.50"
    assert format_field("market_value", -0.004) == "0.00"
    assert format_field("daily_pnl", -0.005) == "-0.01"  # ROUND_HALF_UP on the decimal value
    assert format_field("daily_pnl", 2.675) == "2.68"  # no binary noise: 2.675 is not 2.67499...
    assert format_field("daily_pnl", 0.125) == "0.13"
    assert format_field("cost_basis", 12) == "12.00"
    assert format_field("total_value", 1e12) == "1000000000000.00"
    assert format_field("unrealized_pnl", float("nan")) is None and format_field("unrealized_pnl", None) is None
    money = re.compile(r"^-?\d+\.\d{2}$")
    for row in csv_rows(build()):
        for col in ("entry_price", "current_price", "market_value", "cost_basis", "unrealized_pnl", "realized_pnl",
                    "daily_pnl", "total_pnl", "gross_exposure", "net_exposure", "notional", "position_exposure"):
            assert money.match(row[col]), (col, row[col])
            assert row[col] != "-0.00"


def test_greeks_four_decimals_by_field_even_for_large_values():
    assert format_field("position_delta", 123456.789012) == "123456.7890"
    assert format_field("delta", 5) == "5.0000"
    assert format_field("gamma", -0.00004) == "0.0000"
    assert format_field("beta", 1.23456) == "1.2346"
    assert format_field("overall_correlation", 0.5) == "0.500000"
    assert format_field("dollar_delta", 123456.789012) == "123456.79"  # money although it is a "Greek" name
    with pytest.raises(KeyError):
        format_field("some_unknown_field", 1.0)
    greeks = build().json["greeks"]["data"]["positions"]
    assert greeks[0]["position_delta"] == "100.0000" and greeks[3]["dollar_gamma"] == "-6272.00"


# ---------------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------------
def test_markdown_sections_in_order_with_valid_tables():
    md = build().markdown
    headings = [l for l in md.splitlines() if l.startswith("## ")]
    assert headings == ["## 1. Executive summary", "## 2. Risk analytics", "## 3. Risk measures",
                        "## 4. Performance and attribution", "## 5. Charts", "## 6. Data quality"]
    assert md.startswith("# Portfolio report: Test Book\n")
    assert "- **Report date:** 2025-03-14" in md and "- **Anchor date:** 2025-03-14" in md
    assert "- **Generated at:** 2025-03-15T06:30:00+00:00" in md
    value = dict(r for r in table_rows(section(md, "### Value and P&L"))[1:])
    assert value == {"Total value": "$8,500.00", "Daily P&L": "$1,234.50", "Daily return": "3.25%",
                     "Cumulative P&L": "$5,000.00", "Realised P&L (today / to date)": "$0.00 / $312.25",
                     "P&L basis": "previous_close"}
    counts, expo = table_rows(section(md, "### Positions and exposures"))[0:2], table_rows(section(md, "### Positions and exposures"))[2:4]
    assert counts[1] == ["2", "2", "2", "2", "4", "0"]
    assert expo[1] == ["$38,500.00", "$8,500.00", "$23,500.00", "-$15,000.00", "$468,000.00", "$160,000.00", "$0.00"]
    greeks = table_rows(section(md, "### Portfolio Greeks"))
    assert greeks[1] == ["650.0000", "18.0000", "-10.0000", "-149.8765", "400.0000", "$160,000.00", "-$1,152.00"]
    factors = table_rows(section(md, "### Factor exposures"))
    assert [r[0] for r in factors[1:8]] == FACTORS  # each factor once
    assert factors[1][:4] == ["Market", "1.0500", "0.9130", "$168,000.00"]
    corr = table_rows(section(md, "### Correlation summary"))
    assert corr[1] == ["4", "0.123457", "0.310000", "3.2000", "1"]
    assert "$-3.20" not in md and "-$3.20" in md  # rate sensitivity per bp
    # every table row of a table has the same number of cells as its header
    blocks, current = [], []
    for line in md.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    assert blocks
    for block in blocks:
        widths = {len(re.split(r"(?<!\\)\|", l)) for l in block}
        assert len(widths) == 1, block
        assert re.match(r"^\|([-:]+\|)+$", block[1]), block


def test_markdown_shows_worst_five_and_best_five_in_order():
    md = build().markdown
    worst = table_rows(section(md, "#### Worst five"))[1:]
    best = table_rows(section(md, "#### Best five"))[1:]
    assert [r[1] for r in worst] == WORST
    assert [r[1] for r in best] == BEST
    assert [r[0] for r in worst] == ["1", "2", "3", "4", "5"]
    assert worst[0] == ["1", "2008 Financial Crisis Replay", "historical", "-$44,000.00", "-$55,000.00", "-142.86%",
                        "-647.06% **beyond equity**"]  # % of gross exposure (38,500), % of equity (8,500)
    assert [r[6].endswith("**beyond equity**") for r in worst] == [True] * 5
    assert best[0][3:] == ["$24,000.00", "$30,000.00", "77.92%", "352.94%"]
    assert "18 scenarios" in section(md, "### Stress tests")
    assert "**7 of 18 scenarios lose more than the book's equity.**" in section(md, "### Stress tests")


def test_pipes_in_names_are_escaped_in_tables():
    inp = make_input()
    scen = inp.scenarios.copy()
    scen.loc[scen.scenario_id == "financial_crisis_2008", "name"] = "2008 | GFC"
    clusters = inp.correlation_clusters.assign(cluster_name="tech | growth")
    md = build(replace(inp, scenarios=scen, correlation_clusters=clusters)).markdown
    assert "| 1 | 2008 \\| GFC | historical |" in md
    assert "| tech \\| growth |" in md
    worst = table_rows(section(md, "#### Worst five"))
    assert len({len(r) for r in worst}) == 1


def test_data_quality_lists_flags_and_failed_checks():
    inp = make_input()
    vals = inp.valuations.copy()
    vals.loc[vals.position_id == 4, ["price", "market_value", "unrealized_pnl"]] = None
    vals.loc[vals.position_id == 4, "price_source"] = "missing"
    vals.loc[vals.position_id == 3, "price_source"] = "model"
    pf = inp.position_factors.copy()
    pf.loc[pf.position_id == 2, ["flag", "n_obs"]] = ["limited_history", 95]
    inp = replace(inp, valuations=vals, position_factors=pf, failed_checks=["stress_loss_cap: loss above gross exposure"],
                  flags=["market data: ^VIX missing on 2025-03-14"])
    rendered = build(inp)
    dq = rendered.json["data_quality"]
    assert dq["limited_history"][0] == "factor betas of TSLA (#2): limited_history (n_obs 95)"
    assert dq["limited_history"][1].startswith("risk measures (historical): limited history: 180 scenarios")
    assert dq["missing_prices"] == ["SPY250620P00500000 (#4): no price for 2025-03-14; left out of money totals"]
    assert "AAPL250620C00160000 (#3): marked to model (Black-Scholes), no market price" in dq["other_flags"]
    assert "market data: ^VIX missing on 2025-03-14" in dq["other_flags"]
    assert dq["failed_checks"] == ["stress_loss_cap: loss above gross exposure"]
    md_dq = section(rendered.markdown, "## 6. Data quality")
    for line in dq["limited_history"] + dq["missing_prices"] + dq["failed_checks"]:
        assert f"- {line}" in md_dq
    put = csv_rows(rendered)[3]
    assert put["market_value"] == "" and put["current_price"] == "" and put["portfolio_weight"] == ""
    Draft202012Validator(load_report_schema()).validate(rendered.json)
    clean = section(build(make_input(risk_measures=pd.DataFrame(), performance=pd.DataFrame())).markdown,
                    "## 6. Data quality")
    assert "**Limited history:** none" in clean and "**Missing prices:** none" in clean and "None." in clean


# ---------------------------------------------------------------------------------------------------
# Charts and files
# ---------------------------------------------------------------------------------------------------
def test_charts_are_pngs_and_deterministic():
    rendered = build()
    charts = render_charts(rendered)
    assert sorted(charts) == ["cumulative_pnl.png", "drawdown.png", "factor_exposures.png", "stress_pnl.png",
                              "var_backtest.png"]
    for name, data in charts.items():
        assert data.startswith(PNG_SIGNATURE), name
        assert len(data) > 1024, name
    assert render_charts(rendered) == charts
    for name in charts:
        assert f"]({name})" in rendered.markdown


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_charts_carry_no_metadata_and_keep_every_fixture_scenario_name_whole():
    from sigmasight_pipeline.reporting import charts

    rendered = build()
    for name, data in render_charts(rendered).items():
        for chunk in (b"tEXt", b"zTXt", b"iTXt", b"tIME"):  # no software version, no timestamp
            assert chunk not in data, (name, chunk)
        width, height = _png_size(data)
        assert 700 <= width <= 1000 and 400 <= height <= 1000, (name, width, height)
    # the stress chart's label margin holds every scenario name of the fixture in full (legibility)
    room = 900 * 0.42
    for _, scenario, _, _, _ in SCENARIOS:
        assert charts._fit(scenario, charts._TEXT_PX, room) == scenario
    long_name = "An Extremely Long Hypothetical Stress Scenario Name That Would Not Fit In The Margin"
    short = charts._fit(long_name, charts._TEXT_PX, room)
    assert short.endswith("…") and long_name.startswith(short[:-1].rstrip())
    assert charts._Canvas.text_width(short, charts._TEXT_PX) <= room


def test_charts_draw_odd_data():
    from sigmasight_pipeline.reporting.charts import cumulative_pnl_chart, factor_exposure_chart, stress_chart

    many = pd.DataFrame({"factor_name": [f"Custom factor number {i}" for i in range(15)],
                         "dollar_exposure": [(-1) ** i * 1000.0 * i for i in range(15)]})
    empty_factors = pd.DataFrame({"factor_name": [], "dollar_exposure": []})
    zero = pd.DataFrame({"factor_name": ["Market"], "dollar_exposure": [0.0]})
    stress = pd.DataFrame({"name": ["A | B", "x" * 200, "Missing"], "direct_pnl": [1.0, -2.5e7, None],
                           "correlated_pnl": [None, -3e7, float("nan")]})
    one_day = pd.DataFrame({"date": [pd.Timestamp(ANCHOR)], "cumulative_pnl": [1234.5]})
    gaps = pd.DataFrame({"date": pd.bdate_range(end=ANCHOR, periods=150),
                         "cumulative_pnl": [float("nan") if i % 17 == 0 else 1e5 * (i - 40) for i in range(150)]})
    tz = pd.DataFrame({"date": pd.date_range("2025-03-10 23:00", periods=5, freq="D", tz="America/New_York"),
                       "cumulative_pnl": [1.0, 2.0, None, 4.0, 5.0]})
    nothing = pd.DataFrame({"date": [pd.NaT, pd.Timestamp(ANCHOR)], "cumulative_pnl": [None, None]})
    calls = [(factor_exposure_chart, many), (factor_exposure_chart, empty_factors), (factor_exposure_chart, zero),
             (stress_chart, stress), (stress_chart, stress.iloc[:0]), (cumulative_pnl_chart, one_day),
             (cumulative_pnl_chart, gaps), (cumulative_pnl_chart, tz), (cumulative_pnl_chart, nothing)]
    for draw, data in calls:
        png = draw(data, "Book - as of 2025-03-14")
        assert png.startswith(PNG_SIGNATURE) and png == draw(data, "Book - as of 2025-03-14")
        assert png != draw(data, None)
    # the stress chart grows with the number of scenarios: every name keeps a readable row
    (_, h3), (_, h18) = _png_size(stress_chart(stress)), _png_size(render_charts(build())["stress_pnl.png"])
    assert h18 - h3 >= 15 * 25
    # names too long for their bars are written vertically (a taller chart), not cut to a few letters
    assert _png_size(factor_exposure_chart(many))[1] - _png_size(factor_exposure_chart(zero))[1] >= 100


def test_rerun_overwrites_atomically_without_leftovers(tmp_path):
    root = tmp_path / "reports"
    directory = report_dir(root, NAME, ANCHOR)
    assert directory == (root / "test-book_2025-03-14").resolve()
    first = build()
    r1 = write_report(first, render_charts(first), directory)
    assert r1.overwrote is False
    assert sorted(p.name for p in directory.iterdir()) == [
        "cumulative_pnl.png", "drawdown.png", "factor_exposures.png", "portfolio_report.csv", "portfolio_report.json",
        "portfolio_report.md", "stress_pnl.png", "var_backtest.png",
    ]
    assert json.loads(r1.json.read_text(encoding="utf-8")) == first.json
    assert r1.csv.read_text(encoding="utf-8") == first.csv
    (directory / "notes-by-a-person.txt").write_text("keep me")

    empty = pd.DataFrame()
    second = build(make_input(stress_results=empty, stress_breakdown=empty))
    r2 = write_report(second, render_charts(second), directory)
    assert r2.overwrote is True
    names = sorted(p.name for p in directory.iterdir())
    assert "stress_pnl.png" not in names  # the stale chart is gone
    assert names == ["cumulative_pnl.png", "drawdown.png", "factor_exposures.png", "notes-by-a-person.txt",
                     "portfolio_report.csv", "portfolio_report.json", "portfolio_report.md", "var_backtest.png"]
    assert [p.name for p in r2.removed] == ["stress_pnl.png"]
    assert json.loads(r2.json.read_text(encoding="utf-8"))["stress_tests"]["available"] is False
    assert r2.markdown.read_text(encoding="utf-8") == second.markdown
    assert not any(n.startswith(".") for n in names)


def test_write_refuses_charts_that_do_not_match_the_links(tmp_path):
    rendered = build()
    charts = render_charts(rendered)
    charts.pop("stress_pnl.png")
    with pytest.raises(ValueError, match="do not match"):
        write_report(rendered, charts, tmp_path / "r")
    assert not (tmp_path / "r" / "portfolio_report.md").exists()


def test_formats_restrict_what_is_written_and_charts_go_with_the_markdown(tmp_path):
    from sigmasight_pipeline.reporting.writer import report_text

    rendered = build()
    directory = tmp_path / "r"
    only_json = write_report(rendered, {}, directory, formats=["json"])
    assert sorted(p.name for p in directory.iterdir()) == ["portfolio_report.json"]
    assert only_json.markdown is None and only_json.csv is None and only_json.overwrote is False
    assert json.loads(only_json.json.read_text(encoding="utf-8")) == rendered.json
    assert only_json.json.read_text(encoding="utf-8") == report_text(rendered, "json")

    # csv + md (any order, duplicates ignored): the charts come with the Markdown; the JSON already there stays
    both = write_report(rendered, render_charts(rendered), directory, formats=["md", "csv", "md"])
    assert set(both.paths) == {"portfolio_report.md", "portfolio_report.csv", *rendered.chart_files}
    assert both.overwrote is False  # neither the Markdown nor the CSV existed
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["portfolio_report.json", "portfolio_report.md", "portfolio_report.csv", *rendered.chart_files])
    assert both.markdown.read_text(encoding="utf-8") == report_text(rendered, "md") == rendered.markdown
    assert both.csv.read_text(encoding="utf-8") == report_text(rendered, "csv") == rendered.csv

    # a CSV-only rerun touches neither the Markdown nor its charts (a chart it no longer plans is not its file)
    empty = pd.DataFrame()
    second = build(make_input(stress_results=empty, stress_breakdown=empty))
    before = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}
    r = write_report(second, {}, directory, formats=("csv",))
    assert r.overwrote is True and r.removed == [] and "stress_pnl.png" in before
    after = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}
    assert set(after) == set(before)
    assert {n for n in after if after[n] != before[n]} <= {"portfolio_report.csv"}
    assert r.csv.read_text(encoding="utf-8") == second.csv


def test_formats_refused_before_anything_is_written(tmp_path):
    rendered = build()
    with pytest.raises(ValueError, match=r"unknown report format\(s\) 'pdf'; choose from md, json, csv"):
        write_report(rendered, {}, tmp_path / "a", formats=["json", "pdf"])
    with pytest.raises(ValueError, match="no report format given"):
        write_report(rendered, {}, tmp_path / "b", formats=[])
    with pytest.raises(ValueError, match=r"formats \(json\) link to \[\]"):  # charts without the Markdown
        write_report(rendered, render_charts(rendered), tmp_path / "c", formats=["json"])
    assert not any((tmp_path / d).exists() for d in "abc")


@pytest.mark.parametrize(
    "name, expected",
    [("../../etc", "etc"), ("a/b|c", "a-b-c"), ("Demo Hedge Fund Style Investor Portfolio", "demo-hedge-fund-style-investor-portfolio"),
     ("  --Ünïcode__Book-- ", "n-code-book"), ("..", None), ("", None), ("|||", None)],
)
def test_report_slug_and_dir_stay_inside_the_output_root(tmp_path, name, expected):
    root = tmp_path / "out"
    if expected is None:
        with pytest.raises(ValueError):
            report_slug(name)
        with pytest.raises(ValueError):
            report_dir(root, name, ANCHOR)
        return
    assert report_slug(name) == expected
    path = report_dir(root, name, "2025-03-14")
    assert path == root.resolve() / f"{expected}_2025-03-14"
    assert path.is_relative_to(root.resolve())


def test_report_dir_refuses_a_symlink_out_of_the_root(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "evil_2025-03-14").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="not inside the output root"):
        report_dir(root, "Evil", ANCHOR)


# ---------------------------------------------------------------------------------------------------
# Pre-publish validation
# ---------------------------------------------------------------------------------------------------
def test_prepublish_passes_for_a_consistent_report():
    inp = make_input()
    assert prepublish_problems(build(inp), inp, expected_scenarios=18) == []


def test_prepublish_catches_a_count_mismatch():
    inp = make_input()
    inp = replace(inp, exposures=inp.exposures.assign(long_count=3))
    problems = prepublish_problems(build(inp), inp, 18)
    assert "long (3) + short (2) = 5 != position count 4" in problems


def test_prepublish_catches_a_duplicated_factor_row():
    inp = make_input()
    dup = pd.concat([inp.portfolio_factors, inp.portfolio_factors.iloc[[0]]], ignore_index=True)
    inp = replace(inp, portfolio_factors=dup)
    rendered = build(inp)
    problems = prepublish_problems(rendered, inp, 18)
    assert "duplicate factor rows in portfolio_factor_exposures: Market" in problems
    assert "duplicate factor rows in the JSON: Market" in problems
    assert "duplicate factor rows in the Markdown: Market" in problems


def test_prepublish_catches_a_wrong_scenario_count():
    inp = make_input()
    assert "stress scenario count 18 != 17 scenarios in the scenario file" in prepublish_problems(build(inp), inp, 17)
    short = replace(inp, stress_results=inp.stress_results.iloc[1:])
    assert "stress scenario count 17 != 18 scenarios in the scenario file" in prepublish_problems(build(short), short, 18)


def test_prepublish_catches_a_row_dated_another_day():
    inp = make_input()
    stale = inp.greeks.iloc[[2]].assign(date=pd.Timestamp(PREV), delta=0.99, position_delta=990.0)
    inp = replace(inp, greeks=pd.concat([inp.greeks, stale], ignore_index=True))
    rendered = build(inp)
    assert csv_rows(rendered)[2]["delta"] == "450.0000"  # the anchor-date row, never the stale one
    problems = prepublish_problems(rendered, inp, 18)
    assert "position_greeks: 1 row(s) dated 2025-03-13, not the anchor date 2025-03-14" in problems
    future = replace(make_input(), snapshot_history=pd.concat(
        [make_input().snapshot_history, pd.DataFrame({"date": [pd.Timestamp("2025-03-17")], "cumulative_pnl": [1.0]})]))
    assert "snapshot history has rows after the anchor date 2025-03-14: 2025-03-17" in prepublish_problems(build(future), future, 18)


def test_prepublish_catches_json_and_markdown_disagreeing():
    inp = make_input(greeks=pd.DataFrame())
    rendered = build(inp)
    assert markdown_availability(rendered.markdown)[1] == {"greeks"}
    doctored = replace(rendered, markdown=rendered.markdown.replace("| greeks | not available |", "| greeks | available |"))
    problems = prepublish_problems(doctored, inp, 18)
    assert any(p.startswith("greeks: availability disagrees") for p in problems)
    reworded = replace(rendered, markdown=rendered.markdown.replace(
        "| greeks | not available | no rows in position_greeks for 2025-03-14 |", "| greeks | not available | no data |"))
    assert prepublish_problems(reworded, inp, 18) == [
        "greeks: the Markdown gives the reason 'no data', the JSON 'no rows in position_greeks for 2025-03-14'"
    ]
    js = json.loads(json.dumps(rendered.json))
    js["snapshot"] = {"available": False, "reason": "no data", "as_of": [], "data": None}
    problems = prepublish_problems(replace(rendered, json=js), inp, 18)
    assert any(p.startswith("snapshot: availability disagrees") for p in problems)


def test_prepublish_reports_schema_violations():
    rendered = build()
    js = json.loads(json.dumps(rendered.json))
    js["positions"][0]["market_value"] = "16000.0"
    problems = prepublish_problems(replace(rendered, json=js), make_input(), 18)
    assert problems and problems[0].startswith("JSON schema: positions/0/market_value")


def test_schema_validator_and_compiled_check_are_built_once():
    from sigmasight_pipeline.reporting.json_report import _report_check, report_validator

    validator = report_validator()  # also checks the shipped schema against the 2020-12 metaschema
    assert report_validator() is validator
    assert isinstance(validator, Draft202012Validator) and validator.schema == load_report_schema()
    check = _report_check()
    assert check is not None, "the report schema no longer compiles to the fast check"
    assert _report_check() is check


def _json_paths(node, path=()):
    """Every path of a JSON document."""
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _json_paths(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _json_paths(value, path + (i,))


def _first_items(node):
    """The document with every list cut to its first item (the same schema paths, a fraction of the size)."""
    if isinstance(node, dict):
        return {key: _first_items(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_first_items(value) for value in node[:1]]
    return node


def test_fast_schema_check_agrees_with_jsonschema():
    """fastjsonschema says "valid" exactly when jsonschema does, on mutations of every part of a report.

    schema_problems trusts the fast check's "valid" without asking jsonschema, so every mutation the fast
    check accepts is confirmed by jsonschema; the reverse is checked on a sample (jsonschema is slow, so
    the documents are cut to the first item of each list).
    """
    import copy
    import random

    from sigmasight_pipeline.reporting.json_report import _report_check, report_validator, schema_problems

    check, validator = _report_check(), report_validator()
    empty = pd.DataFrame()
    full = build().json
    missing = build(make_input(greeks=empty, stress_results=empty, snapshot=empty, exposures=empty)).json
    assert check(full) and check(missing) and schema_problems(full) == [] and schema_problems(missing) == []
    values = [None, True, 0, -1, 1.5, "", "x", "1.00", "-1.0000", "0.100000", "2025-03-14", "LONG", [], {}, ["x"]]
    rng = random.Random(20250314)
    compared = accepted = 0
    for doc in (_first_items(full), _first_items(missing)):
        assert check(doc) and validator.is_valid(doc)
        for path in list(_json_paths(doc))[1:]:
            for how in ("set", "delete", "extra"):
                mutated = copy.deepcopy(doc)
                parent = mutated
                for key in path[:-1]:
                    parent = parent[key]
                last = path[-1]
                if how == "set":
                    parent[last] = rng.choice(values)
                elif how == "delete":
                    del parent[last]
                elif isinstance(parent[last], dict):
                    parent[last]["unexpected_key"] = 1
                elif isinstance(parent[last], list):
                    parent[last].append(copy.deepcopy(parent[last][0]) if parent[last] else "x")
                else:
                    continue
                fast = check(mutated)
                accepted += fast
                if fast or rng.random() < 0.1:
                    compared += 1
                    assert validator.is_valid(mutated) == fast, (path, how, mutated)
    assert accepted > 50 and compared - accepted > 20  # both directions were exercised


def test_anchor_day_matching_equals_pandas_dates():
    from sigmasight_pipeline.reporting.inputs import day_values, on_date
    from sigmasight_pipeline.reporting.sections import anchor_rows as _anchor_rows

    cases = [
        pd.Series([pd.Timestamp("2025-03-14"), pd.Timestamp("2025-03-14 23:59:59"), pd.Timestamp("2025-03-13"), pd.NaT]),
        pd.Series(pd.to_datetime(["2025-03-14 01:00", "2025-03-15 02:00"]).tz_localize("UTC").tz_convert("America/New_York")),
        pd.Series(["2025-03-14", "not a date", None, "2025-03-15"]),
        pd.Series([dt.date(2025, 3, 14), dt.datetime(2025, 3, 14, 12), None, dt.date(2024, 3, 14)], dtype=object),
        pd.Series(pd.to_datetime(["2025-03-14"]).as_unit("s")),
        pd.Series([], dtype="datetime64[ns]"),
    ]
    for values in cases:
        expected = pd.to_datetime(values, errors="coerce").dt.date
        assert on_date(values, ANCHOR).tolist() == (expected == ANCHOR).tolist(), values
        days = day_values(values)
        assert [None if pd.isna(d) else str(d) for d in days] == [None if pd.isna(d) else str(d) for d in expected]
    frame = pd.DataFrame({"date": cases[0], "portfolio_id": [PID, 7, PID, PID], "x": range(4)})
    rows, ignored = _anchor_rows(frame, ANCHOR, PID)
    assert rows["x"].tolist() == [0] and ignored == 3
    rows, ignored = _anchor_rows(frame.assign(portfolio_id=[7, 7, 7, 7]), ANCHOR, "7")
    assert rows["x"].tolist() == [0, 1] and ignored == 2


def test_records_are_exactly_to_dict_records():
    import math

    import numpy as np

    from sigmasight_pipeline.reporting.inputs import records as _records

    inp = make_input()
    frames = [inp.section(name) for name in (
        "valuations", "exposures", "greeks", "position_factors", "portfolio_factors", "factor_window",
        "position_rates", "portfolio_rates", "correlation_summary", "correlation_clusters", "stress_results",
        "stress_breakdown", "snapshot", "position_pnl")] + [inp.positions, inp.scenarios, inp.snapshot_history]
    frames.append(pd.DataFrame({
        "string": pd.array(["a", None, "c"], dtype="string"), "str": pd.Series(["a", None, "c"], dtype="str"),
        "object": [np.float64(1.5), None, "x"], "Int64": pd.array([1, None, 3], dtype="Int64"),
        "boolean": pd.array([True, None, False], dtype="boolean"), "bool": [True, False, True],
        "datetime": pd.to_datetime(["2025-01-01", None, "2025-01-03"]),
        "tz": pd.to_datetime(["2025-01-01", None, "2025-01-03"]).tz_localize("UTC"),
        "category": pd.Categorical(["x", "y", None]), "float": [1.0, float("nan"), 3.0],
        "uint8": np.array([1, 2, 3], dtype=np.uint8), "timedelta": pd.to_timedelta([1, 2, None], unit="D"),
    }))

    def same(a, b):
        if type(a) is not type(b):
            return False
        if isinstance(a, float) and math.isnan(a):
            return math.isnan(b)
        return a is b if a is pd.NaT or a is pd.NA else a == b

    for frame in frames:
        expected = frame.to_dict("records")
        got = _records(frame)
        assert [list(r) for r in got] == [list(r) for r in expected]
        for g, e in zip(got, expected):
            assert all(same(g[k], e[k]) for k in e), (g, e)


# ---------------------------------------------------------------------------------------------------
# Warehouse read (SQLite)
# ---------------------------------------------------------------------------------------------------
def _seed_book(engine, src: ReportInput) -> None:
    """The fixture's portfolio (its upload and book), security master and stress scenarios in a warehouse."""
    from sigmasight_pipeline.defs.portfolios.portfolio_positions import store_book
    from sigmasight_pipeline.warehouse import schema
    from sigmasight_pipeline.warehouse.portfolios import save_portfolio_source

    upload = "ticker,quantity,entry_price,entry_date,tags\n" + "".join(  # the upload these positions come from
        f'{r.symbol},{r.quantity:g},{r.entry_price:g},{pd.Timestamp(r.entry_date):%Y-%m-%d},"{",".join(r.tags)}"\n'
        for r in src.positions.sort_values("position_id").itertuples()
    )
    save_portfolio_source(engine, portfolio_id=PID, name=NAME, owner="owner@example.com", csv_text=upload)
    store_book(engine, PID)
    with engine.begin() as conn:
        conn.execute(schema.security_master.insert(), [
            {"symbol": "AAPL", "name": "Apple", "asset_type": "stock", "sector": "Technology", "industry": "Consumer Electronics"},
            {"symbol": "TSLA", "name": "Tesla", "asset_type": "stock", "sector": "Consumer Cyclical", "industry": "Auto Manufacturers"},
        ])
        conn.execute(schema.stress_scenarios.insert(), [
            {"scenario_id": s, "name": n, "category": c, "severity": v, "display_order": i}
            for i, (s, n, c, v, _) in enumerate(SCENARIOS)
        ])


def test_load_report_input_reads_only_the_anchor_date(sqlite_engine):
    from sigmasight_pipeline.warehouse import schema
    from sigmasight_pipeline.warehouse.io import write_partition

    src = make_input()
    _seed_book(sqlite_engine, src)
    sections = {
        schema.position_valuations: src.valuations, schema.portfolio_exposures: src.exposures,
        schema.position_greeks: src.greeks, schema.position_factor_exposures: src.position_factors,
        schema.portfolio_factor_exposures: src.portfolio_factors, schema.factor_regression_windows: src.factor_window,
        schema.position_rate_sensitivity: src.position_rates, schema.portfolio_rate_sensitivity: src.portfolio_rates,
        schema.correlation_summaries: src.correlation_summary, schema.correlation_clusters: src.correlation_clusters,
        schema.stress_results: src.stress_results, schema.stress_factor_breakdown: src.stress_breakdown,
        schema.portfolio_snapshots: src.snapshot, schema.position_daily_pnl: src.position_pnl,
    }
    for table, frame in sections.items():
        write_partition(sqlite_engine, table, frame, dates=[ANCHOR], portfolio_ids=[PID])
    # the day before has Greeks too, and the day after a snapshot: neither may leak into the report
    write_partition(sqlite_engine, schema.position_greeks, src.greeks.assign(date=pd.Timestamp(PREV), delta=0.9),
                    dates=[PREV], portfolio_ids=[PID])
    nxt = dt.date(2025, 3, 17)
    write_partition(sqlite_engine, schema.portfolio_snapshots, src.snapshot.assign(date=pd.Timestamp(nxt)),
                    dates=[nxt], portfolio_ids=[PID])

    inp = load_report_input(sqlite_engine, PID, ANCHOR)
    assert inp.portfolio == {"portfolio_id": PID, "name": NAME, "owner": "owner@example.com"}
    assert len(inp.greeks) == 4 and set(inp.greeks.date.dt.date) == {ANCHOR}
    assert list(inp.snapshot_history.date.dt.date) == [ANCHOR]
    assert list(inp.scenarios.scenario_id) == [s[0] for s in SCENARIOS]
    assert inp.positions.tags.tolist() == [("core", "tech"), ("hedge",), ("options", "tech"), ()]
    rendered = build_report(inp, GENERATED)
    assert prepublish_problems(rendered, inp, expected_scenarios=18) == []
    assert [r["days_to_expiry"] for r in csv_rows(rendered)] == ["", "", "98", "98"]
    assert csv_rows(rendered)[2]["cost_basis"] == "5000.00"
    # a date without rows: every engine says so, nothing falls back to the 13th
    empty_day = load_report_input(sqlite_engine, PID, dt.date(2025, 3, 12))
    r = build_report(empty_day, GENERATED)
    assert not any(ok for ok, _ in r.availability.values())
    assert r.json["greeks"]["reason"] == "no rows in position_greeks for 2025-03-12"
    Draft202012Validator(load_report_schema()).validate(r.json)


def test_exact_fit_and_first_snapshot_are_shown_honestly():
    """books.md, "Numbers that must not mislead": position 4 (beta 1 on Market, 0 elsewhere) as an exact fit
    has no t-statistic: null in the JSON, "n/a, exact fit" in the Markdown, beta kept; the other positions keep
    theirs. A first snapshot has no daily return: null in the JSON, n/a in the Markdown, and says why."""
    base = make_input()
    pf = base.position_factors.copy()
    spy = pf["position_id"] == 4
    pf.loc[spy, "exact_fit"] = True
    pf.loc[spy, "t_stat"] = float("nan")
    snap = base.snapshot.assign(daily_return=float("nan"), is_first_snapshot=True, pnl_basis="entry_price")
    rendered = build(make_input(position_factors=pf, snapshot=snap))
    Draft202012Validator(load_report_schema()).validate(rendered.json)
    rows = rendered.json["factor_exposures"]["data"]["positions"]
    for r in rows:
        if r["position_id"] == 4:
            assert r["exact_fit"] is True and r["t_stat"] is None and r["beta"] in ("1.0000", "0.0000")
        else:
            assert r["exact_fit"] is False and r["t_stat"] is not None
    md = rendered.markdown
    betas = {r[0]: r[1:] for r in table_rows(section(md, "### Factor exposures"))[8:]}
    spy_cells = next(v for k, v in betas.items() if k.endswith("(#4)"))
    assert spy_cells[0] == "1.0000 (t n/a, exact fit)" and spy_cells[1] == "0.0000 (t n/a, exact fit)"
    assert all("exact fit" not in c for k, v in betas.items() if not k.endswith("(#4)") for c in v)
    assert rendered.json["snapshot"]["data"]["daily_return"] is None
    assert rendered.json["snapshot"]["data"]["is_first_snapshot"] is True
    value = dict(r for r in table_rows(section(md, "### Value and P&L"))[1:])
    assert value["Daily return"] == "n/a" and value["Daily P&L"] == "$1,234.50"
    assert "it has no daily return, and it is not used in volatility, Sharpe or VaR backtests" in md
    # everything else as in the full report: the normal report's Markdown differs only where it must
    normal = build().markdown.splitlines()
    changed = [l for l in md.splitlines() if l not in normal]
    assert all("exact fit" in l or "n/a" in l or "first snapshot" in l.lower() or "entry" in l
               or l == "**Other flags:**" for l in changed), changed


# ---------------------------------------------------------------------------------------------------
# Risk measures (VaR, ES, contributions, backtest)
# ---------------------------------------------------------------------------------------------------
def test_risk_measures_markdown_tables_hold_the_stored_figures():
    md = build().markdown
    var = table_rows(section(md, "### Value at risk and expected shortfall"))
    assert var == [
        ["Measure", "Level", "Historical 1-day", "Historical 10-day", "Parametric 1-day", "Parametric 10-day"],
        # 10-day = 1-day x sqrt(10): 2500 x 3.16227766 = 7905.69; 2467.28 x 3.16227766 = 7802.23
        ["VaR", "95%", "$2,500.00", "$7,905.69", "$2,467.28", "$7,802.23"],
        ["VaR", "99%", "$4,000.00", "$12,649.11", "$3,489.52", "$11,034.84"],
        ["ES", "95%", "$3,100.00", "$9,803.06", "$3,094.07", "$9,784.31"],
        ["ES", "97.5%", "$3,600.00", "$11,384.20", "$3,506.70", "$11,089.17"],
        ["ES", "99%", "$4,400.00", "$13,914.02", "$3,997.82", "$12,642.22"],
    ]
    text = section(md, "### Value at risk and expected shortfall")
    assert "The 10-day figures are the 1-day figures x sqrt(10) (scaled, not simulated)." in text
    assert "(180 scenarios, 3 missing returns filled with beta x market return)" in text
    vol = table_rows(section(md, "### Volatility and tracking error (ex-ante, parametric)"))
    assert vol[1:3] == [
        ["Volatility", "$1,500.00", "$23,811.76", "280.14%"],  # 1500 sqrt(252); / equity 8,500
        ["Tracking error vs the market proxy", "$900.00", "$14,287.06", "168.08%"],
    ]
    factors = vol[4:]
    assert factors[0] == ["Market", "$168,000.00", "$1,000.00", "66.67%"]
    assert factors[-1] == ["Specific", "", "$300.00", "20.00%"]
    assert [f[0] for f in factors] == FACTORS + ["Specific"]
    assert "Factor risk is 80.00% of the variance, specific risk 20.00%." in md
    top = table_rows(section(md, "### Largest contributors"))
    assert top == [
        ["#", "Position", "Historical ES 99% contribution", "Share of ES", "Parametric volatility contribution",
         "Share of volatility"],
        ["1", "SPY250620P00500000 (#4)", "$2,000.00", "45.45%", "$700.00", "46.67%"],  # 2000 / 4400
        ["2", "AAPL250620C00160000 (#3)", "$1,900.00", "43.18%", "$650.00", "43.33%"],
        ["3", "AAPL (#1)", "$800.00", "18.18%", "$250.00", "16.67%"],
        ["4", "TSLA (#2)", "-$300.00", "-6.82%", "-$100.00", "-6.67%"],
    ]
    backtest = table_rows(section(md, "### VaR backtest"))
    assert backtest[1] == ["**green**", "2 / 120", "0.4487", "0.502952", "$1,234.50", "$3,900.00", "no"]
    assert backtest[0][4:6] == ["P&L on 2025-03-14", "99% VaR of 2025-03-13"]
    notes = section(md, "### VaR backtest")
    assert "- Historical: limited history: 180 scenarios in the 250-session window" in notes
    assert "- Historical: 3 missing returns (symbol x session) filled with the symbol's Market beta x the market return" in notes


def test_risk_measures_json_values_and_layout():
    js = build().json
    rm = js["risk_measures"]
    assert rm["available"] is True and rm["as_of"] == ["2025-03-14"] and "reason" not in rm
    data = rm["data"]
    assert data["historical"]["scenarios"] == 180 and data["historical"]["filled_returns"] == 3
    assert data["historical"]["window_sessions"] == 250
    assert data["historical"]["flags"] == ["limited_history", "filled_returns=3"]
    assert len(data["tail"]) == 2 * 5 * 2  # methods x (VaR 95/99, ES 95/97.5/99) x (1, 10 days)
    tail = {(r["method"], r["measure"], r["level"], r["horizon_days"]): r for r in data["tail"]}
    assert tail[("historical", "var", "0.990000", 1)] == {
        "method": "historical", "measure": "var", "level": "0.990000", "horizon_days": 1, "loss": "4000.00",
        "scaled": False, "flag": HIST_FLAG}
    assert tail[("historical", "es", "0.975000", 10)]["loss"] == "11384.20"
    assert tail[("historical", "es", "0.975000", 10)]["scaled"] is True
    assert tail[("historical", "es", "0.975000", 10)]["flag"] == HIST_FLAG + ";scaled_sqrt10"
    assert tail[("parametric", "es", "0.990000", 1)]["loss"] == "3997.82"
    par = data["parametric"]
    assert {k: par[k] for k in par if k not in ("basis",)} == {
        "volatility_1d": "1500.00", "volatility_annual": "23811.76", "volatility_of_equity": "2.801384",
        "tracking_error_1d": "900.00", "tracking_error_annual": "14287.06", "tracking_error_of_equity": "1.680830",
        "factor_share": "0.800000", "specific_share": "0.200000", "flags": []}
    market = data["factor_contributions"][0]
    assert market == {"factor_name": "Market", "dollar_exposure": "168000.00", "contribution": "1000.00",
                      "marginal": "0.005952", "share": "0.666667"}
    assert data["factor_contributions"][-1] == {"factor_name": "Specific", "dollar_exposure": None,
                                                "contribution": "300.00", "marginal": None, "share": "0.200000"}
    put = next(p for p in data["position_contributions"] if p["position_id"] == 4)
    assert put == {
        "position_id": 4, "symbol": "SPY250620P00500000",
        "historical_es": [
            {"level": "0.950000", "contribution": "1400.00", "share": "0.451613"},
            {"level": "0.975000", "contribution": "1600.00", "share": "0.444444"},
            {"level": "0.990000", "contribution": "2000.00", "share": "0.454545"},
        ],
        "volatility": {"contribution": "700.00", "marginal": "0.008333", "share": "0.466667"},
    }
    assert [p["position_id"] for p in data["position_contributions"]] == [1, 2, 3, 4]
    assert data["top_five"] == [4, 3, 1, 2]
    assert data["backtest"] == {
        "var_date": "2025-03-13", "var_99": "3900.00", "realized_pnl": "1234.50", "exception": False,
        "window_sessions": 120, "exceptions": 2, "kupiec_lr": "0.4487", "kupiec_p_value": "0.502952", "zone": "green"}
    assert data["backtest_reason"] is None
    assert js["data_quality"]["engines"]["risk_measures"] is True
    policy = js["metadata"]["precision_policy"]
    assert {"loss", "contribution", "var_99", "pnl", "exposure"} <= set(policy["money"]["fields"])
    assert {"level", "share", "marginal", "kupiec_p_value", "sharpe_ratio", "max_drawdown"} <= set(policy["ratios"]["fields"])
    assert "kupiec_lr" in policy["greeks_betas"]["fields"]


def test_negative_var_and_insufficient_history_are_said_in_words():
    inp = make_input()
    rm = inp.risk_measures.copy()
    hist = rm["method"] == "historical"
    rm.loc[hist, "flag"] = "insufficient_history"
    rm.loc[hist & rm["measure"].isin(["var", "es"]), "value"] = float("nan")
    rm.loc[hist & (rm["measure"] == "scenarios"), "value"] = 80.0
    neg = (rm["method"] == "parametric") & (rm["measure"] == "var") & (rm["level"] == 0.95)
    rm.loc[neg, "value"] = [-150.0, -150.0 * 10 ** 0.5]
    rm.loc[neg, "flag"] = ["negative_var", "negative_var;scaled_sqrt10"]
    pr = inp.position_risk[inp.position_risk["method"] == "parametric"].reset_index(drop=True)
    inp = replace(inp, risk_measures=rm, position_risk=pr)
    rendered = build(inp)
    md = rendered.markdown
    var = table_rows(section(md, "### Value at risk and expected shortfall"))
    assert var[1] == ["VaR", "95%", "n/a", "n/a", "-$150.00 (gain)", "-$474.34 (gain)"]
    assert var[5] == ["ES", "99%", "n/a", "n/a", "$3,997.82", "$12,642.22"]
    notes = section(md, "### VaR backtest")
    assert "- Historical: insufficient history: 80 scenarios, fewer than 100: historical VaR and ES not computed" in notes
    assert "- negative VaR: the VaR quantile is a gain (not clipped)" in notes
    dq = rendered.json["data_quality"]
    assert ("risk measures (historical): insufficient history: 80 scenarios, fewer than 100: historical VaR and ES "
            "not computed") in dq["limited_history"]
    assert "risk measures: negative VaR: the VaR quantile is a gain (not clipped)" in dq["other_flags"]
    # without historical contributions the parametric ones rank the positions
    top = table_rows(section(md, "### Largest contributors"))[1:]
    assert [r[1] for r in top] == ["SPY250620P00500000 (#4)", "AAPL250620C00160000 (#3)", "AAPL (#1)", "TSLA (#2)"]
    assert top[0][2:] == ["n/a", "n/a", "$700.00", "46.67%"]
    assert rendered.json["risk_measures"]["data"]["tail"][0]["loss"] is None
    Draft202012Validator(load_report_schema()).validate(rendered.json)
    assert prepublish_problems(rendered, inp, 18) == []


def test_a_red_backtest_zone_and_a_low_kupiec_p_value_are_flagged():
    inp = make_input()
    bt = inp.risk_backtest.assign(window_sessions=250, exceptions=12, kupiec_lr=13.7, kupiec_p_value=0.000214,
                                  zone="red", realized_pnl=-5000.0, exception=True)
    rendered = build(replace(inp, risk_backtest=bt))
    other = rendered.json["data_quality"]["other_flags"]
    assert "VaR backtest: red zone (12 exceptions in 250 sessions)" in other
    assert "VaR backtest: Kupiec p-value 0.000214 < 0.05" in other
    row = table_rows(section(rendered.markdown, "### VaR backtest"))[1]
    assert row == ["**red**", "12 / 250", "13.7000", "0.000214", "-$5,000.00", "$3,900.00", "yes"]
    assert "the window holds" not in section(rendered.markdown, "### VaR backtest")


def test_a_date_without_risk_or_performance_rows_says_why():
    inp = make_input()
    # yesterday's rows never stand in for the anchor date's
    stale = {name: inp.section(name).assign(date=pd.Timestamp(PREV))
             for name in ("risk_measures", "position_risk", "factor_risk", "risk_backtest", "performance", "attribution")}
    for case in (dict.fromkeys(stale, pd.DataFrame()), stale):
        bare = replace(inp, **case)
        rendered = build(bare)
        js, md = rendered.json, rendered.markdown
        Draft202012Validator(load_report_schema()).validate(js)
        reasons = {"risk_measures": "no rows in portfolio_risk_measures for 2025-03-14",
                   "performance": "no rows in portfolio_performance for 2025-03-14"}
        for engine, reason in reasons.items():
            assert js[engine] == {"available": False, "reason": reason, "as_of": [], "data": None}
            assert js["data_quality"]["engines"][engine] is False
            assert f"> **Not available** (engine: {engine}): {reason}" in md
        dq = dict((r[0], (r[1], r[2])) for r in table_rows(section(md, "## 6. Data quality")) if r[0] in reasons)
        assert dq == {e: ("not available", r) for e, r in reasons.items()}
        assert section(md, "## 3. Risk measures").strip() == f"> **Not available** (engine: risk_measures): {reasons['risk_measures']}"
        assert ("_Chart skipped (var_backtest.png): risk measures not available: no rows in portfolio_risk_measures "
                "for 2025-03-14._") in md
        assert "drawdown.png" in rendered.chart_files  # the drawdown comes from the snapshots
        problems = prepublish_problems(rendered, bare, 18)
        if case is stale:
            assert "portfolio_risk_measures: 30 row(s) dated 2025-03-13, not the anchor date 2025-03-14" in problems
        else:
            assert problems == []


def test_optional_risk_tables_missing_are_noted_not_hidden():
    inp = make_input()
    bare = replace(inp, risk_backtest=pd.DataFrame(), position_risk=pd.DataFrame())
    rendered = build(bare)
    md = rendered.markdown
    reason = ("no rows in risk_backtest for 2025-03-14 (no 99% historical VaR of the previous session, or no "
              "realised P&L)")
    assert f"No backtest for 2025-03-14: {reason}." in md
    assert rendered.json["risk_measures"]["data"]["backtest"] is None
    assert rendered.json["risk_measures"]["data"]["backtest_reason"] == reason
    assert f"_Chart skipped (var_backtest.png): {reason}._" in md
    assert "No position contributions stored for 2025-03-14." in md
    other = rendered.json["data_quality"]["other_flags"]
    assert "no rows in position_risk_contributions for 2025-03-14" in other
    assert "no rows in risk_backtest for 2025-03-14" in other
    assert prepublish_problems(rendered, bare, 18) == []


# ---------------------------------------------------------------------------------------------------
# Performance and attribution
# ---------------------------------------------------------------------------------------------------
def test_performance_windows_in_markdown_and_json():
    rendered = build()
    md = rendered.markdown
    tables = table_rows(section(md, "### Returns and risk by window"))
    returns, market = tables[:8], tables[8:]
    assert returns[0] == ["Window", "From", "Returns / sessions", "Return", "Annualised", "Volatility", "Sharpe",
                          "Sortino", "Max drawdown", "Peak → trough", "Current drawdown", "Calmar"]
    assert [r[0] for r in returns[1:]] == ["Month to date", "Year to date", "21 sessions", "63 sessions",
                                          "126 sessions", "252 sessions", "Since inception"]
    assert returns[1] == ["Month to date", "2025-03-03", "1 / 10"] + ["n/a"] * 9
    assert returns[2] == ["Year to date", "2025-01-02", "4 / 49", "5.05%", "2071.23%", "61.54%", "5.12", "9.88",
                          "-5.00%", "2025-03-11 → 2025-03-12", "0.00%", "414.25"]
    assert returns[7][7] == "n/a"  # the inception window's Sortino is undefined
    assert market[0] == ["Window", "Best day", "Worst day", "Positive days", "Beta vs market", "Alpha", "Correlation",
                         "Tracking error", "Market return"]
    assert market[2] == ["Year to date", "5.00% (2025-03-13)", "-5.00% (2025-03-12)", "75.00%", "1.0512", "12.35%",
                         "0.851235", "8.00%", "1.23%"]
    notes = section(md, "### Returns and risk by window")
    assert "- **Month to date**: no figure: 1 return in the window; 2 needed for a figure" in notes
    assert "- **Year to date**: 4 returns over 49 sessions (first return 2025-03-11)" in notes
    assert "- **Since inception**: undefined: sortino_ratio (no day below the risk-free rate)" in notes
    perf = rendered.json["performance"]
    assert perf["available"] is True and perf["as_of"] == ["2025-03-14"]
    windows = perf["data"]["windows"]
    assert [w["window_name"] for w in windows] == ["mtd", "ytd", "21d", "63d", "126d", "252d", "inception"]
    assert windows[0]["cumulative_return"] is None and windows[0]["flag"] == "insufficient_returns"
    assert windows[0]["reason"] == "1 return in the window; 2 needed for a figure"
    ytd = windows[1]
    assert {k: ytd[k] for k in ("window_start", "first_return_date", "window_sessions", "n_returns", "cumulative_return",
                                "annualized_return", "sharpe_ratio", "max_drawdown", "peak_date", "trough_date",
                                "current_drawdown", "beta", "correlation", "alpha", "flag")} == {
        "window_start": "2025-01-02", "first_return_date": "2025-03-11", "window_sessions": 49, "n_returns": 4,
        "cumulative_return": "0.050505", "annualized_return": "20.712346", "sharpe_ratio": "5.123457",
        "max_drawdown": "-0.050000", "peak_date": "2025-03-11", "trough_date": "2025-03-12",
        "current_drawdown": "0.000000", "beta": "1.0512", "correlation": "0.851235", "alpha": "0.123457",
        "flag": "limited_history"}
    assert windows[6]["sortino_ratio"] is None


def test_attribution_today_and_cumulative_in_markdown_and_json():
    rendered = build()
    rows = table_rows(section(rendered.markdown, "### P&L attribution"))
    assert rows[0] == ["Line", "Exposure (2025-03-13)", "Factor return", "P&L 2025-03-14", "Cumulative P&L"]
    assert rows[1:] == [
        ["Market", "$168,000.00", "0.50%", "$840.00", "$2,740.25"],  # 700 + 300 + 900.25 + 840
        ["Value", "$11,200.00", "-0.20%", "-$22.40", "-$17.40"],
        ["Growth", "$19,200.00", "0.10%", "$19.20", "$28.95"],
        ["Momentum", "$12,800.00", "0.25%", "$32.00", "$77.00"],
        ["Quality", "$12,400.00", "-0.10%", "-$12.40", "-$17.40"],
        ["Size", "-$11,200.00", "0.05%", "-$5.60", "-$10.60"],
        ["Low Volatility", "-$11,600.00", "-0.15%", "$17.40", "$22.40"],
        ["Specific", "", "", "$250.00", "$720.50"],
        ["Residual", "", "", "$116.30", "$456.30"],
        # today: the snapshot's daily P&L; cumulative: 1000 + 500 + 1265.50 + 1234.50 (the first snapshot's
        # 1,000 since entry is not attributed)
        ["**Total**", "", "", "**$1,234.50**", "**$4,000.00**"],
    ]
    text = section(rendered.markdown, "### P&L attribution")
    assert "over the 4 attributed sessions from 2025-03-11 to 2025-03-14" in text
    assert "Warning" not in text
    data = rendered.json["performance"]["data"]
    today = data["attribution"]
    assert today["previous_date"] == "2025-03-13"
    assert today["lines"][0] == {"line": "Market", "line_type": "factor", "exposure": "168000.00",
                                 "factor_return": "0.005000", "pnl": "840.00", "flag": None}
    assert today["lines"][-1] == {"line": "residual", "line_type": "residual", "exposure": None,
                                  "factor_return": None, "pnl": "116.30", "flag": None}
    assert today["total_pnl"] == today["daily_pnl"] == "1234.50"
    cumulative = data["cumulative_attribution"]
    assert (cumulative["first_date"], cumulative["last_date"], cumulative["sessions"]) == ("2025-03-11", "2025-03-14", 4)
    assert cumulative["lines"][0] == {"line": "Market", "line_type": "factor", "pnl": "2740.25", "sessions": 4,
                                      "uncomputed_sessions": 0}
    assert cumulative["total_pnl"] == "4000.00"
    assert data["attribution_reason"] is None and data["cumulative_attribution_reason"] is None


def test_cumulative_attribution_uses_only_dates_up_to_the_anchor():
    from sigmasight_pipeline.reporting.sections.performance import cumulative_attribution

    inp = make_input()
    later = pd.DataFrame(_attribution_rows("2025-03-14", ATTRIBUTION["2025-03-14"])).assign(
        date=pd.Timestamp("2025-03-17"), pnl=1e6)[inp.attribution_history.columns]
    leaky = replace(inp, attribution_history=pd.concat([inp.attribution_history, later], ignore_index=True))
    rendered = build(leaky)
    rows = table_rows(section(rendered.markdown, "### P&L attribution"))
    assert rows[1][-1] == "$2,740.25" and rows[-1][-1] == "**$4,000.00**"  # the 17th's rows are never summed
    assert ("pnl_attribution history has rows after the anchor date 2025-03-14: 2025-03-17"
            in prepublish_problems(rendered, leaky, 18))
    # the report of the 13th sums the 11th to the 13th, from the same history
    cut = cumulative_attribution(leaky.attribution_history, PID, PREV)
    assert cut.set_index("line")["pnl"].to_dict() == {
        "Market": 1900.25, "Value": 5.0, "Growth": 9.75, "Momentum": 45.0, "Quality": -5.0, "Size": -5.0,
        "Low Volatility": 5.0, "specific": 470.5, "residual": 340.0}
    assert cut["sessions"].tolist() == [3] * 9
    # a NULL line adds nothing and is counted; another portfolio's rows are left out
    odd = pd.concat([leaky.attribution_history.assign(pnl=leaky.attribution_history["pnl"].where(
        ~((leaky.attribution_history["line"] == "Value") & (leaky.attribution_history["date"] == pd.Timestamp(PREV))))),
        leaky.attribution_history.assign(portfolio_id="someone-else")], ignore_index=True)
    got = cumulative_attribution(odd, PID, ANCHOR).set_index("line")
    assert got.loc["Value", "pnl"] == -17.4 and got.loc["Value", "uncomputed_sessions"] == 1
    assert got.loc["Market", "pnl"] == 2740.25 and got.loc["Market", "uncomputed_sessions"] == 0


def test_cumulative_attribution_matches_a_pandas_reference():
    import numpy as np

    from sigmasight_pipeline.reporting.sections.performance import cumulative_attribution

    rng = np.random.default_rng(11)
    days = pd.bdate_range("2025-01-02", periods=60)
    lines = FACTORS + ["specific", "residual"]
    frame = pd.DataFrame([
        dict(date=d, portfolio_id=PID, line=l, line_type="factor" if l in FACTORS else l, line_order=i,
             pnl=None if rng.random() < 0.05 else round(float(rng.normal(0, 500)), 2))
        for d in days for i, l in enumerate(lines)
    ])
    for anchor in (days[0], days[29], days[-1]):
        got = cumulative_attribution(frame, PID, anchor.date()).set_index("line")
        ref = frame[frame["date"] <= anchor].groupby("line")["pnl"]
        assert list(got.index) == lines
        for line in lines:
            assert got.loc[line, "pnl"] == pytest.approx(ref.sum().loc[line], abs=1e-9)
            assert f"{got.loc[line, 'pnl']:.2f}" == f"{round(ref.sum().loc[line], 2):.2f}"
            assert got.loc[line, "sessions"] == ref.size().loc[line]
            assert got.loc[line, "uncomputed_sessions"] == ref.size().loc[line] - ref.count().loc[line]


def test_a_first_snapshot_is_not_attributed_and_says_so():
    inp = make_input()
    snap = inp.snapshot.assign(is_first_snapshot=True, daily_return=float("nan"), pnl_basis="entry_price")
    first = replace(inp, snapshot=snap, attribution=pd.DataFrame(), attribution_history=pd.DataFrame(),
                    snapshot_history=inp.snapshot_history.iloc[[-1]].assign(is_first_snapshot=True,
                                                                           daily_return=float("nan")))
    rendered = build(first)
    text = section(rendered.markdown, "### P&L attribution")
    assert ("Today's P&L is not attributed: first snapshot: its P&L is since entry (measured from entry prices), "
            "not a one-day P&L, so it is not attributed.") in text
    assert "No attributed session up to 2025-03-14." in text
    assert not any("pnl_attribution" in f for f in rendered.json["data_quality"]["other_flags"])
    data = rendered.json["performance"]["data"]
    assert data["attribution"] is None and data["cumulative_attribution"] is None
    assert data["cumulative_attribution_reason"] == "no rows in pnl_attribution up to 2025-03-14"
    assert ("_Chart skipped (drawdown.png): no daily return in the snapshots up to 2025-03-14 (a first snapshot "
            "has none)._") in rendered.markdown
    assert prepublish_problems(rendered, first, 18) == []
    # a later date without attribution rows is a data-quality note
    missing = build(replace(inp, attribution=pd.DataFrame()))
    assert "no rows in pnl_attribution for 2025-03-14" in missing.json["data_quality"]["other_flags"]
    assert ("Today's P&L is not attributed: no rows in pnl_attribution for 2025-03-14."
            in section(missing.markdown, "### P&L attribution"))


# ---------------------------------------------------------------------------------------------------
# Drawdown and VaR backtest charts
# ---------------------------------------------------------------------------------------------------
def test_drawdown_and_var_charts_are_planned_from_data_up_to_the_anchor():
    inp = make_input()
    later = pd.DataFrame({"date": [pd.Timestamp("2025-03-17")], "daily_pnl": [-9e6], "cumulative_pnl": [-9e6],
                          "daily_return": [-0.9], "is_first_snapshot": [False]})
    back_later = pd.DataFrame([dict(date=pd.Timestamp("2025-03-17"), portfolio_id=PID, var_date=pd.Timestamp(ANCHOR),
                                    var_99=1.0, realized_pnl=-9e6, exception=True)])
    leaky = replace(inp, snapshot_history=pd.concat([inp.snapshot_history, later], ignore_index=True),
                    backtest_history=pd.concat([inp.backtest_history, back_later], ignore_index=True))
    for case in (inp, leaky):
        rendered = build(case)
        assert rendered.charts["drawdown.png"] == (True, None) and rendered.charts["var_backtest.png"] == (True, None)
        dd = rendered.chart_data["drawdown.png"]
        assert [d.date().isoformat() for d in dd["date"]] == ["2025-03-10", "2025-03-11", "2025-03-12", "2025-03-13",
                                                             "2025-03-14"]
        # index 1, 1.02, 0.969, 1.01745, 1.0505: drawdowns from the running high 1.02
        assert dd["drawdown"].tolist() == pytest.approx([0.0, 0.0, -0.05, 1.01745 / 1.02 - 1, 0.0], abs=1e-12)
        bt = rendered.chart_data["var_backtest.png"]
        assert [d.date().isoformat() for d in bt["date"]] == [d for d, _, _, _ in BACKTEST]
        assert bt["exception"].tolist() == [False, True, False, False, False]
        assert bt["var_99"].tolist() == [v for _, _, v, _ in BACKTEST]
    md = build().markdown
    assert "![Drawdown of the cumulative return](drawdown.png)" in md
    assert "![Daily P&L against the previous day's 99% VaR](var_backtest.png)" in md
    charts = {c["file"]: c for c in build().json["charts"]}
    assert charts["drawdown.png"] == {"file": "drawdown.png", "title": "Drawdown of the cumulative return",
                                      "available": True}
    assert charts["var_backtest.png"]["available"] is True
    pngs = render_charts(build())
    for name in ("drawdown.png", "var_backtest.png"):
        assert pngs[name].startswith(PNG_SIGNATURE) and 700 <= _png_size(pngs[name])[0] <= 1000
    problems = prepublish_problems(build(leaky), leaky, 18)
    assert "snapshot history has rows after the anchor date 2025-03-14: 2025-03-17" in problems
    assert "risk_backtest history has rows after the anchor date 2025-03-14: 2025-03-17" in problems


def test_var_chart_shows_the_last_250_backtest_sessions():
    import numpy as np

    days = pd.bdate_range(end=ANCHOR, periods=300)
    rng = np.random.default_rng(3)
    pnl = rng.normal(0, 1500, 300)
    history = pd.DataFrame({"date": days, "portfolio_id": PID, "var_date": days - pd.offsets.BDay(1),
                            "var_99": 3500.0, "realized_pnl": pnl, "exception": pnl < -3500.0})
    inp = make_input(backtest_history=history,
                     risk_backtest=make_input().risk_backtest.assign(realized_pnl=pnl[-1], var_99=3500.0))
    bt = build(inp).chart_data["var_backtest.png"]
    assert len(bt) == 250 and bt["date"].iloc[0] == days[50] and bt["date"].iloc[-1] == pd.Timestamp(ANCHOR)
    png = render_charts(build(inp))["var_backtest.png"]
    assert png.startswith(PNG_SIGNATURE)


def test_drawdown_path_matches_empyrical():
    import empyrical
    import numpy as np

    from sigmasight_pipeline.reporting.sections.performance import drawdown_path

    rng = np.random.default_rng(5)
    r = rng.normal(0.0005, 0.012, 120)
    dates = pd.bdate_range("2025-01-02", periods=121)
    frame = pd.DataFrame({"date": dates, "daily_return": np.r_[np.nan, r]})  # a first snapshot, then returns
    path = drawdown_path(frame)
    assert len(path) == 121 and path["date"].iloc[0] == dates[0] and path["index"].iloc[0] == 1.0
    assert path["drawdown"].min() == pytest.approx(empyrical.max_drawdown(pd.Series(r, index=dates[1:])), abs=1e-12)
    wealth = empyrical.cum_returns(pd.Series(r), starting_value=1.0)
    assert path["index"].iloc[1:].tolist() == pytest.approx(wealth.tolist(), rel=1e-12)
    # a gap (no return) is left out; no return at all gives no path
    gap = frame.assign(daily_return=frame["daily_return"].where(frame.index != 50))
    assert len(drawdown_path(gap)) == 120 and dates[50] not in set(drawdown_path(gap)["date"])
    assert drawdown_path(frame.iloc[:1]).empty


def test_risk_and_performance_schema_is_precise():
    validator = Draft202012Validator(load_report_schema())
    js = json.loads(json.dumps(build().json))
    assert not list(validator.iter_errors(js))
    js["risk_measures"]["data"]["tail"][0]["loss"] = "2500.0"  # money with 1 decimal
    js["risk_measures"]["data"]["tail"][1]["horizon_days"] = 5
    js["risk_measures"]["data"]["factor_contributions"][0]["share"] = "0.67"
    js["risk_measures"]["data"]["backtest"]["zone"] = "orange"
    js["performance"]["data"]["windows"][1]["sharpe_ratio"] = "5.12"
    js["performance"]["data"]["attribution"]["lines"][0]["pnl"] = 840.0
    js["performance"]["data"]["cumulative_attribution"]["lines"][0]["extra"] = 1
    paths = {"/".join(map(str, e.absolute_path)) for e in validator.iter_errors(js)}
    assert {
        "risk_measures/data/tail/0/loss", "risk_measures/data/tail/1/horizon_days",
        "risk_measures/data/factor_contributions/0/share", "risk_measures/data/backtest/zone",
        "performance/data/windows/1/sharpe_ratio", "performance/data/attribution/lines/0/pnl",
        "performance/data/cumulative_attribution/lines/0",
    } <= paths
    js = json.loads(json.dumps(build().json))
    del js["risk_measures"]["reason" if "reason" in js["risk_measures"] else "data"]
    assert list(validator.iter_errors(js))


def _seed_histories(sqlite_engine) -> list[pd.Timestamp]:
    """The fixture book with five sessions of snapshots (the first a first snapshot) and backtest rows, the
    attribution of the last four, and the risk and performance rows of the 13th and the 14th; the sessions."""
    from sigmasight_pipeline.warehouse import schema
    from sigmasight_pipeline.warehouse.io import write_partition

    src = make_input()
    _seed_book(sqlite_engine, src)
    days = [pd.Timestamp(d) for d, _, _, _ in BACKTEST]
    hist = src.snapshot_history
    snapshots = pd.concat([
        src.snapshot.assign(date=d, daily_pnl=p, cumulative_pnl=c, daily_return=r, is_first_snapshot=f,
                            pnl_basis="entry_price" if f else "previous_close")
        for d, p, c, r, f in zip(days, hist.daily_pnl, hist.cumulative_pnl, hist.daily_return, hist.is_first_snapshot)
    ], ignore_index=True)
    attribution = pd.DataFrame([r for day, lines in ATTRIBUTION.items() for r in _attribution_rows(day, lines)])
    backtest = src.backtest_history.assign(window_sessions=range(116, 121), exceptions=[1, 2, 2, 2, 2],
                                           kupiec_lr=KUPIEC_LR, kupiec_p_value=KUPIEC_P, zone="green")
    risk = {schema.portfolio_risk_measures: src.risk_measures, schema.position_risk_contributions: src.position_risk,
            schema.factor_risk_contributions: src.factor_risk, schema.portfolio_performance: src.performance}
    both = [PREV, ANCHOR]
    for table, frame in risk.items():
        write_partition(sqlite_engine, table, pd.concat([frame.assign(date=pd.Timestamp(d)) for d in both]),
                        dates=both, portfolio_ids=[PID])
    write_partition(sqlite_engine, schema.portfolio_snapshots, snapshots, dates=days, portfolio_ids=[PID])
    write_partition(sqlite_engine, schema.pnl_attribution, attribution, dates=days[1:], portfolio_ids=[PID])
    write_partition(sqlite_engine, schema.risk_backtest, backtest, dates=days, portfolio_ids=[PID])
    return days


def test_ranged_read_cuts_every_history_at_its_anchor(sqlite_engine):
    """load_report_inputs reads the attribution and backtest histories once and cuts them at each anchor: the
    report of the 13th sums the attribution of the 11th to the 13th, the 14th's adds the 14th; a one-date read
    gives the same report."""
    from sigmasight_pipeline.reporting import load_report_inputs

    _seed_histories(sqlite_engine)
    both = [PREV, ANCHOR]
    ranged = list(load_report_inputs(sqlite_engine, PID, both))
    for inp, anchor in zip(ranged, both):
        for name in ("snapshot_history", "attribution_history", "backtest_history"):
            assert pd.DatetimeIndex(inp.section(name)["date"]).max() == pd.Timestamp(anchor), name
        assert set(inp.attribution["date"]) == {pd.Timestamp(anchor)}
    reports = [build_report(inp, GENERATED) for inp in ranged]
    cumulative = [table_rows(section(r.markdown, "### P&L attribution")) for r in reports]
    assert cumulative[0][1] == ["Market", "$168,000.00", "0.10%", "$900.25", "$1,900.25"]  # 700 + 300 + 900.25
    assert cumulative[0][-1] == ["**Total**", "", "", "**$1,265.50**", "**$2,765.50**"]
    assert cumulative[1][1] == ["Market", "$168,000.00", "0.50%", "$840.00", "$2,740.25"]
    assert cumulative[1][-1] == ["**Total**", "", "", "**$1,234.50**", "**$4,000.00**"]
    assert len(reports[0].chart_data["var_backtest.png"]) == 4 and len(reports[1].chart_data["var_backtest.png"]) == 5
    assert reports[0].chart_data["drawdown.png"]["drawdown"].tolist() == pytest.approx([0.0, 0.0, -0.05, 1.01745 / 1.02 - 1])
    for inp, rendered in zip(ranged, reports):
        assert prepublish_problems(rendered, inp, 18) == []
        single = load_report_input(sqlite_engine, PID, inp.anchor_date)
        assert build_report(single, GENERATED).markdown == rendered.markdown


def test_a_range_computes_its_histories_once_and_each_report_gets_its_own(sqlite_engine):
    """prepare_range computes the drawdown path, the VaR backtest window and the cumulative attribution once for
    a range and cuts them at every anchor: each cut equals what the report computes from its own slices (a
    fresh input, whose cache keeps nothing), the first snapshot's included (no return yet: no drawdown)."""
    import numpy as np

    from sigmasight_pipeline.reporting import load_report_inputs
    from sigmasight_pipeline.reporting.sections import Anchored
    from sigmasight_pipeline.reporting.sections.performance import (
        CUMULATIVE_KEY, DRAWDOWN_KEY, cumulative_lines, drawdown_history, drawdown_path, return_history,
    )
    from sigmasight_pipeline.reporting.sections.risk_measures import BACKTEST_KEY, backtest_history

    days = [d.date() for d in _seed_histories(sqlite_engine)]
    ranged = list(load_report_inputs(sqlite_engine, PID, days))
    drawn = []
    for inp in ranged:
        own = replace(inp)  # the same frames, a cache of its own that keeps nothing
        assert not own.cache.memoize

        def not_cached(_frame):
            raise AssertionError(f"{inp.anchor_date}: not computed for the range")

        key = (PID, inp.anchor_date)
        path = inp.cache.get(inp.snapshot_history, (DRAWDOWN_KEY, *key), not_cached)
        assert drawdown_history(Anchored(inp)) is path
        pd.testing.assert_frame_equal(path, drawdown_path(return_history(Anchored(own))))
        drawn.append(len(path))
        window = inp.cache.get(inp.backtest_history, (BACKTEST_KEY, *key), not_cached)
        pd.testing.assert_frame_equal(window, backtest_history(Anchored(own))[0])
        cumulative = inp.cache.get(inp.attribution_history, (CUMULATIVE_KEY, *key), not_cached)
        assert cumulative == cumulative_lines(own.attribution_history, PID, [inp.anchor_date])[inp.anchor_date]
        mine, theirs = build_report(inp, GENERATED), build_report(own, GENERATED)
        assert (mine.markdown, mine.json, mine.csv, mine.charts) == (theirs.markdown, theirs.json, theirs.csv, theirs.charts)
        assert mine.chart_data.keys() == theirs.chart_data.keys()
        for name, frame in mine.chart_data.items():
            pd.testing.assert_frame_equal(frame, theirs.chart_data[name])
    # the first snapshot has no return (no path, no chart); then the base close and one point per return
    assert drawn == [0, 2, 3, 4, 5]
    assert build_report(ranged[0], GENERATED).charts["drawdown.png"][0] is False
    sums, sessions = cumulative_lines(ranged[-1].attribution_history, PID, [ANCHOR])[ANCHOR]
    assert sessions == 4 and sums[0]["line"] == "Market" and sums[0]["sessions"] == 4
    assert sums[0]["pnl"] == pytest.approx(700.0 + 300.0 + 900.25 + ATTRIBUTION["2025-03-14"]["Market"])
    assert np.isclose(sum(r["pnl"] for r in sums), sum(sum(v.values()) for v in ATTRIBUTION.values()))


def test_check_schema_accepts_exactly_what_the_schema_accepts():
    """The rewrites behind the compiled check (references to leaf definitions inlined, nullable patterns merged,
    a constant as a one-value enum) keep the schema's answer on every document."""
    import fastjsonschema

    from sigmasight_pipeline.reporting.json_report import check_schema

    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["a", "b", "c", "d"],
        "properties": {
            "a": {"$ref": "#/$defs/money"},
            "b": {"$ref": "#/$defs/money_or_null"},
            "c": {"anyOf": [{"$ref": "#/$defs/date"}, {"type": "null"}]},
            "d": {"const": True},
            "e": {"enum": [1, 2], "const": 2},
            "$ref": {"type": "integer"},  # a property named like a keyword is a property
            "anyOf": {"$ref": "#/$defs/node"},
        },
        "additionalProperties": False,
        "$defs": {
            "money": {"type": "string", "pattern": "^-?\\d+\\.\\d{2}$"},
            "money_or_null": {"anyOf": [{"$ref": "#/$defs/money"}, {"type": "null"}]},
            "date": {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}$"},
            "node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}},  # recursive: kept
        },
    }
    fast = check_schema(schema)
    props = fast["properties"]
    assert props["a"] == {"type": "string", "pattern": "^-?\\d+\\.\\d{2}$"}
    assert props["b"] == {"type": ["string", "null"], "pattern": "^-?\\d+\\.\\d{2}$"}
    assert props["c"] == {"type": ["string", "null"], "pattern": "^\\d{4}-\\d{2}-\\d{2}$"}
    assert props["d"] == {"enum": [True]} and props["e"] == {"enum": [2]}
    assert props["$ref"] == {"type": "integer"} and props["anyOf"] == {"$ref": "#/$defs/node"}
    compiled = fastjsonschema.compile(fast, detailed_exceptions=False)
    reference = Draft202012Validator(schema)
    base = {"a": "1.00", "b": None, "c": "2025-03-14", "d": True}
    docs = [base, {**base, "b": "-2.50"}, {**base, "b": "2.5"}, {**base, "b": 2.5}, {**base, "a": None},
            {**base, "a": "1.000"}, {**base, "c": None}, {**base, "c": "14/03/2025"}, {**base, "d": False},
            {**base, "e": 2}, {**base, "e": 1}, {**base, "$ref": 3}, {**base, "$ref": "3"},
            {**base, "anyOf": {"next": {"next": {}}}}, {**base, "anyOf": {"next": 1}}, {**base, "x": 1},
            {k: v for k, v in base.items() if k != "c"}]

    def accepts(doc):
        try:
            compiled(doc)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    assert [accepts(d) for d in docs] == [reference.is_valid(d) for d in docs]
    assert sum(accepts(d) for d in docs) == 6


def test_palette_png_holds_the_canvas_exactly():
    """palette_png: a valid PNG (IHDR 8-bit indexed, PLTE, one IDAT, IEND) that decodes to the same indices and
    palette; the same image gives the same bytes."""
    import struct

    import numpy as np
    from PIL import Image

    from sigmasight_pipeline.reporting.charts import PALETTE, palette_png

    rng = np.random.default_rng(7)
    indices = rng.integers(0, len(PALETTE), size=(37, 53), dtype=np.uint8)
    indices[10:20] = 0  # flat runs, as a chart has
    image = Image.frombytes("P", (53, 37), indices.tobytes())
    data = palette_png(image)
    assert data.startswith(PNG_SIGNATURE) and data == palette_png(image)
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        chunks.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    assert [kind for kind, _ in chunks] == [b"IHDR", b"PLTE", b"IDAT", b"IEND"]
    assert chunks[0][1] == struct.pack(">IIBBBBB", 53, 37, 8, 3, 0, 0, 0)
    decoded = Image.open(io.BytesIO(data))
    decoded.load()
    assert decoded.mode == "P" and decoded.size == (53, 37)
    assert np.array_equal(np.asarray(decoded), indices)
    assert decoded.getpalette()[:3 * len(PALETTE)] == [v for rgb in PALETTE for v in rgb]


def test_collection_paused_restores_the_collector():
    import gc

    from sigmasight_pipeline.reporting import collection_paused

    was = gc.isenabled()
    try:
        gc.enable()
        with collection_paused():
            assert not gc.isenabled()
        assert gc.isenabled()
        with pytest.raises(RuntimeError), collection_paused():
            raise RuntimeError("boom")
        assert gc.isenabled()
        gc.disable()  # paused by someone else: stays so
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


# ---------------------------------------------------------------------------------------------------
# Exposures by tag (strategy) and by underlying
# ---------------------------------------------------------------------------------------------------
def with_groups(inp):
    """``inp`` with the ``group_exposures`` rows the valuation asset stores for its book (the engine's groups)."""
    from sigmasight_pipeline.engines.valuation import group_exposures

    frames = [group_exposures(inp.valuations, inp.positions, by=by).assign(group_type=by) for by in ("tag", "underlying")]
    groups = pd.concat(frames, ignore_index=True).rename(columns={"group": "group_name"})
    groups["market_value"] = groups["net_exposure"]
    return replace(inp, group_exposures=groups.assign(portfolio_id=inp.portfolio_id))


def test_the_report_shows_exposures_by_tag_and_by_underlying_computed_by_hand():
    """The book of make_input: AAPL +16,000 (core, tech), TSLA -12,000 (hedge), AAPL call +7,500 (options, tech;
    delta-adjusted 72,000), SPY put -3,000 (untagged; delta-adjusted 84,000); gross 38,500."""
    inp = with_groups(make_input())
    rendered = build(inp)
    assert prepublish_problems(rendered, inp, expected_scenarios=18) == []
    groups = rendered.json["exposures"]["data"]["groups"]
    assert groups["reason"] is None and "counts fully in each of its tag groups" in groups["note"]
    cols = ("group", "position_count", "market_value", "gross_exposure", "net_exposure", "delta_adjusted_exposure",
            "share_of_gross")
    assert [tuple(g[c] for c in cols) for g in groups["by_tag"]] == [
        ("tech", 2, "23500.00", "23500.00", "23500.00", "88000.00", "0.610390"),   # 23,500 / 38,500
        ("core", 1, "16000.00", "16000.00", "16000.00", "16000.00", "0.415584"),
        ("hedge", 1, "-12000.00", "12000.00", "-12000.00", "-12000.00", "0.311688"),
        ("options", 1, "7500.00", "7500.00", "7500.00", "72000.00", "0.194805"),
        ("(untagged)", 1, "-3000.00", "3000.00", "-3000.00", "84000.00", "0.077922"),  # last, whatever its size
    ]
    assert [tuple(g[c] for c in cols) for g in groups["by_underlying"]] == [
        ("AAPL", 2, "23500.00", "23500.00", "23500.00", "88000.00", "0.610390"),
        ("TSLA", 1, "-12000.00", "12000.00", "-12000.00", "-12000.00", "0.311688"),
        ("SPY", 1, "-3000.00", "3000.00", "-3000.00", "84000.00", "0.077922"),
    ]
    # by underlying the groups partition the book: they add up to the portfolio's figures
    expo = rendered.json["exposures"]["data"]
    assert sum(float(g["gross_exposure"]) for g in groups["by_underlying"]) == float(expo["gross_exposure"])
    assert sum(float(g["net_exposure"]) for g in groups["by_underlying"]) == float(expo["net_exposure"])
    md = section(rendered.markdown, "### Exposures by strategy and by underlying")
    rows = table_rows(md)
    assert rows[0] == ["Tag (strategy)", "Positions", "Gross", "Net (market value)", "Delta-adjusted", "Share of gross"]
    assert rows[1] == ["tech", "2", "$23,500.00", "$23,500.00", "$88,000.00", "61.04%"]
    assert rows[3] == ["hedge", "1", "$12,000.00", "-$12,000.00", "-$12,000.00", "31.17%"]
    assert rows[6] == ["Underlying", "Positions", "Gross", "Net (market value)", "Delta-adjusted", "Share of gross"]
    assert rows[7] == ["AAPL", "2", "$23,500.00", "$23,500.00", "$88,000.00", "61.04%"]
    assert "counts fully in each of its tag groups" in md
    assert not any("group_exposures" in f for f in rendered.json["data_quality"]["other_flags"])


def test_without_stored_groups_the_report_says_so():
    inp = make_input()  # no group_exposures rows for the anchor date
    rendered = build(inp)
    groups = rendered.json["exposures"]["data"]["groups"]
    assert (groups["by_tag"], groups["by_underlying"], groups["reason"]) == ([], [], "no rows in group_exposures for 2025-03-14")
    assert "Not shown: no rows in group_exposures for 2025-03-14." in section(
        rendered.markdown, "### Exposures by strategy and by underlying")
    assert "no rows in group_exposures for 2025-03-14" in rendered.json["data_quality"]["other_flags"]
    assert prepublish_problems(rendered, inp, expected_scenarios=18) == []  # the JSON schema included
