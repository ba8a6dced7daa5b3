"""Tags and strategies (books.md, "Tags and strategies"): a tag change is an event of the book from its effective
date on; the exposures by tag and by underlying; ``sigmasight tags list|add|remove`` run as a user runs it.

By hand: the ledger gives each date the tags in force that day and a tag change starts a book period; the grouped
figures of a small book. Through Dagster (a book computed for two weeks on the sample source): a change dated D
changes the stored ``group_exposures`` from D on and not before, the report shows them, and every refused change
names its problem and writes nothing.
"""

from __future__ import annotations

import datetime as dt
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
from sigmasight_pipeline.engines.book import EVENT_COLUMNS, TAG_CHANGE_COLUMNS, book_periods, build_ledger, positions_on
from sigmasight_pipeline.engines.valuation import group_exposures
from sigmasight_pipeline.reporting import build_report, load_report_input, prepublish_problems
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.book import TagChangeError, change_tag, read_tag_changes
from sigmasight_pipeline.warehouse.io import dispose_engines, get_engine, read_frame, read_table
from sigmasight_pipeline.warehouse.portfolios import save_portfolio_source

D = pd.Timestamp
SIGMASIGHT = Path(sys.executable).with_name("sigmasight")


def event(symbol, date, quantity, price, *, tags=(), source="upload", row=2, seq=None):
    return dict(symbol=symbol, underlying_symbol=symbol, option_type=None, strike=np.nan, expiration=None,
                multiplier=1.0, implied_vol=None, tags=tags, date=D(date), session=D(date), quantity=quantity,
                price=price, fees=0.0, close_and_reverse=False, source=source, source_row=row, trade_seq=seq,
                trade_id=None)


def change(seq, symbol, tag, action, date):
    return dict(change_seq=seq, symbol=symbol, tag=tag, action=action, effective_date=D(date), session=D(date))


def small_book():
    """AAPL 100 (core), MSFT -50 (core, hedge), from 2025-03-03; MSFT loses "core" on 03-05, AAPL gains "hedge"
    on 03-06 (two changes, the second made first), and a moot change (adding "core" to AAPL again)."""
    events = pd.DataFrame([event("AAPL", "2025-03-03", 100, 200.0, tags=("core",), row=2),
                           event("MSFT", "2025-03-03", -50, 400.0, tags=("core", "hedge"), row=3)])[EVENT_COLUMNS]
    changes = pd.DataFrame([change(2, "MSFT", "core", "remove", "2025-03-05"),
                            change(1, "AAPL", "hedge", "add", "2025-03-06"),
                            change(3, "AAPL", "core", "add", "2025-03-06"),
                            change(4, "GONE", "x", "add", "2025-03-06")])[TAG_CHANGE_COLUMNS]
    return build_ledger(events, tag_changes=changes)


def test_each_date_gets_the_tags_in_force_that_day_and_a_change_starts_a_period():
    ledger = small_book()
    assert list(ledger.sessions) == [D("2025-03-03"), D("2025-03-05"), D("2025-03-06")]
    tags = {d: dict(zip(positions_on(ledger, d)["symbol"], positions_on(ledger, d)["tags"]))
            for d in ("2025-03-04", "2025-03-05", "2025-03-06", "2025-03-07")}
    assert tags["2025-03-04"] == {"AAPL": ("core",), "MSFT": ("core", "hedge")}
    assert tags["2025-03-05"] == {"AAPL": ("core",), "MSFT": ("hedge",)}
    assert tags["2025-03-06"] == tags["2025-03-07"] == {"AAPL": ("core", "hedge"), "MSFT": ("hedge",)}
    # the changes in the order applied; the moot one is kept and marked; a symbol the book never held is left out
    applied = ledger.tag_changes
    assert applied[["change_seq", "symbol", "action", "changed"]].values.tolist() == [
        [2, "MSFT", "remove", True], [1, "AAPL", "add", True], [3, "AAPL", "add", False]]
    periods = book_periods(ledger, pd.bdate_range("2025-03-03", "2025-03-07"))
    assert [[f"{d:%d}" for d in dates] for dates, _ in periods] == [["03", "04"], ["05"], ["06", "07"]]
    assert [book["tags"].tolist() for _, book in periods] == [
        [("core",), ("core", "hedge")], [("core",), ("hedge",)], [("core", "hedge"), ("hedge",)]]
    # no changes: the ledger of before tag edits (the upload's tags from the first day)
    plain = build_ledger(pd.DataFrame([event("AAPL", "2025-03-03", 100, 200.0, tags=("core",))])[EVENT_COLUMNS])
    assert list(plain.sessions) == [D("2025-03-03")] and plain.tag_changes.empty
    assert positions_on(plain, "2025-03-07")["tags"].tolist() == [("core",)]


