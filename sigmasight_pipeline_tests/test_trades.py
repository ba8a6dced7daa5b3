"""Books that change (books.md, "Trades"): the trades file, the FIFO ledger, daily P&L with trades, and a book
with buys, partial sells, a close and a close-and-reverse computed through Dagster, date by date, against a
hand computation on the stored closes.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from sigmasight_pipeline import cli
from sigmasight_pipeline import runner as orch
from sigmasight_pipeline.engines.book import EVENT_COLUMNS, LedgerError, book_periods, build_ledger, positions_on
from sigmasight_pipeline.engines.snapshots import daily_position_pnl
from sigmasight_pipeline.onboarding.trades_csv import TradesValidationError, parse_trades_csv
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.book import read_trades
from sigmasight_pipeline.warehouse.io import dispose_engines, get_engine, read_frame, read_table

D = pd.Timestamp


def event(symbol, date, quantity, price, *, fees=0.0, source="trade", row=0, seq=None, reverse=False,
          session=None, multiplier=1.0, option_type=None, strike=np.nan, underlying=None):
    return dict(symbol=symbol, underlying_symbol=underlying or symbol, option_type=option_type, strike=strike,
                expiration=None, multiplier=multiplier, implied_vol=None, tags=(), date=D(date),
                session=D(session or date), quantity=quantity, price=price, fees=fees, close_and_reverse=reverse,
                source=source, source_row=row, trade_seq=seq, trade_id=None)


def hand_book() -> pd.DataFrame:
    """AAPL: 100 @ 100 held; buy 50 @ 110 (fee 1); sell 120 @ 120 (fee 2); sell 30 @ 115 (flat); short 40 @ 100;
    buy 100 @ 90 close-and-reverse (long 60). MSFT bought on day 3."""
    return pd.DataFrame([
        event("AAPL", "2025-01-02", 100, 100.0, source="upload", row=2),
        event("AAPL", "2025-01-03", 50, 110.0, fees=1.0, row=2, seq=1),
        event("AAPL", "2025-01-06", -120, 120.0, fees=2.0, row=3, seq=2),
        event("MSFT", "2025-01-06", 10, 400.0, row=4, seq=3),
        event("AAPL", "2025-01-07", -30, 115.0, row=5, seq=4),
        event("AAPL", "2025-01-08", -40, 100.0, row=6, seq=5),
        event("AAPL", "2025-01-09", 100, 90.0, row=7, seq=6, reverse=True),
    ])[EVENT_COLUMNS]


def test_fifo_lots_realised_pnl_exit_and_close_and_reverse_by_hand():
    ledger = build_ledger(hand_book())
    states = ledger.states.set_index(["session", "position_id"])
    # day 2: one lot + one lot; the opening fee is realised when paid
    assert states.loc[(D("2025-01-03"), 1), "quantity"] == 150
    assert states.loc[(D("2025-01-03"), 1), "cost_basis"] == 100 * 100 + 50 * 110
    assert states.loc[(D("2025-01-03"), 1), "realized_to_date"] == -1.0
    # sell 120 @ 120: the 100 @ 100 lot first (+2,000), then 20 of the 50 @ 110 (+200), minus the fee 2
    day3 = states.loc[(D("2025-01-06"), 1)]
    assert (day3.quantity, day3.cost_basis, day3.entry_price) == (30, 30 * 110, 110.0)
    assert day3.entry_date == D("2025-01-03")
    assert day3.realized_to_date == -1.0 + 2_000 + 200 - 2
    # sell the last 30 @ 115: +150, flat: exit date set, entry price of its last lot kept
    day4 = states.loc[(D("2025-01-07"), 1)]
    assert (day4.quantity, day4.realized_to_date, day4.exit_date, day4.entry_price) == (0, 2_347.0, D("2025-01-07"), 110.0)
    # short 40 @ 100, then buy 100 @ 90 flagged close-and-reverse: +400 on the short, long 60 @ 90
    day6 = states.loc[(D("2025-01-09"), 1)]
    assert (day6.quantity, day6.cost_basis, day6.realized_to_date) == (60, 60 * 90, 2_747.0)
    assert pd.isna(day6.exit_date)
    assert ledger.events["realized"].round(10).tolist() == [0, -1, 2_198, 0, 150, 0, 400]
    assert ledger.events["cash"].tolist() == [10_000, 5_501, -14_398, 4_000, -3_450, -4_000, 9_000]
    lots = ledger.lots
    assert lots[["position_id", "quantity_opened", "quantity_open"]].values.tolist() == [
        [1, 100, 0], [1, 50, 0], [2, 10, 10], [1, -40, 0], [1, 60, 60]]
    assert lots["closed_date"].tolist()[:2] == [D("2025-01-06"), D("2025-01-07")]
    # the book on each day: AAPL leaves it on 01-07 and comes back short on 01-08 (same position id)
    assert positions_on(ledger, "2025-01-07")["symbol"].tolist() == ["MSFT"]
    book = positions_on(ledger, "2025-01-08")
    assert book[["symbol", "quantity", "position_type"]].values.tolist() == [["AAPL", -40, "SHORT"], ["MSFT", 10, "LONG"]]
    closed = positions_on(ledger, "2025-01-07", include_closed=True).set_index("symbol")
    assert closed.loc["AAPL", "exit_date"] == D("2025-01-07") and closed.loc["AAPL", "realized_to_date"] == 2_347
    # periods: one per change session inside the dates
    periods = book_periods(ledger, pd.bdate_range("2025-01-02", "2025-01-10"))
    assert [len(d) for d, _ in periods] == [1, 1, 1, 1, 1, 2]
    assert ledger.realized_to(pd.DatetimeIndex(["2025-01-01", "2025-01-06", "2025-01-10"])).tolist() == [0, 2_197, 2_747]


def test_a_sale_through_zero_needs_close_and_reverse():
    events = hand_book()
    events.loc[6, "close_and_reverse"] = False
    with pytest.raises(LedgerError) as err:
        build_ledger(events)
    assert err.value.problems[0][0] == 6  # the trade_seq of the offending trade
    assert "+100 would take the position of -40 through zero" in str(err.value)


def test_a_split_puts_pre_split_lots_on_todays_scale_with_cost_unchanged():
    splits = pd.DataFrame({"symbol": ["NVDA"], "ex_date": [D("2024-06-10")], "ratio": [10.0]})
    events = pd.DataFrame([
        event("NVDA", "2024-01-05", 800, 700.0, source="upload", row=2),
        event("NVDA251017C00800000", "2024-01-15", 50, 12.5, source="upload", row=3, multiplier=100.0,
              option_type="C", strike=800.0, underlying="NVDA"),
        event("NVDA", "2024-07-01", -1000, 125.0, row=2, seq=1),  # after the split: its own scale
    ])[EVENT_COLUMNS]
    ledger = build_ledger(events, splits)
    before = positions_on(ledger, "2024-06-03").set_index("symbol")
    assert before.loc["NVDA", "quantity"] == 8_000 and before.loc["NVDA", "entry_price"] == pytest.approx(70.0)
    assert before.loc["NVDA", "cost_basis"] == pytest.approx(800 * 700.0)  # unchanged by the split
    call = before.loc["NVDA251017C00800000"]
    assert (call.quantity, call.strike, call.multiplier) == (50, 80.0, 1_000.0)
    assert call.cost_basis == pytest.approx(50 * 12.5 * 100)
    after = positions_on(ledger, "2024-07-01").set_index("symbol")
    assert after.loc["NVDA", "quantity"] == 7_000
    assert ledger.events["realized"].iloc[-1] == pytest.approx((125.0 - 70.0) * 1_000)


def test_daily_pnl_with_trades_by_hand():
    """Two days: AAPL 100 held (close 100 -> 104), sells 40 @ 103 with fee 1 on day 2; MSFT 10 bought @ 400
    on day 2 (close 402); TSLA -5 (close 200) bought back @ 198 on day 2 (closed)."""
    dates = pd.DatetimeIndex(["2025-01-03", "2025-01-06"])
    positions = pd.DataFrame({"position_id": [1, 2], "quantity": [60.0, 10.0], "multiplier": [1.0, 1.0],
                              "entry_price": [100.0, 400.0], "entry_date": [D("2025-01-02"), D("2025-01-06")]})
    previous = pd.DataFrame({"position_id": [1, 3], "quantity": [100.0, -5.0], "multiplier": [1.0, 1.0],
                             "entry_price": [100.0, 210.0], "price": [100.0, 200.0]})
    vals = pd.DataFrame({"date": [dates[1]] * 2, "position_id": [1, 2], "price": [104.0, 402.0]})
    trades = pd.DataFrame({"session": [dates[1]] * 3, "position_id": [1, 2, 3],
                           "cash": [-40 * 103.0 + 1.0, 4_000.0, 5 * 198.0], "realized": [119.0, 0.0, 60.0]})
    pnl = daily_position_pnl(positions, vals, previous, trades).set_index("position_id")
    # AAPL: 60 x 104 - 100 x 100 - (-4,120 + 1) = 6,240 - 10,000 + 4,119 = 359 (= 100 x 4 - 40 x 1 - 1)
    assert pnl.loc[1, "daily_pnl"] == pytest.approx(359.0) and pnl.loc[1, "pnl_basis"] == "trade"
    # MSFT opened today: from its trade price, 10 x (402 - 400)
    assert pnl.loc[2, "daily_pnl"] == pytest.approx(20.0) and pnl.loc[2, "pnl_basis"] == "entry_price"
    # TSLA closed today: 0 - (-5 x 200) - 990 = 10 (bought back 2 below the previous close)
    assert pnl.loc[3, "daily_pnl"] == pytest.approx(10.0) and pnl.loc[3, "quantity"] == 0
    assert pnl.loc[3, "realized_pnl"] == 60.0
    # with no price move and no fees a trade day has zero P&L
    flat = daily_position_pnl(positions.iloc[1:], vals.iloc[1:].assign(price=400.0), previous.iloc[:0],
                              trades.iloc[1:2])
    assert flat["daily_pnl"].tolist() == [0.0]


TRADES_HEADER = "trade_date,ticker,quantity,price,fees,trade_id,tags,close_and_reverse\n"


def test_a_bad_trades_file_reports_every_error_at_once():
    text = TRADES_HEADER + (
        "2025-01-06,AAPL,abc,100,,t1,,\n"            # row 2: quantity
        "2099-01-01,AAPL,10,100,,t2,,\n"             # row 3: future date
        "2025-01-06,AAPL,0,-5,-1,t3,,maybe\n"        # row 4: zero quantity, price, fees, flag
        "2025-01-06,AAPL250117C0020000,1,1,,t4,,\n"  # row 5: malformed OCC
        "2025-01-06,MSFT,5,400,,t1,,\n"              # row 6: duplicate trade_id
        "2025-13-40,MSFT,5,400,,,,\n"                # row 7: bad date
    )
    with pytest.raises(TradesValidationError) as err:
        parse_trades_csv(text, today=dt.date(2025, 11, 1))
    where = [(e.row, e.column) for e in err.value.errors]
    assert where == [(2, "quantity"), (3, "trade_date"), (4, "quantity"), (4, "price"), (4, "fees"),
                     (4, "close_and_reverse"), (5, "ticker"), (6, "trade_id"), (7, "trade_date")]
    assert "6 errors" not in str(err.value) and "9 errors in trades CSV; nothing was imported" in str(err.value)
    missing = "ticker,quantity\nAAPL,1\n"
    with pytest.raises(TradesValidationError) as err:
        parse_trades_csv(missing)
    assert [(e.column, e.reason) for e in err.value.errors] == [
        ("trade_date", "missing required column"), ("price", "missing required column")]


# ---------------------------------------------------------------------------------------------------------
# Through Dagster: a book that trades, on the sample source
# ---------------------------------------------------------------------------------------------------------
BOOK = (
    "ticker,quantity,entry_price,entry_date\n"
    "AAPL,100,200.00,2025-01-02\n"
    "MSFT,50,400.00,2025-01-02\n"
    "JPM,-100,250.00,2025-01-02\n"
)
TRADES = TRADES_HEADER + (
    "2025-03-04,AAPL,50,210.00,5.00,b1,Adds,\n"           # buy: a second lot
    "2025-03-06,AAPL,-120,215.00,3.00,s1,,\n"             # partial sell through the first lot into the second
    "2025-03-08,MSFT,-50,390.00,,s2,,\n"                  # a close booked on a Saturday: Monday's session
    "2025-03-11,JPM,150,240.00,,r1,,true\n"               # close-and-reverse: short 100 closed, long 50
    "2025-03-12,NVDA,20,120.00,,n1,New Name,\n"           # a new instrument
)
START, MIDDLE, END = "2025-03-03", "2025-03-06", "2025-03-14"
PID = "trader"


@pytest.fixture(scope="module")
def traded(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('trades') / 'warehouse.db'}"
    reports = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIGMASIGHT_DATABASE_URL", url)
        mp.setenv("SIGMASIGHT_REPORTS_DIR", str(reports))
        mp.setenv("SIGMASIGHT_MARKET_DATA", "sample")
        instance = dg.DagsterInstance.ephemeral()
        defs = orch.load_definitions()
        orch.import_portfolio(instance, BOOK, name="Trader", portfolio_id=PID, defs=defs)
        done = orch.import_trades(instance, PID, TRADES, filename="trades.csv", defs=defs)
        summary = orch.run_window(instance, [PID], START, END, defs=defs, progress=lambda _: None)
        engine = get_engine(url)
        tables = {t.name: read_table(engine, t, portfolio_id=PID) for t in
                  (schema.position_valuations, schema.position_daily_pnl, schema.portfolio_snapshots)}
        orch.materialize_portfolio(instance, PID, MIDDLE, MIDDLE, defs=defs)
        rerun = {name: read_table(engine, getattr(schema, name), portfolio_id=PID) for name in tables}
        closes = read_frame(engine, sa.select(schema.market_prices)).pivot(index="date", columns="symbol", values="close")
        closes.index = pd.DatetimeIndex(closes.index)
        positions = read_frame(engine, sa.select(schema.positions).where(schema.positions.c.portfolio_id == PID))
        yield {"engine": engine, "done": done, "summary": summary, "tables": tables, "rerun": rerun,
               "closes": closes, "positions": positions, "instance": instance, "url": url, "reports": reports}
    dispose_engines()


def expected_book(closes: pd.DataFrame) -> dict:
    """The hand computation: end-of-day quantities, trade cash and realised P&L per session, then
    daily P&L = q_t p_t - q_(t-1) p_(t-1) - cash_t and unrealised = q_t p_t - open cost."""
    sessions = pd.DatetimeIndex(["2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06", "2025-03-07",
                                 "2025-03-10", "2025-03-11", "2025-03-12", "2025-03-13", "2025-03-14"])
    qty = pd.DataFrame(0.0, index=sessions, columns=["AAPL", "MSFT", "JPM", "NVDA"])
    qty["AAPL"] = [100, 150, 150, 30, 30, 30, 30, 30, 30, 30]
    qty["MSFT"] = [50, 50, 50, 50, 50, 0, 0, 0, 0, 0]
    qty["JPM"] = [-100] * 6 + [50] * 4
    qty["NVDA"] = [0] * 7 + [20] * 3
    cost = pd.DataFrame(0.0, index=sessions, columns=qty.columns)
    cost["AAPL"] = [20_000, 20_000 + 10_500, 30_500, 30 * 210, 6_300, 6_300, 6_300, 6_300, 6_300, 6_300]
    cost["MSFT"] = [20_000] * 5 + [0] * 5
    cost["JPM"] = [-25_000] * 6 + [12_000] * 4
    cost["NVDA"] = [0] * 7 + [2_400] * 3
    cash = pd.DataFrame(0.0, index=sessions, columns=qty.columns)
    cash.loc["2025-03-04", "AAPL"] = 50 * 210 + 5
    cash.loc["2025-03-06", "AAPL"] = -120 * 215 + 3
    cash.loc["2025-03-10", "MSFT"] = -50 * 390
    cash.loc["2025-03-11", "JPM"] = 150 * 240
    cash.loc["2025-03-12", "NVDA"] = 20 * 120
    realized = pd.DataFrame(0.0, index=sessions, columns=qty.columns)
    realized.loc["2025-03-04", "AAPL"] = -5
    realized.loc["2025-03-06", "AAPL"] = 100 * (215 - 200) + 20 * (215 - 210) - 3
    realized.loc["2025-03-10", "MSFT"] = 50 * (390 - 400)
    realized.loc["2025-03-11", "JPM"] = -100 * (240 - 250)
    px = closes.reindex(columns=qty.columns)
    prev_px = px.shift(1).reindex(sessions)
    p = px.reindex(sessions)
    value = (qty * p).where(qty != 0, 0.0)
    prev_qty = qty.shift(1).fillna(qty.iloc[0])
    pnl = value - (prev_qty * prev_px).where(prev_qty != 0, 0.0) - cash
    return {"sessions": sessions, "qty": qty, "cost": cost, "cash": cash, "realized": realized, "pnl": pnl,
            "unrealized": value - cost, "price": p}


def test_every_check_passes_and_the_ledger_is_stored(traded):
    assert [k for k, ok in traded["summary"]["checks"].items() if not ok] == []
    trades = read_trades(traded["engine"], PID)
    assert trades["trade_id"].tolist() == ["b1", "s1", "s2", "r1", "n1"]
    assert traded["done"].trades == 5 and traded["done"].first_trade_date == D("2025-03-04")
    pos = traded["positions"].set_index("symbol")
    assert pd.Timestamp(pos.loc["MSFT", "exit_date"]) == D("2025-03-08") and pos.loc["MSFT", "quantity"] == 0
    assert pos.loc["MSFT", "realized_pnl"] == -500.0
    assert pos.loc["AAPL", "realized_pnl"] == 1_600.0 - 3 - 5
    assert (pos.loc["JPM", "quantity"], pos.loc["JPM", "position_type"], pos.loc["JPM", "realized_pnl"]) == (50, "LONG", 1_000.0)
    assert pos.loc["NVDA", "position_id"] == 4  # after the upload's three


def test_positions_lots_and_pnl_every_date_equal_the_hand_computation(traded):
    exp = expected_book(traded["closes"])
    ids = {"AAPL": 1, "MSFT": 2, "JPM": 3, "NVDA": 4}
    vals = traded["tables"]["position_valuations"]
    vals = vals.assign(date=pd.DatetimeIndex(vals["date"])).set_index(["date", "position_id"])
    pnl = traded["tables"]["position_daily_pnl"]
    pnl = pnl.assign(date=pd.DatetimeIndex(pnl["date"])).set_index(["date", "position_id"])
    for day in exp["sessions"]:
        for sym, pid in ids.items():
            q = exp["qty"].loc[day, sym]
            if q != 0:
                row = vals.loc[(day, pid)]
                assert row["quantity"] == q, (day, sym)
                assert row["price"] == pytest.approx(exp["price"].loc[day, sym], abs=1e-6)
                assert row["cost_basis"] == pytest.approx(exp["cost"].loc[day, sym], abs=0.005), (day, sym)
                assert row["unrealized_pnl"] == pytest.approx(exp["unrealized"].loc[day, sym], abs=0.02), (day, sym)
            else:
                assert (day, pid) not in vals.index, (day, sym)
            if day == exp["sessions"][0]:
                continue  # the first snapshot is measured from entry (its own test)
            traded_today = exp["cash"].loc[day, sym] != 0
            if q != 0 or traded_today:
                r = pnl.loc[(day, pid)]
                assert r["daily_pnl"] == pytest.approx(exp["pnl"].loc[day, sym], abs=0.02), (day, sym)
                assert r["realized_pnl"] == pytest.approx(exp["realized"].loc[day, sym], abs=0.005), (day, sym)
                assert r["trade_cash"] == pytest.approx(exp["cash"].loc[day, sym], abs=0.005), (day, sym)
    snaps = traded["tables"]["portfolio_snapshots"]
    snaps = snaps.assign(date=pd.DatetimeIndex(snaps["date"])).set_index("date")
    later = exp["sessions"][1:]
    assert snaps.loc[later, "daily_pnl"].to_numpy() == pytest.approx(exp["pnl"].loc[later].sum(axis=1).to_numpy(), abs=0.05)
    assert snaps.loc[later, "realized_pnl"].to_numpy() == pytest.approx(exp["realized"].loc[later].sum(axis=1).to_numpy(), abs=0.01)
    assert snaps.loc[D("2025-03-14"), "cumulative_realized_pnl"] == pytest.approx(-5 + 1_597 - 500 + 1_000)
    # cumulative P&L = unrealised + realised, every day (fees realised when paid)
    unreal = exp["unrealized"].sum(axis=1)
    first = exp["sessions"][0]
    base = snaps.loc[first, "cumulative_pnl"] - unreal[first]
    cum = snaps["cumulative_pnl"].reindex(exp["sessions"]) - base
    assert cum.to_numpy() == pytest.approx((unreal + exp["realized"].cumsum(axis=0).sum(axis=1)).to_numpy(), abs=0.1)


def test_the_first_snapshot_is_from_entry_without_a_daily_return(traded):
    snaps = traded["tables"]["portfolio_snapshots"].sort_values("date")
    first = snaps.iloc[0]
    assert bool(first["is_first_snapshot"]) and pd.isna(first["daily_return"])
    exp = expected_book(traded["closes"])
    assert first["daily_pnl"] == pytest.approx(exp["unrealized"].iloc[0].sum(), abs=0.02)


def test_rerunning_a_middle_date_gives_the_same_rows(traded):
    for name, before in traded["tables"].items():
        after = traded["rerun"][name]
        pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True), check_exact=False, rtol=0, atol=1e-9)


def test_trades_list_prints_the_ledger_and_lots(traded, monkeypatch, capsys):
    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", traded["url"])
    assert cli.main(["trades", "list", PID]) == 0
    out = capsys.readouterr().out
    assert "trade s1" in out and "upload row 2" in out and "lots (FIFO)" in out
    assert "1,597.00" in out  # the partial sell's realised P&L


def test_a_trades_file_that_breaks_the_book_imports_nothing(traded, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", traded["url"])
    bad = tmp_path / "bad.csv"
    bad.write_text(TRADES_HEADER + (
        "2024-12-31,AAPL,1,200,,x1,,\n"      # row 2: before the first entry date
        "2025-03-13,AAPL,-100,220,,x2,,\n"  # row 3: 30 held: through zero without close_and_reverse
        "2025-03-13,MSFT,5,390,,s2,,\n"     # row 4: trade_id already imported
    ))
    before = read_trades(traded["engine"], PID)
    assert cli.main(["trades", "import", PID, str(bad), "--no-backfill"]) == 1
    err = capsys.readouterr().err
    assert "row 2, column 'trade_date'" in err and "before the portfolio's first entry date 2025-01-02" in err
    assert "row 4, column 'trade_id'" in err and "already imported (from trades.csv)" in err
    pd.testing.assert_frame_equal(read_trades(traded["engine"], PID), before)
    # the file's rows 2 and 4 fixed: the sale through zero is named on its own
    bad.write_text(TRADES_HEADER + "2025-03-13,AAPL,-100,220,,x2,,\n")
    assert cli.main(["trades", "import", PID, str(bad), "--no-backfill"]) == 1
    err = capsys.readouterr().err
    assert "row 2, column 'quantity'" in err and "-100 would take the position of +30 through zero" in err
    pd.testing.assert_frame_equal(read_trades(traded["engine"], PID), before)
    assert cli.main(["trades", "import", "nobody", str(bad)]) == 2
    assert "unknown portfolio 'nobody'" in capsys.readouterr().err


def test_the_report_lists_held_positions_as_of_its_date_and_closed_ones_with_exit_and_realised_pnl(traded):
    import csv
    import json

    folder = next(traded["reports"].glob("*_2025-03-14"))
    rows = {r["symbol"]: r for r in csv.DictReader((folder / "portfolio_report.csv").open())}
    assert (rows["MSFT"]["quantity"], rows["MSFT"]["exit_date"], rows["MSFT"]["realized_pnl"]) == ("0", "2025-03-08", "-500.00")
    assert rows["MSFT"]["market_value"] == "0.00" and rows["MSFT"]["total_pnl"] == "-500.00"
    assert (rows["AAPL"]["quantity"], rows["AAPL"]["exit_date"], rows["AAPL"]["realized_pnl"]) == ("30", "", "1592.00")
    assert rows["AAPL"]["cost_basis"] == "6300.00" and rows["AAPL"]["entry_price"] == "210.00"
    assert float(rows["AAPL"]["total_pnl"]) == pytest.approx(float(rows["AAPL"]["unrealized_pnl"]) + 1_592.0, abs=0.011)
    assert (rows["JPM"]["quantity"], rows["JPM"]["position_type"]) == ("50", "LONG")
    summary = json.loads((folder / "portfolio_report.json").read_text())["positions_summary"]
    assert (summary["position_count"], summary["closed_count"]) == (3, 1)
    # the report of a date before the trades shows the book of that date
    early = {r["symbol"]: r for r in csv.DictReader((next(traded["reports"].glob("*_2025-03-05")) / "portfolio_report.csv").open())}
    assert (early["AAPL"]["quantity"], early["MSFT"]["quantity"], early["JPM"]["quantity"]) == ("150", "50", "-100")
    assert "NVDA" not in early and early["MSFT"]["exit_date"] == ""


def test_an_insane_trade_price_is_imported_with_a_warning_named_and_stored(traded, tmp_path, monkeypatch, capsys):
    """Entry sanity (books.md): a stock traded 90% away from that day's close is imported as given, and the
    warning is printed and stored with the trades; the CLI then recomputes the dates from the trade's on (last
    test of the module: it adds a trade)."""
    from sigmasight_pipeline.warehouse.entry_warnings import read_entry_warnings

    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", traded["url"])
    monkeypatch.setenv("SIGMASIGHT_MARKET_DATA", "sample")
    monkeypatch.setenv("SIGMASIGHT_PARTITION_END", END)
    odd = tmp_path / "odd.csv"
    odd.write_text(TRADES_HEADER + "2025-03-13,AAPL,5,20.00,,w1,,\n")
    assert cli.main(["trades", "import", PID, str(odd)]) == 0
    out = capsys.readouterr().out
    assert "imported 1 trade(s) into trader" in out and "entry sanity: 1 warning(s)" in out
    assert f"recomputing trader 2025-03-13 .. {END}" in out and "failed checks: none" in out
    pnl = read_table(traded["engine"], schema.position_daily_pnl, dates=[D("2025-03-13")], portfolio_id=PID)
    aapl = pnl[pnl.position_id == 1].iloc[0]  # bought 5 at 20 against a close near 240: the day's P&L says so
    assert aapl["trade_cash"] == 100.0 and aapl["quantity"] == 35
    stored = read_entry_warnings(traded["engine"], PID)
    row = stored[stored["source"] == "odd.csv (trades 6-6)"].iloc[0]
    assert (row.source_row, row.symbol, row.kind) == (2, "AAPL", "stock_far_from_close")
    assert read_trades(traded["engine"], PID)["trade_id"].tolist()[-1] == "w1"


def test_a_book_that_closes_every_position_is_flat_with_its_realised_pnl(tmp_path, monkeypatch):
    """Sold out on 2025-03-05: that day's P&L is the sale against the previous close, the value is 0 from then
    on, the exposures are zeros, nothing is valued, regressed or stressed, and every check passes."""
    url = f"sqlite:///{tmp_path / 'flat.db'}"
    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", url)
    monkeypatch.setenv("SIGMASIGHT_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("SIGMASIGHT_MARKET_DATA", "sample")
    instance = dg.DagsterInstance.ephemeral()
    defs = orch.load_definitions()
    orch.import_portfolio(instance, "ticker,quantity,entry_price,entry_date\nAAPL,100,200,2025-01-02\n", name="Flat",
                          portfolio_id="flat", defs=defs)
    orch.import_trades(instance, "flat", TRADES_HEADER + "2025-03-05,AAPL,-100,230.00,,,,\n", defs=defs)
    summary = orch.run_window(instance, ["flat"], "2025-03-03", "2025-03-07", defs=defs, progress=lambda _: None)
    assert [k for k, ok in summary["checks"].items() if not ok] == []
    engine = get_engine(url)
    snaps = read_table(engine, schema.portfolio_snapshots).set_index("date")
    close_0304 = read_table(engine, schema.market_prices, dates=[D("2025-03-04")]).set_index("symbol").loc["AAPL", "close"]
    assert snaps["total_value"].tolist()[2:] == [0.0, 0.0, 0.0]
    assert snaps.loc[D("2025-03-05"), "daily_pnl"] == pytest.approx(100 * (230.0 - close_0304), abs=0.01)
    assert snaps.loc[D("2025-03-06"), "daily_pnl"] == 0.0 and snaps["cumulative_realized_pnl"].iloc[-1] == 3_000.0
    expo = read_table(engine, schema.portfolio_exposures).set_index("date")
    assert (expo.loc[D("2025-03-05"):, ["gross_exposure", "position_count"]] == 0).all().all()
    assert read_table(engine, schema.stress_results, dates=[D("2025-03-06")]).empty
    assert read_table(engine, schema.position_valuations, dates=[D("2025-03-06")]).empty
    dispose_engines()
