"""Report inputs: :class:`ReportInput`, what one report formats for ONE portfolio and ONE date (read from the
warehouse by :mod:`.loader`).

Every section frame holds the rows of its warehouse table for the anchor date (the partition date) and
nothing else. A section with no rows for that date is *not available*; the report says so with the reason
(``no rows in position_greeks for 2025-03-14``). Nothing ever falls back to another date: the only frames
that span several dates are the histories (:data:`HISTORY_TABLES`: snapshots for the cumulative P&L and
drawdown charts, the P&L attribution for its cumulative sums, the VaR backtest for its chart), and each
stops at the anchor date. Column names are those of :mod:`sigmasight_pipeline.warehouse.schema`.

Also here: how the rest of the package reads a frame (:func:`records`, as ``to_dict("records")``) and
matches dates (:func:`day_values`, :func:`on_date`, :func:`rows_upto`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sigmasight_pipeline.warehouse import schema

try:  # what DataFrame.to_dict applies to object / extension columns
    from pandas.api.extensions import ExtensionDtype
    from pandas.core.dtypes.cast import maybe_box_native as _box_native
except ImportError:  # pragma: no cover - records falls back to DataFrame.to_dict
    _box_native = None

__all__ = [
    "SECTION_TABLES",
    "DATED_SECTIONS",
    "HISTORY_TABLES",
    "ReportInput",
    "as_date",
    "FrameCache",
    "history_upto",
    "rows_upto",
    "text_values",
    "float_values",
    "last_per_day",
    "day_values",
    "on_date",
    "row_mask",
    "anchor_mask",
    "records",
]

#: ReportInput attribute -> the warehouse table its rows come from (used in "not available" reasons).
#: Plain ``str`` (SQLAlchemy names are a ``str`` subclass), as the report's JSON holds them.
SECTION_TABLES: dict[str, str] = {
    "valuations": str(schema.position_valuations.name),
    "exposures": str(schema.portfolio_exposures.name),
    "group_exposures": str(schema.group_exposures.name),
    "greeks": str(schema.position_greeks.name),
    "position_factors": str(schema.position_factor_exposures.name),
    "portfolio_factors": str(schema.portfolio_factor_exposures.name),
    "factor_window": str(schema.factor_regression_windows.name),
    "position_rates": str(schema.position_rate_sensitivity.name),
    "portfolio_rates": str(schema.portfolio_rate_sensitivity.name),
    "correlation_summary": str(schema.correlation_summaries.name),
    "correlation_clusters": str(schema.correlation_clusters.name),
    "stress_results": str(schema.stress_results.name),
    "stress_breakdown": str(schema.stress_factor_breakdown.name),
    "snapshot": str(schema.portfolio_snapshots.name),
    "position_pnl": str(schema.position_daily_pnl.name),
    "risk_measures": str(schema.portfolio_risk_measures.name),
    "position_risk": str(schema.position_risk_contributions.name),
    "factor_risk": str(schema.factor_risk_contributions.name),
    "risk_backtest": str(schema.risk_backtest.name),
    "performance": str(schema.portfolio_performance.name),
    "attribution": str(schema.pnl_attribution.name),
}

#: Sections whose every row must carry ``date == anchor_date``.
DATED_SECTIONS: tuple[str, ...] = tuple(SECTION_TABLES)

#: ReportInput attribute of a history (rows dated up to and including the anchor date) -> its table.
HISTORY_TABLES: dict[str, str] = {
    "snapshot_history": str(schema.portfolio_snapshots.name),
    "attribution_history": str(schema.pnl_attribution.name),
    "backtest_history": str(schema.risk_backtest.name),
}

def as_date(value) -> dt.date:
    """A date from a ``date``, ``datetime``, pandas ``Timestamp`` or ISO string."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def _empty() -> pd.DataFrame:
    return pd.DataFrame()


class FrameCache:
    """What the report derives from an input frame (its records, ...), computed once per frame object.

    :func:`.loader.load_report_inputs` shares one memoizing cache between the inputs of a range and fills it
    while it reads (each table's records are built once for the range, then split by date), so a report
    of a backfill does not redo per-frame work. Entries are keyed by the frame's identity and keep the
    frame alive (an id is never reused while its entry exists). A hand-built :class:`ReportInput` gets
    a cache that does not memoize: its frames are read afresh by every report.

    The frames of a loaded input are read-only: change one by assigning a new frame
    (``inp.greeks = frame``), never in place.
    """

    def __init__(self, memoize: bool = False):
        self.memoize = memoize
        self._entries: dict[tuple, tuple] = {}

    def get(self, frame, kind, compute):
        """``compute(frame)``, or what is stored for (``frame``, ``kind``)."""
        entry = self._entries.get((id(frame), kind))
        if entry is not None and entry[0] is frame:
            return entry[1]
        value = compute(frame)
        if self.memoize:
            self._entries[(id(frame), kind)] = (frame, value)
        return value

    def put(self, frame, kind, value) -> None:
        self._entries[(id(frame), kind)] = (frame, value)


