"""Build one report (Markdown, JSON, CSV, chart data) from a :class:`ReportInput`.

Reports only format what the warehouse holds (DESIGN.md). The few figures formed here are spelled out:
``total_pnl = unrealized_pnl + realized_pnl`` (realized is 0.00: closed lots are not tracked yet) and
``portfolio_weight = market_value / gross_exposure`` (a signed ratio, 6 decimals).

One anchor date: every section uses the rows of ``inp.anchor_date`` only. Rows of another date (or
another portfolio) in an input frame are never shown; they are listed as data-quality problems and
:func:`sigmasight_pipeline.reporting.validation.prepublish_problems` fails on them.

Availability is decided ONCE (:func:`engine_availability`) and both the Markdown and the JSON are
rendered from that one map, so they cannot disagree.

Precision is by FIELD (:data:`FIELD_KINDS`), never by magnitude: money 2 decimals, Greeks / betas /
regression statistics 4, correlations 6, ratios (weights, returns, % of equity, shocks) 6. Values are
converted through their shortest decimal representation (``repr`` of the float, i.e. the stored
NUMERIC value) and quantized with ``ROUND_HALF_UP``; a value that rounds to zero is printed without a
sign ("0.00", never "-0.00"). Missing values are ``null`` in JSON, blank in CSV and "n/a" in Markdown.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from .data import SECTION_TABLES, ReportInput, as_date

try:  # what DataFrame.to_dict applies to object / extension columns
    from pandas.api.extensions import ExtensionDtype
    from pandas.core.dtypes.cast import maybe_box_native as _box_native
except ImportError:  # pragma: no cover - _records falls back to DataFrame.to_dict
    _box_native = None

__all__ = [
    "REPORT_VERSION",
    "ENGINES",
    "ENGINE_LABELS",
    "CSV_COLUMNS",
    "FIELD_KINDS",
    "KIND_DECIMALS",
    "ROUNDING",
    "CHARTS",
    "POSITION_TYPES",
    "RenderedReport",
    "build_report",
    "engine_availability",
    "format_field",
    "format_decimal",
    "plain_position_type",
    "not_available_marker",
]

REPORT_VERSION = "1.0"
ROUNDING = ROUND_HALF_UP
_CTX = Context(prec=60, rounding=ROUNDING)

# ---------------------------------------------------------------------------------------------------
# Precision: a field map, not magnitudes
# ---------------------------------------------------------------------------------------------------
KIND_DECIMALS: dict[str, int] = {"money": 2, "greek": 4, "correlation": 6, "ratio": 6}

_MONEY = (
    "entry_price", "current_price", "price", "underlying_price", "model_price", "strike_price",
    "market_value", "cost_basis", "unrealized_pnl", "realized_pnl", "daily_pnl", "total_pnl",
    "gross_exposure", "net_exposure", "notional", "position_exposure", "long_exposure", "short_exposure",
    "delta_adjusted_exposure", "delta_adjusted_long", "delta_adjusted_short", "options_exposure",
    "stock_exposure", "total_cost_basis", "total_unrealized_pnl", "total_value", "dollar_delta",
    "dollar_gamma", "cumulative_pnl", "dollar_exposure", "dollar_per_bp",
    "pnl_rates_up_100bp", "pnl_rates_down_100bp", "pnl_rates_up_200bp", "pnl_rates_down_200bp",
    "pnl_market_up_5", "pnl_market_down_5", "pnl_market_up_10", "pnl_market_down_10",
    "pnl_market_up_20", "pnl_market_down_20", "direct_pnl", "correlated_pnl", "correlation_effect",
)
_GREEK = (
    "delta", "gamma", "theta", "vega", "rho",
    "position_delta", "position_gamma", "position_theta", "position_vega", "position_rho",
    "portfolio_delta", "portfolio_gamma", "portfolio_theta", "portfolio_vega", "portfolio_rho",
    "beta", "beta_net", "beta_gross", "rate_beta", "t_stat", "r_squared", "implied_vol",
    "condition_number", "max_vif", "effective_positions",
)
_CORRELATION = ("overall_correlation", "correlation", "concentration_score")
_RATIO = ("portfolio_weight", "pct_of_equity", "daily_return", "shock", "implied_move")

#: field name -> precision kind. Formatting an unknown field raises: nothing is formatted by magnitude.
FIELD_KINDS: dict[str, str] = {
    **{f: "money" for f in _MONEY},
    **{f: "greek" for f in _GREEK},
    **{f: "correlation" for f in _CORRELATION},
    **{f: "ratio" for f in _RATIO},
}

# ---------------------------------------------------------------------------------------------------
# Engines, CSV columns, charts
# ---------------------------------------------------------------------------------------------------
ENGINES: tuple[str, ...] = (
    "exposures", "greeks", "factor_exposures", "rate_sensitivity", "correlations", "stress_tests", "snapshot",
)
ENGINE_LABELS: dict[str, str] = {
    "exposures": "Valuation and exposures",
    "greeks": "Options Greeks",
    "factor_exposures": "Factor exposures",
    "rate_sensitivity": "Interest-rate sensitivity",
    "correlations": "Position correlations",
    "stress_tests": "Stress tests",
    "snapshot": "Portfolio snapshot and P&L",
}
#: sections that must have rows for the anchor date for the engine to be available
_REQUIRED: dict[str, tuple[str, ...]] = {
    "exposures": ("exposures", "valuations"),
    "greeks": ("greeks",),
    "factor_exposures": ("portfolio_factors", "position_factors"),
    "rate_sensitivity": ("portfolio_rates", "position_rates"),
    "correlations": ("correlation_summary",),
    "stress_tests": ("stress_results",),
    "snapshot": ("snapshot",),
}

CSV_COLUMNS: tuple[str, ...] = (
    # core (8)
    "position_id", "symbol", "position_type", "quantity", "entry_price", "current_price", "market_value", "cost_basis",
    # P&L (4)
    "unrealized_pnl", "realized_pnl", "daily_pnl", "total_pnl",
    # Greeks (5)
    "delta", "gamma", "theta", "vega", "rho",
    # options (4)
    "underlying_symbol", "strike_price", "expiration_date", "days_to_expiry",
    # metadata (6)
    "entry_date", "exit_date", "sector", "industry", "tags", "notes",
    # portfolio context (7)
    "portfolio_name", "report_date", "gross_exposure", "net_exposure", "notional", "portfolio_weight",
    "position_exposure",
)
assert len(CSV_COLUMNS) == 34

POSITION_TYPES = ("LONG", "SHORT", "LC", "SC", "LP", "SP")
OPTION_TYPES = ("LC", "SC", "LP", "SP")

#: chart file -> title (the PNGs sit beside the report and are linked from the Markdown)
CHARTS: dict[str, str] = {
    "factor_exposures.png": "Factor dollar exposures",
    "stress_pnl.png": "Stress P&L by scenario",
    "cumulative_pnl.png": "Cumulative P&L history",
}

#: canonical factor order (spec/engines.md); other factor names follow alphabetically
FACTOR_ORDER = ("Market", "Value", "Growth", "Momentum", "Quality", "Size", "Low Volatility")

_LIMITED_FLAGS = ("limited_history", "insufficient_history", "no_return_history")
_TEMPLATE_DIR = Path(__file__).parent / "templates"
_TEMPLATE = "portfolio_report.md.j2"
_MARKER = "**Not available** (engine: {engine}): {reason}"


def not_available_marker(engine: str, reason: str) -> str:
    """The exact Markdown line that marks an engine's section as not available."""
    return _MARKER.format(engine=engine, reason=_md_inline(reason))


