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


# ------------------------------------------------------------------------------------------------------
# Splits and the security master, stored with the prices (books.md, "Market data that a real book needs")
# ------------------------------------------------------------------------------------------------------
#: NVDA held through its 10-for-1 split (and an option on it); ZZZZ, a symbol no security master knows (and an
#: option on it, classified by its underlying).
SPLIT_BOOK = (
    "ticker,quantity,entry_price,entry_date\n"
    "NVDA,800,700.00,2024-01-05\n"
    "NVDA251017C00800000,5,12.50,2024-01-15\n"
    "ZZZZ,10,100.00,2024-01-05\n"
    "ZZZZ250117C00050000,1,2.00,2024-01-05\n"
)


def _import_split_book(instance, sqlite_url, monkeypatch):
    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", sqlite_url)
    defs = orch.load_definitions()
    orch.import_portfolio(instance, SPLIT_BOOK, name="Split Book", portfolio_id="split-book", defs=defs)
    return defs


def _check(result, name):
    (ev,) = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return ev


def _master(engine):
    t = schema.security_master
    return read_table(engine, t).set_index("symbol")


def test_market_prices_stores_the_splits_once_and_names_an_unclassified_symbol(instance, sqlite_url, sqlite_engine, monkeypatch):
    from sigmasight_pipeline.warehouse.splits import read_splits

    defs = _import_split_book(instance, sqlite_url, monkeypatch)
    result = orch.materialize_market(instance, "2025-01-02", "2025-01-03", defs=defs)
    assert result.success  # the unclassified symbol is a warning, not a failure

    stored = read_splits(sqlite_engine, with_source=True)
    assert stored.to_dict("records") == [
        {"symbol": "NVDA", "ex_date": pd.Timestamp("2024-06-10"), "ratio": 10.0, "source": "sample"}]
    md = result.asset_materializations_for_node("market_prices")[0].metadata
    assert md["run_splits"].value.splitlines()[2].replace(" ", "") == "|NVDA|2024-06-10|10|"  # a Markdown table
    assert md["run_split_errors"].value == "none"
    # the prices of the same run are on the post-split scale
    nvda = read_table(sqlite_engine, schema.market_prices, symbols=["NVDA"]).set_index("date").close
    assert nvda[pd.Timestamp("2025-01-02")] == 138.31

    # the security master of the universe, refreshed in the same transaction
    master = _master(sqlite_engine)
    assert tuple(master.loc["NVDA", ["sector", "dividend_yield"]]) == ("Technology", 0.0003)
    assert tuple(master.loc["ZZZZ", ["asset_type", "sector", "industry"]]) == ("unknown", "Unclassified", "Unclassified")
    assert master.loc["SPY", "category"] == "Large Blend"

    check = _check(result, "unclassified_symbols")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["unclassified"].value == "ZZZZ"  # once: its option is classified by it
    assert check.metadata["symbols_checked"].value == 2  # NVDA and ZZZZ
    assert "ZZZZ" in check.description and "Unclassified" in check.description

    # a rerun (another range, the same splits): upserted by (symbol, ex_date), never duplicated
    again = orch.materialize_market(instance, "2025-01-03", "2025-01-06", defs=defs)
    assert again.success
    pd.testing.assert_frame_equal(read_splits(sqlite_engine, with_source=True), stored)


def _yf_download(**kw):
    """yfinance.download stand-in shaped like yfinance 1.x: a close of 100 + the symbol's length per weekday."""
    tickers = list(kw["tickers"])
    days = pd.bdate_range(kw["start"], pd.Timestamp(kw["end"]) - pd.Timedelta(days=1), name="Date")
    cols = pd.MultiIndex.from_product([["Close", "High", "Low", "Open", "Volume"], tickers], names=["Price", "Ticker"])
    frame = pd.DataFrame(index=days.tz_localize("America/New_York"), columns=cols, dtype=float)
    for t in tickers:
        for field in ("Close", "High", "Low", "Open"):
            frame[(field, t)] = 100.0 + len(t)
        frame[("Volume", t)] = 1e6
    return frame


def test_yfinance_splits_and_classification_reach_the_warehouse(instance, sqlite_url, sqlite_engine, monkeypatch):
    """Online: the split history of the universe's stocks and funds only, and ``Ticker.info`` classifies ZZZZ, so
    the warning check passes; the dividend yield is stored as a decimal."""
    import sigmasight_pipeline.marketdata.sources as marketdata_sources

    from sigmasight_pipeline.warehouse.splits import read_splits

    asked: list[str] = []

    def splits(symbol):  # Ticker(symbol).splits in yfinance 1.x
        asked.append(symbol)
        if symbol != "NVDA":
            return pd.Series(dtype=float, name="Stock Splits")
        index = pd.DatetimeIndex(["2021-07-20 09:30", "2024-06-10 09:30"], name="Date").tz_localize("America/New_York")
        return pd.Series([4.0, 10.0], index=index, name="Stock Splits")

    infos = {
        "ZZZZ": {"quoteType": "EQUITY", "longName": "Zed Corp", "sector": "Energy", "industry": "Oil & Gas E&P",
                 "dividendYield": 2.5, "trailingAnnualDividendYield": 0.024},
        "NVDA": {"quoteType": "EQUITY", "longName": "NVIDIA Corporation", "sector": "Technology",
                 "industry": "Semiconductors", "dividendYield": 0.03},
    }
    real_get_source = marketdata_sources.get_source

    def get_source(name=None, **options):
        return real_get_source(name, download=_yf_download, splits=splits, info=lambda s: infos.get(s, {}),
                               sleep=lambda s: None, threads=False, **options)

    defs = _import_split_book(instance, sqlite_url, monkeypatch)
    monkeypatch.setattr(marketdata_sources, "get_source", get_source)
    monkeypatch.setenv("SIGMASIGHT_MARKET_DATA", "yfinance")
    result = orch.materialize_market(instance, "2025-01-02", "2025-01-03", defs=defs)
    assert result.success

    assert sorted(asked) == sorted(["NVDA", "ZZZZ", "SPY", "VTV", "VUG", "MTUM", "QUAL", "SIZE", "USMV"])  # no ^, no option
    assert read_splits(sqlite_engine, with_source=True).to_dict("records") == [
        {"symbol": "NVDA", "ex_date": pd.Timestamp("2021-07-20"), "ratio": 4.0, "source": "yfinance"},
        {"symbol": "NVDA", "ex_date": pd.Timestamp("2024-06-10"), "ratio": 10.0, "source": "yfinance"},
    ]
    master = _master(sqlite_engine)
    assert tuple(master.loc["ZZZZ", ["name", "asset_type", "sector"]]) == ("Zed Corp", "stock", "Energy")
    assert master.loc["ZZZZ", "dividend_yield"] == pytest.approx(0.025)  # dividendYield 2.5 is percent
    assert master.loc["NVDA", "dividend_yield"] == pytest.approx(0.0003)
    assert master.loc["^TNX", "sector"] == "Rates"  # no info online: the shipped file
    check = _check(result, "unclassified_symbols")
    assert check.passed and check.metadata["unclassified"].value == "none"
