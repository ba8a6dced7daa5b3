"""Onboarding preview (``sigmasight onboard FILE --name N --dry-run``): what an import would do, doing none of it.

The file goes through the import's own steps up to the point where the import writes (books.md, "Questions
asked of a book"): the same parser (:func:`~sigmasight_pipeline.onboarding.portfolio_csv.parse_portfolio_csv`:
every row and field error at once, as :class:`PortfolioValidationError`), the same portfolio id (the slug of the
id or name) and name rule, the same entry sanity judged against the same market-data source
(:mod:`.entry_sanity`). Beyond what the import prints it lists the market-data symbols of the book that have no
price in the warehouse yet, and whether the configured source has prices for them around their entry dates.
Nothing is written: no portfolio row, no warning row, no Dagster partition or run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sigmasight_pipeline.marketdata import sources
from sigmasight_pipeline.marketdata.base import price_symbol_for
from sigmasight_pipeline.marketdata.sources import SOURCE_ENV
from sigmasight_pipeline.quality.entries import entry_sanity_warnings
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import read_frame
from sigmasight_pipeline.warehouse.portfolios import list_portfolios

from .entry_sanity import entry_rows, source_references
from .portfolio_csv import ParsedPosition, parse_portfolio_csv, slugify

__all__ = ["POSITION_COLUMNS", "OnboardingPreview", "positions_frame", "preview_upload", "render_preview"]

#: The columns of :attr:`OnboardingPreview.positions`, one row per parsed position.
POSITION_COLUMNS = ["row", "ticker", "type", "quantity", "entry_price", "entry_date", "underlying", "option",
                    "strike", "expiration", "multiplier", "implied_vol", "cost_basis", "tags"]


@dataclass(frozen=True)
class OnboardingPreview:
    """What importing an upload would do.

    ``positions``: :data:`POSITION_COLUMNS` (the parsed values, options' fields from their OCC symbol);
    ``entry_warnings``: ``quality.entries.WARNING_COLUMNS``; ``symbols``: the book's market-data symbols (an
    option's underlying, "VIX" as "^VIX"), sorted; ``without_history``: those with no ``market_prices`` row in
    the warehouse; ``source_unpriced``: those the source has no close for from a week before the first entry
    date to the last (the import would find no price for them either); ``replaces``: a portfolio with this
    id exists and the import would replace its upload.
    """

    portfolio_id: str
    name: str
    positions: pd.DataFrame
    entry_warnings: pd.DataFrame
    symbols: list[str]
    without_history: list[str]
    source_name: str
    source_unpriced: list[str]
    replaces: bool

    @property
    def earliest_entry(self) -> pd.Timestamp:
        return pd.Timestamp(self.positions["entry_date"].min())


def positions_frame(parsed: Sequence[ParsedPosition]) -> pd.DataFrame:
    """The parsed positions as a table (:data:`POSITION_COLUMNS`); option fields blank for stocks."""
    return pd.DataFrame(
        [(p.row, p.symbol, p.position_type, p.quantity, p.entry_price, p.entry_date, p.underlying_symbol,
          p.option_type, p.strike, p.expiration, p.multiplier, p.implied_vol, p.cost_basis, ", ".join(p.tags))
         for p in parsed],
        columns=POSITION_COLUMNS,
    )


def _stored_symbols(engine: Engine, symbols: list[str]) -> set[str]:
    """Those of ``symbols`` with at least one row in ``market_prices``."""
    t = schema.market_prices
    found = read_frame(engine, sa.select(t.c.symbol).where(t.c.symbol.in_(symbols)).distinct())
    return set(found["symbol"])


def preview_upload(engine: Engine, csv: str | bytes, *, name: str, portfolio_id: str | None = None,
                   source=None) -> OnboardingPreview:
    """Validate ``csv`` as the import does and say what importing it as ``name`` would do; write nothing.

    ``source`` is the market-data source of the entry sanity (default: the configured one,
    ``$SIGMASIGHT_MARKET_DATA``, as the import uses). Raises what the import raises, before anything else:
    :class:`~sigmasight_pipeline.onboarding.PortfolioValidationError` (every row and field error) or
    ``ValueError`` (the id is not a valid slug, or the name belongs to another portfolio).
    """
    parsed = parse_portfolio_csv(csv)
    pid = slugify(portfolio_id or name)
    books = list_portfolios(engine)
    clash = books[(books["name"] == name) & (books["portfolio_id"] != pid)]
    if len(clash):  # the import's own rule (warehouse.portfolios.save_portfolio_source), same words
        raise ValueError(f"portfolio name {name!r} is already used by portfolio {clash['portfolio_id'].iloc[0]!r}")
    source = source if source is not None else sources.get_source()
    rows = entry_rows(parsed)
    closes, splits = source_references(source, rows)
    symbols = sorted({price_symbol_for(p.underlying_symbol) for p in parsed})
    stored = _stored_symbols(engine, symbols)
    priced = set(closes.columns[closes.notna().any()]) if not closes.empty else set()
    return OnboardingPreview(
        portfolio_id=pid,
        name=name,
        positions=positions_frame(parsed),
        entry_warnings=entry_sanity_warnings(rows, closes, splits),
        symbols=symbols,
        without_history=[s for s in symbols if s not in stored],
        source_name=getattr(source, "name", type(source).__name__),
        source_unpriced=[s for s in symbols if s not in priced],
        replaces=bool((books["portfolio_id"] == pid).any()),
    )


def render_preview(preview: OnboardingPreview, *, fetch_window: tuple[pd.Timestamp, pd.Timestamp] | None,
                   backfill: bool) -> str:
    """The dry run's text. ``fetch_window``: the market history an import with its backfill would load from the
    source (None: no completed session to compute yet); ``backfill``: False for ``--no-backfill`` (the import
    then asks the source for nothing until the portfolio's history is computed)."""
    p = preview
    money = {c: pd.to_numeric(p.positions[c], errors="coerce").map("{:,.2f}".format) for c in ("strike", "cost_basis")}
    shown = p.positions.assign(
        entry_date=pd.to_datetime(p.positions["entry_date"]).dt.strftime("%Y-%m-%d"),
        expiration=pd.to_datetime(p.positions["expiration"]).dt.strftime("%Y-%m-%d"),
        **money,
    ).astype(object).where(p.positions.notna(), "")
    kinds = p.positions["type"].value_counts()
    counts = ", ".join(f"{n} {t}" for t, n in kinds.items())
    lines = [
        f"dry run: nothing imported. {len(p.positions)} position(s) would be imported as {p.name!r} "
        f"(portfolio id {p.portfolio_id}" + ("; it exists: its upload would be replaced" if p.replaces else "") + ")",
        f"  types: {counts}; earliest entry {p.earliest_entry:%Y-%m-%d}",
        "",
        shown.to_markdown(index=False, disable_numparse=True),
        "",
    ]
    if p.entry_warnings.empty:
        lines.append("entry sanity: no warning")
    else:
        lines.append(f"entry sanity: {len(p.entry_warnings)} warning(s); the rows would be imported as given:")
        lines += [f"  warning: {m}" for m in p.entry_warnings["message"]]
    configured = os.environ.get(SOURCE_ENV) or "sample"
    lines.append("")
    lines.append(f"market data: {len(p.symbols)} symbol(s): {', '.join(p.symbols)}; source {p.source_name!r} "
                 f"(${SOURCE_ENV}={configured})")
    if not p.without_history:
        lines.append("  every symbol has price history in the warehouse")
    else:
        lines.append(f"  no price history in the warehouse: {', '.join(p.without_history)}")
        if not backfill:
            lines.append(f"  with --no-backfill the import asks the source for nothing; they are fetched from "
                         f"{p.source_name!r} when the portfolio's history is computed (sigmasight backfill, or the "
                         "automation)")
        elif fetch_window is None:
            lines.append("  no completed session since the entry dates: the import computes nothing yet and asks "
                         "the source for nothing")
        else:
            start, end = fetch_window
            lines.append(f"  the import would ask {p.source_name!r} for them: market history "
                         f"{start:%Y-%m-%d} .. {end:%Y-%m-%d}")
    if p.source_unpriced:
        lines.append(f"  {p.source_name!r} has no price around the entry dates for: {', '.join(p.source_unpriced)} "
                     "(their positions would have no market value)")
    return "\n".join(lines) + "\n"
