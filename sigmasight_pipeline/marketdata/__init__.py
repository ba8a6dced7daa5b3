"""Market data: the XNYS calendar and price sources behind one interface (pandas only).

Sources: ``SampleSource`` (offline, deterministic; the default), ``YFinanceSource``, ``CsvSource``;
choose one with ``get_source`` (``sources``; env SIGMASIGHT_MARKET_DATA). See ``base`` for the frame
contracts (closes, and splits: ``fetch_splits``). Imports run one way: ``calendar`` <- ``base`` <-
``security_master`` <- the sources <- ``sources`` (the registry).
"""

from . import calendar
from .base import (
    FACTOR_PROXIES,
    RATE_SYMBOLS,
    SPLIT_COLUMNS,
    SYMBOLS,
    FetchReport,
    MarketDataSource,
    empty_splits,
    has_splits,
    is_option_symbol,
    option_underlying,
    price_symbol_for,
    universe,
)
from .csv_source import CsvFormatError, CsvSource
from .sample import SampleSource
from .security_master import load_security_master, lookup
from .sources import get_source
from .yfinance_source import YFinanceSource

__all__ = [
    "FACTOR_PROXIES",
    "RATE_SYMBOLS",
    "SPLIT_COLUMNS",
    "SYMBOLS",
    "CsvFormatError",
    "CsvSource",
    "FetchReport",
    "MarketDataSource",
    "SampleSource",
    "YFinanceSource",
    "calendar",
    "empty_splits",
    "get_source",
    "has_splits",
    "is_option_symbol",
    "load_security_master",
    "lookup",
    "option_underlying",
    "price_symbol_for",
    "universe",
]
