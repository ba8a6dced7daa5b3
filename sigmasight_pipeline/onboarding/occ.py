"""OCC option symbols.

An OCC symbol is the underlying (1-6 characters of ``A-Z 0-9 . -``), the expiry as ``YYMMDD``
(years 2000-2099), ``C`` or ``P``, and the strike times 1000 as 8 digits::

    AAPL250815P00200000      unpadded: AAPL put, strike 200.000, expiring 2025-08-15
    AAPL  250815P00200000    standard 21-character form: underlying padded to 6 with spaces

The unpadded form is canonical (:attr:`OptionSymbol.occ`).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["OptionSymbol", "parse_occ_symbol", "looks_like_occ"]

_UNDERLYING_RE = re.compile(r"[A-Z0-9][A-Z0-9.\-]{0,5}")
# The shape only: something, optional padding, 6 digits, one letter, digits. The type letter is the
# last letter of the string, so the split is unambiguous. Field contents are checked by the parser.
_SHAPE_RE = re.compile(r"(?P<root>[^ ]+?)(?P<pad> *)(?P<date>[0-9]{6})(?P<type>[A-Z])(?P<strike>[0-9]+)")
_MAX_STRIKE_X1000 = 10**8 - 1


@dataclass(frozen=True)
class OptionSymbol:
    """A parsed OCC option symbol. ``strike`` is exact (3 decimal places, as encoded)."""

    underlying: str
    expiration: datetime.date
    option_type: str  # 'C' or 'P'
    strike: Decimal

    def __post_init__(self) -> None:
        if not _UNDERLYING_RE.fullmatch(self.underlying):
            raise ValueError(f"invalid underlying {self.underlying!r}: expected 1-6 characters of A-Z, 0-9, '.', '-'")
        if not 2000 <= self.expiration.year <= 2099:
            raise ValueError(f"expiration {self.expiration} outside 2000-2099 (not encodable as YYMMDD)")
        if self.option_type not in ("C", "P"):
            raise ValueError(f"option type must be 'C' or 'P', got {self.option_type!r}")
        strike_x1000 = Decimal(self.strike) * 1000
        if strike_x1000 != strike_x1000.to_integral_value() or not 0 < strike_x1000 <= _MAX_STRIKE_X1000:
            raise ValueError(f"strike {self.strike} must be > 0, below 100000 and have at most 3 decimal places")

    @property
    def occ(self) -> str:
        """Canonical unpadded form, e.g. ``AAPL250815P00200000``."""
        return f"{self.underlying}{self.expiration:%y%m%d}{self.option_type}{int(self.strike * 1000):08d}"

    def __str__(self) -> str:
        return self.occ


def looks_like_occ(text: str) -> bool:
    """True if ``text`` has the shape of an OCC symbol (padded or not), valid or not.

    The shape is: a root, optional spaces, six digits, one letter, digits. A plain ticker such as
    ``BRK-B`` or ``FXNAX`` never has it. Use :func:`parse_occ_symbol` to validate the fields.
    """
    return isinstance(text, str) and _SHAPE_RE.fullmatch(text.strip().upper()) is not None


def parse_occ_symbol(text: str) -> OptionSymbol:
    """Parse an OCC option symbol in the unpadded or the 21-character space-padded form.

    Surrounding whitespace is ignored and letters are upper-cased. Raises ``ValueError`` naming the
    first problem found: not OCC-shaped, bad underlying, bad padding/length, invalid expiry date,
    option type other than C/P, strike not 8 digits, or zero strike.
    """
    if not isinstance(text, str):
        raise TypeError(f"OCC symbol must be a str, got {type(text).__name__}")
    s = text.strip().upper()
    m = _SHAPE_RE.fullmatch(s)
    if m is None:
        raise ValueError(
            f"not an OCC option symbol {text!r}: expected underlying (1-6 characters), "
            "expiry YYMMDD, C or P, and the strike x 1000 as 8 digits"
        )
    root, pad, yymmdd, option_type, strike_digits = m.group("root", "pad", "date", "type", "strike")
    if not 1 <= len(root) <= 6:
        raise ValueError(f"underlying {root!r} must be 1-6 characters, got {len(root)}")
    if not _UNDERLYING_RE.fullmatch(root):
        raise ValueError(f"underlying {root!r} may only contain A-Z, 0-9, '.', '-' (starting with a letter or digit)")
    if pad and (len(s) != 21 or len(root) + len(pad) != 6):
        raise ValueError(f"space-padded OCC symbol must be 21 characters with the underlying padded to 6, got {len(s)}")
    try:
        expiration = datetime.date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:]))
    except ValueError as exc:
        raise ValueError(f"invalid expiration date {yymmdd!r} (YYMMDD): {exc}") from None
    if option_type not in ("C", "P"):
        raise ValueError(f"option type must be 'C' or 'P', got {option_type!r}")
    if len(strike_digits) != 8:
        raise ValueError(f"strike must be 8 digits (strike x 1000), got {len(strike_digits)} digits {strike_digits!r}")
    strike = Decimal(int(strike_digits)).scaleb(-3)
    if strike == 0:
        raise ValueError(f"strike must be greater than zero, got {strike_digits!r}")
    return OptionSymbol(root, expiration, option_type, strike)
