"""Every ``sigmasight`` subcommand run as a user runs it: the installed script in a subprocess, real files, the
exit code and the output checked.

Each test has its own SIGMASIGHT_HOME, DAGSTER_HOME (with the local ``dagster.yaml``, as ``make instance``
copies it), SIGMASIGHT_DATABASE_URL and reports folder in its tmp dir, and SIGMASIGHT_MARKET_DATA=sample. The
commands that need computed data start from a copy of one demo state: ``sigmasight demo`` over a short window
(2025-06-27 .. 2025-06-30), run once per test session (under a file lock, so the xdist workers share it) and
copied into each test's folder, so no test sees another's writes.
"""

from __future__ import annotations

import json
import re

import pytest

from sigmasight_pipeline_tests.user_state import DEMO_END, DEMO_START, make_state, row_counts, run_count, sigmasight

BOOK = "demo-individual"
BOOK_DIR = "demo-individual-investor-portfolio_2025-06-30"
CHARTS = ["cumulative_pnl.png", "drawdown.png", "factor_exposures.png", "stress_pnl.png", "var_backtest.png"]


# --- demo, status, backfill ---------------------------------------------------------------------------------

def test_demo_imports_the_books_computes_the_window_and_writes_every_report_format(demo_state):
    folder, result = demo_state
    assert result["returncode"] == 0, result["stderr"][-3000:]
    out = result["stdout"]
    for pid in ("demo-individual", "demo-hnw", "demo-hedge-fund"):
        assert f"as portfolio {pid}\n" in out
    assert "demo done in" in out and ", failed: none\n" in out
    reports = folder / "reports"
    for name in ("demo-individual-investor-portfolio", "demo-high-net-worth-investor-portfolio",
                 "demo-hedge-fund-style-investor-portfolio"):
        assert f"{reports / f'{name}_{DEMO_END}' / 'portfolio_report.md'}\n" in out
        for day in (DEMO_START, DEMO_END):  # the asset's default run config: every format, the charts with the md
            folder_ = reports / f"{name}_{day}"
            linked = set(re.findall(r"!\[[^\]]*\]\(([a-z_]+\.png)\)", (folder_ / "portfolio_report.md").read_text()))
            assert "cumulative_pnl.png" in linked
            assert sorted(p.name for p in folder_.iterdir()) == sorted(
                ["portfolio_report.md", "portfolio_report.json", "portfolio_report.csv", *linked])


def test_status_lists_every_book_and_engine_complete(computed):
    proc = sigmasight(computed, "status")
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| demo-")]
    assert len(rows) == 3 * 8, proc.stdout + proc.stderr[-3000:]  # three books x eight engines
    assert all(f"| {DEMO_START} | {DEMO_END} | 2/2 " in row and "|      0 |" in row for row in rows)  # no gap
    failed = [row.split("|")[-2].strip() for row in rows]  # the last column
    assert proc.returncode == (1 if any(failed) else 0)  # exit 1 exactly when a check failed


def test_backfill_recomputes_a_day_of_one_book(computed):
    before = run_count(computed)
    proc = sigmasight(computed, "backfill", "--from", DEMO_END, "--to", DEMO_END, "--portfolio", BOOK,
                      "--no-history", "--no-sql")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("2 runs: ") and "\nfailed checks: none\n" in proc.stdout
    assert run_count(computed) == before + 2  # the market day, then the book
    unknown = sigmasight(computed, "backfill", "--from", DEMO_END, "--to", DEMO_END, "--portfolio", "nope")
    assert unknown.returncode == 2 and "error: unknown portfolio 'nope'" in unknown.stderr


# --- report -------------------------------------------------------------------------------------------------