# ---------------------------------------------------------------------------------------------------
# Value helpers
# ---------------------------------------------------------------------------------------------------
_INFINITIES = (math.inf, -math.inf)


def _missing(value) -> bool:
    kind = type(value)  # fast paths for the common exact types; the general rule below gives the same answer
    if kind is float:
        return value != value or value in _INFINITIES
    if kind is int or kind is str:
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


def _to_decimal(value) -> Decimal | None:
    kind = type(value)
    if kind is float:  # fast path (the general rule below gives the same answer)
        return None if value != value or value in _INFINITIES else Decimal(repr(value))
    if _missing(value):
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


def format_decimal(value, places: int) -> str | None:
    """``value`` with exactly ``places`` decimals (ROUND_HALF_UP, no negative zero); None when missing."""
    d = _to_decimal(value)
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
    kind = FIELD_KINDS[field_name]
    return format_decimal(value, KIND_DECIMALS[kind])


def format_quantity(value) -> str | None:
    """A quantity exactly as stored (NUMERIC(24, 8)), trailing zeros dropped: ``100``, ``-2``, ``0.5``."""
    d = _to_decimal(value)
    if d is None:
        return None
    q = d.quantize(Decimal("0.00000001"), rounding=ROUNDING, context=_CTX)
    if q.is_zero():
        return "0"
    text = format(q.normalize(context=_CTX), "f")
    return text


def _int(value) -> int | None:
    if _missing(value):
        return None
    return int(round(float(value)))


def _float(value) -> float | None:
    if _missing(value):
        return None
    return float(value)


def _bool(value) -> bool:
    return False if _missing(value) else bool(value)


def _str(value) -> str | None:
    if _missing(value):
        return None
    text = str(value)
    return text


def _date(value) -> str | None:
    if _missing(value):
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


def _tags(value) -> str:
    """Tags joined with ", " (a tuple from read_positions, a list, or a comma-separated string)."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple, set, frozenset)) or hasattr(value, "tolist"):
        items = list(value.tolist() if hasattr(value, "tolist") else value)
    elif _missing(value):
        return ""
    else:
        items = [value]
    return ", ".join(dict.fromkeys(str(t).strip() for t in items if str(t).strip()))


# Markdown display -----------------------------------------------------------------------------------
def _md_inline(text) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, line breaks flattened."""
    if text is None:
        return ""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _md_money(field_name: str, value) -> str:
    s = format_field(field_name, value)
    if s is None:
        return "n/a"
    d = Decimal(s)
    body = format(d.copy_abs(), ",f")
    return f"-${body}" if d < 0 else f"${body}"


def _md_num(field_name: str, value) -> str:
    s = format_field(field_name, value)
    return "n/a" if s is None else s


def _md_pct(value, places: int = 2) -> str:
    """A stored ratio shown as a percentage (display only): 0.012345 -> 1.23%."""
    d = _to_decimal(value)
    if d is None:
        return "n/a"
    return f"{format_decimal(d * 100, places)}%"


def _md_int(value) -> str:
    v = _int(value)
    return "n/a" if v is None else str(v)


# ---------------------------------------------------------------------------------------------------
# Sections filtered to the anchor date
# ---------------------------------------------------------------------------------------------------
@dataclass
class _Sections:
    frames: dict[str, pd.DataFrame]
    ignored: dict[str, int]  # section -> rows of another date/portfolio that were left out


def day_values(values) -> np.ndarray:
    """``values`` (dates, datetimes, timestamps or strings) as a ``datetime64[D]`` array; unparsable -> NaT.

    Day ``i`` is ``pd.to_datetime(values, errors="coerce").dt.date[i]`` (a time-zone-aware timestamp
    counts by its wall-clock date), computed on the datetime64 values without a ``date`` object per row.
    """
    dates = values if isinstance(values, pd.Series) else pd.Series(values)
    if not pd.api.types.is_datetime64_dtype(dates.dtype):  # tz-aware, object, strings, ...
        dates = pd.to_datetime(dates, errors="coerce")
        if isinstance(dates.dtype, pd.DatetimeTZDtype):
            dates = dates.dt.tz_localize(None)  # wall-clock time in its own zone
    return dates.to_numpy().astype("datetime64[D]")


def on_date(values, anchor: dt.date) -> np.ndarray:
    """Which of ``values`` fall on ``anchor`` (see :func:`day_values`); NaT never does."""
    return day_values(values) == np.datetime64(anchor, "D")


def _anchor_mask(frame: pd.DataFrame, anchor: dt.date, portfolio_id: str) -> np.ndarray:
    """Rows dated ``anchor`` (when the frame has a date) of ``portfolio_id`` (when it has a portfolio id)."""
    keep = np.ones(len(frame), dtype=bool)
    if "date" in frame.columns:
        keep &= on_date(frame["date"], anchor)
    if "portfolio_id" in frame.columns:  # compared as text, as ``astype(str)`` would
        keep &= np.fromiter(
            ((v if type(v) is str else str(v)) == portfolio_id for v in frame["portfolio_id"].tolist()),
            dtype=bool, count=len(frame),
        )
    return keep


def _anchor_rows(frame: pd.DataFrame, anchor: dt.date, portfolio_id: str) -> tuple[pd.DataFrame, int]:
    if frame is None or len(frame) == 0:
        return pd.DataFrame(columns=list(frame.columns) if frame is not None else []), 0
    keep = _anchor_mask(frame, anchor, portfolio_id)
    out = frame.reset_index(drop=True) if keep.all() else frame.loc[keep].reset_index(drop=True)
    return out, int((~keep).sum())


def _sections(inp: ReportInput) -> _Sections:
    frames, ignored = {}, {}
    for name in SECTION_TABLES:
        frames[name], ignored[name] = _anchor_rows(inp.section(name), inp.anchor_date, inp.portfolio_id)
    return _Sections(frames, ignored)


def engine_availability(inp: ReportInput) -> dict[str, tuple[bool, str | None]]:
    """engine -> (available, reason): available when every required table has rows for the anchor date."""
    counts = {}
    for name in SECTION_TABLES:
        frame = inp.section(name)
        counts[name] = int(_anchor_mask(frame, inp.anchor_date, inp.portfolio_id).sum()) if len(frame) else 0
    return _availability(counts, inp.anchor_date)


