"""``sigmasight tags``: list, add and remove position tags (books.md, "Tags and strategies").

A tag change is an event of the book with its effective date (``--from``, default today): the engines apply
it from that date's session on, so the exposures by tag stored for earlier dates stay as they are and those
from the change on reflect it (``warehouse.book.change_tag``, ``engines.book``). After a change the command
updates the stored positions and recomputes the portfolio from the effective date, as ``sigmasight trades
import`` does (``--no-backfill``: store the change and the positions only).

Exit codes: 0 done; 1 refused (a bad tag, an unknown position or ticker, a bad date, a tag not there to
remove or already there; nothing stored) or a recompute whose checks failed; 2 unknown portfolio.
"""

from __future__ import annotations

import argparse
import sys

_TICKER_HELP = (
    "the position of exactly this symbol: a stock's ticker (AAPL) or an option's OCC symbol "
    "(AAPL250620C00200000). Options on AAPL are positions of their own: --ticker AAPL does not change them"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sigmasight tags list|add|remove`` to ``subparsers``."""
    tags = subparsers.add_parser(
        "tags", help="position tags (strategies): list them, add or remove one from a date on",
        description=(
            "Tags group positions into strategies: the report shows exposures by tag and by underlying. A tag "
            "change applies from its date on (--from, default today); earlier dates keep their tags."
        ),
    )
    sub = tags.add_subparsers(dest="tags_command", required=True)
    listing = sub.add_parser("list", help="every position's current tags and the tag change history")
    listing.add_argument("--portfolio", required=True, help="portfolio id or exact name")
    listing.set_defaults(func=cmd_tags_list)
    for action, verb in (("add", "add a tag to"), ("remove", "remove a tag from")):
        edit = sub.add_parser(action, help=f"{verb} a position from a date on, then recompute from that date")
        edit.add_argument("--portfolio", required=True, help="portfolio id or exact name")
        target = edit.add_mutually_exclusive_group(required=True)
        target.add_argument("--position", type=int, metavar="ID", help="position id (sigmasight tags list shows them)")
        target.add_argument("--ticker", metavar="T", help=_TICKER_HELP)
        edit.add_argument("tag", metavar="TAG", help="one tag: 1-40 characters, no comma")
        edit.add_argument("--from", dest="effective", metavar="DATE",
                          help="effective date YYYY-MM-DD (default today; not before the book's first entry, not "
                               "in the future); a weekend or holiday applies from the next session")
        edit.add_argument("--no-backfill", action="store_true",
                          help="store the change and the positions only; do not recompute the affected dates")
        edit.set_defaults(func=cmd_tags_edit, action=action)


def _portfolio_id(engine, name: str) -> str | None:
    from sigmasight_pipeline.warehouse.portfolios import UnknownPortfolioError, get_portfolio

    try:
        return get_portfolio(engine, name)["portfolio_id"]
    except UnknownPortfolioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def cmd_tags_list(args: argparse.Namespace) -> int:
    from sigmasight_pipeline.warehouse.book import tag_tables
    from sigmasight_pipeline.warehouse.io import get_engine

    engine = get_engine()
    pid = _portfolio_id(engine, args.portfolio)
    if pid is None:
        return 2
    current, history = tag_tables(engine, pid)
    print(f"# {pid}: tags now (a position with several tags counts in each tag's group)\n")
    print(current.to_markdown(index=False))
    print(f"\n# {pid}: tag changes (applied in effective-date order, each from the session shown on)\n")
    print(history.to_markdown(index=False) if len(history) else "none")
    return 0


def cmd_tags_edit(args: argparse.Namespace) -> int:
    import datetime as dt

    import pandas as pd

    from sigmasight_pipeline.warehouse.book import TagChangeError, change_tag
    from sigmasight_pipeline.warehouse.io import get_engine

    try:
        effective = dt.date.fromisoformat(args.effective) if args.effective else None
    except ValueError:
        print(f"error: --from {args.effective!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 1
    engine = get_engine()
    pid = _portfolio_id(engine, args.portfolio)
    if pid is None:
        return 2
    try:
        done = change_tag(engine, pid, tag=args.tag, action=args.action, position_id=args.position,
                          ticker=args.ticker, effective_date=effective)
    except TagChangeError as exc:
        print(f"error: {exc}; nothing changed", file=sys.stderr)
        return 1
    verb = "added tag" if done.action == "add" else "removed tag"
    for (position, symbol), tags in zip(done.positions, done.tags_after):
        print(f"{verb} {done.tag!r} {'to' if done.action == 'add' else 'from'} position {position} ({symbol}) of "
              f"{pid} from {done.effective_date:%Y-%m-%d} (session {done.session:%Y-%m-%d}); its tags from then: "
              f"{', '.join(tags) or 'none'}")
    _store_positions(pid, done.effective_date)
    print("positions updated")
    if args.no_backfill:
        return 0
    from sigmasight_pipeline.cli import _compute_window

    return _compute_window(pid, pd.Timestamp(done.effective_date) - pd.Timedelta(days=1), "recomputing",
                           "no completed session since the effective date yet: nothing to recompute")


def _store_positions(portfolio_id: str, effective_date) -> None:
    """Run ``portfolio_positions`` for the portfolio here (its stored tags are the current ones), tagged like a
    trades import so that automation does not recompute the book's whole history: the caller recomputes
    from the effective date."""
    from sigmasight_pipeline import runner as orch
    from sigmasight_pipeline.cli import _instance
    from sigmasight_pipeline.defs.automation import TRADES_WINDOW_TAG
    from sigmasight_pipeline.defs.operations.onboarding import ONBOARDING_TAG, POSITIONS_KEY
    from sigmasight_pipeline.defs.partitions import portfolios

    instance = _instance()
    if not instance.has_dynamic_partition(portfolios.name, portfolio_id):  # a book stored through another instance
        instance.add_dynamic_partitions(portfolios.name, [portfolio_id])
    orch.run(instance, [POSITIONS_KEY], partition_key=portfolio_id,
             tags={ONBOARDING_TAG: portfolio_id, TRADES_WINDOW_TAG: f"{effective_date:%Y-%m-%d}"})
