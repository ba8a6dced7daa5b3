"""Entry sanity (quality/entries.py): options below intrinsic value and stocks far from the day's close, on the
split-adjusted scale of the source's closes; wired into onboarding (stored with the upload, printed by the CLI,
listed in the report's data-quality section)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sigmasight_pipeline.quality.entries import (
    OPTION_BELOW_INTRINSIC,
    STOCK_FAR_FROM_CLOSE,
    WARNING_COLUMNS,
    entry_sanity_warnings,
)

DAYS = pd.DatetimeIndex(["2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09", "2024-01-10", "2024-01-12"])
# split-adjusted closes, as a source returns them (NVDA on the post-split scale)
CLOSES = pd.DataFrame(
    {
        "SPY": [468.00, 467.50, 472.00, 470.50, 476.25, 475.00],
        "QQQ": [405.00, 406.00, 409.00, 410.00, 411.00, 412.00],
        "NVDA": [68.00, 70.00, 72.00, 71.00, 69.50, 70.50],
        "META": [340.00, 345.00, 350.00, 352.00, 355.00, 360.00],
        "^VIX": [13.0, 13.5, 14.0, 14.5, 12.5, 13.0],
    },
    index=DAYS,
)
SPLITS = pd.DataFrame({"symbol": ["NVDA"], "ex_date": [pd.Timestamp("2024-06-10")], "ratio": [10.0]})


def rows(*specs) -> pd.DataFrame:
    """specs: (source_row, ticker, underlying, quantity, price, date, option_type, strike)."""
    return pd.DataFrame(specs, columns=["source_row", "ticker", "underlying_symbol", "quantity", "price", "date",
                                        "option_type", "strike"])


def test_deep_in_the_money_call_below_intrinsic_is_flagged_with_its_figures():
    got = entry_sanity_warnings(
        rows((24, "SPY250919C00460000", "SPY", 200, 7.00, "2024-01-10", "C", 460.0)), CLOSES, SPLITS)
    assert list(got.columns) == WARNING_COLUMNS and len(got) == 1
    w = got.iloc[0]
    assert (w.source_row, w.symbol, w.entry_date, w.kind) == (24, "SPY250919C00460000", pd.Timestamp("2024-01-10"),
                                                              OPTION_BELOW_INTRINSIC)
    assert w.entry_price == 7.0 and w.reference_price == pytest.approx(16.25, abs=1e-12)  # 476.25 - 460
    assert w.message == ("row 24 SPY250919C00460000 on 2024-01-10: bought at 7.00, below its intrinsic value 16.25 "
                         "(SPY close 476.25, strike 460.00); imported as given")


def test_put_and_written_option_below_intrinsic_and_fair_or_out_of_the_money_options_not_flagged():
    got = entry_sanity_warnings(rows(
        (2, "QQQ240315P00430000", "QQQ", -5, 18.00, "2024-01-10", "P", 430.0),  # put intrinsic 430 - 411 = 19 > 18
        (3, "QQQ240315P00430000", "QQQ", 5, 19.50, "2024-01-10", "P", 430.0),  # above intrinsic: fine
        (4, "QQQ250815C00420000", "QQQ", 150, 7.00, "2024-01-10", "C", 420.0),  # out of the money: intrinsic 0
        (5, "SPY250919C00460000", "SPY", 10, 16.25, "2024-01-10", "C", 460.0),  # exactly intrinsic: not below
    ), CLOSES, SPLITS)
    assert got["source_row"].tolist() == [2]
    assert got["reference_price"].iloc[0] == pytest.approx(19.0) and got["kind"].iloc[0] == OPTION_BELOW_INTRINSIC
    assert got["message"].iloc[0].startswith("row 2 QQQ240315P00430000 on 2024-01-10: sold at 18.00, below its "
                                             "intrinsic value 19.00 (QQQ close 411.00, strike 430.00)")


def test_pre_split_nvda_entry_is_on_the_adjusted_scale_and_not_flagged():
    # $700 on 2024-01-05, before the 10-for-1 split of 2024-06-10: $70 adjusted, the close is $70
    got = entry_sanity_warnings(rows(
        (2, "NVDA", "NVDA", 800, 700.00, "2024-01-05", None, np.nan),
        (3, "NVDA251017C00800000", "NVDA", 50, 12.50, "2024-01-05", "C", 800.0),  # strike 80 adjusted: OTM
    ), CLOSES, SPLITS)
    assert got.empty and list(got.columns) == WARNING_COLUMNS
    # without the split the same row is 900% above the close: the adjustment is what keeps it quiet
    unadjusted = entry_sanity_warnings(rows((2, "NVDA", "NVDA", 800, 700.00, "2024-01-05", None, np.nan)), CLOSES, None)
    assert unadjusted["kind"].tolist() == [STOCK_FAR_FROM_CLOSE]


def test_pre_split_nvda_option_below_intrinsic_is_shown_on_the_files_scale():
    # NVDA 600 call (60 adjusted) on 2024-01-08, close 72 adjusted = 720 on the file's scale: intrinsic 120
    got = entry_sanity_warnings(rows((7, "NVDA240621C00600000", "NVDA", 1, 100.0, "2024-01-08", "C", 600.0)),
                                CLOSES, SPLITS)
    w = got.iloc[0]
    assert w.reference_price == pytest.approx(120.0) and w.entry_price == 100.0
    assert w.message == ("row 7 NVDA240621C00600000 on 2024-01-08: bought at 100.00, below its intrinsic value 120.00 "
                         "(NVDA close 720.00 (split-adjusted close 72.00 x 10 on the file's scale), strike 600.00); "
                         "imported as given")


def test_stock_more_than_half_away_from_the_close_is_flagged_either_way():
    got = entry_sanity_warnings(rows(
        (2, "META", "META", 100, 138.00, "2024-01-10", None, np.nan),  # 355 close: 61.1% below
        (3, "META", "META", 100, 568.00, "2024-01-10", None, np.nan),  # 60% above
        (4, "META", "META", 100, 532.50, "2024-01-10", None, np.nan),  # exactly 50% above: not more than 50%
        (5, "META", "META", -100, 180.00, "2024-01-10", None, np.nan),  # 49.3% below: fine
    ), CLOSES, SPLITS)
    assert got["source_row"].tolist() == [2, 3] and set(got["kind"]) == {STOCK_FAR_FROM_CLOSE}
    assert got["reference_price"].tolist() == [355.0, 355.0]
    assert got["message"].tolist() == [
        "row 2 META on 2024-01-10: entered at 138.00, 61.1% below that day's close 355.00; imported as given",
        "row 3 META on 2024-01-10: entered at 568.00, 60.0% above that day's close 355.00; imported as given",
    ]


def test_reference_close_is_the_last_session_on_or_before_the_date_within_a_week_and_else_no_verdict():
    got = entry_sanity_warnings(rows(
        (2, "META", "META", 100, 100.00, "2024-01-11", None, np.nan),  # not a session here: the 10th's close 355
        (3, "META", "META", 100, 100.00, "2024-01-03", None, np.nan),  # before any close: no verdict
        (4, "META", "META", 100, 100.00, "2024-01-25", None, np.nan),  # 13 days after the last close: no verdict
        (5, "ZZZZ", "ZZZZ", 100, 1.00, "2024-01-10", None, np.nan),  # no history at all: no verdict
        (6, "VIX240214C00010000", "^VIX", 10, 1.00, "2024-01-10", "C", 10.0),  # VIX 12.5: intrinsic 2.50
    ), CLOSES.rename_axis("date").reset_index().melt("date", var_name="symbol", value_name="close"), SPLITS)
    assert got["source_row"].tolist() == [2, 6]  # long (date, symbol, close) closes work as well as wide ones
    assert got["reference_price"].tolist() == [355.0, 2.5]


def test_rows_need_their_columns():
    with pytest.raises(ValueError, match="strike"):
        entry_sanity_warnings(rows().drop(columns=["strike"]), CLOSES, SPLITS)
    assert entry_sanity_warnings(rows(), CLOSES, SPLITS).empty


# --- onboarding: stored with the upload, replaced on re-upload, printed by the CLI, listed in the report ------

UPLOAD = """ticker,quantity,entry_price,entry_date
NVDA,800,700.00,2024-01-05
META,100,100.00,2024-01-05
SPY250919C00460000,10,7.00,2024-01-05
"""


def test_onboarding_stores_the_uploads_warnings_with_it_and_replaces_them_on_re_upload(sqlite_engine):
    from sigmasight_pipeline.defs.operations.onboarding import onboard
    from sigmasight_pipeline.marketdata.sources import get_source
    from sigmasight_pipeline.warehouse.entry_warnings import read_entry_warnings

    source = get_source("sample")
    spy = source.fetch_closes(["SPY"], dt.date(2024, 1, 5), dt.date(2024, 1, 5))["SPY"].iloc[0]
    meta = source.fetch_closes(["META"], dt.date(2024, 1, 5), dt.date(2024, 1, 5))["META"].iloc[0]
    assert spy - 460.0 > 7.0 and 100.0 < 0.5 * meta  # the sample's closes make rows 3 and 4 insane, row 2 sane

    done = onboard(sqlite_engine, UPLOAD, name="Sanity", source=source)
    stored = read_entry_warnings(sqlite_engine, done.portfolio_id)
    assert stored[["source", "source_row", "symbol", "kind"]].values.tolist() == [
        ["upload", 3, "META", STOCK_FAR_FROM_CLOSE],
        ["upload", 4, "SPY250919C00460000", OPTION_BELOW_INTRINSIC],
    ]  # NVDA's pre-split $700 is $70 on the adjusted scale: not a warning
    assert stored["reference_price"].tolist() == pytest.approx([round(meta, 6), round(spy - 460.0, 6)], abs=1e-6)
    assert list(done.entry_warnings) == stored["message"].tolist()
    assert stored["message"].iloc[1].startswith(f"row 4 SPY250919C00460000 on 2024-01-05: bought at 7.00, below its "
                                                f"intrinsic value {spy - 460.0:.2f} (SPY close {spy:.2f}, strike 460.00)")

    clean = UPLOAD.replace("META,100,100.00", "META,100,500.00").replace("C00460000,10,7.00", "C00460000,10,45.00")  # over the call's 41.64 bound
    again = onboard(sqlite_engine, clean, name="Sanity", source=source)
    assert again.entry_warnings == () and read_entry_warnings(sqlite_engine, done.portfolio_id).empty


def test_the_cli_prints_the_warnings_at_onboarding(tmp_path, monkeypatch, capsys):
    from sigmasight_pipeline.cli import main

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    path = tmp_path / "sanity.csv"
    path.write_text(UPLOAD)
    assert main(["onboard", str(path), "--name", "Sanity", "--no-backfill"]) == 0
    out = capsys.readouterr().out
    assert "entry sanity: 2 warning(s), imported as given:" in out
    assert "warning (upload): row 3 META on 2024-01-05: entered at 100.00" in out
    assert "warning (upload): row 4 SPY250919C00460000 on 2024-01-05: bought at 7.00, below its intrinsic value" in out
    from sigmasight_pipeline.warehouse.io import dispose_engines

    dispose_engines()


def test_the_reports_data_quality_section_lists_the_warnings_entered_by_its_date():
    from jsonschema import Draft202012Validator

    from sigmasight_pipeline.reporting import build_report, load_report_schema
    from sigmasight_pipeline.reporting.inputs import ReportInput

    warnings = pd.DataFrame({
        "source": ["upload", "june.trades.csv"], "source_row": [4, 2], "symbol": ["SPY250919C00460000", "META"],
        "entry_date": pd.to_datetime(["2024-01-05", "2025-06-20"]), "kind": [OPTION_BELOW_INTRINSIC, STOCK_FAR_FROM_CLOSE],
        "message": ["row 4 SPY250919C00460000 on 2024-01-05: bought at 7.00, below its intrinsic value 14.04",
                    "row 2 META on 2025-06-20: entered at 100.00, 85.0% below that day's close 666.67"],
        "reference_price": [14.04, 666.67],
    })
    inp = ReportInput(portfolio={"portfolio_id": "p", "name": "P"}, anchor_date=dt.date(2025, 6, 13),
                      entry_warnings=warnings)
    rendered = build_report(inp, generated_at=dt.datetime(2025, 6, 14, tzinfo=dt.timezone.utc))
    Draft202012Validator(load_report_schema()).validate(rendered.json)
    expected = ["upload: row 4 SPY250919C00460000 on 2024-01-05: bought at 7.00, below its intrinsic value 14.04"]
    assert rendered.json["data_quality"]["entry_warnings"] == expected  # the June 20 trade is after the report date
    assert "- " + expected[0] in rendered.markdown and "85.0% below" not in rendered.markdown
    later = build_report(ReportInput(portfolio={"portfolio_id": "p", "name": "P"}, anchor_date=dt.date(2025, 6, 30),
                                     entry_warnings=warnings), generated_at=dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc))
    assert later.json["data_quality"]["entry_warnings"][1].startswith("trades file june.trades.csv: row 2 META")


def test_a_call_under_its_no_arbitrage_lower_bound_is_flagged_and_a_put_is_judged_on_intrinsic():
    """S 100, K 90, r 5% (^IRX 5.00), q 0, T 1 year: a call's lower bound is 100 - 90 e^-0.05 = 14.3894, above its
    intrinsic 10; a call at 12 is under it. A put at its intrinsic value is fine (an American put's bound)."""
    days = pd.DatetimeIndex(["2025-01-02"])
    closes = pd.DataFrame({"XYZ": [100.0], "^IRX": [5.0]}, index=days)
    frame = rows(
        (2, "XYZ260102C00090000", "XYZ", 1, 12.00, "2025-01-02", "C", 90.0),   # under the bound: flagged
        (3, "XYZ260102C00090000", "XYZ", 1, 14.50, "2025-01-02", "C", 90.0),   # above it: fine
        (4, "XYZ260102P00110000", "XYZ", 1, 10.00, "2025-01-02", "P", 110.0),  # put at intrinsic: fine
        (5, "XYZ260102C00090000", "XYZ", 1, 12.00, "2025-01-02", "C", 90.0),   # no expiration known: intrinsic only
    ).assign(expiration=pd.to_datetime(["2026-01-02", "2026-01-02", "2026-01-02", None]), dividend_yield=0.0)
    got = entry_sanity_warnings(frame, closes, None)
    assert got["source_row"].tolist() == [2]
    w = got.iloc[0]
    assert w.kind == "option_below_lower_bound"
    assert w.reference_price == pytest.approx(100 - 90 * np.exp(-0.05), abs=1e-9)
    assert w.message == ("row 2 XYZ260102C00090000 on 2025-01-02: bought at 12.00, below the lowest price of a call "
                         "without arbitrage 14.39 (XYZ close 100.00 x e^(-qT) - strike 90.00 x e^(-rT), r 5.00%, "
                         "q 0.00%, T 1.00 y; intrinsic 10.00); imported as given")
    # a dividend yield lowers the bound: q 3% -> 100 e^-0.03 - 90 e^-0.05 = 11.4450, under the 12 paid
    assert entry_sanity_warnings(frame.assign(dividend_yield=0.03), closes, None).empty


def test_the_demo_hedge_funds_deep_calls_are_flagged_at_onboarding():
    from sigmasight_pipeline.marketdata.sample import SampleSource
    from sigmasight_pipeline.onboarding import DEMO_BOOKS, demo_csv_text, parse_portfolio_csv
    from sigmasight_pipeline.onboarding.entry_sanity import file_entry_warnings

    book = next(b for b in DEMO_BOOKS if b.portfolio_id == "demo-hedge-fund")
    got = file_entry_warnings(parse_portfolio_csv(demo_csv_text(book)), SampleSource())
    assert got["symbol"].tolist() == ["SPY250919C00460000", "QQQ250815C00420000"]
    assert set(got["kind"]) == {"option_below_lower_bound"}
    assert (got["reference_price"] > 3 * got["entry_price"]).all()  # booked at $7, worth well over $21