def _availability(sec: _Sections | dict[str, int], anchor: dt.date) -> dict[str, tuple[bool, str | None]]:
    """engine -> (available, reason) from the anchor-date sections (or their row counts)."""
    counts = {name: len(frame) for name, frame in sec.frames.items()} if isinstance(sec, _Sections) else sec
    out: dict[str, tuple[bool, str | None]] = {}
    for engine in ENGINES:
        missing = [s for s in _REQUIRED[engine] if counts[s] == 0]
        if missing:
            reason = "; ".join(f"no rows in {SECTION_TABLES[s]} for {anchor.isoformat()}" for s in missing)
            out[engine] = (False, reason)
        else:
            out[engine] = (True, None)
    return out


# ---------------------------------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------------------------------
@dataclass
class RenderedReport:
    """One rendered report. ``availability`` is the single map both ``markdown`` and ``json`` came from.

    ``charts``: chart file -> (to be produced, reason when not); ``chart_data``: the frames the charts
    plot (already restricted to the anchor date / history up to it), consumed by
    :func:`sigmasight_pipeline.reporting.charts.render_charts`.
    """

    markdown: str
    json: dict
    csv: str
    availability: dict[str, tuple[bool, str | None]]
    charts: dict[str, tuple[bool, str | None]] = field(default_factory=dict)
    chart_data: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    anchor_date: dt.date | None = None

    @property
    def engines_available(self) -> int:
        return sum(1 for ok, _ in self.availability.values() if ok)

    @property
    def engines_missing(self) -> int:
        return sum(1 for ok, _ in self.availability.values() if not ok)

    @property
    def chart_files(self) -> list[str]:
        """The chart files this report links to (those to be written beside it)."""
        return [name for name, (ok, _) in self.charts.items() if ok]


# ---------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------
def _records(frame: pd.DataFrame) -> list[dict]:
    """``frame.to_dict("records")``, built column by column (pandas' own path indexes every column per call).

    The values are the ones ``to_dict`` gives: a column is iterated as pandas iterates it (Python scalars,
    ``Timestamp`` for datetimes) and object / extension columns are boxed to native types the same way.
    """
    if not len(frame):
        return []
    if _box_native is None or not frame.columns.is_unique:  # pragma: no cover - other pandas / odd frames
        return frame.to_dict("records")
    columns = frame.columns.tolist()
    values = []
    for _, column in frame.items():
        values.append(_column_values(column))
    return [dict(zip(columns, row)) for row in zip(*values)]


