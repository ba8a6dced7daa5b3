"""Market data: the XNYS calendar and price sources behind one interface (pandas only).

Sources: ``SampleSource`` (offline, deterministic; the default), ``YFinanceSource``, ``CsvSource``;
choose one with ``get_source`` (``sources``; env SIGMASIGHT_MARKET_DATA). See ``base`` for the frame
contract. Imports run one way: ``calendar`` <- ``base`` <- the sources <- ``sources`` (the registry).
"""

from . import calendar
from .base import (
    FACTOR_PROXIES,
    RATE_SYMBOLS,
    SYMBOLS,
    FetchReport,
    MarketDataSource,
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
    "SYMBOLS",
    "CsvFormatError",
    "CsvSource",
    "FetchReport",
    "MarketDataSource",
    "SampleSource",
    "YFinanceSource",
    "calendar",
    "get_source",
    "is_option_symbol",
    "load_security_master",
    "lookup",
    "option_underlying",
    "price_symbol_for",
    "universe",
]