def test_grouped_exposures_of_a_small_book_by_hand():
    """AAPL at 210 (+21,000), MSFT at 380 (-19,000): before the changes "core" holds both (gross 40,000, net
    2,000), after them AAPL alone; "hedge" gains AAPL; by underlying one group per stock."""
    ledger = small_book()
    vals = pd.DataFrame({
        "date": [D("2025-03-04")] * 2, "position_id": [1, 2], "price": [210.0, 380.0], "price_source": "market",
        "underlying_price": [210.0, 380.0], "market_value": [21_000.0, -19_000.0], "cost_basis": [20_000.0, -20_000.0],
        "unrealized_pnl": [1_000.0, 1_000.0], "notional": [21_000.0, 19_000.0],
        "delta_adjusted_exposure": [21_000.0, -19_000.0], "is_long": [True, False],
    })

    def groups(day, by):
        book = positions_on(ledger, day)
        out = group_exposures(vals.assign(date=D(day)), book, by=by).set_index("group")
        return {g: (r.gross_exposure, r.net_exposure, r.delta_adjusted_exposure, r.position_count)
                for g, r in out.iterrows()}

    assert groups("2025-03-04", "tag") == {"core": (40_000.0, 2_000.0, 2_000.0, 2), "hedge": (19_000.0, -19_000.0, -19_000.0, 1)}
    assert groups("2025-03-05", "tag") == {"core": (21_000.0, 21_000.0, 21_000.0, 1), "hedge": (19_000.0, -19_000.0, -19_000.0, 1)}
    assert groups("2025-03-06", "tag") == {"core": (21_000.0, 21_000.0, 21_000.0, 1), "hedge": (40_000.0, 2_000.0, 2_000.0, 2)}
    assert groups("2025-03-06", "underlying") == {"AAPL": (21_000.0, 21_000.0, 21_000.0, 1),
                                                  "MSFT": (19_000.0, -19_000.0, -19_000.0, 1)}


# ---------------------------------------------------------------------------------------------------------
# change_tag on a stored book (SQLite and PostgreSQL): every refusal names its problem and stores nothing
# ---------------------------------------------------------------------------------------------------------
BOOK = (
    "ticker,quantity,entry_price,entry_date,tags\n"
    'AAPL,100,200.00,2025-03-03,"core,tech"\n'
    "MSFT,50,400.00,2025-03-03,tech\n"
    "JPM,-100,250.00,2025-03-03,\n"
    "AAPL250620C00200000,2,10.00,2025-03-03,options\n"
)
TODAY = dt.date(2025, 3, 14)


@pytest.mark.parametrize("kwargs, message", [
    (dict(position_id=9, tag="x", action="add"), "unknown position 9: the book's positions are 1..4"),
    (dict(ticker="ZZZ", tag="x", action="add"), "unknown ticker 'ZZZ': the book holds no position of that symbol"),
    (dict(ticker="AAPL250620C00210000", tag="x", action="add"), "unknown ticker 'AAPL250620C00210000'"),
    (dict(ticker="aapl", tag="x" * 41, action="add"), f"tag '{'x' * 41}' is longer than 40 characters (41)"),
    (dict(ticker="AAPL", tag="a,b", action="add"), "tag 'a,b' contains a comma"),
    (dict(ticker="AAPL", tag="  ", action="add"), "tag is empty"),
    (dict(ticker="AAPL", tag="(untagged)", action="add"), "tag '(untagged)' is reserved"),
    (dict(ticker="AAPL", tag="core", action="add"), "position 1 (AAPL) already has tag 'core' on 2025-03-10"),
    (dict(position_id=3, tag="hedge", action="remove"), "position 3 (JPM) has no tag 'hedge' on 2025-03-10 (its tags then: none)"),
    (dict(ticker="AAPL", tag="x", action="add", effective_date=dt.date(2025, 3, 2)),
     "effective date 2025-03-02 is before the portfolio's first entry date 2025-03-03"),
    (dict(ticker="AAPL", tag="x", action="add", effective_date=dt.date(2025, 3, 15)),
     "effective date 2025-03-15 is in the future (today is 2025-03-14)"),
])
def test_a_refused_change_names_its_problem_and_stores_nothing(engine, kwargs, message):
    save_portfolio_source(engine, portfolio_id="tagbook", name="Tag Book", owner=None, csv_text=BOOK)
    kwargs = {"effective_date": dt.date(2025, 3, 10), **kwargs}
    with pytest.raises(TagChangeError) as err:
        change_tag(engine, "tagbook", today=TODAY, **kwargs)
    assert str(err.value).startswith(message), str(err.value)
    assert read_tag_changes(engine, "tagbook").empty


