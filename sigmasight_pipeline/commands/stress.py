"""``sigmasight stress``: ad-hoc stress scenarios on a stored book, in memory (``questions.adhoc_stress``).

Exit codes: 0 answered; 1 bad input (a scenario file that does not validate, a date without stored inputs, a
book that holds nothing); 2 unknown portfolio, missing scenario file or an output path that cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sigmasight stress`` to ``subparsers``."""
    stress = subparsers.add_parser(
        "stress", help="ad-hoc stress: a scenario file on a stored book, computed in memory; nothing is stored",
        description=(
            "Apply the scenarios of FILE (the format of the stored data/stress_scenarios.yaml: id, name, optional "
            "category / severity / period, shocks {factor: fractional return}, optional rate_shock_bp) to the book "
            "of a portfolio as of a computed date, with the stored inputs of that date and the engine of the stored "
            "stress results. Prints direct and correlated P&L and the per-factor breakdown; writes nothing."
        ),
    )
    stress.add_argument("--portfolio", required=True, help="portfolio id or exact name")
    stress.add_argument("--scenarios", required=True, metavar="FILE", help="scenario file (YAML)")
    stress.add_argument("--as-of", help="date YYYY-MM-DD (default: the latest date with stored stress inputs)")
    stress.add_argument("--format", choices=("md", "json"), default="md", help="md (default) or json")
    stress.add_argument("--output", metavar="FILE", help="write the answer to FILE instead of stdout")
    stress.set_defaults(func=cmd_stress)


def cmd_stress(args: argparse.Namespace) -> int:
    import warnings

    import pandas as pd

    from sigmasight_pipeline.warehouse.io import get_engine
    from sigmasight_pipeline.warehouse.portfolios import UnknownPortfolioError, get_portfolio
    from sigmasight_pipeline.warehouse.reference import ScenarioFileError, parse_scenarios

    path = Path(args.scenarios)
    if not path.is_file():
        print(f"error: no such file: {path}", file=sys.stderr)
        return 2
    try:
        as_of = pd.Timestamp(args.as_of) if args.as_of else None
    except ValueError:
        print(f"error: --as-of {args.as_of!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 1
    try:
        scenarios, shocks = parse_scenarios(path.read_text(encoding="utf-8"), str(path))
    except UnicodeDecodeError as exc:
        print(f"error: {path}: not UTF-8 text ({exc.reason} at byte {exc.start})", file=sys.stderr)
        return 1
    except ScenarioFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    engine = get_engine()
    try:
        portfolio_id = get_portfolio(engine, args.portfolio)["portfolio_id"]
    except UnknownPortfolioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # The engines' side (Dagster definitions included) is imported once the question is known to be well formed.
    import dagster as dg

    with warnings.catch_warnings():  # the definitions' beta / preview notices are not this command's output
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        from sigmasight_pipeline.questions.adhoc_stress import AdhocStressError, adhoc_stress, adhoc_stress_markdown, dumps
    try:
        result = adhoc_stress(engine, portfolio_id, scenarios, shocks, as_of=as_of, source=str(path))
    except AdhocStressError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = dumps(result) if args.format == "json" else adhoc_stress_markdown(result)
    if not args.output:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"{args.output}: {len(result.results)} scenario(s), {result.portfolio_id} as of {result.as_of:%Y-%m-%d}")
    return 0
