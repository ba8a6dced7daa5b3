"""A report input restricted to its anchor date (:class:`Anchored`): what every section reads.

One anchor date: every section uses the rows of ``inp.anchor_date`` only. Rows of another date (or another
portfolio) in an input frame are never shown; they are counted (``Anchored.ignored``), listed as
data-quality problems, and :func:`sigmasight_pipeline.reporting.validation.prepublish_problems` fails on
them. Availability is decided here, once.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ..formatting import OPTION_TYPES, as_int, format_field, plain_position_type
from ..inputs import SECTION_TABLES, ReportInput, anchor_mask, history_upto, on_date, records, row_mask
from .layout import ENGINES, REQUIRED_SECTIONS

__all__ = [
    "Anchored",
    "anchor_rows",
    "engine_availability",
    "held_positions",
    "by_position",
    "int_keys",
    "sorted_by",
    "formatted",
]


def anchor_rows(frame: pd.DataFrame, anchor: dt.date, portfolio_id: str) -> tuple[pd.DataFrame, int]:
    """The rows of ``frame`` dated ``anchor`` of ``portfolio_id``, and how many others were left out."""
    if frame is None or len(frame) == 0:
        return pd.DataFrame(columns=list(frame.columns) if frame is not None else []), 0
    keep = row_mask(frame, anchor, portfolio_id)
    out = frame.reset_index(drop=True) if keep.all() else frame.loc[keep].reset_index(drop=True)
    return out, int((~keep).sum())


def engine_availability(inp: ReportInput) -> dict[str, tuple[bool, str | None]]:
    """engine -> (available, reason): available when every required table has rows for the anchor date."""
    counts = {}
    for name in SECTION_TABLES:
        frame = inp.section(name)
        counts[name] = int(anchor_mask(inp, frame).sum()) if len(frame) else 0
    return _availability(counts, inp.anchor_date)


def _availability(counts: dict[str, int], anchor: dt.date) -> dict[str, tuple[bool, str | None]]:
    """engine -> (available, reason) from the row counts of the anchor-date sections."""
    out: dict[str, tuple[bool, str | None]] = {}
    for engine in ENGINES:
        missing = [s for s in REQUIRED_SECTIONS[engine] if counts[s] == 0]
        if missing:
            reason = "; ".join(f"no rows in {SECTION_TABLES[s]} for {anchor.isoformat()}" for s in missing)
            out[engine] = (False, reason)
        else:
            out[engine] = (True, None)
    return out


def by_position(recs: list[dict]) -> dict[int, dict]:
    """First record per position id."""
    out: dict[int, dict] = {}
    for rec in recs:
        pid = as_int(rec.get("position_id"))
        if pid is not None and pid not in out:
            out[pid] = rec
    return out


def _entry_order(pos: pd.DataFrame) -> tuple[list[int], list]:
    """The rows of a positions frame in position-id order (stable), and each row's entry day (NaT if none)."""
    frame = pos.reset_index(drop=True)
    order = frame.sort_values("position_id", kind="stable").index.tolist() if "position_id" in frame.columns \
        else list(range(len(frame)))
    if "entry_date" in frame.columns:
        entry = pd.to_datetime(frame["entry_date"], errors="coerce").dt.date.tolist()
    else:
        entry = [pd.NaT] * len(frame)
    return order, entry


def held_positions(inp: ReportInput) -> tuple[list[dict], int, list[dict]]:
    """Records of the positions held on the anchor date (``entry_date <= anchor``, not closed; an unknown
    entry date counts as held), by position id; how many were not held yet; and the positions closed by
    then (``exit_date`` set: they stay in the history with their realised P&L)."""
    pos = inp.positions if isinstance(inp.positions, pd.DataFrame) else pd.DataFrame()
    if len(pos) == 0:
        return [], 0, []
    order, entry = inp.cache.get(pos, "entry_order", _entry_order)
    recs = inp.records(pos)
    anchor = inp.anchor_date
    closed = [recs[i] for i in order if not pd.isna(recs[i].get("exit_date"))]
    held = [recs[i] for i in order if pd.isna(recs[i].get("exit_date")) and (pd.isna(entry[i]) or entry[i] <= anchor)]
    return held, len(recs) - len(held) - len(closed), closed


def int_keys(recs: list[dict], *keys: str) -> bool:
    """Whether every record has a plain int under each of ``keys`` (Python sorts then match pandas')."""
    return all(type(r.get(k)) is int for r in recs for k in keys)