def test_changes_are_stored_in_order_and_the_ticker_is_exactly_that_symbol(engine):
    save_portfolio_source(engine, portfolio_id="tagbook", name="Tag Book", owner=None, csv_text=BOOK)
    first = change_tag(engine, "tagbook", ticker=" aapl ", tag=" hedge ", action="add",
                       effective_date=dt.date(2025, 3, 8), today=TODAY)  # a Saturday: from Monday's session
    assert (first.positions, first.tags_after, first.session) == (((1, "AAPL"),), (("core", "tech", "hedge"),),
                                                                   dt.date(2025, 3, 10))
    second = change_tag(engine, "tagbook", ticker="AAPL250620C00200000", tag="options", action="remove",
                        effective_date=dt.date(2025, 3, 11), today=TODAY)
    assert second.positions == ((4, "AAPL250620C00200000"),) and second.tags_after == ((),)
    # removing before the add took effect: not there yet
    with pytest.raises(TagChangeError, match=r"has no tag 'hedge' on 2025-03-07 \(its tags then: core, tech\)"):
        change_tag(engine, "tagbook", position_id=1, tag="hedge", action="remove",
                   effective_date=dt.date(2025, 3, 7), today=TODAY)
    stored = read_tag_changes(engine, "tagbook")
    assert stored[["change_seq", "position_id", "symbol", "tag", "action"]].values.tolist() == [
        [1, 1, "AAPL", "hedge", "add"], [2, 4, "AAPL250620C00200000", "options", "remove"]]
    assert [pd.Timestamp(d).date() for d in stored["effective_date"]] == [dt.date(2025, 3, 8), dt.date(2025, 3, 11)]


# ---------------------------------------------------------------------------------------------------------
# Through Dagster and the command, as a user runs it
# ---------------------------------------------------------------------------------------------------------
START, END = "2025-03-03", "2025-03-14"
CHANGE_SESSION = D("2025-03-10")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """The book computed for two weeks; then ``sigmasight tags add --ticker AAPL hedge --from 2025-03-09`` (a
    Sunday: from Monday's session) run with its recompute. Yields the env and the group rows before / after."""
    base = tmp_path_factory.mktemp("tags")
    env = {**os.environ, "SIGMASIGHT_DATABASE_URL": f"sqlite:///{base / 'warehouse.db'}",
           "SIGMASIGHT_HOME": str(base / "home"), "SIGMASIGHT_REPORTS_DIR": str(base / "reports"),
           "SIGMASIGHT_MARKET_DATA": "sample", "DAGSTER_HOME": str(base / "dagster"),
           "SIGMASIGHT_PARTITION_START": START, "SIGMASIGHT_PARTITION_END": END}
    with pytest.MonkeyPatch.context() as mp:
        for key in ("SIGMASIGHT_DATABASE_URL", "SIGMASIGHT_HOME", "SIGMASIGHT_REPORTS_DIR", "SIGMASIGHT_MARKET_DATA",
                    "SIGMASIGHT_PARTITION_START", "SIGMASIGHT_PARTITION_END"):
            mp.setenv(key, env[key])
        defs = orch.load_definitions()
        instance = dg.DagsterInstance.ephemeral()
        orch.import_portfolio(instance, BOOK, name="Tag Book", portfolio_id="tagbook", defs=defs)
        orch.run_window(instance, ["tagbook"], START, END, defs=defs, progress=lambda _: None)
        engine = get_engine(env["SIGMASIGHT_DATABASE_URL"])
        before = read_table(engine, schema.group_exposures, portfolio_id="tagbook")
        w = {"env": env, "engine": engine, "dir": base, "before": before}
        w["add"] = sigmasight(w, "tags", "add", "--portfolio", "Tag Book", "--ticker", "AAPL", "hedge",
                              "--from", "2025-03-09")
        w["after"] = read_table(engine, schema.group_exposures, portfolio_id="tagbook")
        w["valuations"] = read_table(engine, schema.position_valuations, portfolio_id="tagbook")
        yield w
    engine.dispose()
    dispose_engines()


def sigmasight(warehouse, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(SIGMASIGHT), *map(str, args)], env=warehouse["env"], cwd=warehouse["dir"],
                          capture_output=True, text=True, timeout=300)