def test_report_writes_only_the_chosen_formats(computed):
    out = computed / "out"
    folder = out / BOOK_DIR
    proc = sigmasight(computed, "report", "--portfolio", BOOK, "--format", "json", "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == f"{folder / 'portfolio_report.json'}\n"
    assert sorted(p.name for p in folder.iterdir()) == ["portfolio_report.json"]
    doc = json.loads((folder / "portfolio_report.json").read_text())
    assert (doc["metadata"]["portfolio_id"], doc["metadata"]["anchor_date"]) == (BOOK, DEMO_END)
    json_written = (folder / "portfolio_report.json").stat().st_mtime_ns

    proc = sigmasight(computed, "report", "--portfolio", BOOK, "--as-of", DEMO_END, "--format", "csv,md",
                      "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == f"{folder / 'portfolio_report.md'}\n{folder / 'portfolio_report.csv'}\n"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["portfolio_report.json", "portfolio_report.md", "portfolio_report.csv", *CHARTS])
    assert (folder / "portfolio_report.json").stat().st_mtime_ns == json_written  # not rewritten
    assert (folder / "portfolio_report.csv").read_text().splitlines()[0].startswith("position_id,symbol,position_type,")


@pytest.mark.parametrize("fmt", ["md", "json", "csv"])
def test_report_no_write_prints_the_chosen_format_and_writes_nothing(computed, fmt):
    before_rows, before_runs = row_counts(computed), run_count(computed)
    before_files = sorted(p.relative_to(computed) for p in (computed / "reports").rglob("*"))
    proc = sigmasight(computed, "report", "--portfolio", BOOK, "--as-of", DEMO_START, "--format", fmt, "--no-write",
                      "--output-dir", str(computed / "out"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the report the demo wrote for that day, but for its generated-at time and the failed checks: those are the
    # book's latest evaluations when the report is built (other tests may have rerun the book since)
    written = (computed / "reports" / BOOK_DIR.replace(DEMO_END, DEMO_START) / f"portfolio_report.{fmt}").read_text()
    if fmt == "json":
        doc, stored = json.loads(proc.stdout), json.loads(written)
        for d in (doc, stored):
            d["metadata"].pop("generated_at"), d["data_quality"].pop("failed_checks")
        assert doc == stored
    elif fmt == "md":
        assert proc.stdout.startswith("# Portfolio report: Demo Individual Investor Portfolio\n")
        strip = lambda text: [line for line in text.split("### Failed checks")[0].splitlines() if "Generated" not in line]  # noqa: E731
        assert strip(proc.stdout) == strip(written)
    else:
        assert proc.stdout == written
    assert not (computed / "out").exists()
    assert sorted(p.relative_to(computed) for p in (computed / "reports").rglob("*")) == before_files
    assert row_counts(computed) == before_rows and run_count(computed) == before_runs


def test_report_refuses_bad_choices(computed):
    several = sigmasight(computed, "report", "--portfolio", BOOK, "--format", "md,json", "--no-write")
    assert several.returncode == 2 and several.stdout == ""
    assert "error: --no-write prints one format; choose one of md, json, csv with --format (got md, json)" in several.stderr
    unknown = sigmasight(computed, "report", "--portfolio", BOOK, "--format", "md,pdf")
    assert unknown.returncode == 2
    assert "error: --format: unknown report format(s) 'pdf'; choose from md, json, csv" in unknown.stderr
    no_day = sigmasight(computed, "report", "--portfolio", BOOK, "--as-of", "2025-06-20", "--no-write")
    assert no_day.returncode == 1
    assert f"error: no data for portfolio '{BOOK}' on 2025-06-20 (computed dates: {DEMO_START} .. {DEMO_END}, 2 sessions)" in no_day.stderr
    assert not (computed / "out").exists()


# --- template, onboard, trades, migrate (a fresh state each) --------------------------------------------------

def test_template_prints_a_commented_upload_that_imports(tmp_path):
    state = make_state(tmp_path)
    proc = sigmasight(state, "template")
    assert proc.returncode == 0 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("# SigmaSight portfolio upload")
    for column in ("ticker", "quantity", "entry_price", "entry_date", "tags", "implied_vol"):
        assert any(line.startswith(f"# {column} ") for line in lines), column
    (tmp_path / "template.csv").write_text(proc.stdout)

    dry = sigmasight(state, "onboard", "template.csv", "--name", "Template Book", "--dry-run")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "types: 2 LONG, 1 SHORT, 1 LP, 1 SC" in dry.stdout and "entry sanity: no warning\n" in dry.stdout
    done = sigmasight(state, "onboard", "template.csv", "--name", "Template Book", "--no-backfill")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "imported 'Template Book' as portfolio template-book\n"
    assert row_counts(state)["positions"] == 5


BOOK_CSV = """\
ticker,quantity,entry_price,entry_date,tags
# comments and blank lines are skipped
NVDA,100,700.00,2024-01-05,Momentum

ZZZQ,-50,30,2024-03-01,
SPY250919C00460000,10,7.00,2024-01-05,"Overlay,Hedge"
"""


def test_onboard_dry_run_prints_the_book_and_imports_nothing(tmp_path):
    state = make_state(tmp_path)
    (tmp_path / "book.csv").write_text(BOOK_CSV)
    proc = sigmasight(state, "onboard", "book.csv", "--name", "Dry Book", "--dry-run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.startswith("dry run: nothing imported. 3 position(s) would be imported as 'Dry Book' (portfolio id dry-book)\n")
    assert "  types: 1 LONG, 1 SHORT, 1 LC; earliest entry 2024-01-05\n" in out
    assert "| 6     | SPY250919C00460000 | LC     | 10         | 7.00          | 2024-01-05   | SPY          | C        | 460.00   | 2025-09-19   | 100          |               | 7,000.00     | Overlay, Hedge |" in out
    assert "entry sanity: 2 warning(s); the rows would be imported as given:\n  warning: row 5 ZZZQ on 2024-03-01: entered at 30.00" in out
    assert "  warning: row 6 SPY250919C00460000 on 2024-01-05: bought at 7.00, below its intrinsic value" in out
    assert "market data: 3 symbol(s): NVDA, SPY, ZZZQ; source 'sample' ($SIGMASIGHT_MARKET_DATA=sample)\n" in out
    assert "  no price history in the warehouse: NVDA, SPY, ZZZQ\n" in out
    assert "  the import would ask 'sample' for them: market history 2023-12-19 .. 2025-06-30\n" in out
    no_backfill = sigmasight(state, "onboard", "book.csv", "--name", "Dry Book", "--dry-run", "--no-backfill")
    assert "with --no-backfill the import asks the source for nothing" in no_backfill.stdout
    assert sum(row_counts(state).values()) == 0  # no row in any table
    assert run_count(state) == 0  # no Dagster run


def test_onboard_errors_are_the_imports_in_a_dry_run_too(tmp_path):
    state = make_state(tmp_path)
    (tmp_path / "bad.csv").write_text("ticker,quantity,entry_price,entry_date\n# c\nAAPL,0,1,2024-03-01\nAAPL,1,x,2099-01-01\n")
    dry = sigmasight(state, "onboard", "bad.csv", "--name", "Bad", "--dry-run")
    real = sigmasight(state, "onboard", "bad.csv", "--name", "Bad", "--no-backfill")
    assert dry.returncode == real.returncode == 1 and dry.stdout == real.stdout == ""
    errors = [line for line in dry.stderr.splitlines() if line.startswith(("error:", "row "))]
    assert errors == [line for line in real.stderr.splitlines() if line.startswith(("error:", "row "))]
    assert errors[0] == "error: bad.csv: 3 errors in portfolio CSV; nothing was imported"
    assert errors[1] == "row 3, column 'quantity': zero quantity (value '0')"
    assert errors[2:] == ["row 4, column 'entry_price': not a decimal number (value 'x')",
                          f"row 4, column 'entry_date': entry date is in the future (today is {__import__('datetime').date.today()}) (value '2099-01-01')"]
    assert sum(row_counts(state).values()) == 0
    missing = sigmasight(state, "onboard", "nope.csv", "--name", "X", "--dry-run")
    assert missing.returncode == 2 and "error: no such file: nope.csv" in missing.stderr


def test_onboard_then_trades_import_and_list(tmp_path):
    state = make_state(tmp_path)
    (tmp_path / "book.csv").write_text(BOOK_CSV)
    done = sigmasight(state, "onboard", "book.csv", "--name", "Real Book", "--no-backfill")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("imported 'Real Book' as portfolio real-book\n")
    assert "warning (upload): row 5 ZZZQ on 2024-03-01" in done.stdout
    assert row_counts(state)["positions"] == 3 and run_count(state) == 1  # the positions run

    (tmp_path / "trades.csv").write_text("trade_date,ticker,quantity,price,trade_id\n"
                                         "2025-02-03,NVDA,-40,120.00,t1\n2025-02-04,ZZZQ,50,31.00,t2\n")
    imported = sigmasight(state, "trades", "import", "real-book", "trades.csv", "--no-backfill")
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert imported.stdout.startswith("imported 2 trade(s) into real-book (2025-02-03 .. 2025-02-04); positions updated\n")
    again = sigmasight(state, "trades", "import", "real-book", "trades.csv", "--no-backfill")
    assert again.returncode == 1  # the trade ids are imported already: nothing imported
    assert "row 2, column 'trade_id': already imported (from trades.csv) (value 't1')" in again.stderr

    listed = sigmasight(state, "trades", "list", "Real Book")
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert listed.stdout.startswith("# real-book: ledger (opening holdings, then trades;")
    assert "# real-book: lots (FIFO)" in listed.stdout
    for text in ("NVDA", "ZZZQ", "SPY250919C00460000", "2025-02-03", "2025-02-04"):
        assert text in listed.stdout
    unknown = sigmasight(state, "trades", "list", "nope")
    assert unknown.returncode == 2 and "error: unknown portfolio 'nope' (known: real-book)" in unknown.stderr


def test_migrate_brings_a_fresh_warehouse_to_head_once(tmp_path):
    state = make_state(tmp_path)
    first = sigmasight(state, "migrate")
    assert first.returncode == 0, first.stderr[-3000:]
    lines = first.stdout.splitlines()
    assert lines[0] == f"warehouse: sqlite:///{tmp_path / 'home' / 'warehouse.db'}"
    assert lines[1] == "  revision before: none (empty or pre-migration warehouse)"
    head = lines[2].removeprefix("  revision after:  ")
    assert head and "already" not in head
    second = sigmasight(state, "migrate")
    assert second.returncode == 0
    assert second.stdout.splitlines()[1:] == [f"  revision before: {head}", f"  revision after:  {head} (already at head)"]
    assert "positions" in row_counts(state) and sum(row_counts(state).values()) == 0
