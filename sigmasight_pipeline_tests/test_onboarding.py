"""Tests for sigmasight_pipeline.onboarding: OCC symbols, the upload CSV validator, the demo books."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from sigmasight_pipeline.onboarding import (
    DEMO_BOOKS,
    OptionSymbol,
    ParsedPosition,
    PortfolioValidationError,
    RowError,
    demo_book,
    demo_csv_text,
    demo_positions,
    looks_like_occ,
    parse_occ_symbol,
    parse_portfolio_csv,
    slugify,
)

TODAY = date(2025, 6, 30)


def errors_of(source, **kwargs) -> list[RowError]:
    with pytest.raises(PortfolioValidationError) as info:
        parse_portfolio_csv(source, today=TODAY, **kwargs)
    return info.value.errors


def where(errors: list[RowError]) -> list[tuple[int, str]]:
    return [(e.row, e.column) for e in errors]


# --- OCC symbols ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, underlying, expiration, option_type, strike, canonical",
    [
        ("AAPL250815P00200000", "AAPL", date(2025, 8, 15), "P", Decimal("200"), "AAPL250815P00200000"),
        ("AAPL  250815P00200000", "AAPL", date(2025, 8, 15), "P", Decimal("200"), "AAPL250815P00200000"),
        ("SPY   250919C00460000", "SPY", date(2025, 9, 19), "C", Decimal("460"), "SPY250919C00460000"),
        ("SPY250919C00460000", "SPY", date(2025, 9, 19), "C", Decimal("460"), "SPY250919C00460000"),
        ("VIX250716C00025000", "VIX", date(2025, 7, 16), "C", Decimal("25"), "VIX250716C00025000"),
        ("F     260116C00012500", "F", date(2026, 1, 16), "C", Decimal("12.5"), "F260116C00012500"),
        ("NVDA251017C00800000", "NVDA", date(2025, 10, 17), "C", Decimal("800"), "NVDA251017C00800000"),
        ("BRK.B 251219P00000500", "BRK.B", date(2025, 12, 19), "P", Decimal("0.5"), "BRK.B251219P00000500"),
        ("GOOGL1251219C01234567", "GOOGL1", date(2025, 12, 19), "C", Decimal("1234.567"), "GOOGL1251219C01234567"),
        (" meta250919p00450000 ", "META", date(2025, 9, 19), "P", Decimal("450"), "META250919P00450000"),
    ],
)
def test_parse_occ_symbol(text, underlying, expiration, option_type, strike, canonical):
    sym = parse_occ_symbol(text)
    assert (sym.underlying, sym.expiration, sym.option_type, sym.strike) == (underlying, expiration, option_type, strike)
    assert sym.occ == canonical == str(sym)
    assert parse_occ_symbol(sym.occ) == sym  # round trip
    assert looks_like_occ(text)


def test_occ_fractional_strike_is_exact():
    assert parse_occ_symbol("XYZ250815C00012500").strike == Decimal("12.500")
    assert str(parse_occ_symbol("XYZ250815C00012500").strike) == "12.500"
    assert OptionSymbol("XYZ", date(2025, 8, 15), "C", Decimal("12.5")).occ == "XYZ250815C00012500"


@pytest.mark.parametrize(
    "text, message",
    [
        ("AAPL251315P00200000", "month must be in 1..12"),
        ("AAPL250230P00200000", "invalid expiration date '250230'"),
        ("AAPL250815X00200000", "option type must be 'C' or 'P', got 'X'"),
        ("AAPL250815P0020000", "strike must be 8 digits"),
        ("AAPL250815P002000000", "strike must be 8 digits"),
        ("AAPL 250815P00200000", "must be 21 characters"),
        ("AAPL   250815P00200000", "must be 21 characters"),
        ("AAPLXYZ250815P00200000", "must be 1-6 characters, got 7"),
        ("AAPL250815P00000000", "strike must be greater than zero"),
        ("AA$L250815P00200000", "may only contain"),
        ("AAPL", "not an OCC option symbol"),
        ("", "not an OCC option symbol"),
        ("AAPL2508P00200000", "not an OCC option symbol"),
    ],
)
def test_parse_occ_symbol_rejects(text, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("(", r"\(").replace("$", r"\$")):
        parse_occ_symbol(text)


@pytest.mark.parametrize("text", ["BRK-B", "FXNAX", "AAPL", "SPY", "BRK.B", "VTIAX", "F", "3690.HK", ""])
def test_plain_tickers_do_not_look_like_occ(text):
    assert not looks_like_occ(text)


def test_option_symbol_rejects_unencodable_fields():
    with pytest.raises(ValueError):
        OptionSymbol("AAPL", date(2025, 8, 15), "X", Decimal("200"))
    with pytest.raises(ValueError):
        OptionSymbol("AAPL", date(2025, 8, 15), "C", Decimal("0"))
    with pytest.raises(ValueError):
        OptionSymbol("AAPL", date(2025, 8, 15), "C", Decimal("1.2345"))


# --- CSV: every error at once ---------------------------------------------------------------------

BAD_CSV = """ticker,quantity,entry_price,entry_date,tags
AAPL,ten,225.00,2024-01-15,Core
MSFT,0,420.00,2024-01-16,Core
AMZN,110,-170.00,2024-01-18,Core
GOOGL,115,160.00,2024-13-20,Core
TSLA,70,255.00,2025-07-01,Core
AAPL251315P00200000,10,4.50,2024-01-20,Options
NVDA,25,700.00,2024-01-25,Core
NVDA,30,710.00,2024-01-25,Core
JNJ,105,160.00,2024-02-01,"Ok,This tag is far too long to be accepted by the validator"
ZZZZ,5,10.00,2024-02-02,
XYZ250815C00012500,1,1.00,2024-02-03,
BAD$,1,1.00,2024-02-04,
V,50,268.000000001,2024-02-08,
JPM,NaN,170,2024-02-05,
GE,1,0,2024-02-06,
"""


def test_all_errors_reported_with_rows_and_columns():
    known = {"AAPL", "MSFT", "AMZN", "GOOGL", "TSLA", "NVDA", "JNJ", "V", "JPM", "GE"}
    calls = []

    def known_symbols(symbol):
        calls.append(symbol)
        return symbol in known

    with pytest.raises(PortfolioValidationError) as info:
        parse_portfolio_csv(BAD_CSV, today=TODAY, known_symbols=known_symbols)
    err = info.value
    assert where(err.errors) == [
        (2, "quantity"),
        (3, "quantity"),
        (4, "entry_price"),
        (5, "entry_date"),
        (6, "entry_date"),
        (7, "ticker"),
        (9, "ticker"),
        (10, "tags"),
        (11, "ticker"),
        (12, "ticker"),
        (13, "ticker"),
        (14, "entry_price"),
        (15, "quantity"),
        (16, "entry_price"),
    ]
    reasons = [e.reason for e in err.errors]
    assert reasons[0] == "not a decimal number"
    assert reasons[1] == "zero quantity"
    assert reasons[2] == "entry price must be greater than 0"
    assert reasons[3] == "invalid date: month must be in 1..12"
    assert reasons[4] == "entry date is in the future (today is 2025-06-30)"
    assert reasons[5].startswith("malformed OCC option symbol: invalid expiration date '251315'")
    assert reasons[6] == "duplicate of row 8 (same ticker and entry_date)"
    assert reasons[7] == "tag longer than 40 characters (56)"
    assert reasons[8] == "unknown symbol 'ZZZZ' (not found by the market data source)"
    assert reasons[9] == "unknown option underlying 'XYZ' (not found by the market data source)"
    assert reasons[10].startswith("not a valid symbol")
    assert reasons[11] == "more than 8 decimal places"
    assert reasons[12] == "not a finite number"
    assert reasons[13] == "entry price must be greater than 0"
    assert err.errors[0].value == "ten"
    assert err.errors[7].value == "This tag is far too long to be accepted by the validator"
    assert str(err.errors[1]) == "row 3, column 'quantity': zero quantity (value '0')"
    lines = str(err).splitlines()
    assert lines[0] == "14 errors in portfolio CSV; nothing was imported"
    assert lines[1:] == [str(e) for e in err.errors]
    assert isinstance(err, ValueError)
    assert sorted(calls) == sorted(set(calls))  # asked once per distinct symbol
    assert "XYZ" in calls and "BAD$" not in calls


def test_row_error_str_format():
    assert str(RowError(4, "quantity", "0", "zero quantity")) == "row 4, column 'quantity': zero quantity (value '0')"
    assert str(RowError(1, "ticker", "", "missing required column")) == "row 1, column 'ticker': missing required column"
    assert str(RowError(0, "", "", "file too large")) == "file: file too large"


def test_duplicate_uses_canonical_option_symbol():
    text = (
        "ticker,quantity,entry_price,entry_date\n"
        "SPY250919C00460000,1,7,2024-01-10\n"
        "SPY   250919C00460000,2,7,2024-01-10\n"
        "spy250919c00460000,3,7,2024-01-11\n"
    )
    (e,) = errors_of(text)
    assert (e.row, e.column, e.reason) == (3, "ticker", "duplicate of row 2 (same ticker and entry_date)")


def test_missing_columns_reported_on_row_1():
    errs = errors_of("Ticker,qty,entry_price\nAAPL,1,2\n")
    assert [(e.row, e.column, e.reason) for e in errs] == [
        (1, "quantity", "missing required column"),
        (1, "entry_date", "missing required column"),
    ]


@pytest.mark.parametrize("source", ["", "   \n\n", b"", "\ufeff", ",,,\n\n,"])
def test_empty_file(source):
    (e,) = errors_of(source)
    assert e.row == 1 and e.reason.startswith("empty file")


def test_header_only_file():
    (e,) = errors_of("ticker,quantity,entry_price,entry_date\n")
    assert e.row == 2 and "no data rows" in e.reason


def test_too_many_rows_and_too_large():
    rows = "".join(f"T{i},1,1,2024-01-02\n" for i in range(6))
    (e,) = errors_of("ticker,quantity,entry_price,entry_date\n" + rows, max_rows=5)
    assert e.row == 7 and e.reason == "too many rows: 6 data rows, the limit is 5"
    (e,) = errors_of("ticker,quantity,entry_price,entry_date\nAAPL,1,1,2024-01-02\n", max_bytes=20)
    assert e.row == 0 and e.reason.startswith("file too large")


def test_non_utf8_reports_line():
    raw = "ticker,quantity,entry_price,entry_date,tags\nAAPL,1,1,2024-01-02,Caf\xe9\n".encode("latin-1")
    (e,) = errors_of(raw)
    assert e.row == 2 and e.reason.startswith("not UTF-8: invalid byte(s) e9")


def test_unquoted_tags_with_commas_are_flagged():
    (e,) = errors_of("ticker,quantity,entry_price,entry_date,tags\nAAPL,1,1,2024-01-02,Core,Growth\n")
    assert e.row == 2 and "must be quoted" in e.reason


def test_option_entered_after_expiration():
    (e,) = errors_of("ticker,quantity,entry_price,entry_date\nAAPL240119C00200000,1,1,2024-02-01\n")
    assert (e.row, e.column) == (2, "entry_date") and "after the option's expiration 2024-01-19" in e.reason


def test_missing_values_and_blank_rows():
    # ",,," (Excel's blank row) is skipped like an empty line, but still counts as a line.
    errs = errors_of("ticker,quantity,entry_price,entry_date\n,,,\n,,1,\nAAPL,1\n")
    assert [(e.row, e.column, e.reason) for e in errs] == [
        (3, "ticker", "missing value"),
        (3, "quantity", "missing value"),
        (3, "entry_date", "missing value"),
        (4, "entry_price", "missing value"),
        (4, "entry_date", "missing value"),
    ]


def test_quoted_newline_rows_are_numbered_by_first_line():
    errs = errors_of('ticker,quantity,entry_price,entry_date,tags\nAAPL,1,1,2024-01-02,"a\nb"\nMSFT,0,1,2024-01-02,\n')
    assert where(errs) == [(4, "quantity")]


def test_malformed_quoting_is_unreadable():
    (e,) = errors_of('ticker,quantity,entry_price,entry_date\nMSFT,1,1,2024-01-01\n"AAPL,1,1,2024-01-01\n')
    assert (e.row, e.reason) == (3, "unreadable CSV: unexpected end of data")


# --- CSV: accepted input --------------------------------------------------------------------------

def test_header_case_extra_columns_bom_and_blank_lines(tmp_path):
    text = (
        "\ufeff Notes ,TICKER, Quantity ,Entry_Price,ENTRY_DATE,Tags,sector\r\n"
        "hello,aapl,85,225.00,2024-01-15,\" Core Holdings , ,Tech Growth,Core Holdings\",Tech\r\n"
        "\r\n"
        "x,brk-b,-10.5,440.12345678,2024-01-15,,\r\n"
        "y,MSFT250919P00380000,-80,5.00,2024-01-20,Options Overlay,\r\n"
    )
    path = tmp_path / "book.csv"
    path.write_bytes(text.encode("utf-8"))
    for source in (text, text.encode("utf-8"), path):
        positions = parse_portfolio_csv(source, today=TODAY)
        assert [p.row for p in positions] == [2, 4, 5]
        aapl, brk, put = positions
        assert aapl == ParsedPosition(
            2, "AAPL", "LONG", Decimal("85"), Decimal("225.00"), date(2024, 1, 15),
            ("Core Holdings", "Tech Growth"), "AAPL",
        )
        assert (brk.symbol, brk.position_type, brk.quantity, brk.entry_price, brk.tags) == (
            "BRK-B", "SHORT", Decimal("-10.5"), Decimal("440.12345678"), ()
        )
        assert brk.cost_basis == Decimal("-4621.2962961900")
        assert not brk.is_option and brk.multiplier == 1 and brk.strike is None
        assert put.is_option and put.position_type == "SP" and put.underlying_symbol == "MSFT"
        assert (put.option_type, put.strike, put.expiration, put.multiplier) == ("P", Decimal("380"), date(2025, 9, 19), 100)
        assert put.cost_basis == Decimal("-40000.00")


def test_today_defaults_to_real_today():
    future = date.today().replace(year=date.today().year + 1)
    with pytest.raises(PortfolioValidationError, match="in the future"):
        parse_portfolio_csv(f"ticker,quantity,entry_price,entry_date\nAAPL,1,1,{future}\n")


# --- demo books -----------------------------------------------------------------------------------

def test_demo_book_metadata():
    assert [(b.portfolio_id, b.name, b.owner, b.csv_file) for b in DEMO_BOOKS] == [
        ("demo-individual", "Demo Individual Investor Portfolio", "demo_individual@sigmasight.com", "individual.csv"),
        ("demo-hnw", "Demo High Net Worth Investor Portfolio", "demo_hnw@sigmasight.com", "hnw.csv"),
        ("demo-hedge-fund", "Demo Hedge Fund Style Investor Portfolio", "demo_hedgefundstyle@sigmasight.com",
         "hedge_fund.csv"),
    ]
    assert all(slugify(b.portfolio_id) == b.portfolio_id for b in DEMO_BOOKS)
    assert demo_book("demo-hnw") is DEMO_BOOKS[1]
    with pytest.raises(KeyError):
        demo_book("nope")


@pytest.mark.parametrize("book, count", zip(DEMO_BOOKS, (16, 17, 30)))
def test_demo_books_parse(book, count):
    text = demo_csv_text(book)
    assert text.startswith("ticker,quantity,entry_price,entry_date,tags")
    positions = parse_portfolio_csv(text, today=TODAY)
    assert len(positions) == count
    assert positions == demo_positions(book, today=TODAY)


def test_individual_book_value():
    positions = demo_positions(DEMO_BOOKS[0], today=TODAY)
    assert sum(abs(p.cost_basis) for p in positions) == Decimal("485000.00")
    assert all(p.position_type == "LONG" for p in positions)
    assert positions[0].tags == ("Core Holdings", "Tech Growth")


def test_hedge_fund_book_long_and_short():
    positions = demo_positions(DEMO_BOOKS[2], today=TODAY)
    long_side = sum(p.cost_basis for p in positions if p.quantity > 0)
    short_side = sum(p.cost_basis for p in positions if p.quantity < 0)
    assert long_side == Decimal("3654200.00")
    assert short_side == Decimal("-1589500.00")
    kinds = [p.position_type for p in positions]
    assert (kinds.count("LONG"), kinds.count("SHORT")) == (13, 9)
    options = {p.symbol: p for p in positions if p.is_option}
    assert {s: p.position_type for s, p in options.items()} == {
        "SPY250919C00460000": "LC",
        "QQQ250815C00420000": "LC",
        "VIX250716C00025000": "LC",
        "NVDA251017C00800000": "LC",
        "AAPL250815P00200000": "SP",
        "MSFT250919P00380000": "SP",
        "TSLA250815C00300000": "SC",
        "META250919P00450000": "SP",
    }
    put = options["AAPL250815P00200000"]
    assert (put.quantity, put.strike, put.cost_basis, put.multiplier) == (
        Decimal("-100"), Decimal("200"), Decimal("-45000.00"), 100
    )
    assert options["VIX250716C00025000"].strike == Decimal("25")
    expiries = [p.expiration for p in options.values()]
    assert (min(expiries), max(expiries)) == (date(2025, 7, 16), date(2025, 10, 17))


def test_hnw_tags_split():
    positions = demo_positions(DEMO_BOOKS[1], today=TODAY)
    by_symbol = {p.symbol: p for p in positions}
    assert by_symbol["GLD"].tags == ("Alternative Assets", "Risk Hedge")
    assert by_symbol["DJP"].tags == ("Alternative Assets", "Risk Hedge")
    assert by_symbol["SPY"].tags == ("Blue Chip",)
    assert by_symbol["BRK-B"].position_type == "LONG"
    assert sum(p.cost_basis for p in positions) == Decimal("1326734.75")


# --- slugify --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, slug",
    [
        ("Demo Hedge Fund Style Investor Portfolio", "demo-hedge-fund-style-investor-portfolio"),
        ("../../etc", "etc"),
        ("a|b,c[d]e", "a-b-c-d-e"),
        ("  My  Book!! 2025 ", "my-book-2025"),
        ("Smith & Co. / Growth", "smith-co-growth"),
        ("already-a-slug", "already-a-slug"),
        ("under_score", "under-score"),
        ("Café", "caf"),
    ],
)
def test_slugify(name, slug):
    assert slugify(name) == slug


@pytest.mark.parametrize("name", ["", "---", "../", "|,[]", "   "])
def test_slugify_rejects_empty(name):
    with pytest.raises(ValueError):
        slugify(name)


# --- comment lines, the template, the dry run ------------------------------------------------------

def test_full_line_comments_are_skipped_and_rows_keep_their_line_numbers():
    text = (
        "# a comment before the header\n"
        "ticker,quantity,entry_price,entry_date,tags\n"
        "   # indented comment, with \"an odd quote\n"
        "AAPL,10,190.5,2024-03-01,\"core,\n"
        "# inside the quoted field\"\n"
        "\r\n"
        "#\r\n"
        "MSFT,-5,400,2024-03-01\n"
    )
    got = parse_portfolio_csv(text, today=TODAY)
    assert [(p.row, p.symbol, p.position_type) for p in got] == [(4, "AAPL", "LONG"), (8, "MSFT", "SHORT")]
    assert got[0].tags == ("core", "# inside the quoted field")
    # an error row after comments is numbered by its own line of the file
    bad = "# c\nticker,quantity,entry_price,entry_date\n# c\nAAPL,0,1,2024-03-01\n"
    assert where(errors_of(bad)) == [(4, "quantity")]
    # a '#' that is not the line's first non-blank character is data, not a comment
    assert where(errors_of("ticker,quantity,entry_price,entry_date\nAAPL,1,#2,2024-03-01\n")) == [(2, "entry_price")]
    # a file of comments only has no header
    assert errors_of("# only\n# comments\n")[0].reason.startswith("empty file")


def test_the_template_documents_every_column_and_imports_as_it_is():
    from sigmasight_pipeline.onboarding.portfolio_csv import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
    from sigmasight_pipeline.onboarding.template import upload_template

    text = upload_template()
    comments = [line for line in text.splitlines() if line.startswith("#")]
    for column in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
        assert any(line.startswith(f"# {column} ") for line in comments), column
    got = parse_portfolio_csv(text, today=TODAY)
    assert [(p.symbol, p.position_type, p.quantity) for p in got] == [
        ("AAPL", "LONG", Decimal("100")), ("SPY", "LONG", Decimal("50")), ("NFLX", "SHORT", Decimal("-200")),
        ("AAPL250815P00200000", "LP", Decimal("10")), ("TSLA250815C00300000", "SC", Decimal("-5")),
    ]
    put, call = got[3], got[4]
    assert (put.underlying_symbol, put.strike, put.expiration, put.implied_vol) == ("AAPL", Decimal("200"), date(2025, 8, 15), 0.28)
    assert put.cost_basis == Decimal("4500.00") and call.cost_basis == Decimal("-4000.00")  # x100 per contract
    assert got[0].tags == ("Core Holdings", "Tech Growth")


DRY = """ticker,quantity,entry_price,entry_date,tags
NVDA,800,700.00,2024-01-05,Momentum
ZZZQ,-50,30,2024-03-01,
SPY250919C00460000,10,7.00,2024-01-05,"Overlay,Hedge"
"""


def _row_counts(engine) -> dict[str, int]:
    import sqlalchemy as sa

    from sigmasight_pipeline.warehouse.schema import metadata

    with engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in metadata.sorted_tables}


def test_dry_run_says_what_the_import_would_do_and_stores_nothing(sqlite_engine):
    import pandas as pd

    from sigmasight_pipeline.defs.operations.onboarding import onboard
    from sigmasight_pipeline.marketdata.sources import get_source
    from sigmasight_pipeline.onboarding.preview import POSITION_COLUMNS, preview_upload, render_preview
    from sigmasight_pipeline.warehouse.entry_warnings import read_entry_warnings
    from sigmasight_pipeline.warehouse.io import upsert
    from sigmasight_pipeline.warehouse.schema import market_prices

    source = get_source("sample")
    upsert(sqlite_engine, market_prices, [{"date": date(2025, 1, 2), "symbol": "NVDA", "close": 138.31, "source": "sample"}])
    before = _row_counts(sqlite_engine)
    got = preview_upload(sqlite_engine, DRY, name="Dry Book", source=source)
    assert _row_counts(sqlite_engine) == before  # nothing stored

    assert (got.portfolio_id, got.name, got.replaces) == ("dry-book", "Dry Book", False)
    assert list(got.positions.columns) == POSITION_COLUMNS
    assert got.positions[["row", "ticker", "type", "underlying", "option", "multiplier", "tags"]].fillna("").values.tolist() == [
        [2, "NVDA", "LONG", "NVDA", "", 1, "Momentum"],
        [3, "ZZZQ", "SHORT", "ZZZQ", "", 1, ""],
        [4, "SPY250919C00460000", "LC", "SPY", "C", 100, "Overlay, Hedge"],
    ]
    opt = got.positions.iloc[2]
    assert (opt["strike"], opt["expiration"], opt["cost_basis"]) == (Decimal("460"), date(2025, 9, 19), Decimal("7000.00"))
    assert got.earliest_entry == pd.Timestamp("2024-01-05")
    assert got.symbols == ["NVDA", "SPY", "ZZZQ"] and got.without_history == ["SPY", "ZZZQ"]
    assert got.source_name == "sample" and got.source_unpriced == []  # the sample source prices any stock symbol

    # the warnings are exactly those the import stores, by the same function on the same source
    done = onboard(sqlite_engine, DRY, name="Dry Book", source=source)
    stored = read_entry_warnings(sqlite_engine, done.portfolio_id)
    assert got.entry_warnings["message"].tolist() == list(done.entry_warnings)
    assert sorted(got.entry_warnings["message"]) == sorted(stored["message"])
    assert got.entry_warnings["source_row"].tolist() == [3, 4]  # ZZZQ far from its close; the SPY call below intrinsic

    text = render_preview(got, fetch_window=(pd.Timestamp("2023-12-19"), pd.Timestamp("2025-06-30")), backfill=True)
    assert text.startswith("dry run: nothing imported. 3 position(s) would be imported as 'Dry Book' (portfolio id dry-book)\n")
    assert "  types: 1 LONG, 1 SHORT, 1 LC; earliest entry 2024-01-05\n" in text
    assert "| 4     | SPY250919C00460000 | LC     | 10         | 7.00          | 2024-01-05   | SPY          | C        | 460.00   | 2025-09-19   | 100          |               | 7,000.00     | Overlay, Hedge |" in text
    assert "entry sanity: 2 warning(s); the rows would be imported as given:\n  warning: row 3 ZZZQ" in text
    assert "  no price history in the warehouse: SPY, ZZZQ\n" in text
    assert "  the import would ask 'sample' for them: market history 2023-12-19 .. 2025-06-30\n" in text
    later = render_preview(got, fetch_window=None, backfill=False)
    assert "with --no-backfill the import asks the source for nothing" in later

    # after the import: the same id is replaced by a re-import; another id may not take the name
    assert preview_upload(sqlite_engine, DRY, name="Dry Book", source=source).replaces is True
    with pytest.raises(ValueError, match="portfolio name 'Dry Book' is already used by portfolio 'dry-book'"):
        preview_upload(sqlite_engine, DRY, name="Dry Book", portfolio_id="other", source=source)


def test_dry_run_raises_the_imports_errors(sqlite_engine):
    from sigmasight_pipeline.defs.operations.onboarding import onboard
    from sigmasight_pipeline.onboarding.preview import preview_upload

    bad = "ticker,quantity,entry_price,entry_date\nAAPL,0,1,2024-03-01\nAAPL260116C0020000,1,1,2024-13-01\n"
    with pytest.raises(PortfolioValidationError) as dry:
        preview_upload(sqlite_engine, bad, name="Bad")
    with pytest.raises(PortfolioValidationError) as real:
        onboard(sqlite_engine, bad, name="Bad")
    assert str(dry.value) == str(real.value)
    assert where(dry.value.errors) == [(2, "quantity"), (3, "ticker"), (3, "entry_date")]
    assert sum(_row_counts(sqlite_engine).values()) == 0


def test_a_new_portfolio_only_upload_never_replaces_one_stored_meanwhile(engine):
    """The API's uploads store with ``replace=False``: the insert itself, not an earlier look, decides that the id
    and the name are free, so an upload racing another of the same id or name is refused and replaces nothing."""
    import sqlalchemy as sa

    from sigmasight_pipeline.defs.operations.onboarding import onboard
    from sigmasight_pipeline.marketdata.sources import get_source
    from sigmasight_pipeline.warehouse.portfolios import PortfolioExistsError
    from sigmasight_pipeline.warehouse.schema import portfolios

    def stored() -> list[tuple]:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                sa.select(portfolios.c.portfolio_id, portfolios.c.name, portfolios.c.owner, portfolios.c.source_csv)
                .order_by(portfolios.c.portfolio_id))]

    source = get_source("sample")
    first = onboard(engine, DRY, name="First Book", owner="a@x.org", portfolio_id="book", source=source, replace=False)
    assert first.portfolio_id == "book"
    before, counts = stored(), _row_counts(engine)
    other = DRY.replace("800", "900")
    with pytest.raises(PortfolioExistsError) as same_id:
        onboard(engine, other, name="Second Book", owner="b@x.org", portfolio_id="book", source=source, replace=False)
    assert (same_id.value.field, same_id.value.value) == ("portfolio_id", "book")
    assert str(same_id.value) == "portfolio id 'book' is already used"
    with pytest.raises(PortfolioExistsError) as same_name:
        onboard(engine, other, name="First Book", owner="b@x.org", portfolio_id="book2", source=source, replace=False)
    assert (same_name.value.field, same_name.value.value) == ("name", "First Book")
    assert stored() == before == [("book", "First Book", "a@x.org", DRY)]
    assert _row_counts(engine) == counts  # nothing of the refused uploads (their entry warnings) is stored
    # the CLI's re-import of the same id still replaces it, as before
    onboard(engine, other, name="First Book", owner="a@x.org", portfolio_id="book", source=source)
    assert stored() == [("book", "First Book", "a@x.org", other)]