def _column_values(column: pd.Series) -> list:
    """The values ``to_dict("records")`` gives for one column, in row order."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return column.to_numpy().tolist()  # Python scalars, as iterating the Series gives
    if dtype == object:
        return [_box_native(v) for v in column.to_numpy().tolist()]
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "python":  # str, or the dtype's missing marker
        return [_box_native(v) for v in column.to_numpy(dtype=object).tolist()]
    if isinstance(dtype, ExtensionDtype):
        return [_box_native(v) for v in column]
    return list(column)  # datetimes (Timestamp / NaT), timedeltas, ...


def _by_position(frame: pd.DataFrame | list[dict]) -> dict[int, dict]:
    """First record per position id, from a frame or from its records."""
    out: dict[int, dict] = {}
    for rec in (frame if isinstance(frame, list) else _records(frame)):
        pid = _int(rec.get("position_id"))
        if pid is not None and pid not in out:
            out[pid] = rec
    return out


def _held_positions(inp: ReportInput) -> tuple[pd.DataFrame, int]:
    """Positions held on the anchor date (``entry_date <= anchor``), by position id; and how many were not."""
    pos = inp.positions if isinstance(inp.positions, pd.DataFrame) else pd.DataFrame()
    if len(pos) == 0:
        return pos, 0
    keep = pd.Series(True, index=pos.index)
    if "entry_date" in pos.columns:
        entry = pd.to_datetime(pos["entry_date"], errors="coerce").dt.date
        keep = entry.isna() | (entry <= inp.anchor_date)
    held = pos.loc[keep]
    if "position_id" in held.columns:
        held = held.sort_values("position_id", kind="stable")
    return held.reset_index(drop=True), int((~keep).sum())


def _factor_key(name: str) -> tuple[int, str]:
    return (FACTOR_ORDER.index(name), "") if name in FACTOR_ORDER else (len(FACTOR_ORDER), str(name))


def _formatted(row: dict | None, fields) -> dict:
    """``{field: row[field] formatted by its precision}`` for ``fields``, in their order (the JSON layout)."""
    row = row or {}
    return {f: format_field(f, row.get(f)) for f in fields}


def _symbol_of(positions: dict[int, dict], pid) -> str:
    rec = positions.get(_int(pid))
    return str(rec["symbol"]) if rec is not None and "symbol" in rec else f"#{pid}"


_EXPOSURE_MONEY = (
    "long_exposure", "short_exposure", "gross_exposure", "net_exposure", "notional", "delta_adjusted_exposure",
    "delta_adjusted_long", "delta_adjusted_short", "options_exposure", "stock_exposure", "total_cost_basis",
    "total_unrealized_pnl",
)
_EXPOSURE_COUNTS = ("long_count", "short_count", "option_count", "stock_count", "position_count", "missing_price_count")
_RATE_MONEY = (
    "dollar_per_bp", "pnl_rates_up_100bp", "pnl_rates_down_100bp", "pnl_rates_up_200bp", "pnl_rates_down_200bp",
    "pnl_market_up_5", "pnl_market_down_5", "pnl_market_up_10", "pnl_market_down_10", "pnl_market_up_20",
    "pnl_market_down_20",
)
_RATE_LABELS = {
    "pnl_rates_up_100bp": "Rates +100 bp", "pnl_rates_down_100bp": "Rates -100 bp",
    "pnl_rates_up_200bp": "Rates +200 bp", "pnl_rates_down_200bp": "Rates -200 bp",
    "pnl_market_up_5": "Market +5%", "pnl_market_down_5": "Market -5%",
    "pnl_market_up_10": "Market +10%", "pnl_market_down_10": "Market -10%",
    "pnl_market_up_20": "Market +20%", "pnl_market_down_20": "Market -20%",
}
_SNAPSHOT_MONEY = (
    "total_value", "long_exposure", "short_exposure", "gross_exposure", "net_exposure", "delta_adjusted_exposure",
    "notional", "dollar_delta", "dollar_gamma", "daily_pnl", "cumulative_pnl",
)
_SNAPSHOT_COUNTS = ("position_count", "long_count", "short_count", "option_count", "stock_count", "missing_price_count")
_PORTFOLIO_GREEKS = ("portfolio_delta", "portfolio_gamma", "portfolio_theta", "portfolio_vega", "portfolio_rho")
_GREEK_NAMES = ("delta", "gamma", "theta", "vega", "rho")


class _Builder:
    def __init__(self, inp: ReportInput, generated_at: dt.datetime):
        self.inp = inp
        self.anchor = inp.anchor_date
        self.anchor_iso = inp.anchor_date.isoformat()
        if generated_at.tzinfo is None:  # naive: taken as UTC
            generated_at = generated_at.replace(tzinfo=dt.timezone.utc)
        self.generated_at = generated_at
        self.sec = _sections(inp)
        self.f = self.sec.frames
        self.availability = _availability(self.sec, self.anchor)
        self.held, self.not_yet_entered = _held_positions(inp)
        self.pos_by_id = _by_position(self.held)
        self._memo: dict = {}
        self.flags_other: list[str] = []
        self.limited: list[str] = []
        self.missing_prices: list[str] = []

    def is_option(self, pid) -> bool:
        rec = self.pos_by_id.get(_int(pid))
        return rec is not None and plain_position_type(rec.get("position_type")) in OPTION_TYPES

    def ok(self, engine: str) -> bool:
        return self.availability[engine][0]

    def records(self, section: str, by_position: bool = False) -> list[dict]:
        """The anchor-date rows of ``section`` as dicts (sorted by position id if asked); computed once.

        The list and its dicts are shared between callers: read them, never change them.
        """
        key = ("records", section, by_position)
        if key not in self._memo:
            frame = self.f[section]
            if by_position and len(frame):
                frame = frame.sort_values("position_id", kind="stable")
            self._memo[key] = _records(frame)
        return self._memo[key]

    def position_ref(self, row: dict) -> dict:
        """The ``position_id`` and ``symbol`` that open every per-position JSON entry."""
        return {"position_id": _int(row.get("position_id")), "symbol": _symbol_of(self.pos_by_id, row.get("position_id"))}

    def one_row(self, section: str) -> dict | None:
        recs = self.records(section)
        return recs[0] if recs else None

    def as_of(self, engine: str) -> list[str]:
        if not self.ok(engine):
            return []
        dates: set[str] = set()
        for s in _REQUIRED[engine]:
            frame = self.f[s]
            if "date" in frame.columns and len(frame):
                days = np.unique(day_values(frame["date"]))
                dates.update(str(d) for d in days if not np.isnat(d))  # str(datetime64[D]) is ISO
        return sorted(dates)

    def envelope(self, engine: str, data) -> dict:
        ok, reason = self.availability[engine]
        obj: dict = {"available": ok}
        if not ok:
            obj["reason"] = reason
        obj["as_of"] = self.as_of(engine)
        obj["data"] = data if ok else None
        return obj

    # ---- engines ------------------------------------------------------------------------------
    def exposures(self) -> dict | None:
        if not self.ok("exposures"):
            return None
        row = self.one_row("exposures") or {}
        data = _formatted(row, _EXPOSURE_MONEY)
        data.update({c: _int(row.get(c)) for c in _EXPOSURE_COUNTS})
        data["positions"] = [
            {
                **self.position_ref(r),
                "price_source": _str(r.get("price_source")),
                **_formatted(r, ("price", "underlying_price", "notional", "delta_adjusted_exposure")),
                "is_long": _bool(r.get("is_long")),
            }
            for r in self.records("valuations", by_position=True)
        ]
        return data

    def portfolio_greeks(self) -> tuple[dict | None, str | None]:
        """Portfolio Greek totals as stored in portfolio_snapshots (the snapshot engine sums them)."""
        snap = self.one_row("snapshot")
        if snap is None:
            return None, f"no rows in {SECTION_TABLES['snapshot']} for {self.anchor_iso}"
        out = {g: format_field(f"portfolio_{g}", snap.get(f"portfolio_{g}")) for g in _GREEK_NAMES}
        out.update(_formatted(snap, ("dollar_delta", "dollar_gamma")))
        return out, None

    def greeks(self) -> dict | None:
        if not self.ok("greeks"):
            return None
        totals, reason = self.portfolio_greeks()
        positions = []
        for r in self.records("greeks", by_position=True):
            item = {
                **self.position_ref(r),
                **_formatted(r, ("underlying_price", "implied_vol")),
                "vol_source": _str(r.get("vol_source")),
                "days_to_expiry": _int(r.get("days_to_expiry")),
                "model_price": format_field("model_price", r.get("model_price")),
            }
            item.update(_formatted(r, (*_GREEK_NAMES, *(f"position_{g}" for g in _GREEK_NAMES), "dollar_delta", "dollar_gamma")))
            item["flag"] = _str(r.get("flag"))
            positions.append(item)
        return {
            "portfolio": totals,
            "portfolio_source": SECTION_TABLES["snapshot"],
            "portfolio_reason": reason,
            "positions": positions,
        }

    def factor_rows(self) -> list[dict]:
        return sorted(self.records("portfolio_factors"), key=lambda r: _factor_key(str(r.get("factor_name"))))

    def factor_exposures(self) -> dict | None:
        if not self.ok("factor_exposures"):
            return None
        factors = [
            {
                "factor_name": str(r.get("factor_name")),
                **_formatted(r, ("beta_net", "beta_gross", "dollar_exposure")),
                "positions_with_beta": _int(r.get("positions_with_beta")),
                "positions_without_beta": _int(r.get("positions_without_beta")),
            }
            for r in self.factor_rows()
        ]
        win = self.one_row("factor_window")
        window = None
        if win is not None:
            window = {
                "window_start": _date(win.get("window_start")),
                "window_end": _date(win.get("window_end")),
                "n_obs": _int(win.get("n_obs")),
                **_formatted(win, ("condition_number", "max_vif")),
            }
        recs = sorted(
            self.records("position_factors"),
            key=lambda r: (_int(r.get("position_id")) or 0, _factor_key(str(r.get("factor_name")))),
        )
        positions = [
            {
                **self.position_ref(r),
                "factor_name": str(r.get("factor_name")),
                **_formatted(r, ("beta", "t_stat", "r_squared")),
                "n_obs": _int(r.get("n_obs")),
                "flag": _str(r.get("flag")),
                "dollar_exposure": format_field("dollar_exposure", r.get("dollar_exposure")),
            }
            for r in recs
        ]
        return {
            "beta_basis": (
                "beta_net = portfolio dollar exposure / net delta-adjusted exposure; "
                "beta_gross = portfolio dollar exposure / gross delta-adjusted exposure; "
                "dollar exposure = sum over positions of delta-adjusted exposure x beta"
            ),
            "factors": factors,
            "window": window,
            "positions": positions,
        }

    def rate_sensitivity(self) -> dict | None:
        if not self.ok("rate_sensitivity"):
            return None
        row = self.one_row("portfolio_rates") or {}
        positions = [
            {
                **self.position_ref(r),
                **_formatted(r, ("rate_beta", "t_stat", "r_squared")),
                "n_obs": _int(r.get("n_obs")),
                "flag": _str(r.get("flag")),
                "dollar_per_bp": format_field("dollar_per_bp", r.get("dollar_per_bp")),
            }
            for r in self.records("position_rates", by_position=True)
        ]
        return {"portfolio": _formatted(row, _RATE_MONEY), "positions": positions}

    def cluster_rows(self) -> list[dict]:
        cl = self.f["correlation_clusters"]
        out = []
        if len(cl) == 0:
            return out
        for cid, grp in cl.sort_values(["cluster_id", "position_id"], kind="stable").groupby("cluster_id", sort=True):
            ids = [_int(v) for v in grp["position_id"]]
            out.append(
                {
                    "cluster_id": _int(cid),
                    "cluster_name": str(grp["cluster_name"].iloc[0]),
                    "position_ids": ids,
                    "symbols": [_symbol_of(self.pos_by_id, i) for i in ids],
                }
            )
        return out

    def correlations(self) -> dict | None:
        if not self.ok("correlations"):
            return None
        row = self.one_row("correlation_summary") or {}
        return {
            "summary": {
                "positions_included": _int(row.get("positions_included")),
                **_formatted(row, ("overall_correlation", "concentration_score", "effective_positions")),
                "clusters": _int(row.get("clusters")),
            },
            "clusters": self.cluster_rows(),
        }

    def stress_rows(self) -> list[dict]:
        """Stress results joined with the scenario metadata, in the scenarios' order (display order)."""
        res = self.f["stress_results"]
        if len(res) == 0:
            return []
        scen = self.inp.scenarios if isinstance(self.inp.scenarios, pd.DataFrame) else pd.DataFrame()
        meta: dict[str, dict] = {}
        order: dict[str, int] = {}
        if len(scen):
            if "display_order" in scen.columns:
                scen = scen.sort_values(["display_order"], kind="stable")
            for i, rec in enumerate(_records(scen)):
                sid = str(rec.get("scenario_id"))
                meta.setdefault(sid, rec)
                order.setdefault(sid, i)
        breakdown: dict[str, list[dict]] = {}
        for rec in self.records("stress_breakdown"):
            breakdown.setdefault(str(rec.get("scenario_id")), []).append(rec)
        rows = []
        for rec in self.records("stress_results"):
            sid = str(rec.get("scenario_id"))
            m = meta.get(sid, {})
            parts = sorted(breakdown.get(sid, []), key=lambda r: _factor_key(str(r.get("factor_name"))))
            rows.append(
                {
                    "scenario_id": sid,
                    "name": str(m.get("name") if not _missing(m.get("name")) else sid),
                    "category": _str(m.get("category")) or "unknown",
                    "severity": _str(m.get("severity")) or "unknown",
                    "_direct": _float(rec.get("direct_pnl")),
                    "_correlated": _float(rec.get("correlated_pnl")),
                    "_pct": _float(rec.get("pct_of_equity")),
                    **_formatted(rec, ("direct_pnl", "correlated_pnl", "correlation_effect", "pct_of_equity")),
                    "loss_cap_applied": _bool(rec.get("loss_cap_applied")),
                    "flag": _str(rec.get("flag")) or "",
                    "factor_breakdown": [
                        {
                            "factor_name": str(p.get("factor_name")),
                            **_formatted(p, ("shock", "implied_move", "direct_pnl", "correlated_pnl")),
                        }
                        for p in parts
                    ],
                    "_known": sid in meta,
                    "_order": order.get(sid, len(order)),
                }
            )
        rows.sort(key=lambda r: (r["_order"], r["scenario_id"]))
        return rows

    @staticmethod
    def ranked(rows: list[dict]) -> tuple[list[dict], list[dict]]:
        """Worst five (lowest correlated P&L first) and best five (highest first); ties by direct P&L, id."""
        big = float("inf")

        def key(r):
            c = r["_correlated"] if r["_correlated"] is not None else big
            d = r["_direct"] if r["_direct"] is not None else big
            return (c, d, r["scenario_id"])

        worst = sorted(rows, key=key)[:5]
        best = sorted(
            [r for r in rows if r["_correlated"] is not None],
            key=lambda r: (-r["_correlated"], -(r["_direct"] or 0.0), r["scenario_id"]),
        )[:5]
        return worst, best

    @staticmethod
    def public(row: dict) -> dict:
        return {k: v for k, v in row.items() if not k.startswith("_")}

    def stress_gross(self):
        """The equity base of the stress results (their ``gross_exposure``), when stored."""
        res = self.f["stress_results"]
        if "gross_exposure" not in res.columns:
            return None
        values = [v for v in res["gross_exposure"] if not _missing(v)]
        return values[0] if values else None

    def stress_tests(self, rows, worst, best) -> dict | None:
        if not self.ok("stress_tests"):
            return None
        return {
            "scenario_count": len(rows),
            "ranking": "correlated_pnl",
            "pct_of_equity_basis": "correlated_pnl / gross exposure (ratio)",
            "gross_exposure": format_field("gross_exposure", self.stress_gross()),
            "scenarios": [self.public(r) for r in rows],
            "worst_five": [r["scenario_id"] for r in worst],
            "best_five": [r["scenario_id"] for r in best],
        }

    def snapshot(self) -> dict | None:
        if not self.ok("snapshot"):
            return None
        row = self.one_row("snapshot") or {}
        data = _formatted(row, _SNAPSHOT_MONEY)
        data["daily_return"] = format_field("daily_return", row.get("daily_return"))
        data.update({c: _int(row.get(c)) for c in _SNAPSHOT_COUNTS})
        data.update(_formatted(row, _PORTFOLIO_GREEKS))
        data["is_first_snapshot"] = _bool(row.get("is_first_snapshot"))
        data["pnl_basis"] = _str(row.get("pnl_basis"))
        hist = self.history()
        data["history_points"] = len(hist)
        data["history_start"] = _date(hist["date"].iloc[0]) if len(hist) else None
        return data

    # ---- positions (CSV rows) -----------------------------------------------------------------
    def position_rows(self) -> list[dict]:
        vals = _by_position(self.records("valuations"))
        greeks = _by_position(self.records("greeks"))
        pnl = _by_position(self.records("position_pnl"))
        expo = self.one_row("exposures") if self.ok("exposures") else None
        gross = _float(expo.get("gross_exposure")) if expo else None
        rows = []
        for rec in _records(self.held):
            pid = _int(rec.get("position_id"))
            ptype = plain_position_type(rec.get("position_type"))
            is_option = ptype in OPTION_TYPES
            v = vals.get(pid, {})
            g = greeks.get(pid, {})
            p = pnl.get(pid, {})
            unreal = _to_decimal(v.get("unrealized_pnl"))
            realized = Decimal("0")  # closed lots are not tracked yet
            total = None if unreal is None else unreal + realized
            mv = _float(v.get("market_value"))
            weight = mv / gross if (mv is not None and gross not in (None, 0.0)) else None
            row = {
                "position_id": pid,
                "symbol": str(rec.get("symbol")),
                "position_type": ptype,
                "quantity": format_quantity(rec.get("quantity")),
                "entry_price": format_field("entry_price", rec.get("entry_price")),
                "current_price": format_field("current_price", v.get("price")),
                "market_value": format_field("market_value", v.get("market_value")),
                # as stored in positions (quantity x entry price x multiplier: x100 for options)
                "cost_basis": format_field("cost_basis", rec.get("cost_basis")),
                "unrealized_pnl": format_field("unrealized_pnl", unreal),
                "realized_pnl": format_field("realized_pnl", realized),
                "daily_pnl": format_field("daily_pnl", p.get("daily_pnl")),
                "total_pnl": format_field("total_pnl", total),
                **{name: format_field(name, g.get(f"position_{name}")) for name in _GREEK_NAMES},
                "underlying_symbol": _str(rec.get("underlying_symbol")) if is_option else None,
                "strike_price": format_field("strike_price", rec.get("strike")) if is_option else None,
                "expiration_date": _date(rec.get("expiration")) if is_option else None,
                "days_to_expiry": _int(g.get("days_to_expiry")) if is_option else None,
                "entry_date": _date(rec.get("entry_date")),
                "exit_date": None,
                "sector": _str(rec.get("sector")),
                "industry": _str(rec.get("industry")),
                "tags": _tags(rec.get("tags")),
                "notes": None,
                "portfolio_name": self.inp.portfolio_name,
                "report_date": self.anchor_iso,
                **_formatted(expo, ("gross_exposure", "net_exposure", "notional")),  # None when no exposure row
                "portfolio_weight": format_field("portfolio_weight", weight),
                "position_exposure": format_field("position_exposure", v.get("delta_adjusted_exposure")),
            }
            assert tuple(row) == CSV_COLUMNS
            rows.append(row)
        return rows

    @staticmethod
    def csv_text(rows: list[dict]) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
        return buf.getvalue()

    def positions_summary(self, rows: list[dict]) -> dict:
        by_type = {t: 0 for t in POSITION_TYPES}
        for r in rows:
            by_type[r["position_type"]] += 1
        expo = self.one_row("exposures") if self.ok("exposures") else None
        counts = {c: (_int(expo.get(c)) if expo else None) for c in _EXPOSURE_COUNTS}
        return {
            "position_count": len(rows),
            "by_type": by_type,
            **{c: counts[c] for c in ("long_count", "short_count", "option_count", "stock_count", "missing_price_count")},
            "counts_source": SECTION_TABLES["exposures"],
            "not_yet_entered": self.not_yet_entered,
        }

    # ---- history / charts ---------------------------------------------------------------------
    def history(self) -> pd.DataFrame:
        if "history" not in self._memo:
            self._memo["history"] = self._history()
        return self._memo["history"]

    def _history(self) -> pd.DataFrame:
        h = self.inp.section("snapshot_history")
        cols = ["date", "cumulative_pnl"]
        if len(h) == 0 or not set(cols) <= set(h.columns):
            h = pd.DataFrame(columns=cols)
        else:
            if "portfolio_id" in h.columns:
                h = h[h["portfolio_id"].astype(str) == self.inp.portfolio_id]
            h = h.assign(date=pd.to_datetime(h["date"], errors="coerce"))
            h = h[h["date"].notna() & (h["date"].dt.date <= self.anchor)]  # never past the anchor
            h = h[cols].drop_duplicates("date", keep="last").sort_values("date")
        snap = self.one_row("snapshot")
        if snap is not None and not (pd.to_datetime(h["date"]).dt.date == self.anchor).any():
            extra = pd.DataFrame({"date": [pd.Timestamp(self.anchor)], "cumulative_pnl": [snap.get("cumulative_pnl")]})
            h = pd.concat([h, extra], ignore_index=True) if len(h) else extra
        return h.reset_index(drop=True)

    def charts(self, stress_rows) -> tuple[dict[str, tuple[bool, str | None]], dict[str, pd.DataFrame]]:
        plan: dict[str, tuple[bool, str | None]] = {}
        data: dict[str, pd.DataFrame] = {}
        if self.ok("factor_exposures"):
            rows = self.factor_rows()
            data["factor_exposures.png"] = pd.DataFrame(
                {
                    "factor_name": [str(r.get("factor_name")) for r in rows],
                    "dollar_exposure": [_float(r.get("dollar_exposure")) or 0.0 for r in rows],
                }
            )
            plan["factor_exposures.png"] = (True, None)
        else:
            plan["factor_exposures.png"] = (False, "factor exposures not available: " + self.availability["factor_exposures"][1])
        if self.ok("stress_tests") and stress_rows:
            data["stress_pnl.png"] = pd.DataFrame(
                {
                    "name": [r["name"] for r in stress_rows],
                    "direct_pnl": [r["_direct"] or 0.0 for r in stress_rows],
                    "correlated_pnl": [r["_correlated"] or 0.0 for r in stress_rows],
                }
            )
            plan["stress_pnl.png"] = (True, None)
        else:
            plan["stress_pnl.png"] = (False, "stress tests not available: " + (self.availability["stress_tests"][1] or "no rows"))
        hist = self.history()
        if self.ok("snapshot") and len(hist):
            data["cumulative_pnl.png"] = hist.assign(cumulative_pnl=pd.to_numeric(hist["cumulative_pnl"], errors="coerce"))
            plan["cumulative_pnl.png"] = (True, None)
        else:
            plan["cumulative_pnl.png"] = (False, "snapshot not available: " + (self.availability["snapshot"][1] or "no history"))
        return plan, data

    # ---- data quality -------------------------------------------------------------------------
    def collect_flags(self, stress_rows) -> None:
        lim, miss, other = self.limited, self.missing_prices, self.flags_other
        sym = lambda pid: f"{_symbol_of(self.pos_by_id, pid)} (#{_int(pid)})"  # noqa: E731

        pf = self.f["position_factors"]
        if len(pf) and "flag" in pf.columns:
            for pid, grp in pf[pf["flag"].isin(_LIMITED_FLAGS)].groupby("position_id", sort=True):
                flag = str(grp["flag"].iloc[0])
                n = _int(grp["n_obs"].iloc[0]) if "n_obs" in grp else None
                lim.append(f"factor betas of {sym(pid)}: {flag} (n_obs {n})")
            for pid, grp in pf[pf["flag"] == "singular_design"].groupby("position_id", sort=True):
                other.append(f"factor betas of {sym(pid)}: singular_design (no beta)")
        pr = self.f["position_rates"]
        if len(pr) and "flag" in pr.columns:
            for rec in self.records("position_rates", by_position=True):
                flag = str(rec.get("flag") or "")
                parts = flag.split(";")
                if parts[0] in _LIMITED_FLAGS:
                    lim.append(f"rate beta of {sym(rec.get('position_id'))}: {parts[0]} (n_obs {_int(rec.get('n_obs'))})")
                if "missing_rho" in parts:
                    other.append(f"rate sensitivity of {sym(rec.get('position_id'))}: no rho, its rho term counts 0")
        val = self.f["valuations"]
        if len(val) and "price_source" in val.columns:
            for rec in self.records("valuations", by_position=True):
                src = str(rec.get("price_source"))
                if src == "missing":
                    miss.append(f"{sym(rec.get('position_id'))}: no price for {self.anchor_iso}; left out of money totals")
                elif src == "model":
                    other.append(f"{sym(rec.get('position_id'))}: marked to model (Black-Scholes), no market price")
        expo = self.one_row("exposures")
        if expo is not None and (_int(expo.get("missing_price_count")) or 0) > 0 and not miss:
            miss.append(f"{_int(expo.get('missing_price_count'))} position(s) without a price for {self.anchor_iso}")
        pnl = self.f["position_pnl"]
        if len(pnl) and "pnl_basis" in pnl.columns:
            for rec in _records(pnl[pnl["pnl_basis"] == "missing_price"].sort_values("position_id", kind="stable")):
                miss.append(f"{sym(rec.get('position_id'))}: daily P&L not computed (missing price)")
        gk = self.f["greeks"]
        if len(gk) and "flag" in gk.columns:
            for rec in _records(gk[~gk["flag"].isin(["ok"])].sort_values("position_id", kind="stable")):
                other.append(f"Greeks of {sym(rec.get('position_id'))}: {rec.get('flag')}")
        for r in stress_rows:
            if r["loss_cap_applied"]:
                other.append(f"stress scenario {r['scenario_id']}: loss cap applied for display")
            if r["flag"] and r["flag"] != "ok":
                other.append(f"stress scenario {r['scenario_id']}: {r['flag']}")
            if not r["_known"]:
                other.append(f"stress scenario {r['scenario_id']}: not in the stored scenario list")
        snap = self.one_row("snapshot")
        if snap is not None and _bool(snap.get("is_first_snapshot")):
            other.append("first snapshot: its daily P&L is the P&L since entry (measured from entry prices)")
        # optional tables of available engines
        optional = {
            "factor_exposures": ("factor_window",),
            "stress_tests": ("stress_breakdown",),
            "snapshot": ("position_pnl",),
        }
        for engine, sections in optional.items():
            if self.ok(engine):
                for s in sections:
                    if len(self.f[s]) == 0:
                        other.append(f"no rows in {SECTION_TABLES[s]} for {self.anchor_iso}")
        summary = self.one_row("correlation_summary")
        if summary is not None and (_int(summary.get("clusters")) or 0) > 0 and len(self.f["correlation_clusters"]) == 0:
            other.append(f"no rows in {SECTION_TABLES['correlation_clusters']} for {self.anchor_iso}")
        if self.not_yet_entered:
            other.append(f"{self.not_yet_entered} position(s) entered after {self.anchor_iso} are not in this report")
        for s, n in self.sec.ignored.items():
            if n:
                other.append(f"{n} row(s) of {SECTION_TABLES[s]} dated other than {self.anchor_iso} (or of another portfolio) ignored")
        other.extend(self.inp.flags)

    # ---- assemble -----------------------------------------------------------------------------
    def build(self) -> RenderedReport:
        stress_rows = self.stress_rows() if self.ok("stress_tests") else []
        worst, best = self.ranked(stress_rows)
        self.collect_flags(stress_rows)
        positions = self.position_rows()
        chart_plan, chart_data = self.charts(stress_rows)
        name = self.inp.portfolio_name

        engines_json = {
            "exposures": self.envelope("exposures", self.exposures()),
            "greeks": self.envelope("greeks", self.greeks()),
            "factor_exposures": self.envelope("factor_exposures", self.factor_exposures()),
            "rate_sensitivity": self.envelope("rate_sensitivity", self.rate_sensitivity()),
            "correlations": self.envelope("correlations", self.correlations()),
            "stress_tests": self.envelope("stress_tests", self.stress_tests(stress_rows, worst, best)),
            "snapshot": self.envelope("snapshot", self.snapshot()),
        }
        data_quality = {
            "engines": {e: ok for e, (ok, _) in self.availability.items()},
            "limited_history": list(self.limited),
            "missing_prices": list(self.missing_prices),
            "other_flags": list(self.flags_other),
            "failed_checks": list(self.inp.failed_checks),
        }
        report = {
            "version": REPORT_VERSION,
            "metadata": {
                "portfolio_id": self.inp.portfolio_id,
                "portfolio_name": name,
                "report_date": self.anchor_iso,
                "anchor_date": self.anchor_iso,
                "generated_at": self.generated_at.isoformat(timespec="seconds"),
                "precision_policy": _precision_policy(),
            },
            "portfolio_info": {
                "portfolio_id": self.inp.portfolio_id,
                "name": name,
                "owner": _str(self.inp.portfolio.get("owner")),
                "position_count": len(positions),
            },
            **engines_json,
            "positions_summary": self.positions_summary(positions),
            "positions": positions,
            "charts": [
                {"file": f, "title": CHARTS[f], "available": ok, **({} if ok else {"reason": reason})}
                for f, (ok, reason) in chart_plan.items()
            ],
            "data_quality": data_quality,
        }
        markdown = self.markdown(engines_json, stress_rows, worst, best, chart_plan, data_quality, report)
        return RenderedReport(
            markdown=markdown,
            json=report,
            csv=self.csv_text(positions),
            availability=dict(self.availability),
            charts=chart_plan,
            chart_data=chart_data,
            anchor_date=self.anchor,
        )

    # ---- Markdown -----------------------------------------------------------------------------
    def markdown(self, ej, stress_rows, worst, best, chart_plan, dq, report) -> str:
        def marker(engine):
            ok, reason = self.availability[engine]
            return None if ok else not_available_marker(engine, reason)

        ctx: dict = {
            "name": self.inp.portfolio_name,
            "portfolio_id": self.inp.portfolio_id,
            "owner": _str(self.inp.portfolio.get("owner")),
            "report_date": self.anchor_iso,
            "anchor_date": self.anchor_iso,
            "generated_at": report["metadata"]["generated_at"],
            "marker": {e: marker(e) for e in ENGINES},
        }
        snap = self.one_row("snapshot") if self.ok("snapshot") else None
        if snap is not None:
            ctx["value"] = {
                "total_value": _md_money("total_value", snap.get("total_value")),
                "daily_pnl": _md_money("daily_pnl", snap.get("daily_pnl")),
                "daily_return": _md_pct(snap.get("daily_return")),
                "cumulative_pnl": _md_money("cumulative_pnl", snap.get("cumulative_pnl")),
                "pnl_basis": _md_inline(_str(snap.get("pnl_basis")) or "n/a"),
                "first": _bool(snap.get("is_first_snapshot")),
            }
        expo = self.one_row("exposures") if self.ok("exposures") else None
        if expo is not None:
            ctx["counts"] = {c: _md_int(expo.get(c)) for c in _EXPOSURE_COUNTS}
            ctx["expo"] = {c: _md_money(c, expo.get(c)) for c in _EXPOSURE_MONEY}
        corr = self.one_row("correlation_summary") if self.ok("correlations") else None
        if corr is not None:
            ctx["corr"] = {
                "positions_included": _md_int(corr.get("positions_included")),
                "overall_correlation": _md_num("overall_correlation", corr.get("overall_correlation")),
                "concentration_score": _md_num("concentration_score", corr.get("concentration_score")),
                "effective_positions": _md_num("effective_positions", corr.get("effective_positions")),
                "clusters": _md_int(corr.get("clusters")),
            }
            ctx["clusters"] = [
                {"name": _md_inline(c["cluster_name"]), "symbols": _md_inline(", ".join(c["symbols"]))}
                for c in ej["correlations"]["data"]["clusters"]
            ]
        if self.ok("greeks"):
            totals, reason = self.portfolio_greeks()
            if totals is None:
                ctx["greeks"] = {"totals": None, "reason": _md_inline(reason)}
            else:
                snap_row = self.one_row("snapshot") or {}
                ctx["greeks"] = {
                    "totals": {
                        **{g: _md_num(f"portfolio_{g}", snap_row.get(f"portfolio_{g}")) for g in _GREEK_NAMES},
                        "dollar_delta": _md_money("dollar_delta", snap_row.get("dollar_delta")),
                        "dollar_gamma": _md_money("dollar_gamma", snap_row.get("dollar_gamma")),
                    },
                    "reason": None,
                }
            options = [p for p in ej["greeks"]["data"]["positions"] if self.is_option(p["position_id"])]
            ctx["option_greeks"] = [
                {
                    "symbol": _md_inline(p["symbol"]),
                    "days": "n/a" if p["days_to_expiry"] is None else str(p["days_to_expiry"]),
                    **{g: p[f"position_{g}"] or "n/a" for g in _GREEK_NAMES},
                    "dollar_delta": _md_money("dollar_delta", p["dollar_delta"]),
                }
                for p in options
            ]
        if self.ok("factor_exposures"):
            fdata = ej["factor_exposures"]["data"]
            ctx["factors"] = [
                {
                    "name": _md_inline(f["factor_name"]),
                    "beta_net": f["beta_net"] or "n/a",
                    "beta_gross": f["beta_gross"] or "n/a",
                    "dollar_exposure": _md_money("dollar_exposure", f["dollar_exposure"]),
                    "with": "n/a" if f["positions_with_beta"] is None else str(f["positions_with_beta"]),
                    "without": "n/a" if f["positions_without_beta"] is None else str(f["positions_without_beta"]),
                }
                for f in fdata["factors"]
            ]
            names = [f["factor_name"] for f in fdata["factors"]]
            for p in fdata["positions"]:
                if p["factor_name"] not in names:
                    names.append(p["factor_name"])
            cells: dict[int, dict] = {}
            labels: dict[int, str] = {}
            for p in fdata["positions"]:
                pid = p["position_id"]
                labels[pid] = f"{p['symbol']} (#{pid})"
                beta = p["beta"] or "n/a"
                tstat = p["t_stat"] or "n/a"
                cells.setdefault(pid, {})[p["factor_name"]] = f"{beta} (t {tstat})" if p["beta"] else "n/a"
            ctx["factor_names"] = [_md_inline(n) for n in names]
            ctx["position_betas"] = [
                {"label": _md_inline(labels[pid]), "cells": [cells[pid].get(n, "n/a") for n in names]}
                for pid in sorted(cells)
            ]
            w = fdata["window"]
            ctx["factor_window"] = (
                None if w is None else {
                    "start": w["window_start"] or "n/a", "end": w["window_end"] or "n/a",
                    "n_obs": "n/a" if w["n_obs"] is None else str(w["n_obs"]),
                    "condition_number": w["condition_number"] or "n/a", "max_vif": w["max_vif"] or "n/a",
                }
            )
        if self.ok("rate_sensitivity"):
            prow = self.one_row("portfolio_rates") or {}
            ctx["rates"] = {
                "dollar_per_bp": _md_money("dollar_per_bp", prow.get("dollar_per_bp")),
                "scenarios": [
                    {"label": label, "pnl": _md_money(f, prow.get(f))} for f, label in _RATE_LABELS.items()
                ],
            }

        def stress_md(rows):
            return [
                {
                    "rank": i + 1,
                    "name": _md_inline(r["name"] + (" (loss cap applied)" if r["loss_cap_applied"] else "")),
                    "category": _md_inline(r["category"]),
                    "direct": _md_money("direct_pnl", r["_direct"]),
                    "correlated": _md_money("correlated_pnl", r["_correlated"]),
                    "pct": _md_pct(r["_pct"]),
                }
                for i, r in enumerate(rows)
            ]

        if self.ok("stress_tests"):
            ctx["stress"] = {"count": len(stress_rows), "worst": stress_md(worst), "best": stress_md(best)}
        ctx["charts"] = [
            {"file": f, "title": CHARTS[f], "available": ok, "reason": _md_inline(reason)}
            for f, (ok, reason) in chart_plan.items()
        ]
        ctx["dq"] = {
            "engines": [
                {
                    "engine": e,
                    "label": ENGINE_LABELS[e],
                    "status": "available" if ok else "not available",
                    "reason": _md_inline(reason or ""),
                }
                for e, (ok, reason) in self.availability.items()
            ],
            "limited_history": dq["limited_history"],
            "missing_prices": dq["missing_prices"],
            "other_flags": dq["other_flags"],
            "failed_checks": dq["failed_checks"],
        }
        return _environment().get_template(_TEMPLATE).render(**ctx)


