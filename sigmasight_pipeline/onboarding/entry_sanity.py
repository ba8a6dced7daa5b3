"""Entry sanity at onboarding: a file's rows judged against the market-data source (``quality.entries``).

The onboarding path (``defs/operations/onboarding.onboard``) calls :func:`file_entry_warnings` on the parsed
upload, stores the warnings with the upload (source :data:`UPLOAD_SOURCE`; ``warehouse.entry_warnings``) and the
CLI prints them; a trades import does the same with its parsed trades and the file's name as source. Nothing is
refused: the rows are imported as given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sigmasight_pipeline.marketdata.base import price_symbol_for
from sigmasight_pipeline.marketdata.security_master import load_security_master
from sigmasight_pipeline.quality.entries import MAX_CLOSE_AGE_DAYS, RATE_SYMBOL, ROW_COLUMNS, entry_sanity_warnings

from .portfolio_csv import ParsedPosition

__all__ = ["UPLOAD_SOURCE", "entry_rows", "source_references", "file_entry_warnings"]

#: ``entry_warnings.source`` of the upload's rows (a trades file's rows carry the file's name).
UPLOAD_SOURCE = "upload"


def entry_rows(parsed: Sequence) -> pd.DataFrame:
    """The rows :func:`~sigmasight_pipeline.quality.entries.entry_sanity_warnings` judges, from parsed upload
    positions (``entry_price``, ``entry_date``) or parsed trades (``price``, ``trade_date``): the file's line,
    ticker, the underlying's market-data symbol ("VIX" -> "^VIX"), signed quantity, price, date, option type
    and strike, as in the file (unadjusted); an option's expiration and its underlying's dividend yield
    (shipped security master) for the call's lower bound."""
    def price(p):
        return p.entry_price if isinstance(p, ParsedPosition) else p.price

    def day(p):
        return p.entry_date if isinstance(p, ParsedPosition) else p.trade_date

    yields = load_security_master().set_index("symbol")["dividend_yield"]
    underlyings = [price_symbol_for(p.underlying_symbol) for p in parsed]
    return pd.DataFrame(
        {
            "source_row": [p.row for p in parsed],
            "ticker": [p.symbol for p in parsed],
            "underlying_symbol": [price_symbol_for(p.underlying_symbol) for p in parsed],
            "quantity": [float(p.quantity) for p in parsed],
            "price": [float(price(p)) for p in parsed],
            "date": pd.to_datetime([day(p) for p in parsed]),
            "option_type": [p.option_type for p in parsed],
            "strike": [float(p.strike) if p.strike is not None else np.nan for p in parsed],
            "expiration": pd.to_datetime([p.expiration for p in parsed]),
            "dividend_yield": yields.reindex(underlyings).to_numpy(dtype=float),
        },
        columns=[*ROW_COLUMNS, "expiration", "dividend_yield"],
    )


def source_references(source, rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(closes, splits)`` of the rows' underlyings from a market-data source: its split-adjusted closes from
    :data:`MAX_CLOSE_AGE_DAYS` before the first date to the last, and its splits (``source.fetch_splits``)."""
    symbols = sorted(set(rows["underlying_symbol"]) | {RATE_SYMBOL})  # the short rate: a call's lower bound
    dates = pd.to_datetime(rows["date"])
    start = (dates.min() - pd.Timedelta(days=MAX_CLOSE_AGE_DAYS)).date()
    closes = source.fetch_closes(symbols, start, dates.max().date())
    return closes, source.fetch_splits([s for s in symbols if not s.startswith("^")])


def file_entry_warnings(parsed: Sequence, source) -> pd.DataFrame:
    """The entry sanity warnings of a parsed upload or trades file, judged against ``source`` (a
    ``MarketDataSource``); ``quality.entries.WARNING_COLUMNS``, empty when every row is sane."""
    rows = entry_rows(parsed)
    if rows.empty:
        return entry_sanity_warnings(rows, pd.DataFrame(), None)
    return entry_sanity_warnings(rows, *source_references(source, rows))
