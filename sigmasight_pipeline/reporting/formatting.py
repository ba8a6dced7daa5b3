"""How a report prints a value: precision by field, Decimal rounding, money / Greeks / betas, Markdown cells.

Precision is by FIELD (:data:`FIELD_KINDS`), never by magnitude: money 2 decimals (VaR and ES, risk
contributions and P&L lines included), Greeks / betas / regression and test statistics 4, correlations 6,
ratios (weights, returns, % of gross exposure or equity, shocks, confidence levels, shares, Sharpe and the
other performance ratios, p-values) 6. Values are
converted through their shortest decimal representation (``repr`` of the float, i.e. the stored
NUMERIC value) and quantized with ``ROUND_HALF_UP``; a value that rounds to zero is printed without a
sign ("0.00", never "-0.00"). Missing values are ``None`` here: ``null`` in JSON, blank in CSV and "n/a"
in Markdown.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import lru_cache

import pandas as pd

from .inputs import as_date

__all__ = [
    "ROUNDING",
    "KIND_DECIMALS",
    "FIELD_KINDS",
    "POSITION_TYPES",
    "OPTION_TYPES",
    "format_decimal",
    "format_field",
    "format_quantity",
    "plain_position_type",
    "is_missing",
    "to_decimal",
    "as_int",
    "as_float",
    "as_bool",
    "as_str",
    "iso_date",
    "join_tags",
    "md_inline",
    "md_money",
    "md_num",
    "md_pct",
    "md_int",
]

ROUNDING = ROUND_HALF_UP
_CTX = Context(prec=60, rounding=ROUNDING)

KIND_DECIMALS: dict[str, int] = {"money": 2, "greek": 4, "correlation": 6, "ratio": 6}

_MONEY = (
    "entry_price", "current_price", "price", "underlying_price", "model_price", "strike_price",
    "market_value", "cost_basis", "unrealized_pnl", "realized_pnl", "daily_pnl", "total_pnl",
    "gross_exposure", "net_exposure", "notional", "position_exposure", "long_exposure", "short_exposure",
    "delta_adjusted_exposure", "delta_adjusted_long", "delta_adjusted_short", "volatility_delta_exposure",
    "options_exposure", "stock_exposure", "total_cost_basis", "total_unrealized_pnl", "total_value", "dollar_delta",
    "dollar_gamma", "cumulative_pnl", "cumulative_realized_pnl", "dollar_exposure", "dollar_per_bp",
    "pnl_rates_up_100bp", "pnl_rates_down_100bp", "pnl_rates_up_200bp", "pnl_rates_down_200bp",
    "pnl_market_up_5", "pnl_market_down_5", "pnl_market_up_10", "pnl_market_down_10",
    "pnl_market_up_20", "pnl_market_down_20", "direct_pnl", "correlated_pnl", "correlation_effect", "equity",
    # risk measures (positive losses), their Euler contributions, the backtest; P&L attribution lines
    "loss", "contribution", "volatility_1d", "volatility_annual", "tracking_error_1d", "tracking_error_annual",
    "var_99", "pnl", "exposure",
)
_GREEK = (
    "delta", "gamma", "theta", "vega", "rho",
    "position_delta", "position_gamma", "position_theta", "position_vega", "position_rho",
    "portfolio_delta", "portfolio_gamma", "portfolio_theta", "portfolio_vega", "portfolio_rho",
    "beta", "beta_net", "beta_gross", "rate_beta", "t_stat", "r_squared", "implied_vol",
    "condition_number", "max_vif", "effective_positions", "kupiec_lr",
)
_CORRELATION = ("overall_correlation", "correlation", "concentration_score")
_RATIO = (
    "portfolio_weight", "share_of_gross", "pct_of_gross_exposure", "pct_of_equity", "daily_return", "shock", "implied_move", "dividend_yield",
    # risk measures: confidence levels, marginal contributions (d sigma / d exposure), shares, % of equity, p-values
    "level", "marginal", "share", "volatility_of_equity", "tracking_error_of_equity", "factor_share", "specific_share",
    "kupiec_p_value",
    # performance windows and attribution (returns, drawdowns and ratios of returns)
    "factor_return", "cumulative_return", "annualized_return", "annual_volatility", "sharpe_ratio", "sortino_ratio",
    "max_drawdown", "current_drawdown", "calmar_ratio", "best_day", "worst_day", "positive_days_share", "alpha",
    "tracking_error", "market_return",
)

#: field name -> precision kind. Formatting an unknown field raises: nothing is formatted by magnitude.
FIELD_KINDS: dict[str, str] = {
    **{f: "money" for f in _MONEY},
    **{f: "greek" for f in _GREEK},
    **{f: "correlation" for f in _CORRELATION},
    **{f: "ratio" for f in _RATIO},
}
#: field name -> decimals
_FIELD_PLACES: dict[str, int] = {f: KIND_DECIMALS[k] for f, k in FIELD_KINDS.items()}

POSITION_TYPES = ("LONG", "SHORT", "LC", "SC", "LP", "SP")
OPTION_TYPES = ("LC", "SC", "LP", "SP")


# ---------------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------------
_INFINITIES = (math.inf, -math.inf)


def is_missing(value) -> bool:
    """None, NaN, NaT, pd.NA and infinities are missing."""
    kind = type(value)  # fast paths for the common exact types; the general rule below gives the same answer
    if kind is float:
        return value != value or value in _INFINITIES
    if kind is int or kind is str or kind is bool or kind is pd.Timestamp:  # (NaT is not a Timestamp)
        return False
    if value is None:
        return True
    try:
        if pd.isna(value):
            return True
    except (TypeError, ValueError):
        return False
    if isinstance(value, float) and math.isinf(value):
        return True
    return False


def to_decimal(value) -> Decimal | None:
    """The value's shortest decimal representation (the stored NUMERIC value), None when missing."""
    kind = type(value)
    if kind is float:  # fast path (the general rule below gives the same answer)
        return None if value != value or value in _INFINITIES else Decimal(repr(value))
    if is_missing(value):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number to format")
    if isinstance(value, int):
        return Decimal(value)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot format {value!r} as a number") from exc
    if math.isnan(number) or math.isinf(number):
        return None
    return Decimal(repr(number))  # shortest decimal repr: the stored NUMERIC value, no binary noise


