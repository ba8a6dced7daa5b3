"""The three demo books, shipped as upload CSVs in ``sigmasight_pipeline/data/demo_portfolios/``.

They import through the same code path as any upload (:func:`demo_positions` is just
:func:`~.portfolio_csv.parse_portfolio_csv` on the packaged file).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from importlib.resources import files

from .portfolio_csv import ParsedPosition, parse_portfolio_csv

__all__ = ["DemoBook", "DEMO_BOOKS", "demo_book", "demo_csv_text", "demo_positions"]


@dataclass(frozen=True)
class DemoBook:
    """A demo portfolio: its id (a slug, also the Dagster partition key), name, owner and CSV file."""

    portfolio_id: str
    name: str
    owner: str
    csv_file: str


DEMO_BOOKS: tuple[DemoBook, ...] = (
    DemoBook("demo-individual", "Demo Individual Investor Portfolio", "demo_individual@sigmasight.com", "individual.csv"),
    DemoBook("demo-hnw", "Demo High Net Worth Investor Portfolio", "demo_hnw@sigmasight.com", "hnw.csv"),
    DemoBook(
        "demo-hedge-fund",
        "Demo Hedge Fund Style Investor Portfolio",
        "demo_hedgefundstyle@sigmasight.com",
        "hedge_fund.csv",
    ),
)


def demo_book(portfolio_id: str) -> DemoBook:
    """The demo book with this id; ``KeyError`` if there is none."""
    for book in DEMO_BOOKS:
        if book.portfolio_id == portfolio_id:
            return book
    raise KeyError(f"no demo book {portfolio_id!r}; known: {', '.join(b.portfolio_id for b in DEMO_BOOKS)}")


def demo_csv_text(book: DemoBook) -> str:
    """The book's CSV text, read from the package data (works from an installed wheel too)."""
    return (files("sigmasight_pipeline.data") / "demo_portfolios" / book.csv_file).read_text(encoding="utf-8")


def demo_positions(book: DemoBook, *, today: date | None = None) -> list[ParsedPosition]:
    """Parse and validate the book's CSV exactly as an upload."""
    return parse_portfolio_csv(demo_csv_text(book), today=today)
