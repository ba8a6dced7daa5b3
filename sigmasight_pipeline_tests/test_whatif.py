"""What-if (``questions.whatif``, ``sigmasight whatif``, ``whatif_job``) on the demo hedge fund's book computed for
two sessions: the "before" book reproduces the stored figures of that date (the same compute functions), the
trades move exactly the figures they should, bad trades are refused by row, and nothing is ever written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from sigmasight_pipeline import runner
from sigmasight_pipeline.defs.partitions import history_start
from sigmasight_pipeline.defs.questions.whatif import EXAMPLE_TRADES, whatif_job
from sigmasight_pipeline.engines import risk_measures as rm
from sigmasight_pipeline.onboarding import DEMO_BOOKS, demo_csv_text
from sigmasight_pipeline.questions.whatif import (
    WhatIfError, comparison, validate_whatif_json, what_if, whatif_json, whatif_markdown,
)
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import get_engine, read_table
from sigmasight_pipeline_tests.conftest import sample_world

PID = "demo-hedge-fund"
START, END = "2025-06-27", "2025-06-30"
ENGINE_ASSETS = [dg.AssetKey(k) for k in ("position_greeks", "position_valuations", "factor_exposures", "rate_sensitivity",
                                          "stress_results", "portfolio_snapshots", "risk_measures")]
SELL_HALF_NVDA_BUY_PUTS = "trade_date,ticker,quantity,price\n2025-06-30,NVDA,-4000,157.99\n2025-06-30,SPY250919P00580000,20,9.50\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with sample_world(tmp_path_factory, "whatif") as w:
        book = next(b for b in DEMO_BOOKS if b.portfolio_id == PID)
        runner.import_portfolio(w.instance, demo_csv_text(book), name=book.name, portfolio_id=PID, defs=w.defs)
        runner.materialize_market(w.instance, history_start(START), END, defs=w.defs)
        runner.materialize_portfolio(w.instance, PID, START, END, defs=w.defs, selection=ENGINE_ASSETS)
        yield {"engine": get_engine(w.url), "url": w.url, "defs": w.defs, "path": w.path}


@pytest.fixture(scope="module")
def answer(world):
    return what_if(world["engine"], PID, SELL_HALF_NVDA_BUY_PUTS)


def _row_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in schema.metadata.sorted_tables}


def _stored(engine, table) -> pd.DataFrame:
    return read_table(engine, table, dates=[END], portfolio_id=PID)


def test_the_book_before_the_trades_is_the_stored_book(world, answer):
    """Same compute functions, same inputs: the in-memory "before" equals what the assets stored for that date."""
    engine, before = world["engine"], answer.before
    assert answer.as_of == pd.Timestamp(END)  # the latest computed date by default
    expo = _stored(engine, schema.portfolio_exposures).iloc[0]
    for column in ("net_exposure", "gross_exposure", "long_exposure", "short_exposure", "delta_adjusted_exposure"):
        assert before.exposures[column] == pytest.approx(expo[column], rel=1e-12)
    snap = _stored(engine, schema.portfolio_snapshots).iloc[0]
    for column in ("dollar_delta", "dollar_gamma", "portfolio_theta", "portfolio_vega", "portfolio_rho"):
        assert before.greeks[column] == pytest.approx(snap[column], rel=1e-9, abs=1e-9)
    factors = _stored(engine, schema.portfolio_factor_exposures).set_index("factor_name")
    np.testing.assert_allclose(before.factors["dollar_exposure"], factors.loc[before.factors.index, "dollar_exposure"], rtol=1e-9)
    measures = _stored(engine, schema.portfolio_risk_measures)
    measures = measures[measures.horizon_days == 1]
    one_day = measures.set_index(["method", "measure", measures["level"].round(6)])["value"]
    for key in [(rm.HISTORICAL, "var", 0.99), (rm.HISTORICAL, "es", 0.975), (rm.PARAMETRIC, "var", 0.99)]:
        assert before.risk[key] == pytest.approx(one_day[key], rel=1e-9)
    stress = _stored(engine, schema.stress_results).set_index("scenario_id")["correlated_pnl"]
    mine = before.stress.set_index("scenario_id")["correlated_pnl"]
    # stored to the cent (Money); the in-memory answer is not rounded
    np.testing.assert_allclose(mine.sort_index(), stress.loc[mine.index].sort_index(), rtol=0, atol=0.005 + 1e-6)


def test_selling_half_the_nvda_and_buying_puts_moves_what_it_should(answer):
    b, a = answer.before, answer.after
    nvda_before = b.positions.set_index("symbol").loc["NVDA", "quantity"]
    assert nvda_before == 8000
    assert a.positions.set_index("symbol").loc["NVDA", "quantity"] == 4000
    assert "SPY250919P00580000" in set(a.positions.symbol) and "SPY250919P00580000" not in set(b.positions.symbol)
    assert len(a.positions) == len(b.positions) + 1
    # net market value: -4,000 x the NVDA close (157.99) + the puts at their model value (20 contracts x 100)
    put_value = a.exposures["net_exposure"] - b.exposures["net_exposure"] + 4000 * 157.99
    assert 0 < put_value < 20 * 100 * 30  # a far out-of-the-money put is worth a few dollars a share
    # less NVDA and long puts: less dollar delta, more vega, smaller tail loss
    assert a.greeks["dollar_delta"] < b.greeks["dollar_delta"]
    assert a.greeks["portfolio_vega"] > b.greeks["portfolio_vega"]
    assert a.risk[(rm.HISTORICAL, "var", 0.99)] < b.risk[(rm.HISTORICAL, "var", 0.99)]
    assert a.risk[(rm.PARAMETRIC, "es", 0.975)] < b.risk[(rm.PARAMETRIC, "es", 0.975)]
    tables = comparison(answer)
    value = tables["value_and_exposures"].set_index("figure")
    assert value.loc["Positions", "change"] == 1
    assert value.loc["Market value (net)", "change"] == pytest.approx(put_value - 4000 * 157.99)
    assert len(tables["worst_scenarios"]) == 5
    assert (tables["worst_scenarios"]["after"].diff().dropna() >= 0).all()  # worst first
    assert len(tables["top_contributors"]) == 5


def test_json_validates_and_markdown_has_every_section(answer):
    document = whatif_json(answer)
    validate_whatif_json(document)
    assert json.loads(json.dumps(document)) == document  # plain JSON: no NaN, no numpy types
    text = whatif_markdown(answer)
    for title in ("## Trades", "## Value and exposures", "## Greeks", "## Factor dollar exposures", "## Factor betas", "## VaR and expected shortfall",
                  "## Five worst stress scenarios", "## Top contributors"):
        assert title in text


def test_closing_a_position_and_bad_trades(world):
    engine = world["engine"]
    closed = what_if(engine, PID, "trade_date,ticker,quantity,price\n2025-06-30,NVDA,-8000,157.99\n", as_of=END)
    assert "NVDA" not in set(closed.after.positions.symbol)
    with pytest.raises(WhatIfError) as through_zero:
        what_if(engine, PID, "trade_date,ticker,quantity,price\n2025-06-30,NVDA,-9000,157.99\n")
    assert through_zero.value.errors and through_zero.value.errors[0].row == 2
    assert through_zero.value.errors[0].column == "quantity"
    with pytest.raises(WhatIfError, match="ZZZQ"):  # a symbol without stored market data is named
        what_if(engine, PID, "trade_date,ticker,quantity,price\n2025-06-30,ZZZQ,100,10\n")
    with pytest.raises(WhatIfError) as late:
        what_if(engine, PID, "trade_date,ticker,quantity,price\n2025-06-30,NVDA,-10,157\n", as_of="2025-06-27")
    assert late.value.errors[0].column == "trade_date"
    with pytest.raises(WhatIfError, match="not an XNYS session"):
        what_if(engine, PID, "trade_date,ticker,quantity,price\n2025-06-27,NVDA,-10,157\n", as_of="2025-06-28")


def test_nothing_is_written(world):
    before = _row_counts(world["engine"])
    what_if(world["engine"], PID, SELL_HALF_NVDA_BUY_PUTS)
    with pytest.raises(WhatIfError):
        what_if(world["engine"], PID, "trade_date,ticker,quantity,price\n2025-06-30,NVDA,-9000,157.99\n")
    assert _row_counts(world["engine"]) == before


def test_the_command_as_a_user_runs_it(world, tmp_path):
    trades = tmp_path / "whatif.csv"
    trades.write_text(SELL_HALF_NVDA_BUY_PUTS)
    env = {**os.environ, "SIGMASIGHT_DATABASE_URL": world["url"], "SIGMASIGHT_MARKET_DATA": "sample"}
    cmd = [sys.executable, "-m", "sigmasight_pipeline.cli", "whatif", "--portfolio", PID, "--trades", str(trades)]
    md = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert md.returncode == 0, md.stderr
    assert "# What-if: Demo Hedge Fund" in md.stdout or "# What-if:" in md.stdout
    out = tmp_path / "whatif.json"
    js = subprocess.run([*cmd, "--format", "json", "--output", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert js.returncode == 0, js.stderr
    document = json.loads(out.read_text())
    validate_whatif_json(document)
    assert document["as_of"] == END and document["portfolio_id"] == PID
    bad = tmp_path / "bad.csv"
    bad.write_text("trade_date,ticker,quantity,price\n2025-06-30,NVDA,-9000,157.99\n")
    refused = subprocess.run([*cmd[:-1], str(bad)], env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and "row 2" in refused.stderr and refused.stdout == ""
    unknown = subprocess.run([*cmd[:5], "no-such-book", *cmd[6:]], env=env, capture_output=True, text=True, timeout=300)
    assert unknown.returncode == 2 and "no-such-book" in unknown.stderr


def test_the_ui_job_reports_the_same_answer_as_markdown_metadata(world, answer, monkeypatch):
    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", world["url"])
    job = world["defs"].get_job_def("whatif_job")
    result = job.execute_in_process(run_config={"ops": {"what_if_op": {"config": {
        "portfolio": PID, "trades_csv": SELL_HALF_NVDA_BUY_PUTS, "as_of": END}}}})
    assert result.success
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = output.event_specific_data.metadata
    assert "## VaR and expected shortfall" in metadata["what-if"].value
    document = metadata["what-if (JSON)"].value
    assert document["sections"] == whatif_json(answer)["sections"]
    assert EXAMPLE_TRADES.startswith("trade_date,ticker,quantity,price")
    assert whatif_job.name == "whatif_job"