@lru_cache(maxsize=None)
def _quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def _format_float(value: float, places: int) -> str | None:
    """:func:`format_decimal` of a float, on the digits of its ``repr`` (no Decimal): the same text.

    ``repr`` is the shortest decimal representation, the one the Decimal path quantizes. ROUND_HALF_UP
    away from zero means: drop the digits after ``places``, and add one unit in the last place when the
    first dropped digit is 5 or more. None when a case is not handled here (exponent notation).
    """
    text = repr(value)
    if "e" in text or "n" in text:  # 1e-05, 1e+16; inf, nan are handled before
        return None
    negative = text[0] == "-"
    whole, _, frac = text.lstrip("-").partition(".")
    if len(frac) <= places:
        body = f"{whole}.{frac}{'0' * (places - len(frac))}"
    elif frac[places] < "5":
        body = f"{whole}.{frac[:places]}"
    else:
        digits = str(int(whole + frac[:places]) + 1).rjust(places + 1, "0")
        body = f"{digits[:-places]}.{digits[-places:]}"
    if negative and body.strip("0.") != "":
        return "-" + body
    return body


#: places -> {float: its text}: the same values recur (zeros, prices in several sections, stress shocks);
#: equal floats have the same text (0.0 and -0.0 both print unsigned)
_FLOAT_TEXTS: dict[int, dict[float, str]] = {}
_FLOAT_TEXTS_MAX = 100_000


