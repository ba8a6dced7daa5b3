"""``sigmasight template``: a commented example of the portfolio upload (``spec/portfolio_csv.md``).

The text is itself a valid upload: the parser skips its ``#`` comment lines (``portfolio_csv``, "Comments"),
and its rows (a stock, an ETF, a short, a bought put with its implied volatility, a written call; tags) import
as they are. Their prices are near the sample market data's closes on their dates, so the entry sanity check
has nothing to say about them.
"""

from __future__ import annotations

from .portfolio_csv import MAX_IMPLIED_VOL, MAX_TAG_LENGTH, OPTIONAL_COLUMNS, REQUIRED_COLUMNS

__all__ = ["upload_template"]

_COLUMNS = ", ".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)

UPLOAD_TEMPLATE = f"""\
# SigmaSight portfolio upload: one row per position, UTF-8, at most 10,000 rows and 10 MB.
# Lines starting with # are comments (ignored); blank lines are ignored. Header row required; column names
# are case-insensitive, in any order; extra columns are ignored. Columns: {_COLUMNS}
#
# ticker       a stock, ETF or fund symbol (AAPL, SPY, BRK-B), or an OCC option symbol: underlying (1-6
#              characters), expiry YYMMDD, C or P, strike x 1000 in 8 digits; AAPL250815P00200000 is the
#              AAPL put, strike 200.00, expiring 2025-08-15 (the 21-character space-padded form works too)
# quantity     decimal, not 0: positive long, negative short (a written option); options in contracts
# entry_price  decimal > 0, per share; for options per contract-share (x 100 per contract is applied)
# entry_date   YYYY-MM-DD, not in the future (an option's not after its expiry)
# tags         optional: comma-separated inside one quoted field, each at most {MAX_TAG_LENGTH} characters
# implied_vol  optional, options only: implied volatility as a decimal (0.28 = 28%, below {MAX_IMPLIED_VOL}); blank:
#              the Greeks use the underlying's realised volatility
#
# The position type follows from the symbol and the sign: LONG / SHORT for stocks, LC / SC / LP / SP for
# long or short calls and puts. Every error in the file is reported at once (row and column); a file with
# any error imports nothing. Preview an import: sigmasight onboard FILE --name NAME --dry-run
ticker,quantity,entry_price,entry_date,tags,implied_vol
# a stock, long 100 shares, two tags
AAPL,100,225.00,2024-01-15,"Core Holdings,Tech Growth",
# an ETF
SPY,50,470.00,2024-01-02,Index Core,
# a short: 200 shares sold short
NFLX,-200,490.00,2024-01-25,Short Value Traps,
# an option bought: 10 AAPL 200 puts expiring 2025-08-15 at 4.50 a share (450 a contract), implied vol 28%
AAPL250815P00200000,10,4.50,2024-01-20,Hedges,0.28
# an option written: 5 TSLA 300 calls expiring 2025-08-15 sold at 8.00 (negative quantity)
TSLA250815C00300000,-5,8.00,2024-01-25,Income,
"""


def upload_template() -> str:
    """The commented example upload that ``sigmasight template`` prints."""
    return UPLOAD_TEMPLATE
