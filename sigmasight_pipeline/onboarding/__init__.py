"""Portfolio onboarding: upload CSV parsing and validation, OCC option symbols, the demo books.

Pure Python: nothing of Dagster or the database.
"""

from .demo import DEMO_BOOKS, DemoBook, demo_book, demo_csv_text, demo_positions
from .occ import OptionSymbol, looks_like_occ, parse_occ_symbol
from .portfolio_csv import (
    POSITION_TYPES,
    REQUIRED_COLUMNS,
    ParsedPosition,
    PortfolioValidationError,
    RowError,
    parse_portfolio_csv,
    slugify,
)

__all__ = [
    "DEMO_BOOKS",
    "DemoBook",
    "demo_book",
    "demo_csv_text",
    "demo_positions",
    "OptionSymbol",
    "looks_like_occ",
    "parse_occ_symbol",
    "POSITION_TYPES",
    "REQUIRED_COLUMNS",
    "ParsedPosition",
    "PortfolioValidationError",
    "RowError",
    "parse_portfolio_csv",
    "slugify",
]