def format_decimal(value, places: int) -> str | None:
    """``value`` with exactly ``places`` decimals (ROUND_HALF_UP, no negative zero); None when missing."""
    if type(value) is int and places > 0:  # SQLite hands back a whole NUMERIC as an int: exact, no rounding
        return f"{value}.{'0' * places}"
    if type(value) is float and places > 0:  # fast path: the same text as the Decimal path below
        if value != value or value in _INFINITIES:
            return None
        texts = _FLOAT_TEXTS.get(places)
        if texts is None:
            texts = _FLOAT_TEXTS.setdefault(places, {})
        text = texts.get(value)
        if text is not None:
            return text
        text = _format_float(value, places)
        if text is not None:
            if len(texts) >= _FLOAT_TEXTS_MAX:
                texts.clear()
            texts[value] = text
            return text
    d = to_decimal(value)
    if d is None:
        return None
    try:
        q = d.quantize(_quantum(places), rounding=ROUNDING, context=_CTX)
    except InvalidOperation as exc:  # pragma: no cover - beyond 60 significant digits
        raise ValueError(f"cannot quantize {value!r} to {places} decimals") from exc
    if q.is_zero():
        q = q.copy_abs()
    return format(q, "f")


def format_field(field_name: str, value) -> str | None:
    """Format ``value`` by the precision of ``field_name`` (:data:`FIELD_KINDS`); KeyError if unknown."""
    return format_decimal(value, _FIELD_PLACES[field_name])


def format_quantity(value) -> str | None:
    """A quantity exactly as stored (NUMERIC(24, 8)), trailing zeros dropped: ``100``, ``-2``, ``0.5``."""
    d = to_decimal(value)
    if d is None:
        return None
    q = d.quantize(Decimal("0.00000001"), rounding=ROUNDING, context=_CTX)
    if q.is_zero():
        return "0"
    return format(q.normalize(context=_CTX), "f")


def as_int(value) -> int | None:
    if is_missing(value):
        return None
    return int(round(float(value)))


def as_float(value) -> float | None:
    if is_missing(value):
        return None
    return float(value)


def as_bool(value) -> bool:
    return False if is_missing(value) else bool(value)


def as_str(value) -> str | None:
    if is_missing(value):
        return None
    return str(value)


def iso_date(value) -> str | None:
    if is_missing(value):
        return None
    return as_date(value).isoformat()


def plain_position_type(value) -> str:
    """``LONG/SHORT/LC/SC/LP/SP`` from a string or an enum (never an enum repr)."""
    raw = getattr(value, "value", value)
    text = str(raw).strip()
    if "." in text:  # "PositionType.LC"
        text = text.rsplit(".", 1)[-1]
    text = text.upper()
    if text not in POSITION_TYPES:
        raise ValueError(f"unknown position type {value!r} (expected one of {', '.join(POSITION_TYPES)})")
    return text


def join_tags(value) -> str:
    """Tags joined with ", " (a tuple from read_positions, a list, or a comma-separated string)."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple, set, frozenset)) or hasattr(value, "tolist"):
        items = list(value.tolist() if hasattr(value, "tolist") else value)
    elif is_missing(value):
        return ""
    else:
        items = [value]
    return ", ".join(dict.fromkeys(str(t).strip() for t in items if str(t).strip()))


# ---------------------------------------------------------------------------------------------------
# Markdown display
# ---------------------------------------------------------------------------------------------------
def md_inline(text) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, line breaks flattened."""
    if text is None:
        return ""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def md_money(field_name: str, value) -> str:
    """Money for reading: ``$1,234.50``, ``-$12.00``, ``n/a``."""
    s = format_field(field_name, value)
    if s is None:
        return "n/a"
    negative = s.startswith("-")
    whole, dot, frac = s.lstrip("-").partition(".")
    if whole.isdigit() and (not dot or frac.isdigit()):  # the digits of format_decimal: group them directly
        body = f"{int(whole):,}{dot}{frac}"
    else:  # pragma: no cover - not a format_decimal text
        d = Decimal(s)
        negative, body = d < 0, format(d.copy_abs(), ",f")
    return f"-${body}" if negative else f"${body}"


def md_num(field_name: str, value) -> str:
    s = format_field(field_name, value)
    return "n/a" if s is None else s


def md_pct(value, places: int = 2) -> str:
    """A stored ratio shown as a percentage (display only): 0.012345 -> 1.23%."""
    d = to_decimal(value)
    if d is None:
        return "n/a"
    return f"{format_decimal(d * 100, places)}%"


def md_int(value) -> str:
    v = as_int(value)
    return "n/a" if v is None else str(v)