def tag_rows(engine) -> tuple[list, list]:
    changes = read_frame(engine, sa.select(schema.tag_changes.c.change_seq, schema.tag_changes.c.symbol,
                                           schema.tag_changes.c.tag, schema.tag_changes.c.action))
    tags = read_frame(engine, sa.select(schema.position_tags).order_by(schema.position_tags.c.position_id,
                                                                       schema.position_tags.c.tag))
    return changes.values.tolist(), tags.values.tolist()


def test_add_recomputes_and_changes_the_groups_from_its_date_on_and_not_before(warehouse):
    run = warehouse["add"]
    assert run.returncode == 0, run.stderr
    assert ("added tag 'hedge' to position 1 (AAPL) of tagbook from 2025-03-09 (session 2025-03-10); its tags from "
            "then: core, tech, hedge") in run.stdout
    assert "recomputing tagbook 2025-03-10 .. 2025-03-14" in run.stdout and "failed checks: none" in run.stdout
    key = ["date", "group_type", "group_name"]
    before = warehouse["before"].assign(date=pd.DatetimeIndex(warehouse["before"]["date"])).set_index(key).sort_index()
    after = warehouse["after"].assign(date=pd.DatetimeIndex(warehouse["after"]["date"])).set_index(key).sort_index()
    early = before.index.get_level_values("date") < CHANGE_SESSION
    pd.testing.assert_frame_equal(after[after.index.get_level_values("date") < CHANGE_SESSION], before[early])
    assert "hedge" not in before.index.get_level_values("group_name")
    # from the change on: "hedge" holds AAPL alone, with AAPL's stored figures; the other groups are as they were
    vals = warehouse["valuations"].assign(date=pd.DatetimeIndex(warehouse["valuations"]["date"]))
    aapl = vals[vals.position_id == 1].set_index("date")
    sessions = pd.DatetimeIndex(sorted({d for d in after.index.get_level_values("date") if d >= CHANGE_SESSION}))
    assert list(sessions.strftime("%m-%d")) == ["03-10", "03-11", "03-12", "03-13", "03-14"]
    for day in sessions:
        hedge = after.loc[(day, "tag", "hedge")]
        assert hedge.position_count == 1
        assert hedge.market_value == pytest.approx(aapl.loc[day, "market_value"], abs=0.005)
        assert hedge.gross_exposure == pytest.approx(abs(aapl.loc[day, "market_value"]), abs=0.005)
        assert hedge.delta_adjusted_exposure == pytest.approx(aapl.loc[day, "delta_adjusted_exposure"], abs=0.005)
        for group in ("core", "tech", "options", "(untagged)"):
            pd.testing.assert_series_equal(after.loc[(day, "tag", group)], before.loc[(day, "tag", group)])
    assert tag_rows(warehouse["engine"]) == (
        [[1, "AAPL", "hedge", "add"]],
        [["tagbook", 1, "core"], ["tagbook", 1, "hedge"], ["tagbook", 1, "tech"], ["tagbook", 2, "tech"],
         ["tagbook", 4, "options"]])


def test_the_report_shows_the_groups_of_its_date(warehouse):
    engine = warehouse["engine"]
    generated = dt.datetime(2025, 3, 15, tzinfo=dt.timezone.utc)
    vals = warehouse["valuations"].assign(date=pd.DatetimeIndex(warehouse["valuations"]["date"]))
    for day, has_hedge in (("2025-03-07", False), ("2025-03-11", True)):
        inp = load_report_input(engine, "tagbook", day)
        rendered = build_report(inp, generated)
        assert prepublish_problems(rendered, inp, expected_scenarios=len(inp.scenarios)) == []
        groups = rendered.json["exposures"]["data"]["groups"]
        by_tag = {g["group"]: g for g in groups["by_tag"]}
        assert ("hedge" in by_tag) == has_hedge
        assert [g["group"] for g in groups["by_underlying"]][:1] == ["AAPL"]  # stock and call together, largest
        day_vals = vals[vals.date == D(day)].set_index("position_id")
        gross = day_vals["market_value"].abs().sum()
        aapl = day_vals.loc[[1, 4], "market_value"]  # AAPL and its call
        expected = {"group": "AAPL", "position_count": 2, "market_value": f"{aapl.sum():.2f}",
                    "gross_exposure": f"{aapl.abs().sum():.2f}", "net_exposure": f"{aapl.sum():.2f}",
                    "share_of_gross": f"{aapl.abs().sum() / gross:.6f}"}
        assert {k: groups["by_underlying"][0][k] for k in expected} == expected
        tech = by_tag["tech"]  # AAPL and MSFT
        assert tech["position_count"] == 2
        assert tech["gross_exposure"] == f"{day_vals.loc[[1, 2], 'market_value'].abs().sum():.2f}"
        md = rendered.markdown
        section = md[md.index("### Exposures by strategy and by underlying"):md.index("### Correlation summary")]
        assert ("| hedge | 1 |" in section) == has_hedge
        assert "| Underlying | Positions | Gross | Net (market value) | Delta-adjusted | Share of gross |" in section
        assert "counts fully in each of its tag groups" in section
        csv_tags = dict(line.split(",")[1:2] + [line] for line in rendered.csv.splitlines()[1:])
        assert ("hedge" in csv_tags["AAPL"]) == has_hedge  # the CSV's tags: those in force that day


