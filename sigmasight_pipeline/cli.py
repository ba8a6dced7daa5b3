"""The ``sigmasight`` command: demo, onboard, status (and, as they land, report and backfill)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

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
    from sigmasight_pipeline import orchestration as orch
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
        ids.append(pid)
    orch.run_window(instance, ids, args.start, args.end, defs=defs)
    print(f"\ndemo done in {time.monotonic() - started:.0f} s")
    print(f"  warehouse:      {database_url()}")
    print(f"  dagster home:   {os.environ['DAGSTER_HOME']} (runs recorded there; `make dev` shows them)")
    print("  Dagster UI:     make dev, then open http://127.0.0.1:3000 (Assets, Runs)")
    return 0


def cmd_onboard(args: argparse.Namespace) -> int:
    from sigmasight_pipeline import orchestration as orch
    from sigmasight_pipeline.onboarding import PortfolioValidationError

    path = Path(args.file)
    if not path.is_file():
        print(f"error: no such file: {path}", file=sys.stderr)
        return 2
    try:
        pid = orch.import_portfolio(
            _instance(), path.read_bytes(),
            name=args.name, owner=args.owner, portfolio_id=args.id, filename=path.name,
        )
    except PortfolioValidationError as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 1
    print(f"imported {args.name!r} as portfolio {pid}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sigmasight", description="SigmaSight Pipeline: portfolio risk on Dagster.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="import the demo books and materialize the demo window")
    demo.add_argument("--start", default=DEMO_START, help=f"first date (default {DEMO_START})")
    demo.add_argument("--end", default=DEMO_END, help=f"last date (default {DEMO_END})")
    demo.set_defaults(func=cmd_demo)

    onboard = sub.add_parser("onboard", help="validate and import a portfolio CSV")
    onboard.add_argument("file")
    onboard.add_argument("--name", required=True, help="portfolio name (unique)")
    onboard.add_argument("--owner", help="owner e-mail")
    onboard.add_argument("--id", help="portfolio id (default: slug of the name)")
    onboard.set_defaults(func=cmd_onboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
