"""Splits in books (books.md, "Corporate actions"): a stock split inside a backfill leaves the P&L of a split
stock position and of an option on it equal, to the cent, to that of an economically identical unsplit book;
the demo books hold NVDA on the post-split scale.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from sigmasight_pipeline import runner as orch
from sigmasight_pipeline.defs.portfolios.portfolio_positions import store_book
from sigmasight_pipeline.marketdata.base import FACTOR_PROXIES, RATE_SYMBOLS
from sigmasight_pipeline.marketdata.sample import SampleSource
from sigmasight_pipeline.onboarding import DEMO_BOOKS, demo_csv_text
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.book import read_ledger
from sigmasight_pipeline.warehouse.io import dispose_engines, get_engine, read_table
from sigmasight_pipeline.warehouse.portfolios import save_portfolio_source
from sigmasight_pipeline.warehouse.reference import load_reference_data

EX_DATE = "2025-03-03"  # XSPL splits 2-for-1; XTWN has the same (adjusted) closes and never splits
START, END = "2025-02-24", "2025-03-07"
SPLIT_BOOK = (
    "ticker,quantity,entry_price,entry_date\n"
    "XSPL,100,400.00,2025-01-02\n"                    # pre-split: 100 shares at 400 = 200 at 200 adjusted
    "XSPL250919C00400000,3,20.00,2025-01-02\n"        # strike 400 -> 200, deliverable 100 -> 200 shares
)
TWIN_BOOK = (
    "ticker,quantity,entry_price,entry_date\n"
    "XTWN,200,200.00,2025-01-02\n"
    "XTWN250919C00200000,6,10.00,2025-01-02\n"
)
HEADER = "trade_date,ticker,quantity,price\n"
SPLIT_TRADES = HEADER + "2025-02-26,XSPL,10,398.00\n2025-03-05,XSPL,-50,203.00\n"  # before / after the ex-date
TWIN_TRADES = HEADER + "2025-02-26,XTWN,20,199.00\n2025-03-05,XTWN,-50,203.00\n"


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv_source")
    sample = SampleSource()
    symbols = [*FACTOR_PROXIES.values(), *RATE_SYMBOLS]
    closes = sample.fetch_closes(symbols + ["AAPL"], pd.Timestamp("2024-01-02"), pd.Timestamp(END))
    closes["XSPL"] = closes["XTWN"] = closes.pop("AAPL")  # split-adjusted closes, as a real source gives
    long = closes.rename_axis("date").reset_index().melt(id_vars="date", var_name="symbol", value_name="close")
    long.dropna().to_csv(folder / "prices.csv", index=False, date_format="%Y-%m-%d")
    (folder / "splits.csv").write_text(f"symbol,ex_date,ratio\nXSPL,{EX_DATE},2\n")
    url = f"sqlite:///{tmp_path_factory.mktemp('splits') / 'warehouse.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIGMASIGHT_DATABASE_URL", url)
        mp.setenv("SIGMASIGHT_REPORTS_DIR", str(tmp_path_factory.mktemp("reports")))
        mp.setenv("SIGMASIGHT_MARKET_DATA", "csv")
        mp.setenv("SIGMASIGHT_MARKET_DATA_CSV", str(folder))
        instance = dg.DagsterInstance.ephemeral()
        defs = orch.load_definitions()
        for pid, book, trades in (("split", SPLIT_BOOK, SPLIT_TRADES), ("twin", TWIN_BOOK, TWIN_TRADES)):
            orch.import_portfolio(instance, book, name=pid.title(), portfolio_id=pid, defs=defs)
            orch.import_trades(instance, pid, trades, defs=defs)
        summary = orch.run_window(instance, ["split", "twin"], START, END, defs=defs, progress=lambda _: None)
        engine = get_engine(url)
        tables = {t.name: read_table(engine, t) for t in
                  (schema.position_valuations, schema.position_daily_pnl, schema.portfolio_snapshots,
                   schema.position_greeks)}
        yield {"engine": engine, "summary": summary, "tables": tables}
    dispose_engines()


def by_book(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """``column`` per (date, position_id) as columns split / twin."""
    wide = frame.pivot_table(index=["date", "position_id"], columns="portfolio_id", values=column, aggfunc="first")
    return wide[["split", "twin"]]


def test_the_split_is_stored_and_applied(books):
    ledger = read_ledger(books["engine"], "split")
    book = ledger.instruments.set_index("symbol")
    assert book.loc["XSPL250919C00400000", "strike"] == 200.0 and book.loc["XSPL250919C00400000", "multiplier"] == 200.0
    vals = books["tables"]["position_valuations"]
    stock = vals[(vals.portfolio_id == "split") & (vals.position_id == 1)].set_index("date")["quantity"]
    assert stock.tolist() == [200.0, 200.0, 220.0, 220.0, 220.0, 220.0, 220.0, 170.0, 170.0, 170.0]


def test_pnl_across_the_ex_date_equals_the_unsplit_twin_to_the_cent(books):
    t = books["tables"]
    for column in ("daily_pnl", "realized_pnl", "trade_cash"):
        wide = by_book(t["position_daily_pnl"], column)
        assert len(wide) == 20 and (wide["split"] - wide["twin"]).abs().max() < 0.005, column
    for column in ("market_value", "cost_basis", "unrealized_pnl", "delta_adjusted_exposure"):
        wide = by_book(t["position_valuations"], column)
        assert (wide["split"] - wide["twin"]).abs().max() < 0.005, column
    greeks = by_book(t["position_greeks"], "dollar_delta")
    assert (greeks["split"] - greeks["twin"]).abs().max() < 1e-6
    snaps = t["portfolio_snapshots"].pivot(index="date", columns="portfolio_id", values="cumulative_pnl")
    assert (snaps["split"] - snaps["twin"]).abs().max() < 0.005


def test_the_demo_books_hold_nvda_on_the_post_split_scale(sqlite_engine):
    load_reference_data(sqlite_engine)
    for book in DEMO_BOOKS:
        save_portfolio_source(sqlite_engine, portfolio_id=book.portfolio_id, name=book.name, owner=None,
                              csv_text=demo_csv_text(book))
        store_book(sqlite_engine, book.portfolio_id, SampleSource())
    hf = read_ledger(sqlite_engine, "demo-hedge-fund")
    after = hf.states[hf.states.session <= "2024-06-10"]  # the book is unchanged since its entries
    instruments = hf.instruments.set_index("symbol")
    nvda = instruments.loc["NVDA", "position_id"]
    assert after[after.position_id == nvda]["quantity"].iloc[-1] == 8_000
    call = instruments.loc["NVDA251017C00800000"]
    assert (call.strike, call.multiplier) == (80.0, 1_000.0)
    assert after[after.position_id == call.position_id]["quantity"].iloc[-1] == 50  # contracts unchanged
    hnw = read_ledger(sqlite_engine, "demo-hnw")
    assert hnw.states.set_index("position_id").loc[hnw.instruments.set_index("symbol").loc["NVDA", "position_id"], "quantity"] == 700