_ENV: Environment | None = None


def _environment() -> Environment:
    global _ENV
    if _ENV is None:
        _ENV = Environment(
            loader=FileSystemLoader(str(_TEMPLATE_DIR)),
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            undefined=StrictUndefined,
        )
    return _ENV


def _precision_policy() -> dict:
    def fields(kind):
        return sorted(f for f, k in FIELD_KINDS.items() if k == kind)

    return {
        "rounding": "ROUND_HALF_UP on the stored value's shortest decimal representation; zero is printed unsigned",
        "money": {"decimals": 2, "fields": fields("money")},
        "greeks_betas": {"decimals": 4, "fields": fields("greek")},
        "correlations": {"decimals": 6, "fields": fields("correlation")},
        "ratios": {"decimals": 6, "fields": fields("ratio")},
        "quantities": "as stored (up to 8 decimals), trailing zeros dropped",
        "notes": [
            "Money, Greeks, betas, correlations and ratios are strings with a fixed number of decimals by field.",
            "realized_pnl is 0.00 for every position: closed lots are not tracked yet; total_pnl = unrealized_pnl + realized_pnl.",
            "portfolio_weight = market_value / portfolio gross exposure (signed ratio, 6 decimals).",
            "position_exposure = the position's delta-adjusted exposure.",
            "cost_basis is quantity x entry price x contract multiplier (x100 for options), as stored.",
            "Position Greeks (CSV delta..rho) are per position: per-share Greek x quantity x multiplier, signed.",
            "Portfolio Greek totals come from portfolio_snapshots.",
            "pct_of_equity and daily_return are ratios on gross exposure; the Markdown shows them as percentages.",
        ],
    }


def build_report(inp: ReportInput, generated_at: dt.datetime) -> RenderedReport:
    """Render one report (Markdown, JSON dict, CSV text, chart plan) from ``inp``; nothing is read or written."""
    return _Builder(inp, generated_at).build()
