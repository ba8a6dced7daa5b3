"""Market and portfolio assets materialize in a temporary Dagster instance, for a date and a range."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from sigmasight_pipeline import runner as orch
from sigmasight_pipeline.defs.market.market_prices import market_prices
from sigmasight_pipeline.defs.market.security_returns import security_returns
from sigmasight_pipeline.defs.resources import MarketDataResource, WarehouseResource
from sigmasight_pipeline.onboarding import DEMO_BOOKS, demo_csv_text
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import read_table
from sigmasight_pipeline.warehouse.portfolios import read_positions


@pytest.fixture
def resources(sqlite_url):
    return {"warehouse": WarehouseResource(database_url=sqlite_url), "market_data": MarketDataResource(source="sample")}


def _materialize(instance, resources, **kw):
    return dg.materialize([market_prices, security_returns], instance=instance, resources=resources, **kw)


def test_one_date(instance, resources, sqlite_engine):
    res = _materialize(instance, resources, partition_key="2025-01-03")
    assert res.success
    prices = read_table(sqlite_engine, schema.market_prices)
    assert set(prices.date.dt.strftime("%Y-%m-%d")) == {"2025-01-03"}
    # With no portfolio imported the universe is the factor ETFs and the two yields.
    assert sorted(prices.symbol) == sorted(["SPY", "VTV", "VUG", "MTUM", "QUAL", "SIZE", "USMV", "^TNX", "^IRX"])
    mats = res.asset_materializations_for_node("market_prices")
    assert mats[0].metadata["dagster/row_count"].value == 9
    # The previous session (2025-01-02) is not stored, so no return can be computed for 2025-01-03.
    assert read_table(sqlite_engine, schema.security_returns).empty


def test_range_in_one_run_with_a_holiday(instance, resources, sqlite_engine):
    # 2025-01-09 (national day of mourning) and 2025-01-20 (MLK day) are weekdays without a session.
    res = _materialize(
        instance, resources,
        tags={orch.RANGE_START_TAG: "2025-01-02", orch.RANGE_END_TAG: "2025-01-24"},
    )
    assert res.success
    prices = read_table(sqlite_engine, schema.market_prices)
    dates = set(prices.date.dt.strftime("%Y-%m-%d"))
    assert "2025-01-09" not in dates and "2025-01-20" not in dates
    assert len(dates) == 15  # 17 weekdays less 2 closures
    rets = read_table(sqlite_engine, schema.security_returns)
    assert len(set(rets.date)) == 14  # every session but the first has a previous close
    spy = prices[prices.symbol == "SPY"].set_index("date").close
    r = rets[(rets.symbol == "SPY")].set_index("date").simple_return
    # The return across the 2025-01-09 closure is 2025-01-10 over 2025-01-08.
    assert r[pd.Timestamp("2025-01-10")] == pytest.approx(spy[pd.Timestamp("2025-01-10")] / spy[pd.Timestamp("2025-01-08")] - 1, abs=1e-12)
    # One materialization per partition key, holidays included (as explicit no-ops).
    assert len(res.asset_materializations_for_node("market_prices")) == 17


def test_holiday_alone_is_an_explicit_no_op(instance, resources, sqlite_engine):
    res = _materialize(instance, resources, partition_key="2025-07-04")
    assert res.success
    md = res.asset_materializations_for_node("market_prices")[0].metadata
    assert md["no_op"].value is True
    assert "Independence" in md["reason"].value or "holiday" in md["reason"].value.lower()
    assert read_table(sqlite_engine, schema.market_prices).empty


def test_rerun_of_a_range_is_idempotent(instance, resources, sqlite_engine):
    tags = {orch.RANGE_START_TAG: "2025-01-02", orch.RANGE_END_TAG: "2025-01-08"}
    _materialize(instance, resources, tags=tags)
    first = read_table(sqlite_engine, schema.security_returns)
    _materialize(instance, resources, tags=tags)
    again = read_table(sqlite_engine, schema.security_returns)
    pd.testing.assert_frame_equal(first, again)


def test_demo_books_import_through_dagster(instance, sqlite_url, sqlite_engine, monkeypatch):
    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", sqlite_url)
    defs = orch.load_definitions()
    for book in DEMO_BOOKS:
        orch.import_portfolio(instance, demo_csv_text(book), name=book.name, owner=book.owner, portfolio_id=book.portfolio_id, defs=defs)
    assert set(instance.get_dynamic_partitions("portfolio")) == {"demo-individual", "demo-hnw", "demo-hedge-fund"}
    counts = {b.portfolio_id: len(read_positions(sqlite_engine, b.portfolio_id)) for b in DEMO_BOOKS}
    assert counts == {"demo-individual": 16, "demo-hnw": 17, "demo-hedge-fund": 30}
    ind = read_positions(sqlite_engine, "demo-individual")
    assert round(ind.cost_basis.sum(), 2) == 485_000.00
    hf = read_positions(sqlite_engine, "demo-hedge-fund")
    assert round(hf.cost_basis[hf.cost_basis > 0].sum(), 2) == 3_654_200.00
    assert round(hf.cost_basis[hf.cost_basis < 0].sum(), 2) == -1_589_500.00
    vix = hf[hf.symbol == "VIX250716C00025000"].iloc[0]
    assert vix.underlying_symbol == "^VIX" and vix.multiplier == 100 and vix.position_type == "LC"
    # Re-importing the same book replaces its positions (no duplicates).
    orch.import_portfolio(instance, demo_csv_text(DEMO_BOOKS[0]), name=DEMO_BOOKS[0].name, portfolio_id="demo-individual", defs=defs)
    assert len(read_positions(sqlite_engine, "demo-individual")) == 16


def test_a_bad_upload_imports_nothing(instance, sqlite_url, sqlite_engine, monkeypatch):
    from sigmasight_pipeline.onboarding import PortfolioValidationError

    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", sqlite_url)
    bad = "ticker,quantity,entry_price,entry_date\nAAPL,10,100,2024-01-02\nMSFT,0,100,2024-01-02\n"
    with pytest.raises(PortfolioValidationError) as err:
        orch.import_portfolio(instance, bad, name="Bad Book")
    assert "row 3" in str(err.value)
    assert read_table(sqlite_engine, schema.positions).empty
    assert instance.get_dynamic_partitions("portfolio") == []
