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
    })
    kwargs = dict(
        portfolio={"portfolio_id": PID, "name": NAME, "owner": "owner@example.com"},
        anchor_date=ANCHOR, positions=positions, valuations=valuations, exposures=exposures, greeks=greeks,
        position_factors=position_factors, portfolio_factors=portfolio_factors, factor_window=factor_window,
        position_rates=position_rates, portfolio_rates=portfolio_rates, correlation_summary=correlation_summary,
        correlation_clusters=correlation_clusters, stress_results=stress_results, stress_breakdown=stress_breakdown,
        scenarios=scenarios, snapshot=snapshot, position_pnl=position_pnl, snapshot_history=history,
        failed_checks=[], flags=[],
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
    dq = dict((r[0], (r[1], r[2])) for r in table_rows(section(md, "## 4. Data quality")) if r[0] in rendered.availability)
    assert dq["greeks"] == ("not available", reasons["greeks"])
    assert dq["snapshot"] == ("available", "")
    # the charts section says which charts were skipped and why; the stress chart is not linked
    charts_md = section(md, "## 3. Charts")
    assert "(stress_pnl.png)" not in charts_md.replace("_Chart skipped (stress_pnl.png)", "")
    assert "_Chart skipped (stress_pnl.png): stress tests not available: no rows in stress_results for 2025-03-14._" in charts_md
    assert "![Cumulative P&L history](cumulative_pnl.png)" in charts_md
    assert rendered.chart_files == ["cumulative_pnl.png"]
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
    assert headings == ["## 1. Executive summary", "## 2. Risk analytics", "## 3. Charts", "## 4. Data quality"]
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
    assert dq["limited_history"] == ["factor betas of TSLA (#2): limited_history (n_obs 95)"]
    assert dq["missing_prices"] == ["SPY250620P00500000 (#4): no price for 2025-03-14; left out of money totals"]
    assert "AAPL250620C00160000 (#3): marked to model (Black-Scholes), no market price" in dq["other_flags"]
    assert "market data: ^VIX missing on 2025-03-14" in dq["other_flags"]
    assert dq["failed_checks"] == ["stress_loss_cap: loss above gross exposure"]
    md_dq = section(rendered.markdown, "## 4. Data quality")
    for line in dq["limited_history"] + dq["missing_prices"] + dq["failed_checks"]:
        assert f"- {line}" in md_dq
    put = csv_rows(rendered)[3]
    assert put["market_value"] == "" and put["current_price"] == "" and put["portfolio_weight"] == ""
    Draft202012Validator(load_report_schema()).validate(rendered.json)
    clean = section(build().markdown, "## 4. Data quality")
    assert "**Limited history:** none" in clean and "**Missing prices:** none" in clean and "None." in clean


# ---------------------------------------------------------------------------------------------------
# Charts and files
# ---------------------------------------------------------------------------------------------------
def test_charts_are_pngs_and_deterministic():
    rendered = build()
    charts = render_charts(rendered)
    assert sorted(charts) == ["cumulative_pnl.png", "factor_exposures.png", "stress_pnl.png"]
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
        "cumulative_pnl.png", "factor_exposures.png", "portfolio_report.csv", "portfolio_report.json",
        "portfolio_report.md", "stress_pnl.png",
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
    assert names == ["cumulative_pnl.png", "factor_exposures.png", "notes-by-a-person.txt", "portfolio_report.csv",
                     "portfolio_report.json", "portfolio_report.md"]
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
def test_load_report_input_reads_only_the_anchor_date(sqlite_engine):
    from sigmasight_pipeline.defs.portfolios.portfolio_positions import store_book
    from sigmasight_pipeline.warehouse import schema
    from sigmasight_pipeline.warehouse.io import write_partition
    from sigmasight_pipeline.warehouse.portfolios import save_portfolio_source

    src = make_input()
    upload = "ticker,quantity,entry_price,entry_date,tags\n" + "".join(  # the upload these positions come from
        f'{r.symbol},{r.quantity:g},{r.entry_price:g},{pd.Timestamp(r.entry_date):%Y-%m-%d},"{",".join(r.tags)}"\n'
        for r in src.positions.sort_values("position_id").itertuples()
    )
    save_portfolio_source(sqlite_engine, portfolio_id=PID, name=NAME, owner="owner@example.com", csv_text=upload)
    store_book(sqlite_engine, PID)
    with sqlite_engine.begin() as conn:
        conn.execute(schema.security_master.insert(), [
            {"symbol": "AAPL", "name": "Apple", "asset_type": "stock", "sector": "Technology", "industry": "Consumer Electronics"},
            {"symbol": "TSLA", "name": "Tesla", "asset_type": "stock", "sector": "Consumer Cyclical", "industry": "Auto Manufacturers"},
        ])
        conn.execute(schema.stress_scenarios.insert(), [
            {"scenario_id": s, "name": n, "category": c, "severity": v, "display_order": i}
            for i, (s, n, c, v, _) in enumerate(SCENARIOS)
        ])
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
