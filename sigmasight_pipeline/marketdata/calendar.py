"""The XNYS trading calendar (New York Stock Exchange), from ``exchange_calendars``.

Every function accepts a ``datetime.date``, a ``datetime.datetime``, an ISO string or a pandas
``Timestamp`` (tz-aware ones are read in their own wall-clock date) and works on *dates*: values
returned are tz-naive, normalized ``pd.Timestamp`` / ``pd.DatetimeIndex`` (midnight), except
``session_close`` which is a UTC instant.

Sessions and early closes come from the exchange calendar, never from a list kept here. The only
local table is ``ADHOC_CLOSURE_LABELS``: human-readable names for the calendar's ad-hoc closures
(``exchange_calendars`` stores those as bare dates), used by ``non_session_reason`` for wording only.
"""

from __future__ import annotations

import datetime as dt
import warnings
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

EXCHANGE = "XNYS"
CALENDAR_START = pd.Timestamp("2000-01-01")
#: The calendar reaches at least this far (or two years past today, whichever is later).
CALENDAR_MIN_END = pd.Timestamp("2030-12-31")

#: Names for XNYS ad-hoc closures since 2000. Wording only; whether a date is a session is decided
#: by the calendar (an ad-hoc closure missing here is reported as "XNYS holiday: unnamed (ad-hoc closure)").
ADHOC_CLOSURE_LABELS: dict[str, str] = {
    "2001-09-11": "September 11 attacks",
    "2001-09-12": "September 11 attacks",
    "2001-09-13": "September 11 attacks",
    "2001-09-14": "September 11 attacks",
    "2004-06-11": "National Day of Mourning for President Ronald Reagan",
    "2007-01-02": "National Day of Mourning for President Gerald Ford",
    "2012-10-29": "Hurricane Sandy",
    "2012-10-30": "Hurricane Sandy",
    "2018-12-05": "National Day of Mourning for President George H. W. Bush",
    "2025-01-09": "National Day of Mourning for President Jimmy Carter",
}

DateLike = dt.date | dt.datetime | pd.Timestamp | str


def to_timestamp(d: DateLike) -> pd.Timestamp:
    """``d`` as a tz-naive midnight Timestamp (a tz-aware value keeps its own local date)."""
    ts = pd.Timestamp(d)
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize().as_unit("ns")


def normalize_index(index) -> pd.DatetimeIndex:
    """A DatetimeIndex of tz-naive dates from any datetime-like index (tz-aware: local dates)."""
    idx = pd.DatetimeIndex(index)
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    return idx.normalize().as_unit("ns")


@lru_cache(maxsize=1)
def get_calendar() -> xcals.ExchangeCalendar:
    """The cached XNYS calendar, from 2000-01-01 to max(2030-12-31, today + 2 years)."""
    end = max(CALENDAR_MIN_END, pd.Timestamp.today().normalize() + pd.Timedelta(days=730))
    with warnings.catch_warnings():  # exchange_calendars 4.x emits pandas deprecation warnings
        warnings.simplefilter("ignore")
        return xcals.get_calendar(EXCHANGE, start=CALENDAR_START, end=end)


@lru_cache(maxsize=1)
def _sessions() -> pd.DatetimeIndex:
    return normalize_index(get_calendar().sessions)


@lru_cache(maxsize=1)
def _early_closes() -> frozenset[pd.Timestamp]:
    return frozenset(normalize_index(get_calendar().early_closes))


def _in_bounds(ts: pd.Timestamp) -> pd.Timestamp:
    cal = get_calendar()
    first, last = to_timestamp(cal.first_session), to_timestamp(cal.last_session)
    if not (CALENDAR_START <= ts <= last):
        raise ValueError(
            f"{ts.date()} is outside the {EXCHANGE} calendar ({first.date()} to {last.date()})"
        )
    return ts


def is_session(d: DateLike) -> bool:
    """True when XNYS trades on date ``d``."""
    ts = _in_bounds(to_timestamp(d))
    sessions = _sessions()
    i = sessions.searchsorted(ts)
    return bool(i < len(sessions) and sessions[i] == ts)


def sessions_in_range(start: DateLike, end: DateLike) -> pd.DatetimeIndex:
    """The sessions in [start, end], both inclusive (empty if end < start)."""
    s, e = to_timestamp(start), to_timestamp(end)
    sessions = _sessions()
    return sessions[sessions.searchsorted(s, "left") : sessions.searchsorted(e, "right")]


def previous_session(d: DateLike) -> pd.Timestamp:
    """The last session strictly before ``d``."""
    ts = _in_bounds(to_timestamp(d))
    i = _sessions().searchsorted(ts, "left") - 1
    if i < 0:
        raise ValueError(f"no {EXCHANGE} session before {ts.date()} in the calendar")
    return _sessions()[i]


def session_on_or_before(d: DateLike) -> pd.Timestamp:
    """``d`` if it is a session, else the last session before it."""
    ts = _in_bounds(to_timestamp(d))
    i = _sessions().searchsorted(ts, "right") - 1
    if i < 0:
        raise ValueError(f"no {EXCHANGE} session on or before {ts.date()} in the calendar")
    return _sessions()[i]


