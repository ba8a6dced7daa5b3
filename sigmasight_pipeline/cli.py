"""The ``sigmasight`` command: demo, onboard, status (and, as they land, report and backfill)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from sigmasight_pipeline.run_tags import BACKFILL_TAG

DEMO_START = "2025-01-02"
DEMO_END = "2025-06-30"


def _instance():
    import dagster as dg

    # Runs are recorded in $DAGSTER_HOME (default ./.dagster_home) so that `dagster dev` shows them.
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def cmd_demo(args: argparse.Namespace) -> int:
    from sigmasight_pipeline import runner as orch
    from sigmasight_pipeline.defs.resources import ReportsResource
    from sigmasight_pipeline.onboarding import DEMO_BOOKS, demo_csv_text
    from sigmasight_pipeline.warehouse.io import database_url

    started = time.monotonic()
    instance = _instance()
    defs = orch.load_definitions()
    ids = []
    for book in DEMO_BOOKS:
        pid = orch.import_portfolio(
            instance, demo_csv_text(book), name=book.name, owner=book.owner, portfolio_id=book.portfolio_id,
            filename=book.csv_file, defs=defs,
        )
        print(f"imported {book.name!r} as portfolio {pid}")
        print_entry_warnings(pid)
        ids.append(pid)

    def progress(message: str) -> None:
        print(f"  [{time.monotonic() - started:5.0f} s] {message}", flush=True)

    try:
        summary = orch.run_window(
            instance, ids, args.start, args.end, defs=defs, progress=progress,
            on_run=lambda label: progress(f"done: {label}"), workers=args.workers,
        )
    except (orch.RunFailedError, orch.WorkerDiedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failed = [name for name, ok in summary["checks"].items() if not ok]
    reports = ReportsResource().root
    latest = sorted(reports.glob(f"*_{args.end}"))
    print(f"\ndemo done in {time.monotonic() - started:.0f} s: {len(summary['runs'])} runs, "
          f"{len(summary['checks']) + len(summary['warnings'])} checks, failed: {', '.join(failed) or 'none'}")
    print_check_warnings(summary)
    print(f"  reports:        {reports}")
    for folder in latest:
        print(f"                  {folder / 'portfolio_report.md'}")
    print(f"  warehouse:      {database_url()}")
    print(f"  dagster home:   {os.environ['DAGSTER_HOME']} (runs recorded there; `make dev` shows them)")
    print("  Dagster UI:     make dev, then open http://127.0.0.1:3000 (Assets, Runs)")
    return 0


def print_check_warnings(summary: dict) -> None:
    """Name the warning checks that failed: something to read in the reports, not a failure."""
    warned = [k for k, ok in summary.get("warnings", {}).items() if not ok]
    if warned:
        print(f"  warnings:       {', '.join(warned)} (named in the reports' data quality and the checks' metadata)")


def cmd_onboard(args: argparse.Namespace) -> int:
    from sigmasight_pipeline import runner as orch
    from sigmasight_pipeline.onboarding import PortfolioValidationError

    path = Path(args.file)
    if not path.is_file():
        print(f"error: no such file: {path}", file=sys.stderr)
        return 2
    if args.dry_run:
        return _onboard_dry_run(args, path)
    try:
        pid = orch.import_portfolio(
            _instance(), path.read_bytes(),
            name=args.name, owner=args.owner, portfolio_id=args.id, filename=path.name,
        )
    except PortfolioValidationError as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 1
    print(f"imported {args.name!r} as portfolio {pid}")
    print_entry_warnings(pid)
    if args.no_backfill:
        return 0
    return _backfill_new_portfolio(pid)


def _onboard_dry_run(args: argparse.Namespace, path: Path) -> int:
    """``onboard --dry-run``: validate as the import does and print what it would import (positions, parsed
    options, entry sanity warnings, symbols without price history); nothing is stored, no Dagster run."""
    from sigmasight_pipeline import runner as orch
    from sigmasight_pipeline.defs.operations.onboarding import history_window
    from sigmasight_pipeline.onboarding import PortfolioValidationError
    from sigmasight_pipeline.onboarding.preview import preview_upload, render_preview
    from sigmasight_pipeline.warehouse.io import get_engine

    try:
        preview = preview_upload(get_engine(), path.read_bytes(), name=args.name, portfolio_id=args.id)
    except (PortfolioValidationError, ValueError) as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 1
    window = history_window(preview.earliest_entry)  # what `onboard` without --no-backfill computes
    fetch = (orch.market_history_start(window[0]), window[1]) if window else None
    sys.stdout.write(render_preview(preview, fetch_window=fetch, backfill=not args.no_backfill))
    return 0


def cmd_template(args: argparse.Namespace) -> int:
    """Print a commented example upload (every column explained); it imports as it is."""
    from sigmasight_pipeline.onboarding.template import upload_template

    sys.stdout.write(upload_template())
    return 0


def print_entry_warnings(portfolio_id: str, source: str | None = None) -> None:
    """The stored entry sanity warnings of a portfolio (of one ``source``: "upload" or a trades file's name), one
    a line: entries booked at a price that cannot be right, imported as given (books.md, "Entry sanity")."""
    from sigmasight_pipeline.warehouse.entry_warnings import read_entry_warnings
    from sigmasight_pipeline.warehouse.io import get_engine

    found = read_entry_warnings(get_engine(), portfolio_id)
    if source is not None:
        found = found[found["source"] == source]
    if found.empty:
        return
    print(f"  entry sanity: {len(found)} warning(s), imported as given:")
    for r in found.itertuples():
        print(f"    warning ({r.source}): {r.message}")


def _backfill_new_portfolio(portfolio_id: str) -> int:
    """Compute a newly imported portfolio's history (the same window the inbox sensor requests)."""
    import pandas as pd

    from sigmasight_pipeline.warehouse.book import book_events
    from sigmasight_pipeline.warehouse.io import get_engine

    earliest = pd.to_datetime(book_events(get_engine(), portfolio_id)["date"]).min()
    return _compute_window(portfolio_id, earliest, "backfilling", "no completed session since its entry dates yet: nothing to backfill")


def _compute_window(portfolio_id: str, after, verb: str, nothing: str) -> int:
    """Run the portfolio's sessions from the first after ``after`` (``history_window``) here; print the checks."""
    from sigmasight_pipeline import runner as orch
    from sigmasight_pipeline.defs.operations.onboarding import history_window

    window = history_window(after)
    if window is None:
        print(nothing)
        return 0
    start, end = window
    print(f"{verb} {portfolio_id} {start:%Y-%m-%d} .. {end:%Y-%m-%d} (SIGMASIGHT_PARTITION_START / _END bound the window)")
    try:
        summary = orch.run_window(_instance(), [portfolio_id], start, end, tags={BACKFILL_TAG: orch.new_backfill_id()})
    except (orch.RunFailedError, orch.WorkerDiedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failed = [k for k, ok in summary["checks"].items() if not ok]
    print("failed checks: " + (", ".join(failed) if failed else "none"))
    print_check_warnings(summary)
    return 1 if failed else 0


def cmd_trades_import(args: argparse.Namespace) -> int:
    import pandas as pd

    from sigmasight_pipeline import runner as orch
    from sigmasight_pipeline.onboarding.trades_csv import TradesValidationError
    from sigmasight_pipeline.warehouse.portfolios import UnknownPortfolioError

    path = Path(args.file)
    if not path.is_file():
        print(f"error: no such file: {path}", file=sys.stderr)
        return 2
    try:
        done = orch.import_trades(_instance(), args.portfolio, path.read_bytes(), filename=path.name)
    except TradesValidationError as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 1
    except UnknownPortfolioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"imported {done.trades} trade(s) into {done.portfolio_id} "
          f"({done.first_trade_date:%Y-%m-%d} .. {done.last_trade_date:%Y-%m-%d}); positions updated")
    if done.entry_warnings:
        print(f"  entry sanity: {len(done.entry_warnings)} warning(s), imported as given:")
        for message in done.entry_warnings:
            print(f"    warning: {message}")
    if args.no_backfill:
        return 0
    # from the first trade's session on: the dates its trades affect
    return _compute_window(done.portfolio_id, done.first_trade_date - pd.Timedelta(days=1), "recomputing",
                           "no completed session since the first trade yet: nothing to recompute")


def cmd_trades_list(args: argparse.Namespace) -> int:
    from sigmasight_pipeline.warehouse.book import ledger_tables
    from sigmasight_pipeline.warehouse.io import get_engine
    from sigmasight_pipeline.warehouse.portfolios import UnknownPortfolioError, get_portfolio

    try:
        pid = get_portfolio(get_engine(), args.portfolio)["portfolio_id"]
    except UnknownPortfolioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ledger, lots = ledger_tables(get_engine(), pid)
    print(f"# {pid}: ledger (opening holdings, then trades; quantities and prices on the split-adjusted scale)\n")
    print(ledger.to_markdown(index=False, floatfmt=",.2f"))
    print(f"\n# {pid}: lots (FIFO)\n")
    print(lots.to_markdown(index=False, floatfmt=",.4f"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report of one (portfolio, date) through Dagster, only the chosen formats (the asset's run
    config); ``--no-write``: build and validate it here and print the one chosen format, writing nothing."""
    import datetime as dt

    import dagster as dg
    import pandas as pd

    from sigmasight_pipeline import runner as orch
    from sigmasight_pipeline.defs.resources import ReportsResource
    from sigmasight_pipeline.reporting import report_dir
    from sigmasight_pipeline.reporting.writer import REPORT_FILES, REPORT_FORMATS, check_formats
    from sigmasight_pipeline.warehouse import schema
    from sigmasight_pipeline.warehouse.io import get_engine
    from sigmasight_pipeline.warehouse.portfolios import UnknownPortfolioError, get_portfolio
    from sigmasight_pipeline.warehouse.reads import stored_dates

    chosen = args.format or ("md" if args.no_write else ",".join(REPORT_FORMATS))
    try:
        formats = check_formats([f for f in chosen.split(",") if f.strip()])
    except ValueError as exc:
        print(f"error: --format: {exc}", file=sys.stderr)
        return 2
    if args.no_write and len(formats) != 1:
        print(f"error: --no-write prints one format; choose one of {', '.join(REPORT_FORMATS)} with --format "
              f"(got {', '.join(formats)})", file=sys.stderr)
        return 2
    engine = get_engine()
    try:
        book = get_portfolio(engine, args.portfolio)
    except UnknownPortfolioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pid = book["portfolio_id"]
    have = stored_dates(engine, schema.portfolio_snapshots)
    have = pd.DatetimeIndex(have.loc[have.portfolio_id == pid, "date"])
    if have.empty:
        print(f"error: portfolio {pid!r} has no computed data yet; run `sigmasight backfill --portfolio {pid} --from ... --to ...`", file=sys.stderr)
        return 1
    as_of = pd.Timestamp(args.as_of) if args.as_of else have.max()
    if as_of not in have:
        print(
            f"error: no data for portfolio {pid!r} on {as_of:%Y-%m-%d} (computed dates: {have.min():%Y-%m-%d} .. "
            f"{have.max():%Y-%m-%d}, {len(have)} sessions)",
            file=sys.stderr,
        )
        return 1
    if args.no_write:
        return _print_report(engine, pid, as_of, formats[0], dt.datetime.now(dt.timezone.utc))
    defs = orch.load_definitions()
    resources = None
    if args.output_dir:
        resources = {**dict(defs.resources or {}), "reports": ReportsResource(output_root=str(Path(args.output_dir).resolve()))}
    run_config = {**orch.QUIET, "ops": {"portfolio_reports": {"config": {"formats": list(formats)}}}}
    try:
        result = orch.materialize_portfolio(_instance(), pid, as_of, as_of, defs=defs, resources=resources,
                                            selection=[dg.AssetKey("portfolio_reports")], run_config=run_config)
    except orch.RunFailedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not all(orch.check_results(result).values()):  # the pre-publish check refused it: nothing was written
        problems = [e.metadata["problems"].value for e in result.get_asset_check_evaluations() if not e.passed]
        print(f"error: the report of {pid} on {as_of:%Y-%m-%d} failed its pre-publish validation; nothing "
              "written:\n" + "\n".join(problems), file=sys.stderr)
        return 1
    root = Path(args.output_dir).resolve() if args.output_dir else ReportsResource().root
    folder = report_dir(root, book["name"], as_of)
    for fmt in formats:
        print(folder / REPORT_FILES[REPORT_FORMATS.index(fmt)])
    return 0


def _print_report(engine, portfolio_id: str, as_of, fmt: str, generated_at) -> int:
    """``report --no-write``: the report of (portfolio, date) built as the asset builds it (its failed upstream
    checks from the Dagster instance, when there is one) and validated by the same pre-publish check; its
    ``fmt`` text to stdout. Nothing is written (no run, no file); a report failing validation is not printed."""
    from sigmasight_pipeline.defs.reports.assets import failed_upstream_checks
    from sigmasight_pipeline.reporting import build_report, load_report_input, prepublish_problems
    from sigmasight_pipeline.reporting.writer import report_text
    from sigmasight_pipeline.warehouse.reference import stress_scenarios

    inp = load_report_input(engine, portfolio_id, as_of)
    home = os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home"
    if Path(home).is_dir():  # never create an instance just to read it
        inp.failed_checks = failed_upstream_checks(_instance(), [portfolio_id])[portfolio_id]
    rendered = build_report(inp, generated_at=generated_at)
    problems = prepublish_problems(rendered, inp, expected_scenarios=len(stress_scenarios()[0]))
    if problems:
        print(f"error: the report of {portfolio_id} on {as_of:%Y-%m-%d} failed its pre-publish validation:\n"
              + "\n".join(problems), file=sys.stderr)
        return 1
    sys.stdout.write(report_text(rendered, fmt))
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sigmasight_pipeline import runner as orch
    from sigmasight_pipeline.warehouse.io import get_engine
    from sigmasight_pipeline.warehouse.portfolios import UnknownPortfolioError, get_portfolio, list_portfolios

    engine = get_engine()
    try:
        ids = [get_portfolio(engine, p)["portfolio_id"] for p in args.portfolio] if args.portfolio else list(list_portfolios(engine).portfolio_id)
    except UnknownPortfolioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not ids:
        print("error: no portfolio imported; run `sigmasight onboard FILE.csv --name NAME` first", file=sys.stderr)
        return 2
    if args.submit:
        return _submit_backfill(args, ids)
    instance = _instance()
    steps = 1 + len(ids) + (0 if args.no_sql else 1)

    with tqdm(total=steps, unit="run", desc="backfill") as bar:

        def finished(label: str) -> None:
            bar.update(1)
            bar.set_postfix_str(f"done: {label}")

        try:
            summary = orch.run_window(
                instance, ids, args.start, args.end, with_history=not args.no_history, with_sql_models=not args.no_sql,
                progress=bar.set_postfix_str, on_run=finished, tags={BACKFILL_TAG: orch.new_backfill_id()},
                workers=args.workers,
            )
        except (orch.RunFailedError, orch.WorkerDiedError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        bar.update(steps - bar.n)
    failed = [k for k, ok in summary["checks"].items() if not ok]
    print(f"{len(summary['runs'])} runs: {', '.join(summary['runs'])}")
    print("failed checks: " + (", ".join(failed) if failed else "none"))
    print_check_warnings(summary)
    return 1 if failed else 0


def _submit_backfill(args: argparse.Namespace, portfolio_ids: list[str]) -> int:
    """Launch the backfill through the running webserver's GraphQL API, as the UI's Materialize dialog does."""
    from sigmasight_pipeline import runner as orch
    from sigmasight_pipeline import webserver_client as web

    first, last = orch.weekday_keys(args.start, args.end)
    ranges = orch.backfill_ranges(orch.load_definitions(), portfolio_ids, first, last, history=not args.no_history,
                                  sql_models=not args.no_sql)
    try:
        backfill_id = web.launch_backfill(
            args.url, list(ranges), partition_ranges=ranges,
            title=f"sigmasight backfill {first}..{last} ({', '.join(portfolio_ids)})",
        )
    except (web.WebserverError, OSError) as exc:
        print(f"error: could not launch the backfill at {args.url}: {exc}", file=sys.stderr)
        return 1
    print(f"launched asset backfill {backfill_id} at {args.url}: the daemon runs it (UI: Overview > Backfills)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from sigmasight_pipeline.status import portfolio_status, render_status

    table = portfolio_status(_instance(), start=args.start, end=args.end)
    print(render_status(table))
    return 1 if (table["gaps"].gt(0) | table["failed_checks"].astype(bool)).any() else 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the warehouse to the head schema revision (what every engine does on start), printing before/after."""
    import sqlalchemy as sa

    from sigmasight_pipeline.warehouse.io import _normalise_url, database_url
    from sigmasight_pipeline.warehouse.migrate import migrate

    url = _normalise_url(args.database_url or database_url())
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)  # not get_engine: that would migrate already
    try:
        result = migrate(engine)
    finally:
        engine.dispose()
    before, after = (", ".join(revs) or "none (empty or pre-migration warehouse)" for revs in result)
    print(f"warehouse: {engine.url.render_as_string(hide_password=True)}")
    print(f"  revision before: {before}")
    print(f"  revision after:  {after}" + ("" if result.changed else " (already at head)"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sigmasight", description="SigmaSight Pipeline: portfolio risk on Dagster.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="import the demo books and materialize the demo window")
    demo.add_argument("--start", default=DEMO_START, help=f"first date (default {DEMO_START})")
    demo.add_argument("--end", default=DEMO_END, help=f"last date (default {DEMO_END})")
    demo.add_argument("--workers", type=int, help="portfolio runs at once (default $SIGMASIGHT_WORKERS, else one more than the CPUs, up to 4)")
    demo.set_defaults(func=cmd_demo)

    onboard = sub.add_parser("onboard", help="validate and import a portfolio CSV")
    onboard.add_argument("file")
    onboard.add_argument("--name", required=True, help="portfolio name (unique)")
    onboard.add_argument("--owner", help="owner e-mail")
    onboard.add_argument("--id", help="portfolio id (default: slug of the name)")
    onboard.add_argument("--no-backfill", action="store_true", help="import only; do not compute its history")
    onboard.add_argument("--dry-run", action="store_true", help="validate and print what would be imported (positions, parsed options, entry sanity warnings, symbols without price history); import nothing")
    onboard.set_defaults(func=cmd_onboard)

    template = sub.add_parser("template", help="print a commented example portfolio CSV (the upload format)")
    template.set_defaults(func=cmd_template)

    trades = sub.add_parser("trades", help="a book's trades: import a trades CSV, list the ledger and lots")
    trades_sub = trades.add_subparsers(dest="trades_command", required=True)
    trades_import = trades_sub.add_parser("import", help="validate and import a trades CSV (all or nothing)")
    trades_import.add_argument("portfolio", help="portfolio id or exact name")
    trades_import.add_argument("file", help="trades CSV: trade_date, ticker, quantity, price[, fees, trade_id, tags, close_and_reverse]")
    trades_import.add_argument("--no-backfill", action="store_true", help="import only; do not recompute the affected dates")
    trades_import.set_defaults(func=cmd_trades_import)
    trades_list = trades_sub.add_parser("list", help="print the ledger and the FIFO lots of a portfolio")
    trades_list.add_argument("portfolio", help="portfolio id or exact name")
    trades_list.set_defaults(func=cmd_trades_list)

    report = sub.add_parser("report", help="write (or print) a portfolio report through Dagster")
    report.add_argument("--portfolio", required=True, help="portfolio id or exact name")
    report.add_argument("--as-of", help="report date YYYY-MM-DD (default: the latest computed date)")
    report.add_argument("--format", help="formats to write, comma-separated: md,json,csv (default all three; the PNG charts go with md); with --no-write the one to print (default md)")
    report.add_argument("--output-dir", help="report root (default $SIGMASIGHT_REPORTS_DIR or .sigmasight/reports)")
    report.add_argument("--no-write", action="store_true", help="print the one --format chosen (md, json or csv) to stdout; write nothing, launch no run")
    report.set_defaults(func=cmd_report)

    backfill = sub.add_parser("backfill", help="compute a date range for one or all portfolios")
    backfill.add_argument("--from", dest="start", required=True, help="first date YYYY-MM-DD")
    backfill.add_argument("--to", dest="end", required=True, help="last date YYYY-MM-DD")
    backfill.add_argument("--portfolio", action="append", help="portfolio id or name (repeatable; default all)")
    backfill.add_argument("--no-history", action="store_true", help="do not (re)load the market history first (the 260 sessions behind the window: the 250-session risk window and the 150-session regressions)")
    backfill.add_argument("--no-sql", action="store_true", help="do not rebuild the SQL models afterwards")
    backfill.add_argument("--submit", action="store_true", help="launch an asset backfill through the running Dagster webserver (as the UI does) instead of running here")
    backfill.add_argument("--url", default=os.environ.get("SIGMASIGHT_DAGSTER_URL", "http://127.0.0.1:3000"), help="Dagster webserver for --submit (default $SIGMASIGHT_DAGSTER_URL or http://127.0.0.1:3000)")
    backfill.add_argument("--workers", type=int, help="portfolio runs at once (default $SIGMASIGHT_WORKERS, else one more than the CPUs, up to 4)")
    backfill.set_defaults(func=cmd_backfill)

    status = sub.add_parser("status", help="latest date, coverage and failed checks per portfolio and engine")
    status.add_argument("--from", dest="start", help="coverage window start (default: each portfolio's first computed date)")
    status.add_argument("--to", dest="end", help="coverage window end (default: its latest computed date)")
    status.set_defaults(func=cmd_status)

    migrate = sub.add_parser("migrate", help="upgrade the warehouse schema to the latest revision (Alembic)")
    migrate.add_argument("--database-url", help="warehouse URL (default $SIGMASIGHT_DATABASE_URL, else the embedded SQLite file)")
    migrate.set_defaults(func=cmd_migrate)

    from sigmasight_pipeline.commands import register_all

    register_all(sub)  # the command groups with a module of their own (whatif, stress, tags, ...)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: runs in progress stopped and are recorded as failed in the Dagster instance; every "
            "partition already written is complete, an interrupted one kept its previous rows. Rerun the same "
            "command to finish.",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