def sorted_by(recs: list[dict], frame: pd.DataFrame, *keys: str) -> list[dict]:
    """``records(frame.sort_values(list(keys), kind="stable"))`` given ``recs = records(frame)``."""
    if int_keys(recs, *keys):
        return sorted(recs, key=lambda r: tuple(r[k] for k in keys))
    return records(frame.sort_values(list(keys), kind="stable"))


class Anchored:
    """A :class:`ReportInput` restricted to its anchor date, with the lookups every section needs.

    ``frames``: section -> its rows of the anchor date (and the input's portfolio); ``ignored``: section ->
    rows of another date or portfolio that were left out. Records are computed once and shared between
    sections: read them, never change them.
    """

    def __init__(self, inp: ReportInput):
        self.inp = inp
        self.anchor = inp.anchor_date
        self.anchor_iso = inp.anchor_date.isoformat()
        self.frames: dict[str, pd.DataFrame] = {}
        self.ignored: dict[str, int] = {}
        self._memo: dict = {}
        for name in SECTION_TABLES:
            frame = inp.section(name)
            if len(frame) == 0:
                self.frames[name], self.ignored[name] = pd.DataFrame(columns=list(frame.columns)), 0
                self._memo[(name, False)] = []
                continue
            keep = anchor_mask(inp, frame)
            if keep.all():  # the usual case: the input frame holds the anchor's rows only
                self.frames[name], self.ignored[name] = frame, 0
                self._memo[(name, False)] = inp.records(frame)
            else:
                self.frames[name] = frame.loc[keep].reset_index(drop=True)
                self.ignored[name] = int((~keep).sum())
        self.availability = _availability({n: len(f) for n, f in self.frames.items()}, self.anchor)
        self.held_records, self.not_yet_entered, self.closed_records = held_positions(inp)
        self.pos_by_id = by_position(self.held_records)

    def ok(self, engine: str) -> bool:
        return self.availability[engine][0]

    def records(self, section: str, by_position: bool = False) -> list[dict]:
        """The anchor-date rows of ``section`` as dicts (sorted by position id if asked); computed once."""
        key = (section, by_position)
        if key not in self._memo:
            if by_position:
                recs = self.records(section)
                self._memo[key] = sorted_by(recs, self.frames[section], "position_id") if recs else recs
            else:
                self._memo[key] = records(self.frames[section])
        return self._memo[key]

    def one_row(self, section: str) -> dict | None:
        recs = self.records(section)
        return recs[0] if recs else None

    def symbol(self, pid) -> str:
        rec = self.pos_by_id.get(as_int(pid))
        return str(rec["symbol"]) if rec is not None and "symbol" in rec else f"#{pid}"

    def position_ref(self, row: dict) -> dict:
        """The ``position_id`` and ``symbol`` that open every per-position JSON entry."""
        return {"position_id": as_int(row.get("position_id")), "symbol": self.symbol(row.get("position_id"))}

    def is_option(self, pid) -> bool:
        rec = self.pos_by_id.get(as_int(pid))
        return rec is not None and plain_position_type(rec.get("position_type")) in OPTION_TYPES

    def as_of(self, engine: str) -> list[str]:
        """The dates of an available engine's rows (ISO); [] when it is not available.

        The anchor-date frames hold rows dated the anchor only, so that is the one date there can be.
        """
        if not self.ok(engine):
            return []
        dated = any("date" in self.frames[s].columns and len(self.frames[s]) for s in REQUIRED_SECTIONS[engine])
        return [self.anchor_iso] if dated else []

    def history(self) -> pd.DataFrame:
        """Cumulative P&L by date up to the anchor (the anchor's snapshot added when the history lacks it)."""
        if "history" not in self._memo:
            self._memo["history"] = _history(self)
        return self._memo["history"]


def formatted(row: dict | None, fields) -> dict:
    """``{field: row[field] formatted by its precision}`` for ``fields``, in their order (the JSON layout)."""
    row = row or {}
    return {f: format_field(f, row.get(f)) for f in fields}


def _history(a: Anchored) -> pd.DataFrame:
    frame = a.inp.section("snapshot_history")
    key = ("history_upto", a.inp.portfolio_id, a.anchor)
    h = a.inp.cache.get(frame, key, lambda f: history_upto(f, a.inp.portfolio_id, a.anchor))
    snap = a.one_row("snapshot")
    if snap is not None and not on_date(h["date"], a.anchor).any():
        extra = pd.DataFrame({"date": [pd.Timestamp(a.anchor)], "cumulative_pnl": [snap.get("cumulative_pnl")]})
        h = pd.concat([h, extra], ignore_index=True) if len(h) else extra
    return h
