"""Ad-hoc stress (`sigmasight stress`): the scenario file validator, and the command on a small computed warehouse.

The warehouse: two demo books (the hedge fund: options and shorts; the individual investor: stocks only) computed
for two sessions. The command runs as a user runs it (a subprocess of the installed ``sigmasight``), and must
reproduce the stored stress rows from the stored scenario file, match hand-computed P&L, name every problem of a
bad file, and leave every table and the scenario file as they were.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from sigmasight_pipeline import runner as orch
from sigmasight_pipeline.data import read_text
from sigmasight_pipeline.onboarding import DEMO_BOOKS, demo_csv_text
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import dispose_engines, get_engine, read_table
from sigmasight_pipeline.warehouse.reference import ScenarioFileError, parse_scenarios, stress_scenarios

ROOT = Path(__file__).resolve().parents[1]
SIGMASIGHT = Path(sys.executable).with_name("sigmasight")
START, END = "2025-06-27", "2025-06-30"  # two sessions
BOOKS = ["demo-hedge-fund", "demo-individual"]
STORED_FILE = ROOT / "sigmasight_pipeline" / "data" / "stress_scenarios.yaml"
MONEY = ["direct_pnl", "correlated_pnl", "correlation_effect", "gross_exposure", "equity"]
RATIOS = ["pct_of_gross_exposure", "pct_of_equity"]


# --------------------------------------------------------------------------------------------------
# The validator (no warehouse)
# --------------------------------------------------------------------------------------------------
def problems_of(text: str) -> list[str]:
    with pytest.raises(ScenarioFileError) as info:
        parse_scenarios(text, "mine.yaml")
    assert str(info.value).startswith("mine.yaml: ")
    return info.value.problems


def test_the_stored_file_goes_through_the_same_validator_unchanged():
    scenarios, shocks = stress_scenarios()
    again = parse_scenarios(read_text("stress_scenarios.yaml"))
    pd.testing.assert_frame_equal(scenarios, again[0])
    pd.testing.assert_frame_equal(shocks, again[1])
    assert len(scenarios) == 18 and list(scenarios.display_order) == list(range(18))
    assert scenarios.set_index("scenario_id").loc["covid_crash_2020", ["period_start", "period_end"]].astype(str).tolist() == [
        "2020-02-19", "2020-03-23"]
    assert shocks[shocks.scenario_id == "value_rotation_20"][["factor_name", "shock"]].values.tolist() == [
        ["Value", 0.20], ["Growth", -0.10]]


def test_a_rate_shock_in_bp_is_the_interest_rate_shock_and_category_severity_default():
    scenarios, shocks = parse_scenarios(
        "scenarios:\n"
        "  - {id: up25, name: Up 25, rate_shock_bp: 25}\n"
        "  - {id: mix, name: Mix, severity: severe, shocks: {Market: -0.1, VIX: 0.5}, rate_shock_bp: -150}\n"
    )
    assert scenarios[["scenario_id", "category", "severity"]].values.tolist() == [
        ["up25", "custom", "unrated"], ["mix", "custom", "severe"]]
    assert shocks.values.tolist() == [["up25", "Interest Rate", 0.0025], ["mix", "Market", -0.1], ["mix", "VIX", 0.5],
                                      ["mix", "Interest Rate", -0.015]]
    stored = stress_scenarios()[1].set_index(["scenario_id", "factor_name"]).shock
    assert shocks.shock.iloc[0] == stored[("rates_up_25bp", "Interest Rate")]  # the same double as 0.0025


def test_every_problem_of_a_malformed_file_is_named_with_its_scenario_and_field():
    found = problems_of(
        "scenarios:\n"
        "  - id: crash\n    name: Crash\n    shocks: {Markt: -0.1, Value: ten, Growth: -1.5}\n"
        "  - id: crash\n    shocks: {Market: -0.2}\n    rate_shock_bp: lots\n"
        "  - name: Nameless id\n    shocks: {Interest Rate: 0.01}\n    rate_shock_bp: 100\n"
        "  - id: typo\n    name: Typo\n    severity: huge\n    shock: {Market: 0.1}\n"
    )
    assert found == [
        "scenario 'crash' shocks unknown factor 'Markt'; known: Market, Value, Growth, Momentum, Quality, Size, "
        "Low Volatility, Interest Rate, VIX (field shocks.Markt)",
        "scenario 'crash' Value shock 'ten' is not a number (field shocks.Value)",
        "scenario 'crash' Growth shock -1.5 is below -1 (-100%): a factor cannot lose more than all of its value "
        "(field shocks.Growth)",
        "scenario 'crash' repeats the id 'crash' of scenario #1: ids are unique (field id)",
        "scenario 'crash' has no name (field name)",
        "scenario 'crash' rate shock 'lots' is not a number (basis points, 25 = +25 bp) (field rate_shock_bp)",
        "scenario #3 ('Nameless id') has no id (field id)",
        "scenario #3 ('Nameless id') gives the rate shock twice: rate_shock_bp and shocks.Interest Rate "
        "(field rate_shock_bp)",
        "scenario 'typo' has unknown field(s) 'shock'; known: id, name, category, severity, period, shocks, "
        "rate_shock_bp (field shock)",
        "scenario 'typo' severity 'huge' is not one of mild, moderate, severe, extreme (field severity)",
        "scenario 'typo' has no shocks: give shocks {factor: shock} and/or rate_shock_bp (field shocks)",
    ]


@pytest.mark.parametrize(("text", "expected"), [
    ("", "the file is empty: expected 'scenarios:' and a list of scenarios"),
    ("# only a comment\n", "the file is empty: expected 'scenarios:' and a list of scenarios"),
    ("scenarios: []\n", "'scenarios' must be a non-empty list of scenarios"),
    ("- {id: a}\n", "expected a mapping with the key 'scenarios' (a list of scenarios)"),
    ("scenarios:\n  - {id: a, name: A, shocks: {Market: 0.1, Market: 0.2}}\n",
     "not valid YAML: line 2, column 44: key 'Market' is given twice in one mapping"),
    ("scenarios:\n  - {id: a, name: A, shocks: {Market: 0.1}\n", "not valid YAML: line 3, column 1: "),
    ("scenarios:\n  - {id: a, name: A, shocks: {Market: .nan}}\n", "scenario 'a' Market shock nan is not a number"),
    ("scenarios:\n  - {id: a, name: A, shocks: {Market: true}}\n", "scenario 'a' Market shock True is not a number"),
    ("scenarios:\n  - {id: a, name: A, shocks: {Market: 10}}\n", "scenario 'a' Market shock 10 is above 5 (+500%)"),
    ("scenarios:\n  - {id: a, name: A, shocks: {Interest Rate: 0.5}}\n",
     "scenario 'a' Interest Rate shock 0.5 is beyond +/-0.2 (2,000 bp)"),
    ("scenarios:\n  - {id: a, name: A, rate_shock_bp: 2500}\n", "scenario 'a' rate shock 2500 bp is beyond +/-2,000 bp"),
    ("scenarios:\n  - {id: a, name: A, shocks: {VIX: -1}}\n", "scenario 'a' VIX shock -1 must be above -1"),
    ("scenarios:\n  - {id: a, name: A, shocks: {Market: 0.1}, period: [2020-03-01, 2020-01-01]}\n",
     "scenario 'a' period ['2020-03-01', '2020-01-01'] must be [start, end]"),
    ("scenarios:\n  - {id: a, name: A, shocks: {Market: 0.1}}\n  - {id: b, name: A, shocks: {Market: 0.2}}\n",
     "scenario 'b' repeats the name 'A' of scenario #1: names are unique (field name)"),
    ("scenarios:\n  - just text\n", "scenario #1 is not a mapping of fields"),
    ("scenarios:\n  - {id: a, name: A, shocks: {Market: 0.1}}\nextra: 1\n", "unknown top-level key 'extra'"),
])
def test_a_malformed_file_is_refused_with_a_clear_message(text, expected):
    assert any(p.startswith(expected) for p in problems_of(text)), problems_of(text)


def test_a_file_at_the_edges_of_the_ranges_is_accepted():
    _, shocks = parse_scenarios("scenarios:\n  - {id: a, name: A, shocks: {Market: -1, Growth: 5, VIX: 10}, "
                                "rate_shock_bp: -2000}\n")
    assert shocks.shock.tolist() == [-1.0, 5.0, 10.0, -0.2]


# --------------------------------------------------------------------------------------------------
# The command on a computed warehouse
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """Two demo books computed for two sessions on a fresh SQLite warehouse; yields the env of the command."""
    base = tmp_path_factory.mktemp("adhoc_stress")
    env = {**os.environ, "SIGMASIGHT_DATABASE_URL": f"sqlite:///{base / 'warehouse.db'}",
           "SIGMASIGHT_HOME": str(base / "home"), "SIGMASIGHT_REPORTS_DIR": str(base / "reports"),
           "SIGMASIGHT_MARKET_DATA": "sample", "DAGSTER_HOME": str(base / "dagster")}
    with pytest.MonkeyPatch.context() as mp:
        for key in ("SIGMASIGHT_DATABASE_URL", "SIGMASIGHT_HOME", "SIGMASIGHT_REPORTS_DIR", "SIGMASIGHT_MARKET_DATA"):
            mp.setenv(key, env[key])
        defs = orch.load_definitions()
        instance = dg.DagsterInstance.ephemeral()
        for book in DEMO_BOOKS:
            if book.portfolio_id in BOOKS:
                orch.import_portfolio(instance, demo_csv_text(book), name=book.name, owner=book.owner,
                                      portfolio_id=book.portfolio_id, defs=defs)
        orch.run_window(instance, BOOKS, START, END, defs=defs, progress=lambda _: None)
    engine = get_engine(env["SIGMASIGHT_DATABASE_URL"])
    yield {"env": env, "engine": engine, "dir": base}
    engine.dispose()
    dispose_engines()


def sigmasight(warehouse, *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(SIGMASIGHT), *map(str, args)], env=warehouse["env"], cwd=cwd or warehouse["dir"],
                          capture_output=True, text=True, timeout=180)


def row_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in schema.metadata.sorted_tables}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_stored_scenario_file_reproduces_the_stored_stress_rows(warehouse, tmp_path):
    """Same engine, same stored inputs: the stored file gives the stored stress_results and breakdown rows of the
    date to 1e-9, for the default date (the latest) and an explicit earlier one, options and shorts included."""
    engine = warehouse["engine"]
    results = read_table(engine, schema.stress_results)
    breakdown = read_table(engine, schema.stress_factor_breakdown)
    for as_of in (None, START):
        out = tmp_path / f"answer_{as_of}.json"
        args = ["stress", "--portfolio", "demo-hedge-fund", "--scenarios", STORED_FILE, "--format", "json", "--output", out]
        done = sigmasight(warehouse, *args, *(["--as-of", as_of] if as_of else []))
        assert done.returncode == 0, done.stderr
        day = as_of or END
        assert done.stdout == f"{out}: 18 scenario(s), demo-hedge-fund as of {day}\n"
        answer = json.loads(out.read_text())
        assert answer["as_of"] == day and answer["portfolio_id"] == "demo-hedge-fund" and answer["stored"] is False
        got = pd.DataFrame(answer["scenarios"])
        want = results[(results.portfolio_id == "demo-hedge-fund") & (results.date == day)]
        assert list(got.scenario_id) == list(stress_scenarios()[0].scenario_id)  # the file's order
        merged = want.merge(got, on="scenario_id", suffixes=("_stored", "_adhoc"), validate="1:1")
        assert len(merged) == 18
        for col in MONEY[:3] + RATIOS:
            np.testing.assert_allclose(merged[f"{col}_adhoc"].astype(float), merged[f"{col}_stored"].astype(float),
                                       rtol=0, atol=1e-9, err_msg=col)
        for col in ("exceeds_equity", "loss_cap_applied", "flag"):
            assert merged[f"{col}_adhoc"].tolist() == merged[f"{col}_stored"].tolist(), col
        assert answer["gross_exposure"] == pytest.approx(want.gross_exposure.iloc[0], abs=1e-9)
        assert answer["equity"] == pytest.approx(want.equity.iloc[0], abs=1e-9)
        parts = pd.DataFrame([{"scenario_id": s["scenario_id"], **p} for s in answer["scenarios"] for p in s["factor_breakdown"]])
        stored_parts = breakdown[(breakdown.portfolio_id == "demo-hedge-fund") & (breakdown.date == day)]
        m = stored_parts.merge(parts, on=["scenario_id", "factor_name"], suffixes=("_stored", "_adhoc"), validate="1:1")
        assert len(m) == len(stored_parts) == len(parts) == 18 * 10  # 7 factors, Interest Rate, VIX, convexity
        for col in ("shock", "implied_move", "direct_pnl", "correlated_pnl"):
            np.testing.assert_allclose(m[f"{col}_adhoc"].astype(float), m[f"{col}_stored"].astype(float),
                                       rtol=0, atol=1e-9, err_msg=col)
    assert got.exceeds_equity.dtype == bool and (got.correlated_pnl < 0).any()


def test_custom_scenarios_match_hand_computed_pnl_and_nothing_is_stored(warehouse, tmp_path):
    """A stock-only book: direct P&L of a Market shock is sum(market value x market beta) x shock, of a rate shock
    sum(market value x rate beta) x bp; a zero shock is exactly zero; Markdown names every figure. No table's row
    count changes and the scenario file is unchanged."""
    engine = warehouse["engine"]
    scen = write(tmp_path / "mine.yaml", (
        "scenarios:\n"
        "  - {id: slump, name: Market Slump 12%, shocks: {Market: -0.12}}\n"
        "  - {id: rates_up_50, name: Rates Up 50bp, category: rates, severity: mild, rate_shock_bp: 50}\n"
        "  - {id: calm, name: Nothing Happens, shocks: {Market: 0.0}}\n"
    ))
    digest, mtime = hashlib.sha256(scen.read_bytes()).hexdigest(), scen.stat().st_mtime_ns
    before = row_counts(engine)
    done = sigmasight(warehouse, "stress", "--portfolio", "Demo Individual Investor Portfolio", "--scenarios", scen,
                      "--format", "json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["portfolio_id"] == "demo-individual" and answer["as_of"] == END
    by_id = {s["scenario_id"]: s for s in answer["scenarios"]}

    val = read_table(engine, schema.position_valuations, portfolio_id="demo-individual", dates=[pd.Timestamp(END)])
    betas = read_table(engine, schema.position_factor_exposures, portfolio_id="demo-individual", dates=[pd.Timestamp(END)])
    rate = read_table(engine, schema.position_rate_sensitivity, portfolio_id="demo-individual", dates=[pd.Timestamp(END)])
    mv = val.set_index("position_id").market_value.astype(float)
    market_beta = betas[betas.factor_name == "Market"].set_index("position_id").beta.reindex(mv.index).fillna(0.0)
    rate_beta = rate.set_index("position_id").rate_beta.reindex(mv.index).fillna(0.0)
    assert by_id["slump"]["direct_pnl"] == pytest.approx((mv * market_beta).sum() * -0.12, abs=0.006)
    assert by_id["rates_up_50"]["direct_pnl"] == pytest.approx((mv * rate_beta).sum() * 50, abs=0.006)
    assert by_id["rates_up_50"]["correlated_pnl"] == by_id["rates_up_50"]["direct_pnl"]  # the rate moves nothing else
    assert by_id["calm"]["direct_pnl"] == by_id["calm"]["correlated_pnl"] == 0.0
    assert answer["gross_exposure"] == pytest.approx(mv.abs().sum(), abs=0.006)
    for s in answer["scenarios"]:  # the breakdown adds up to the totals (each row in cents)
        parts = pd.DataFrame(s["factor_breakdown"])
        assert parts.direct_pnl.sum() == pytest.approx(s["direct_pnl"], abs=0.01 * len(parts))
        assert parts.correlated_pnl.sum() == pytest.approx(s["correlated_pnl"], abs=0.01 * len(parts))
        assert s["pct_of_equity"] == pytest.approx(s["correlated_pnl"] / answer["equity"], rel=1e-6)
    rate_row = next(p for p in by_id["rates_up_50"]["factor_breakdown"] if p["factor_name"] == "Interest Rate")
    assert rate_row["shock"] == 0.005 and rate_row["direct_pnl"] == pytest.approx(by_id["rates_up_50"]["direct_pnl"], abs=0.01)
    assert [p["factor_name"] for p in by_id["slump"]["factor_breakdown"]] == [
        "Market", "Value", "Growth", "Momentum", "Quality", "Size", "Low Volatility", "Interest Rate", "Option convexity"]

    md = sigmasight(warehouse, "stress", "--portfolio", "demo-individual", "--scenarios", scen)
    assert md.returncode == 0, md.stderr
    assert md.stderr == ""
    text = md.stdout
    assert text.startswith(f"# Ad-hoc stress: Demo Individual Investor Portfolio (demo-individual) as of {END}\n")
    assert "| Scenario | Direct P&L | Correlated P&L | Correlation effect | % of gross | % of equity | Beyond equity | Flag |" in text
    slump = by_id["slump"]
    money = lambda v: f"-${abs(v):,.2f}" if v < 0 else f"${v:,.2f}"  # noqa: E731
    assert (f"| Market Slump 12% (`slump`) | {money(slump['direct_pnl'])} | {money(slump['correlated_pnl'])} | "
            f"{money(slump['correlation_effect'])} | {slump['pct_of_gross_exposure'] * 100:.2f}% | "
            f"{slump['pct_of_equity'] * 100:.2f}% | no | ok |") in text
    for title in ("## Market Slump 12% (`slump`): P&L by factor", "## Rates Up 50bp (`rates_up_50`): P&L by factor",
                  "## Nothing Happens (`calm`): P&L by factor"):
        assert title in text
    assert "| Interest Rate | 50.0 bp | 50.0 bp |" in text
    assert f"| Market | -12.00% | -12.00% | {money(next(p for p in slump['factor_breakdown'] if p['factor_name'] == 'Market')['direct_pnl'])} |" in text

    assert row_counts(engine) == before
    assert hashlib.sha256(scen.read_bytes()).hexdigest() == digest and scen.stat().st_mtime_ns == mtime


def test_a_malformed_file_exits_1_naming_scenario_and_field_and_changes_nothing(warehouse, tmp_path):
    engine = warehouse["engine"]
    before = row_counts(engine)
    scen = write(tmp_path / "bad.yaml", "scenarios:\n  - {id: oops, name: Oops, shocks: {Markt: -0.1, Value: x}}\n")
    done = sigmasight(warehouse, "stress", "--portfolio", "demo-individual", "--scenarios", scen)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"error: {scen}: 2 problems:\n")
    assert "scenario 'oops' shocks unknown factor 'Markt'; known: Market, Value," in done.stderr
    assert "(field shocks.Markt)" in done.stderr and "scenario 'oops' Value shock 'x' is not a number (field shocks.Value)" in done.stderr
    empty = write(tmp_path / "empty.yaml", "")
    done = sigmasight(warehouse, "stress", "--portfolio", "demo-individual", "--scenarios", empty)
    assert (done.returncode, done.stderr) == (1, f"error: {empty}: the file is empty: expected 'scenarios:' and a list of scenarios\n")
    assert row_counts(engine) == before


def test_unknown_portfolio_missing_file_and_dates_without_inputs(warehouse, tmp_path):
    scen = write(tmp_path / "ok.yaml", "scenarios:\n  - {id: down, name: Down, shocks: {Market: -0.1}}\n")
    done = sigmasight(warehouse, "stress", "--portfolio", "nobody", "--scenarios", scen)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "error: unknown portfolio 'nobody' (known: demo-hedge-fund, demo-individual)\n"
    done = sigmasight(warehouse, "stress", "--portfolio", "demo-individual", "--scenarios", tmp_path / "missing.yaml")
    assert (done.returncode, done.stderr) == (2, f"error: no such file: {tmp_path / 'missing.yaml'}\n")
    done = sigmasight(warehouse, "stress", "--portfolio", "demo-individual", "--scenarios", scen, "--as-of", "2025-06-20")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == ("error: no stored stress inputs for portfolio 'demo-individual' on 2025-06-20: position "
                           "valuations and factor covariance are stored on 2 session(s): 2025-06-27, 2025-06-30\n")
    done = sigmasight(warehouse, "stress", "--portfolio", "demo-individual", "--scenarios", scen, "--as-of", "June 31")
    assert (done.returncode, done.stderr) == (1, "error: --as-of 'June 31' is not a date (YYYY-MM-DD)\n")
    done = sigmasight(warehouse, "stress", "--portfolio", "demo-individual", "--scenarios", scen,
                      "--output", tmp_path / "no" / "such" / "dir.md")
    assert done.returncode == 2 and done.stderr.startswith(f"error: cannot write {tmp_path / 'no' / 'such' / 'dir.md'}: ")