@dataclass
class ReportInput:
    """Everything one report formats, for one portfolio and one anchor date.

    ``positions``: the book on the anchor date (``warehouse.book.books_as_of``: every position opened by
    then, quantity, entry price, cost basis and realised P&L of that date, ``exit_date`` once closed;
    ``tags`` a tuple: those in force that day, ``sector``/``industry`` from the security master). The section frames
    are the warehouse rows of the anchor date (``group_exposures``: the exposures by tag and by underlying).
    ``scenarios``: the stored stress scenarios (``scenario_id, name, category, severity`` and, when read
    from the warehouse, ``display_order``). The histories stop at the anchor date (never a row after it):
    ``snapshot_history`` (``date, daily_pnl, cumulative_pnl, total_value, daily_return, is_first_snapshot``
    of every snapshot), ``attribution_history`` (``date, line, line_type, line_order, pnl`` of every
    ``pnl_attribution`` row: the cumulative attribution) and ``backtest_history`` (``date, var_date, var_99,
    realized_pnl, exception`` of every ``risk_backtest`` row: the VaR backtest chart).
    ``failed_checks``: descriptions of asset checks that failed
    upstream (filled by the caller). ``flags``: extra data-quality notes from the caller (market-data
    gaps, ...); the report derives the standard flags (limited history, missing prices, model prices,
    Greeks and stress flags) from the rows themselves. ``entry_warnings``: the portfolio's entry sanity
    warnings (``entry_warnings`` rows: ``source, source_row, symbol, entry_date, kind, message,
    reference_price``; not dated by the anchor: the report lists those entered on or before it).
    """

    portfolio: dict
    anchor_date: dt.date
    positions: pd.DataFrame = field(default_factory=_empty)
    valuations: pd.DataFrame = field(default_factory=_empty)
    exposures: pd.DataFrame = field(default_factory=_empty)
    group_exposures: pd.DataFrame = field(default_factory=_empty)
    greeks: pd.DataFrame = field(default_factory=_empty)
    position_factors: pd.DataFrame = field(default_factory=_empty)
    portfolio_factors: pd.DataFrame = field(default_factory=_empty)
    factor_window: pd.DataFrame = field(default_factory=_empty)
    position_rates: pd.DataFrame = field(default_factory=_empty)
    portfolio_rates: pd.DataFrame = field(default_factory=_empty)
    correlation_summary: pd.DataFrame = field(default_factory=_empty)
    correlation_clusters: pd.DataFrame = field(default_factory=_empty)
    stress_results: pd.DataFrame = field(default_factory=_empty)
    stress_breakdown: pd.DataFrame = field(default_factory=_empty)
    scenarios: pd.DataFrame = field(default_factory=_empty)
    snapshot: pd.DataFrame = field(default_factory=_empty)
    position_pnl: pd.DataFrame = field(default_factory=_empty)
    risk_measures: pd.DataFrame = field(default_factory=_empty)
    position_risk: pd.DataFrame = field(default_factory=_empty)
    factor_risk: pd.DataFrame = field(default_factory=_empty)
    risk_backtest: pd.DataFrame = field(default_factory=_empty)
    performance: pd.DataFrame = field(default_factory=_empty)
    attribution: pd.DataFrame = field(default_factory=_empty)
    snapshot_history: pd.DataFrame = field(default_factory=_empty)
    attribution_history: pd.DataFrame = field(default_factory=_empty)
    backtest_history: pd.DataFrame = field(default_factory=_empty)
    entry_warnings: pd.DataFrame = field(default_factory=_empty)
    failed_checks: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.anchor_date = as_date(self.anchor_date)
        self.portfolio = dict(self.portfolio)
        for key in ("portfolio_id", "name"):
            if not self.portfolio.get(key):
                raise ValueError(f"ReportInput.portfolio needs {key!r}")
        self.portfolio.setdefault("owner", None)
        self.failed_checks = [str(c) for c in (self.failed_checks or [])]
        self.flags = [str(f) for f in (self.flags or [])]
        #: what the report derives from these frames (not a dataclass field: not compared, not copied
        #: by ``dataclasses.replace``); :func:`.loader.load_report_inputs` shares one between a range's inputs
        self.cache = FrameCache()

    @property
    def portfolio_id(self) -> str:
        return str(self.portfolio["portfolio_id"])

    @property
    def portfolio_name(self) -> str:
        return str(self.portfolio["name"])

    def section(self, name: str) -> pd.DataFrame:
        """The frame of a section by its attribute name (``None`` reads as an empty frame)."""
        frame = getattr(self, name)
        return frame if isinstance(frame, pd.DataFrame) else pd.DataFrame()

    def records(self, frame: pd.DataFrame) -> list[dict]:
        """``records(frame)`` of one of this input's frames (shared: read them, never change them)."""
        return self.cache.get(frame, "records", records)


