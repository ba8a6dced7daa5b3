"""``sigmasight whatif``: what hypothetical trades would do to a book's risk (``questions.whatif``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cmd_whatif(args: argparse.Namespace) -> int:
    import warnings

    import dagster as dg

    with warnings.catch_warnings():  # the engines' compute functions live beside their asset definitions
        warnings.simplefilter("ignore", dg.BetaWarning)
        from sigmasight_pipeline.questions.whatif import (
            WhatIfError, validate_whatif_json, what_if, whatif_json, whatif_markdown,
        )
    from sigmasight_pipeline.warehouse.io import get_engine
    from sigmasight_pipeline.warehouse.portfolios import UnknownPortfolioError

    path = Path(args.trades)
    if not path.is_file():
        print(f"error: no such file: {path}", file=sys.stderr)
        return 2
    try:
        result = what_if(get_engine(), args.portfolio, path.read_bytes(), as_of=args.as_of)
    except UnknownPortfolioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except WhatIfError as exc:
        print(f"error: {path}: {exc}" if exc.errors else f"error: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        document = whatif_json(result)
        validate_whatif_json(document)
        text = json.dumps(document, indent=2) + "\n"
    else:
        text = whatif_markdown(result)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "whatif", help="what hypothetical trades would do to a book: before / after / change of its risk",
        description="Apply hypothetical trades (the trades CSV format) in memory to a stored book as of a date and "
                    "print before / after / change of value, exposures, Greeks, factor exposures, VaR / ES, the five "
                    "worst stress scenarios and the top risk contributors. Nothing is stored.",
    )
    p.add_argument("--portfolio", required=True, help="portfolio id or exact name")
    p.add_argument("--trades", required=True, help="trades CSV: trade_date, ticker, quantity, price[, fees, trade_id, tags, close_and_reverse]; every trade dated on or before --as-of")
    p.add_argument("--as-of", help="date YYYY-MM-DD, an XNYS session (default: the portfolio's latest computed date)")
    p.add_argument("--format", choices=["md", "json"], default="md", help="output format (default md)")
    p.add_argument("--output", help="write to this file instead of stdout")
    p.set_defaults(func=cmd_whatif)