def test_remove_without_backfill_then_list(warehouse):
    run = sigmasight(warehouse, "tags", "remove", "--portfolio", "tagbook", "--position", 2, "tech",
                     "--from", "2025-03-12", "--no-backfill")
    assert run.returncode == 0, run.stderr
    assert "removed tag 'tech' from position 2 (MSFT) of tagbook from 2025-03-12 (session 2025-03-12); its tags " \
           "from then: none" in run.stdout
    assert "positions updated" in run.stdout and "recomputing" not in run.stdout
    changes, tags = tag_rows(warehouse["engine"])
    assert changes == [[1, "AAPL", "hedge", "add"], [2, "MSFT", "tech", "remove"]]
    assert ["tagbook", 2, "tech"] not in tags
    listing = sigmasight(warehouse, "tags", "list", "--portfolio", "tagbook")
    assert listing.returncode == 0, listing.stderr
    lines = [" ".join(line.split()) for line in listing.stdout.splitlines()]
    assert "| 1 | AAPL | AAPL | open | core, tech, hedge |" in lines
    assert "| 2 | MSFT | MSFT | open | - |" in lines
    assert "| 4 | AAPL250620C00200000 | AAPL | open | options |" in lines
    assert any(line.startswith("| 1 | 2025-03-09 | 2025-03-10 | 1 | AAPL | add | hedge | yes |") for line in lines)
    assert any(line.startswith("| 2 | 2025-03-12 | 2025-03-12 | 2 | MSFT | remove | tech | yes |") for line in lines)


@pytest.mark.parametrize("args, code, message", [
    (["add", "--ticker", "ZZZ", "x"], 1, "error: unknown ticker 'ZZZ': the book holds no position of that symbol; "
                                          "the book's symbols: AAPL, MSFT, JPM, AAPL250620C00200000; nothing changed"),
    (["add", "--position", "9", "x"], 1, "error: unknown position 9"),
    (["add", "--ticker", "AAPL", "y" * 41], 1, "is longer than 40 characters (41)"),
    (["add", "--ticker", "AAPL", "a,b"], 1, "contains a comma"),
    (["add", "--ticker", "AAPL", ""], 1, "error: tag is empty; nothing changed"),
    (["remove", "--ticker", "JPM", "hedge", "--from", "2025-03-05"], 1,
     "error: position 3 (JPM) has no tag 'hedge' on 2025-03-05 (its tags then: none); nothing changed"),
    (["add", "--ticker", "AAPL", "x", "--from", "2025-01-02"], 1, "before the portfolio's first entry date 2025-03-03"),
    (["add", "--ticker", "AAPL", "x", "--from", "2025-02-30"], 1, "error: --from '2025-02-30' is not a date"),
    (["add", "--ticker", "AAPL", "x", "--portfolio", "nope"], 2, "error: unknown portfolio 'nope'"),
])
def test_a_refused_command_exits_non_zero_naming_the_problem_and_writes_nothing(warehouse, args, code, message):
    before = tag_rows(warehouse["engine"])
    argv = ["tags", *args] + ([] if "--portfolio" in args else ["--portfolio", "tagbook"]) + ["--no-backfill"]
    run = sigmasight(warehouse, *argv)
    assert run.returncode == code, (run.stdout, run.stderr)
    assert message in run.stderr and run.stdout == ""
    assert tag_rows(warehouse["engine"]) == before


def test_the_help_says_what_ticker_matches(warehouse):
    run = sigmasight(warehouse, "tags", "add", "--help")
    assert run.returncode == 0
    text = " ".join(run.stdout.split())
    assert "the position of exactly this symbol" in text and "Options on AAPL are positions of their own" in text
