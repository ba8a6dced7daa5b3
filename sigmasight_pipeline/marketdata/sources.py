"""The registry of market-data sources: a source by name, the environment variables that choose it.

It sits above ``base`` (the interface) and the three sources (``sample``, ``yfinance_source``,
``csv_source``), which import ``base``; ``base`` imports none of them, so there is no import circle.
"""

from __future__ import annotations

import os

from .base import MarketDataSource
from .csv_source import CsvSource
from .sample import SampleSource
from .yfinance_source import YFinanceSource

SOURCE_ENV = "SIGMASIGHT_MARKET_DATA"
CSV_DIR_ENV = "SIGMASIGHT_MARKET_DATA_CSV"
SOURCE_NAMES: tuple[str, ...] = ("sample", "yfinance", "csv")


def get_source(name: str | None = None, **options) -> MarketDataSource:
    """The source called ``name`` (else env SIGMASIGHT_MARKET_DATA, else "sample").

    Names: "sample" (offline, deterministic; the default), "yfinance", "csv" (directory from
    ``options["directory"]`` or env SIGMASIGHT_MARKET_DATA_CSV). Other options go to the source's
    constructor. Unknown name: ValueError listing the allowed values.
    """
    chosen = (name or os.environ.get(SOURCE_ENV) or "sample").strip().lower()
    if chosen == "sample":
        return SampleSource(**options)
    if chosen == "yfinance":
        return YFinanceSource(**options)
    if chosen == "csv":
        directory = options.pop("directory", None) or os.environ.get(CSV_DIR_ENV)
        if not directory:
            raise ValueError(f"the csv market-data source needs a directory: set {CSV_DIR_ENV}")
        return CsvSource(directory, **options)
    raise ValueError(
        f"unknown market data source {chosen!r}; allowed: {', '.join(SOURCE_NAMES)} "
        f"(argument or env {SOURCE_ENV})"
    )