def next_session(d: DateLike) -> pd.Timestamp:
    """The first session strictly after ``d``."""
    ts = _in_bounds(to_timestamp(d))
    sessions = _sessions()
    i = sessions.searchsorted(ts, "right")
    if i >= len(sessions):
        raise ValueError(f"no {EXCHANGE} session after {ts.date()} in the calendar")
    return sessions[i]


def sessions_window(end: DateLike, n: int) -> pd.DatetimeIndex:
    """The ``n`` sessions ending on the last session on or before ``end`` (oldest first)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    ts = _in_bounds(to_timestamp(end))
    sessions = _sessions()
    stop = sessions.searchsorted(ts, "right")
    if stop < n:
        raise ValueError(f"the calendar has only {stop} sessions up to {ts.date()}, {n} asked")
    return sessions[stop - n : stop]


@lru_cache(maxsize=64)
def _regular_holiday_names(year: int) -> dict[pd.Timestamp, str]:
    rules = get_calendar().regular_holidays
    if rules is None:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        named = rules.holidays(
            pd.Timestamp(year, 1, 1), pd.Timestamp(year, 12, 31), return_name=True
        )
    return {to_timestamp(k): str(v) for k, v in named.items()}


def non_session_reason(d: DateLike) -> str | None:
    """Why XNYS does not trade on ``d``, or None if it does.

    "weekend (Saturday)", "XNYS holiday: <name from the calendar's holiday rules>",
    "XNYS holiday: <label> (ad-hoc closure)" (e.g. 2025-01-09, the day of mourning for President
    Carter), or
    "XNYS holiday (no session)" when the calendar gives no name.
    """
    ts = to_timestamp(d)
    if is_session(ts):
        return None
    if ts.day_of_week >= 5:
        return f"weekend ({ts.day_name()})"
    name = _regular_holiday_names(ts.year).get(ts)
    if name:
        return f"{EXCHANGE} holiday: {name}"
    adhoc = {to_timestamp(x) for x in get_calendar().adhoc_holidays}
    if ts in adhoc:
        label = ADHOC_CLOSURE_LABELS.get(ts.strftime("%Y-%m-%d"))
        return f"{EXCHANGE} holiday: {label or 'unnamed'} (ad-hoc closure)"
    return f"{EXCHANGE} holiday (no session)"


def is_early_close(d: DateLike) -> bool:
    """True when ``d`` is a session that closes early (13:00 New York time)."""
    return to_timestamp(d) in _early_closes()


def session_close(d: DateLike) -> pd.Timestamp:
    """The closing instant (UTC) of session ``d``; ValueError if ``d`` is not a session."""
    ts = to_timestamp(d)
    if not is_session(ts):
        raise ValueError(f"{ts.date()} is not an {EXCHANGE} session: {non_session_reason(ts)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        close = get_calendar().session_close(ts)
    return close.tz_convert("UTC") if close.tzinfo is not None else close.tz_localize("UTC")


def split_sessions(dates) -> tuple[pd.DatetimeIndex, dict[str, str]]:
    """The XNYS sessions among ``dates`` and, for the others, why there is no session.

    Returns ``(sessions, closed)``: the sessions in the order given, and ``{"YYYY-MM-DD": reason}`` for every
    other date (reason as ``non_session_reason``, e.g. "XNYS holiday: Juneteenth National Independence Day").
    """
    dates = pd.DatetimeIndex(dates)
    sessions = pd.DatetimeIndex([d for d in dates if is_session(d)])
    closed = {d.strftime("%Y-%m-%d"): non_session_reason(d) for d in dates if d not in sessions}
    return sessions, closed


#: Where the exchange is: a "business date" is the New York calendar date.
NEW_YORK = "America/New_York"


def new_york_time(when: dt.datetime | pd.Timestamp | None = None) -> pd.Timestamp:
    """``when`` (default now) in New York; a naive value is read as New York wall-clock time."""
    ts = pd.Timestamp.now(tz=NEW_YORK) if when is None else pd.Timestamp(when)
    return ts.tz_localize(NEW_YORK) if ts.tzinfo is None else ts.tz_convert(NEW_YORK)


def business_date(when: dt.datetime | pd.Timestamp | None = None) -> pd.Timestamp:
    """The New York calendar date of ``when`` (the session a tick after the close computes), as a tz-naive
    midnight Timestamp; ``when`` defaults to now."""
    return pd.Timestamp(new_york_time(when).date())


def latest_completed_session(now: dt.datetime | pd.Timestamp | None = None) -> pd.Timestamp:
    """The last XNYS session whose close (13:00 on early closes, else 16:00 New York) is at or before ``now``."""
    ts = new_york_time(now)
    day = pd.Timestamp(ts.date())
    if is_session(day) and ts >= session_close(day):
        return day
    return previous_session(day)