def history_upto(history: pd.DataFrame, portfolio_id: str, anchor: dt.date) -> pd.DataFrame:
    """``date, cumulative_pnl`` of ``history`` (``portfolio_snapshots`` rows) up to ``anchor``, by date.

    Rows of another portfolio (when the frame says) and rows without a date are left out; a date given
    twice keeps its last row. Never past the anchor.
    """
    cols = ["date", "cumulative_pnl"]
    if len(history) == 0 or not set(cols) <= set(history.columns):
        return pd.DataFrame(columns=cols)
    h = history
    if "portfolio_id" in h.columns:
        h = h[h["portfolio_id"].astype(str) == portfolio_id]
    h = h.assign(date=pd.to_datetime(h["date"], errors="coerce"))
    h = h[h["date"].notna() & (h["date"].dt.date <= anchor)]  # never past the anchor
    return h[cols].drop_duplicates("date", keep="last").sort_values("date").reset_index(drop=True)


def rows_upto(frame: pd.DataFrame, portfolio_id: str, anchor: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """(row positions of ``frame`` of ``portfolio_id`` (when it says) dated up to ``anchor``, their days)."""
    days = day_values(frame["date"])
    keep = ~np.isnat(days) & (days <= np.datetime64(anchor, "D"))
    if "portfolio_id" in frame.columns:
        keep &= text_values(frame["portfolio_id"]) == portfolio_id
    rows = np.flatnonzero(keep)
    return rows, days[rows]


def text_values(values) -> np.ndarray:
    """A column as an object array of ``str`` (what ``astype(str)`` gives), without a copy when it is one."""
    arr = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    if all(type(v) is str for v in arr.tolist()):
        return arr
    return np.array([str(v) for v in arr.tolist()], dtype=object)


def float_values(values) -> np.ndarray:
    """A column as float64 (unreadable -> NaN)."""
    if isinstance(values, pd.Series) and values.dtype == np.float64:
        return values.to_numpy()
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def last_per_day(days: np.ndarray, *columns: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """``days`` and ``columns`` by day, a day given twice keeping its last row (stable)."""
    if len(days) > 1 and not (days[1:] > days[:-1]).all():
        order = np.argsort(days, kind="stable")
        days, columns = days[order], [c[order] for c in columns]
        last = np.r_[days[1:] != days[:-1], True]
        days, columns = days[last], [c[last] for c in columns]
    return days, list(columns)


# ---------------------------------------------------------------------------------------------------
# Reading frames: dates and records
# ---------------------------------------------------------------------------------------------------
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


def row_mask(frame: pd.DataFrame, anchor: dt.date, portfolio_id: str) -> np.ndarray:
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


def anchor_mask(inp: ReportInput, frame: pd.DataFrame) -> np.ndarray:
    """:func:`row_mask` of one of ``inp``'s frames for its anchor and portfolio (computed once; the loader
    computes it for a whole range at once)."""
    return inp.cache.get(frame, ("anchor_mask", inp.anchor_date, inp.portfolio_id),
                         lambda f: row_mask(f, inp.anchor_date, inp.portfolio_id))


def records(frame: pd.DataFrame) -> list[dict]:
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


_NATIVE = (str, type(None), float, int, bool)  # what maybe_box_native returns unchanged


def _boxed(values: list) -> list:
    return [v if type(v) in _NATIVE else _box_native(v) for v in values]


def _column_values(column: pd.Series) -> list:
    """The values ``to_dict("records")`` gives for one column, in row order."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return column.to_numpy().tolist()  # Python scalars, as iterating the Series gives
    if dtype == object:
        return _boxed(column.to_numpy().tolist())
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "python":  # str, or the dtype's missing marker
        return _boxed(column.to_numpy(dtype=object).tolist())
    if isinstance(dtype, ExtensionDtype) and not isinstance(dtype, pd.DatetimeTZDtype):
        return [_box_native(v) for v in column]
    if len(column) > 64 and (isinstance(dtype, pd.DatetimeTZDtype) or dtype.kind == "M"):
        # a Timestamp per distinct value (a range's rows share a few dates), as iterating would give
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        boxed = list(uniques) + [pd.NaT]  # code -1 (missing) -> NaT
        return [boxed[code] for code in codes.tolist()]
    return list(column)  # datetimes (Timestamp / NaT), timedeltas, ...
